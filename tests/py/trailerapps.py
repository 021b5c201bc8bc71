"""An ASGI application for tests/py/test_asgi_trailers.py: the http.response.trailers extension, and the ways an
application can break its rules (served by real meltemi processes)."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qs


def _query(scope) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    q = _query(scope)
    path = scope["path"]
    offered = "http.response.trailers" in scope["extensions"]
    chunks = [f"part {i} ".encode() * int(q.get("repeat", "1")) for i in range(int(q.get("chunks", "3")))]
    body = b"".join(chunks)
    headers = [(b"content-type", b"text/plain"), (b"trailer", b"x-checksum, x-count")]
    if "length" in q:
        headers.append((b"content-length", str(len(body)).encode()))
    start = {"type": "http.response.start", "status": int(q.get("status", "200")), "headers": headers}
    if path != "/unannounced":
        start["trailers"] = True
    if path == "/offered":
        await send({**start, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps({"offered": offered}).encode()})
        await send({"type": "http.response.trailers", "headers": [(b"x-offered", str(offered).encode())]})
        return
    await send(start)
    if path == "/early":
        await send({"type": "http.response.body", "body": b"not done", "more_body": True})
        await send({"type": "http.response.trailers", "headers": []})
        return
    for chunk in chunks[:-1]:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": chunks[-1] if chunks else b""})
    if path == "/body-after":
        await send({"type": "http.response.body", "body": b"more"})
        return
    if path == "/never":
        return
    digest = hashlib.sha256(body).hexdigest().encode()
    if path == "/forbidden":
        await send({"type": "http.response.trailers", "headers": [(q["name"].encode(), b"1")]})
        return
    if path == "/bad-value":
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"1\r\nx-injected: 1")]})
        return
    if path == "/not-bytes":
        await send({"type": "http.response.trailers", "headers": [("x-checksum", "1")]})
        return
    # Two messages: more_trailers, then the last.
    await send({"type": "http.response.trailers", "headers": [(b"x-checksum", digest)], "more_trailers": True})
    await send({"type": "http.response.trailers", "headers": [(b"x-count", str(len(chunks)).encode())]})
    if path == "/twice":
        await send({"type": "http.response.trailers", "headers": []})
