#!/usr/bin/env bash
# CPU per request of the access log and of request ids (docs/design.md,
# "Request ids and the access log"): one worker of the bare WSGI hello app
# (bench/hello_app.py, --threads 1) pinned to CPU 0, wrk pinned to CPU 1,
# 50 keep-alive connections; CPU is the worker's utime+stime (all its
# threads, /proc/PID/stat) over the measured run, divided by its requests.
# Usage: bench/accesslog_cost.sh [ROUNDS] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
DURATION=${2:-4s}
PORT=${PORT:-18977}
LOG=${LOG:-/tmp/meltemi-accesslog-cost.log}
HZ=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() { # label, meltemi options...
    local label=$1
    shift
    rm -f "$LOG"
    PYTHONPATH=bench taskset -c 0 .venv/bin/python -m meltemi hello_app:app --bind "127.0.0.1:$PORT" --workers 1 \
        --threads 1 "$@" >/tmp/meltemi-accesslog-cost.server 2>&1 &
    local master=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.1; done
    local worker
    worker=$(pgrep -P "$master" | head -1)
    taskset -c 1 wrk -t1 -c50 -d1s "http://127.0.0.1:$PORT/" >/dev/null # warm-up
    local t0 t1 out
    t0=$(cpu_ticks "$worker")
    out=$(taskset -c 1 wrk -t1 -c50 -d"$DURATION" "http://127.0.0.1:$PORT/")
    t1=$(cpu_ticks "$worker")
    local requests rps
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    echo "$label: $rps requests/s, $(echo "scale=2; ($t1 - $t0) * 1000000 / $HZ / $requests" | bc) us CPU per request"
    kill -TERM "$master"
    wait "$master" 2>/dev/null || true
    rm -f "$LOG"
}

for _ in $(seq "$ROUNDS"); do
    run "log off, request ids off" --request-id-header ""
    run "log off, request ids on"
    run "common" --access-log "$LOG"
    run "combined" --access-log "$LOG" --access-log-format combined
    run "json" --access-log "$LOG" --access-log-format json
done
