#!/usr/bin/env bash
# CPU per request of the Prometheus metrics (docs/operations.md, "Metrics"):
# one worker of the bare WSGI hello app (bench/hello_app.py, --threads 1)
# pinned to CPU 0, wrk pinned to CPU 1, 50 keep-alive connections, metrics
# off and on in turn; CPU is the worker's utime+stime (all its threads,
# /proc/PID/stat) over the measured run, divided by its requests. With
# metrics on, the master is scraped once a second meanwhile (its CPU is not
# in the figure: it is another process, a few ms per scrape).
# Usage: bench/metrics_cost.sh [ROUNDS] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
DURATION=${2:-5s}
PORT=${PORT:-18987}
METRICS_PORT=${METRICS_PORT:-18988}
HZ=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() { # label, meltemi options...
    local label=$1
    shift
    PYTHONPATH=bench taskset -c 0 .venv/bin/python -m meltemi hello_app:app --bind "127.0.0.1:$PORT" --workers 1 \
        --threads 1 "$@" >/tmp/meltemi-metrics-cost.server 2>&1 &
    local master=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.1; done
    local worker
    worker=$(pgrep -P "$master" | head -1)
    taskset -c 1 wrk -t1 -c50 -d1s "http://127.0.0.1:$PORT/" >/dev/null # warm-up
    local scraper=""
    if [[ "$*" == *--metrics* ]]; then
        (while sleep 1; do curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" >/dev/null || true; done) &
        scraper=$!
    fi
    local t0 t1 out
    t0=$(cpu_ticks "$worker")
    out=$(taskset -c 1 wrk -t1 -c50 -d"$DURATION" "http://127.0.0.1:$PORT/")
    t1=$(cpu_ticks "$worker")
    [[ -n "$scraper" ]] && kill "$scraper"
    local requests rps
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    echo "$label: $rps requests/s, $(echo "scale=2; ($t1 - $t0) * 1000000 / $HZ / $requests" | bc) us CPU per request"
    kill -TERM "$master"
    wait "$master" 2>/dev/null || true
}

echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) CPUs; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$ROUNDS"); do
    run "metrics off"
    run "metrics on " --metrics "127.0.0.1:$METRICS_PORT"
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
