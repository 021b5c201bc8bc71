"""Applications of test_free_threaded.py: what handler threads share.

On free-threaded CPython the handler threads run these at the same time, so
each one puts a container the server reads without the GIL in another
thread's way: `shared` answers every request with the same body list and the
same header list, which each request also mutates (so the server iterates a
list another handler is changing); `split` reads one wsgi.input from two
threads at once; `gil` says whether the worker process runs with the GIL.
"""

from __future__ import annotations

import hashlib
import sys
import threading

BODY = [b"shared body\n"]  # one list object, returned by every request
HEADERS = [("Content-Type", "text/plain"), ("X-Seq", "0")]
_seq = iter(range(1, 1 << 62))


def shared(environ, start_response):
    n = next(_seq)
    # While other handlers iterate HEADERS in start_response/build_head: replace
    # an item, then grow and shrink the list.
    HEADERS[1] = ("X-Seq", str(n))
    HEADERS.append(("X-Extra", str(n)))
    del HEADERS[2:]
    start_response("200 OK", HEADERS)
    return BODY


def split(environ, start_response):
    """Reads the body from two threads at once, 7 bytes per read; answers the
    byte count and a digest of the bytes sorted (order across threads is free)."""
    stream = environ["wsgi.input"]
    parts: list[list[bytes]] = [[], []]

    def reader(k: int) -> None:
        while chunk := stream.read(7):
            parts[k].append(chunk)

    threads = [threading.Thread(target=reader, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = b"".join(parts[0]) + b"".join(parts[1])
    body = f"{len(data)} {hashlib.sha256(bytes(sorted(data))).hexdigest()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def gil(environ, start_response):
    state = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
    body = f"gil={'on' if state else 'off'} threads={environ['wsgi.multithread']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/shared":
        return shared(environ, start_response)
    if path == "/split":
        return split(environ, start_response)
    return gil(environ, start_response)
