"""The application that `make soak` (tests/soak/soak.py) runs meltemi with.

- `/hello`: 13 bytes, the bulk of the traffic (keep-alive and pipelined);
- `/upload`: reads the body and answers with its length and a digest, so the
  client checks that every byte arrived, Content-Length and chunked alike;
  a body that cannot be read whole (the client went away) is answered 400;
- `/download?n=BYTES`: a generated body of `n` bytes in 64 KiB chunks,
  streamed (no Content-Length: chunked framing), whose iterator's close() is
  counted in the response to `/closed`, so the driver checks that every
  stream, also those whose client went away, was closed.
"""

from __future__ import annotations

import hashlib
import threading
from urllib.parse import parse_qs

_lock = threading.Lock()
_streams = {"started": 0, "closed": 0}
CHUNK = b"s" * 65536


def _answer(start_response, body: bytes, status: str = "200 OK"):
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class _Download:
    """An iterable with a close() method, so the server's obligation to call it is observable."""

    def __init__(self, n: int):
        self.left = n
        with _lock:
            _streams["started"] += 1

    def __iter__(self):
        while self.left > 0:
            piece = CHUNK[: min(self.left, len(CHUNK))]
            self.left -= len(piece)
            yield piece

    def close(self):
        with _lock:
            _streams["closed"] += 1


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/hello":
        return _answer(start_response, b"Hello, world!")
    if path == "/upload":
        try:
            body = environ["wsgi.input"].read()
        except OSError as exc:
            return _answer(start_response, f"body error {type(exc).__name__}".encode(), "400 Bad Request")
        return _answer(start_response, f"{len(body)} {hashlib.sha256(body).hexdigest()[:16]}".encode())
    if path == "/download":
        n = int(parse_qs(environ.get("QUERY_STRING", "")).get("n", ["65536"])[0])
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _Download(n)
    if path == "/closed":
        # Streams begun and closed in this worker; the one serving this request is not a stream.
        with _lock:
            body = f"{_streams['started']} {_streams['closed']}".encode()
        return _answer(start_response, body)
    return _answer(start_response, b"not found", "404 Not Found")
