#!/usr/bin/env python3
"""Generates the reference server's demo dataset (`demo.csv`).

Three series, 14 days at 5-minute resolution, ending 2026-01-15T00:00:00Z
(`--demo` shifts them so the last point is now):

- `vch20`: daily cycle (±15), upward trend (+1.6/day from 55) and noise; its
  forecast crosses 90 % of its capacity (100) within the next day.
- `vch21`: daily cycle (±10) around 45 with noise; stays well below capacity.
- `api.requests`: a daily and a weekly cycle around 1200 req/s; capacity 5000.

Fixed seed, so the file is the same on every run:
    python3 examples/server/data/generate.py > examples/server/data/demo.csv
"""
import math
import random

random.seed(20260115)
END = 1768435200  # 2026-01-15T00:00:00Z
START = END - 14 * 86400
STEP = 300

print("timestamp,series,value")
for t in range(START, END + 1, STEP):
    day = (t - START) / 86400
    daily = math.sin(2 * math.pi * (t % 86400) / 86400)
    weekly = math.sin(2 * math.pi * (t % (7 * 86400)) / (7 * 86400))
    print(f"{t},vch20,{55 + 15 * daily + 1.6 * day + random.gauss(0, 1.5):.2f}")
    print(f"{t},vch21,{45 + 10 * daily + random.gauss(0, 1.5):.2f}")
    print(f"{t},api.requests,{1200 + 300 * daily + 150 * weekly + random.gauss(0, 40):.1f}")
