"""WSGI applications for the compression and static file tests (test_compression.py, test_static.py).

`main` dispatches on the first path segment.  Every application is wrapped in
`wsgiref.validate.validator`, except under the `/raw/` prefix
(`/raw/body?...` is `body` unwrapped): the validator wraps whatever the
application returns in an iterator of its own, so the bridge's paths for a
list body and for a one-chunk iterable (Django's HttpResponse) can only be
reached without it.  Parameters come from the query string.

The bodies are deterministic (`make_body(size)`), so a test computes the
bytes the application sent without asking it.
"""

from __future__ import annotations

import hashlib
import http
import time
import warnings
from urllib.parse import parse_qs
from wsgiref.validate import WSGIWarning, validator

warnings.simplefilter("error", WSGIWarning)


def make_body(size: int) -> bytes:
    """`size` bytes of JSON-like text: compressible, yet not a single repeated byte."""
    parts = []
    total = 0
    i = 0
    while total < size:
        digest = hashlib.sha256(str(i).encode()).hexdigest()[: 8 + i % 24]
        part = f'{{"id": {i}, "name": "item-{digest}", "tags": ["a{i % 7}", "b{i % 13}"]}},\n'.encode()
        parts.append(part)
        total += len(part)
        i += 1
    return b"".join(parts)[:size]


def _query(environ) -> dict[str, str]:
    parsed = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return {key: values[-1] for key, values in parsed.items()}


def _status(code: int) -> str:
    return f"{code} {http.HTTPStatus(code).phrase}"


class _OneChunk:
    """An iterable of len() 1 holding the whole body, as Django's HttpResponse is."""

    def __init__(self, body: bytes):
        self.body = body

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        return iter([self.body])

    def __getitem__(self, index: int) -> bytes:
        if index != 0:
            raise IndexError(index)
        return self.body

    def close(self) -> None:
        pass


def body(environ, start_response):
    """`?size=N&mode=list|one|gen|write&cl=1&type=T&status=200&vary=V&etag=E&cc=C&ce=C&chunk=K`

    A body of `size` bytes (make_body) as the `mode` says: a list of chunks of
    `chunk` bytes (default: one), a one-chunk iterable (with `cl=1`: and a
    Content-Length, as Django sends), a generator of `chunk`-byte pieces, or
    the write() callable.  `type` is the Content-Type (`none` for none);
    `vary`, `etag`, `cc` (Cache-Control) and `ce` (Content-Encoding) add those
    headers.  With `status=204` or `304` no body nor Content-Length is sent.
    """
    q = _query(environ)
    size = int(q.get("size", "2000"))
    mode = q.get("mode", "list")
    code = int(q.get("status", "200"))
    chunk = int(q.get("chunk", "0")) or max(size, 1)
    data = make_body(size)
    if code in (204, 304):
        data = b""
    headers = []
    ctype = q.get("type", "text/html; charset=utf-8")
    if ctype != "none":
        headers.append(("Content-Type", ctype))
    if q.get("cl") and code not in (204, 304):
        headers.append(("Content-Length", str(len(data))))
    for key, name in (("vary", "Vary"), ("etag", "ETag"), ("cc", "Cache-Control"), ("ce", "Content-Encoding")):
        if key in q:
            headers.append((name, q[key]))
    if code == 206:
        headers.append(("Content-Range", f"bytes 0-{len(data) - 1}/{len(data) * 2}"))
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    if mode == "write":
        write = start_response(_status(code), headers)
        for piece in pieces:
            write(piece)
        return []
    start_response(_status(code), headers)
    if mode == "one":
        return _OneChunk(data)
    if mode == "gen":

        def generate():
            yield from pieces

        return generate()
    return pieces


def sse(environ, start_response):
    """`?delay=1`: two server-sent events, `delay` seconds apart, from a generator."""
    delay = float(_query(environ).get("delay", "1"))
    start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])

    def events():
        yield b"event: first\ndata: " + b"x" * 40 + b"\n\n"
        time.sleep(delay)
        yield b"event: second\ndata: " + b"y" * 40 + b"\n\n"

    return events()


def dynamic(environ, start_response):
    """What the static tests reach outside the mounts: the method and path, as text."""
    text = f"dynamic {environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(text)))])
    return [text]


RAW_ROUTES = {"body": body, "sse": sse, "dynamic": dynamic}
ROUTES = {name: validator(app) for name, app in RAW_ROUTES.items()}


def main(environ, start_response):
    """`/raw/NAME...` is the unvalidated app NAME, `/NAME...` the validated one; anything else is `dynamic`."""
    segments = environ.get("PATH_INFO", "").split("/")
    if len(segments) > 2 and segments[1] == "raw" and segments[2] in RAW_ROUTES:
        return RAW_ROUTES[segments[2]](environ, start_response)
    name = segments[1] if len(segments) > 1 else ""
    return ROUTES.get(name, ROUTES["dynamic"])(environ, start_response)
