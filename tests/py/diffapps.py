"""The application of the differential check (test_differential.py), for meltemi and gunicorn alike.

It reads the whole body and answers with what the server made of the request:
method, percent-decoded path, query string, body length and a digest of the
body, as one JSON line.  A body that the server cannot deliver whole (bad
framing, a client gone) raises in wsgi.input.read(); the answer is then a 400
that says so, so that a server that hands a short body over as complete is
told apart from one that refuses it.  It is deliberately not wrapped in
wsgiref.validate: the same app must run unchanged under another server.
"""

from __future__ import annotations

import hashlib
import json

DIFF_HEADER = ("X-Diff-App", "1")


def describe(environ, start_response):
    try:
        body = environ["wsgi.input"].read()
    except Exception as exc:  # any failure to read is the verdict "refused"
        text = f"body error: {type(exc).__name__}".encode()
        start_response("400 Bad Request", [("Content-Length", str(len(text))), ("Connection", "close")])
        return [text]
    declared = environ.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) != len(body):
        # A body shorter than its Content-Length, handed over as if whole.
        text = f"short body: {len(body)} of {declared}".encode()
        start_response("400 Bad Request", [("Content-Length", str(len(text))), ("Connection", "close")])
        return [text]
    seen = {
        "method": environ["REQUEST_METHOD"],
        "path": environ.get("PATH_INFO", ""),
        "query": environ.get("QUERY_STRING", ""),
        "length": len(body),
        "sha": hashlib.sha256(body).hexdigest()[:16],
    }
    text = json.dumps(seen, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(text))), DIFF_HEADER])
    return [text]
