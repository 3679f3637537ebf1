#!/usr/bin/env bash
# Runs alertkit's reference server and two peers (FastAPI + uvicorn with the
# FastAPI docs' ConnectionManager; Node `ws` with its README's broadcast
# idiom) one at a time, each pinned to CPU 0 with the load tool
# (examples/loadgen.rs) pinned to CPU 1, and prints a Markdown table. With
# --write it also replaces the table in benches/README.md between the
# `peers:begin` / `peers:end` markers.
#
#   benches/peers/compare.sh [--write]
#       (CLIENTS="1000 5000" MESSAGES=2000 PUBLISHERS=16)
#
# Every server gets the same load: PUBLISHERS concurrent publishing
# requests (16, as in the `raise` bench), each waiting for its answer.
#
# The peers are installed the way their users install them, from their
# registries at the pinned versions (fastapi/requirements.txt,
# node/package.json), under target/peers/. Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
work=$root/target/peers
mkdir -p "$work"
CLIENTS=${CLIENTS:-"1000 5000"}
MESSAGES=${MESSAGES:-2000}
PUBLISHERS=${PUBLISHERS:-16}
SECRET=loadgen-secret-loadgen-secret-loadgen!
ulimit -n 65536 2>/dev/null || true

cargo build --release --example server --example loadgen --all-features >&2

if [ ! -x "$work/venv/bin/uvicorn" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q -r benches/peers/fastapi/requirements.txt
fi
cp benches/peers/node/package.json benches/peers/node/server.js "$work/"
(cd "$work" && npm install --silent --no-audit --no-fund >&2)

pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}

# start NAME: starts the server, sets $pid and $port.
start() {
  case $1 in
    alertkit|alertkit-alerts)
      port=18080
      rm -rf "$work/alertkit" && mkdir -p "$work/alertkit"
      (cd "$work/alertkit" && ALERTKIT_ADDR=127.0.0.1:$port ALERTKIT_JWT_SECRET=$SECRET \
        ALERTKIT_RATE_LIMIT=0 RUST_LOG=warn exec taskset -c 0 "$root/target/release/examples/server") \
        >"$work/$1.log" 2>&1 &
      ;;
    fastapi)
      port=18081
      (cd "$root/benches/peers/fastapi" && exec taskset -c 0 "$work/venv/bin/uvicorn" app:app \
        --host 127.0.0.1 --port $port --log-level warning) >"$work/$1.log" 2>&1 &
      ;;
    node)
      port=18082
      (cd "$work" && exec taskset -c 0 node server.js $port) >"$work/$1.log" 2>&1 &
      ;;
  esac
  pid=$!
  pids+=("$pid")
  wait_port $port
}

results=$work/results.jsonl
: >"$results"
for server in node fastapi alertkit alertkit-alerts; do
  for n in $CLIENTS; do
    start $server
    target=peer; publish=broadcast
    case $server in alertkit) target=alertkit ;; alertkit-alerts) target=alertkit; publish=alerts ;; esac
    echo "== $server, $n clients" >&2
    taskset -c 1 "$root/target/release/examples/loadgen" --target $target --publish $publish \
      --url http://127.0.0.1:$port --clients "$n" --messages "$MESSAGES" --publishers "$PUBLISHERS" --server-pid "$pid" \
      --secret "$SECRET" | sed "s/^{/{\"server\":\"$server\",/" | tee -a "$results" >&2
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done

table=$(python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
names = {"node": "Node `ws` 8.23.0", "fastapi": "FastAPI 0.165 / uvicorn 0.54",
         "alertkit": "alertkit (broadcast)", "alertkit-alerts": "alertkit (durable alerts, SQLite)"}
print("| server | clients | deliveries/s | p50 | p99 | max | lost | duplicated | cut | RSS per idle connection |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    rss = r.get("idle_rss_kib_per_conn")
    print(f"| {names[r['server']]} | {r['clients']:,} | {r['deliveries_per_s']:,.0f} | "
          f"{r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | {r['max_ms']:.1f} ms | {r['lost']} | "
          f"{r['duplicated']} | {r['closed']} | {rss:.1f} KiB |" if rss is not None else "| n/a |")
PY
)
echo "$table"
if [ "${1:-}" = "--write" ]; then
  python3 - "$root/benches/README.md" "$table" "$(nproc) vCPU, $(date -u +%F)" <<'PY'
import sys, re
path, table, machine = sys.argv[1:4]
text = open(path).read()
block = f"<!-- peers:begin -->\n{table}\n\nOne run of `benches/peers/compare.sh` ({machine}; server on CPU 0, load tool on CPU 1).\n<!-- peers:end -->"
text = re.sub(r"<!-- peers:begin -->.*<!-- peers:end -->", block, text, flags=re.S)
open(path, "w").write(text)
PY
fi
