#!/usr/bin/env bash
# A quick side-by-side (not the benchmark suite): one worker process per
# server pinned to CPU 0, wrk pinned to CPU 1, keep-alive, 50 connections.
# Scenarios: (a) a bare WSGI hello app, (b) the demo project's plain Django
# view /hello/ (DEBUG off). Peers come from a separate virtual environment:
#   python3 -m venv /tmp/peers && /tmp/peers/bin/pip install gunicorn granian Django==5.2.19
# Usage: bench/quick_compare.sh [PEERS_VENV] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=${1:-/tmp/peers}
DURATION=${2:-8s}
ROOT=$PWD
PORT=${PORT:-18765}
export DEMO_DEBUG=0 PYTHONPATH="$ROOT/bench:$ROOT/examples/demo"

run() { # name, command...
    local name=$1
    shift
    if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
        echo "port $PORT is already in use" >&2
        exit 1
    fi
    taskset -c 0 "$@" >/tmp/quick_compare.$name.log 2>&1 &
    local pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT$URL" >/dev/null && break; sleep 0.1; done
    kill -0 $pid 2>/dev/null || { cat /tmp/quick_compare.$name.log >&2; exit 1; }
    for child in $(pgrep -P $pid) $pid; do taskset -acp 0 "$child" >/dev/null 2>&1 || true; done
    taskset -c 1 wrk -t1 -c50 -d2s "http://127.0.0.1:$PORT$URL" >/dev/null # warm-up
    local rps
    rps=$(taskset -c 1 wrk -t1 -c50 -d"$DURATION" "http://127.0.0.1:$PORT$URL" | awk '/Requests\/sec/ {print $2}')
    printf '%-28s %-10s %10s req/s\n' "$SCENARIO" "$name" "$rps"
    kill -TERM $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    sleep 0.5
}

SCENARIO="(a) WSGI hello" URL=/ APP=hello_app:app
run meltemi "$ROOT/.venv/bin/python" -m meltemi $APP --bind 127.0.0.1:$PORT --workers 1 --threads 1
run granian "$PEERS/bin/granian" --interface wsgi --workers 1 --host 127.0.0.1 --port $PORT $APP
run gunicorn "$PEERS/bin/gunicorn" -w 1 -b 127.0.0.1:$PORT $APP

SCENARIO="(b) Django view /hello/" URL=/hello/ APP=demo.wsgi:application
run meltemi "$ROOT/.venv/bin/python" -m meltemi $APP --bind 127.0.0.1:$PORT --workers 1 --threads 1
run granian "$PEERS/bin/granian" --interface wsgi --workers 1 --host 127.0.0.1 --port $PORT $APP
run gunicorn "$PEERS/bin/gunicorn" -w 1 -b 127.0.0.1:$PORT $APP
