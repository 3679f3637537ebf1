#!/usr/bin/env bash
# Brings up the services alertkit's tests talk to, on loopback only, and
# exports their URLs. Idempotent: reuses what already answers, starts the rest.
#
#   source scripts/services.sh   # then DATABASE_URL, REDIS_URL, MONGODB_URL are set
#   scripts/services.sh          # same, and prints the exports
#
# Servers started by this shell are listed in AK_STARTED; `ak_services_down`
# stops exactly those (by their PID files), so nothing is left running that
# was not running before. scripts/test calls it on exit unless
# ALERTKIT_KEEP_SERVICES=1.
#
# PostgreSQL and Redis come from Debian packages (installed when missing);
# the MongoDB-wire server (SecantusDB) and the SMTP sink (aiosmtpd) from PyPI,
# in the virtualenv .venv, with the API fuzzer Schemathesis (pinned; its path
# is exported as SCHEMATHESIS). Servers this script starts keep their data and
# pid files under .services/.

set -euo pipefail

ak_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ak_state="$ak_root/.services"
ak_venv="$ak_root/.venv"
ak_schemathesis_version=4.32.5
mkdir -p "$ak_state"

ak_log() { printf '[services] %s\n' "$*" >&2; }

AK_STARTED=()

ak_sudo() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

ak_port_open() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && exec 3>&- 3<&-
}

ak_wait_port() { # host port seconds what
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    ak_port_open "$1" "$2" && return 0
    sleep 0.1
  done
  ak_log "$4 did not come up on $1:$2 within $3 s"
  return 1
}

ak_apt_install() { # packages...
  local missing=() p
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  ak_log "installing Debian packages: ${missing[*]}"
  ak_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  ak_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ak_pg_bin() { # program
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [[ -n $d ]] && echo "$d/$1"
}

ak_pg_ok() { # port
  psql -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1
}

ak_postgres() {
  command -v psql >/dev/null && [[ -n $(ak_pg_bin initdb) ]] || ak_apt_install postgresql postgresql-client
  if ak_pg_ok 5432; then
    export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
    return
  fi
  # A cluster of our own, trust auth, loopback only (a Debian default cluster
  # would ask for passwords over TCP).
  local port=55432 dir="$ak_state/pg"
  if ! ak_pg_ok "$port"; then
    if [[ ! -f $dir/PG_VERSION ]]; then
      ak_log "initialising PostgreSQL in $dir"
      mkdir -p "$dir"
      if [[ $(id -u) -eq 0 ]]; then
        chown postgres:postgres "$dir"
        su postgres -s /bin/sh -c "$(ak_pg_bin initdb) -D '$dir' -A trust -U postgres" >/dev/null
      else
        "$(ak_pg_bin initdb)" -D "$dir" -A trust -U postgres >/dev/null
      fi
    fi
    ak_log "starting PostgreSQL on 127.0.0.1:$port"
    local ctl
    ctl="$(ak_pg_bin pg_ctl) -D '$dir' -l '$dir/server.log' -o \"-c listen_addresses=127.0.0.1 -p $port -k '$dir'\" -w start"
    if [[ $(id -u) -eq 0 ]]; then su postgres -s /bin/sh -c "$ctl" >/dev/null; else sh -c "$ctl" >/dev/null; fi
    ak_pg_ok "$port" || { ak_log "PostgreSQL did not start; see $dir/server.log"; return 1; }
    AK_STARTED+=(postgres)
  fi
  export DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres
}

ak_redis() {
  command -v redis-server >/dev/null || ak_apt_install redis-server
  if [[ $(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null) == PONG ]]; then
    export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
    return
  fi
  local port=56379
  if [[ $(redis-cli -h 127.0.0.1 -p $port ping 2>/dev/null) != PONG ]]; then
    ak_log "starting Redis on 127.0.0.1:$port"
    redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --pidfile "$ak_state/redis.pid" --logfile "$ak_state/redis.log" --dir "$ak_state"
    ak_wait_port 127.0.0.1 $port 10 Redis
    AK_STARTED+=(redis)
  fi
  export REDIS_URL=redis://127.0.0.1:$port
}

ak_venv() {
  if ! python3 -m venv --help >/dev/null 2>&1; then ak_apt_install python3-venv; fi
  [[ -x $ak_venv/bin/python ]] || python3 -m venv "$ak_venv"
  if ! "$ak_venv/bin/python" -c 'import secantus, aiosmtpd' >/dev/null 2>&1 \
    && ! { [[ -x $ak_venv/bin/secantusd-py ]] && "$ak_venv/bin/python" -c 'import aiosmtpd' >/dev/null 2>&1; }; then
    ak_log "installing SecantusDB and aiosmtpd into $ak_venv"
    "$ak_venv/bin/pip" install -q --disable-pip-version-check SecantusDB aiosmtpd
  fi
  # The API fuzzer of tests/server_schemathesis.rs, pinned.
  if ! "$ak_venv/bin/schemathesis" --version 2>/dev/null | grep -q "$ak_schemathesis_version"; then
    ak_log "installing schemathesis $ak_schemathesis_version into $ak_venv"
    "$ak_venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$ak_schemathesis_version"
  fi
  export SCHEMATHESIS="$ak_venv/bin/schemathesis"
}

ak_mongo() {
  local port=57017
  if ! ak_port_open 127.0.0.1 $port; then
    ak_log "starting SecantusDB (MongoDB wire) on 127.0.0.1:$port"
    "$ak_venv/bin/secantusd-py" --host 127.0.0.1 --port $port --storage-path :memory: \
      --log-level WARNING >"$ak_state/secantus.log" 2>&1 &
    echo $! >"$ak_state/secantus.pid"
    ak_wait_port 127.0.0.1 $port 30 SecantusDB
    AK_STARTED+=(mongo)
  fi
  export MONGODB_URL=mongodb://127.0.0.1:$port
}

ak_smtp() {
  local port=52525
  # A maildir (new, cur, tmp) the sink writes each message into.
  mkdir -p "$ak_state/mail/new" "$ak_state/mail/cur" "$ak_state/mail/tmp"
  if [[ -f $ak_state/smtp.pid && -f $ak_state/smtp.port ]] \
    && kill -0 "$(cat "$ak_state/smtp.pid")" 2>/dev/null; then
    # Our own sink, still running (ALERTKIT_KEEP_SERVICES=1 kept it).
    port=$(cat "$ak_state/smtp.port")
  else
    # A sink already on the port belongs to another checkout and writes to
    # its own maildir: ours takes the next free port.
    while ak_port_open 127.0.0.1 $port; do port=$((port + 1)); done
    ak_log "starting aiosmtpd on 127.0.0.1:$port (maildir $ak_state/mail)"
    "$ak_venv/bin/python" -m aiosmtpd -n -l 127.0.0.1:$port -c aiosmtpd.handlers.Mailbox "$ak_state/mail" \
      >"$ak_state/smtp.log" 2>&1 &
    echo $! >"$ak_state/smtp.pid"
    echo $port >"$ak_state/smtp.port"
    ak_wait_port 127.0.0.1 $port 30 aiosmtpd
    AK_STARTED+=(smtp)
  fi
  export SMTP_URL=smtp://127.0.0.1:$port
  export ALERTKIT_MAILDIR="$ak_state/mail"
}

# Debian's Chromium and its WebDriver, for the dashboard's browser test
# (tests/server_dashboard.rs drives /usr/bin/chromium through chromedriver).
ak_browser() {
  if ! command -v chromedriver >/dev/null || [[ ! -x /usr/bin/chromium ]]; then
    ak_apt_install chromium chromium-driver
  fi
  command -v chromedriver >/dev/null || { ak_log "chromedriver is missing after installing chromium-driver"; return 1; }
}

ak_services_up() {
  ak_browser
  ak_postgres
  ak_redis
  ak_venv
  ak_mongo
  ak_smtp
  export ALERTKIT_REQUIRE_SERVICES=1
}

ak_stop_pid() { # pidfile what
  local pid
  [[ -f $1 ]] || return 0
  pid=$(cat "$1")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    ak_log "stopped $2 (pid $pid)"
  fi
  rm -f "$1"
}

# Stops the servers this shell started (AK_STARTED), and nothing else.
ak_services_down() {
  local s
  for s in "${AK_STARTED[@]}"; do
    case $s in
      mongo) ak_stop_pid "$ak_state/secantus.pid" SecantusDB ;;
      smtp) ak_stop_pid "$ak_state/smtp.pid" aiosmtpd ;;
      redis) ak_stop_pid "$ak_state/redis.pid" Redis ;;
      postgres)
        local ctl="$(ak_pg_bin pg_ctl) -D '$ak_state/pg' -m fast -w stop"
        if [[ $(id -u) -eq 0 ]]; then su postgres -s /bin/sh -c "$ctl" >/dev/null; else sh -c "$ctl" >/dev/null; fi
        ak_log "stopped PostgreSQL" ;;
    esac
  done
  AK_STARTED=()
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  ak_services_up
  for v in DATABASE_URL REDIS_URL MONGODB_URL SMTP_URL ALERTKIT_MAILDIR ALERTKIT_REQUIRE_SERVICES; do
    printf 'export %s=%q\n' "$v" "${!v}"
  done
fi
