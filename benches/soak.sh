#!/usr/bin/env bash
# The soak run: the reference server (release build, SQLite file, SMTP sink
# from scripts/services.sh) under 30 minutes of mixed load from
# examples/soak.rs: 2,000 WebSocket clients, 50 raises and 50 reads a
# second, critical alerts emailed to 20 users. Server pinned to CPU 0, the
# load tool to CPU 1. Prints a JSON line a minute and, at the end, a
# Markdown table (docs/soak.md holds one run's). Not run in CI.
#
#   benches/soak.sh            (MINUTES=30 CLIENTS=2000 RAISE_RATE=50 READ_RATE=50)
#
# It stops the server it started when it ends, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-30}
CLIENTS=${CLIENTS:-2000}
RAISE_RATE=${RAISE_RATE:-50}
READ_RATE=${READ_RATE:-50}
SECRET=soak-secret-soak-secret-soak-secret-0001
ADDR=127.0.0.1:${SOAK_PORT:-18090}
ulimit -n 65536 2>/dev/null || true

# shellcheck source=scripts/services.sh
source scripts/services.sh
ak_venv
ak_smtp
set +u
cargo build --release --all-features --example server --example soak >&2

dir=$(mktemp -d)
cleanup() {
  [[ -n ${server:-} ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$dir"
  [[ ${#AK_STARTED[@]} -gt 0 ]] && ak_services_down
}
trap cleanup EXIT

# The emailed users' groups (sg0…sg9), for deliveries to group audiences.
groups=$(for g in $(seq 0 9); do printf 'sg%d=soak%d,soak%d;' "$g" "$g" $((g + 10)); done)
ALERTKIT_ADDR=$ADDR ALERTKIT_JWT_SECRET=$SECRET ALERTKIT_RATE_LIMIT=0 ALERTKIT_GROUPS="${groups%;}" \
  DATABASE_URL="sqlite://$dir/soak.db?mode=rwc" SMTP_FROM=alerts@alertkit.test \
  taskset -c 0 target/release/examples/server >"$dir/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://$ADDR/health" >/dev/null && break; sleep 0.1; done

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB" >&2
taskset -c 1 target/release/examples/soak --url "http://$ADDR" --secret "$SECRET" \
  --server-pid "$server" --minutes "$MINUTES" --clients "$CLIENTS" \
  --raise-rate "$RAISE_RATE" --read-rate "$READ_RATE"
