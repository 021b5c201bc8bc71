"""WhiteNoise serving BENCH_WORK/static under /static/ (the static scenarios on gunicorn)."""

import os

from whitenoise import WhiteNoise


def not_found(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


app = WhiteNoise(
    not_found, root=os.path.join(os.environ.get("BENCH_WORK", "/tmp/meltemi-bench"), "static"), prefix="/static/"
)
