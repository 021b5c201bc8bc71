#!/usr/bin/env bash
# Static files, one worker each, server pinned to CPU 0, wrk (50 connections,
# keep-alive) on CPU 1: meltemi's C static handler vs nginx (Debian) vs
# WhiteNoise on gunicorn (sync, one worker). Files of 1 KB and 100 KB.
# Then the CPU cost of compressing a 10 KB JSON response per coding, measured
# through meltemi (a WSGI app returning it, with each Accept-Encoding).
# Peers: python3 -m venv /tmp/peers && /tmp/peers/bin/pip install gunicorn whitenoise Django==5.2.19
#        apt-get install nginx-light
# Usage: bench/static_compare.sh [PEERS_VENV] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=${1:-/tmp/peers}
DURATION=${2:-6s}
ROOT=$PWD
PORT=${PORT:-18766}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; pkill -f "$WORK" 2>/dev/null || true' EXIT
mkdir -p "$WORK/static"
head -c 1024 /dev/urandom | base64 -w 0 | head -c 1024 >"$WORK/static/f1k.txt"
head -c 102400 /dev/urandom >"$WORK/static/f100k.bin"
cat >"$WORK/wn_app.py" <<PY
import os
from whitenoise import WhiteNoise
def hello(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]
app = WhiteNoise(hello, root="$WORK/static", prefix="/static/")
PY
cat >"$WORK/nginx.conf" <<NGX
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on; tcp_nopush on;
    server { listen 127.0.0.1:$PORT; location /static/ { alias $WORK/static/; } }
}
NGX

measure() { # name url -> req/s, after a warm-up
    taskset -c 1 wrk -t1 -c50 -d2s "$2" >/dev/null
    taskset -c 1 wrk -t1 -c50 -d"$DURATION" "$2" | awk '/Requests\/sec/ {print $2}'
}

run() { # name command...
    local name=$1
    shift
    taskset -c 0 "$@" >"$WORK/$name.log" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/static/f1k.txt" && break; sleep 0.1; done
    for child in $(pgrep -P $pid) $pid; do taskset -acp 0 "$child" >/dev/null 2>&1 || true; done
    for file in f1k.txt f100k.bin; do
        printf '%-10s %-10s %10s req/s\n' "$file" "$name" "$(measure "$name" "http://127.0.0.1:$PORT/static/$file")"
    done
    kill -TERM $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    sleep 0.5
}

PYTHONPATH=$ROOT/bench run meltemi "$ROOT/.venv/bin/python" -m meltemi hello_app:app --bind 127.0.0.1:$PORT --workers 1 --threads 1 \
    --static "/static/=$WORK/static" --compress off
run nginx nginx -c "$WORK/nginx.conf" -g "daemon off;"
PYTHONPATH=$WORK run whitenoise "$PEERS/bin/gunicorn" -w 1 -b 127.0.0.1:$PORT wn_app:app

# CPU time per 10 KB JSON response, per coding: the worker's utime+stime over
# a fixed wrk run, divided by the requests it answered.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
PYTHONPATH=$ROOT/bench taskset -c 0 "$ROOT/.venv/bin/python" -m meltemi json_app:app --bind 127.0.0.1:$PORT \
    --workers 1 --threads 1 >"$WORK/json.log" 2>&1 &
master=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
worker=$(pgrep -P $master | head -1)
taskset -acp 0 "$worker" >/dev/null
hz=$(getconf CLK_TCK)
for coding in identity gzip br zstd; do
    taskset -c 1 wrk -t1 -c10 -d1s -H "Accept-Encoding: $coding" "http://127.0.0.1:$PORT/" >/dev/null
    before=$(cpu_ticks "$worker")
    requests=$(taskset -c 1 wrk -t1 -c10 -d"$DURATION" -H "Accept-Encoding: $coding" "http://127.0.0.1:$PORT/" |
        awk '/requests in/ {print $1}')
    after=$(cpu_ticks "$worker")
    size=$(curl -s -H "Accept-Encoding: $coding" "http://127.0.0.1:$PORT/" | wc -c)
    awk -v c="$coding" -v t=$((after - before)) -v n="$requests" -v hz="$hz" -v s="$size" \
        'BEGIN {printf "10 KB JSON %-9s %7.1f us CPU/request  %6d bytes on the wire\n", c, t / hz / n * 1e6, s}'
done
kill -TERM $master
wait $master 2>/dev/null || true
