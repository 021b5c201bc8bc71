"""A WSGI app returning a 10 KB JSON document (bench/static_compare.sh: compression cost)."""

import json

BODY = json.dumps(
    [
        {"id": i, "name": f"item {i}", "price": i * 1.25, "tags": ["a", "b", "c"], "active": i % 2 == 0}
        for i in range(130)
    ]
).encode()[:10240]


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]
