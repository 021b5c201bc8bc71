"""A test client for meltemi APIs that goes through the real C server.

    from meltemi.testing import TestClient

    client = TestClient(api)              # or TestClient() for settings.MELTEMI["API"]
    r = client.get("/api/items/1", params={"q": "x"})
    assert r.status_code == 200 and r.json() == {...}

Each request travels over a Unix socket to a meltemi Worker started for the
client: parsed by the C parser, routed by the C router, and answered by the
handler **in the calling thread** (`Worker.serve_one`), so inside Django's
`TestCase` the handler sees the test's database transaction. Requests that
no API route matches go to the Django project (or `app=`), as in production.

The worker is built by the same code as in production (meltemi.worker.build)
from the same configuration: defaults, `MELTEMI_*` variables and the Django
setting `MELTEMI` (compression on, the same limits and timeouts), or the
`config=` given (a meltemi.config.Config). Only `threads` is 1: the one
thread that serves is the caller's.

`async def` endpoints are called the same way (their coroutine runs through
asgiref's async_to_sync, so the async ORM's queries run on the calling
thread too). In an `async def` test, `await client.aget(...)` (`arequest`,
`apost`, ...) serves in asgiref's thread-sensitive thread: the test's own in
Django's async test methods.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import os
import socket
import tempfile
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

__all__ = ["TestClient", "TestResponse"]


class TestResponse:
    """What came back: status_code, headers (case-insensitive), content, text, json()."""

    __test__ = False  # not a pytest test class

    def __init__(self, status: int, reason: str, headers: http.client.HTTPMessage, content: bytes):
        self.status_code = status
        self.reason = reason
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    def __repr__(self) -> str:
        return f"<TestResponse {self.status_code} {len(self.content)} bytes>"


class TestClient:
    """See the module's doc. `raw()` sends bytes as they are, for tests of
    malformed requests."""

    __test__ = False

    def __init__(self, api: Any = None, app: Any = None, timeout: float = 30.0, config: Any = None):
        from .api import API
        from .worker import Listener, build

        if api is None:
            from django.conf import settings

            from .worker import load_api

            api = load_api(getattr(settings, "MELTEMI", {})["API"])
        elif not isinstance(api, API):
            raise TypeError("TestClient(api): a meltemi.API")
        if app is None:
            app = _default_app()
        self.api = api
        self.timeout = timeout
        self._dir = tempfile.TemporaryDirectory(prefix="meltemi-test-")
        self._path = os.path.join(self._dir.name, "s")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self._path)
        self._listener.listen(64)
        self._listener.setblocking(False)
        if config is None:
            config = _production_config()
        listener = Listener(self._listener, "testserver", "80", f"unix:{self._path}")
        self.config = config.replace(threads=1)
        self._core = build(app, [listener], self.config, api=api, api_loop=False)
        self._core.start()
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._core.shutdown()
            self._core.join(5.0)
            self._listener.close()
            self._dir.cleanup()

    def __enter__(self) -> TestClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # ---- requests ----

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: bytes | str | Mapping[str, Any] | None = None,
        files: Mapping[str, tuple[str, bytes] | tuple[str, bytes, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
    ) -> TestResponse:
        hdrs = {"Host": "testserver", **(headers or {})}
        if params:
            path += ("&" if "?" in path else "?") + urlencode(params, doseq=True)
        body = b""
        if json is not None:
            import msgspec

            body = msgspec.json.encode(json)
            hdrs.setdefault("Content-Type", "application/json")
        elif files:
            body, ctype = _multipart(data if isinstance(data, Mapping) else {}, files)
            hdrs.setdefault("Content-Type", ctype)
        elif isinstance(data, Mapping):
            body = urlencode(data, doseq=True).encode()
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif data is not None:
            body = data.encode() if isinstance(data, str) else data
        if cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        if body or method in ("POST", "PUT", "PATCH"):
            hdrs["Content-Length"] = str(len(body))
        hdrs["Connection"] = "close"
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        return self._exchange(head.encode("latin-1") + body, method)

    def raw(self, data: bytes, method: str = "GET") -> TestResponse:
        """Sends bytes as they are and reads one response."""
        return self._exchange(data, method)

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.request("GET", path, **kw)

    def head(self, path: str, **kw: Any) -> TestResponse:
        return self.request("HEAD", path, **kw)

    def post(self, path: str, **kw: Any) -> TestResponse:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> TestResponse:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> TestResponse:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> TestResponse:
        return self.request("DELETE", path, **kw)

    def options(self, path: str, **kw: Any) -> TestResponse:
        return self.request("OPTIONS", path, **kw)

    # ---- async mode: for `async def` tests (Django's async test methods) ----

    async def arequest(self, method: str, path: str, **kw: Any) -> TestResponse:
        """request(), awaitable: the server side runs in asgiref's thread-sensitive thread, which in a
        Django async test is the test's own thread (its TestCase transaction)."""
        from asgiref.sync import sync_to_async

        return await sync_to_async(self.request, thread_sensitive=True)(method, path, **kw)

    async def aget(self, path: str, **kw: Any) -> TestResponse:
        return await self.arequest("GET", path, **kw)

    async def apost(self, path: str, **kw: Any) -> TestResponse:
        return await self.arequest("POST", path, **kw)

    async def aput(self, path: str, **kw: Any) -> TestResponse:
        return await self.arequest("PUT", path, **kw)

    async def apatch(self, path: str, **kw: Any) -> TestResponse:
        return await self.arequest("PATCH", path, **kw)

    async def adelete(self, path: str, **kw: Any) -> TestResponse:
        return await self.arequest("DELETE", path, **kw)

    def _exchange(self, data: bytes, method: str) -> TestResponse:
        if self._closed:
            raise RuntimeError("the TestClient is closed")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        outcome: dict[str, Any] = {}

        # The client side runs in a thread so that this thread can serve: the
        # handler must run here (Django's TestCase transaction is per thread).
        def client() -> None:
            try:
                sock.sendall(data)
                resp = http.client.HTTPResponse(sock, method=method)
                resp.begin()
                content = resp.read()
                outcome["response"] = TestResponse(resp.status, resp.reason, resp.headers, content)
            except BaseException as exc:  # reported in the calling thread
                outcome["error"] = exc
            finally:
                sock.close()

        thread = threading.Thread(target=client, name="meltemi-test-client", daemon=True)
        from .api import aio

        with _django_test_mode():
            # Async endpoints run through async_to_sync here: Django's thread-sensitive calls (the ORM) come
            # back to this thread, inside the test's transaction (meltemi/api/aio.py).
            aio.thread_sensitive(True)
            try:
                thread.start()
                while thread.is_alive():
                    self._core.serve_one(0.02)
            finally:
                aio.thread_sensitive(False)
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["response"]


def _production_config() -> Any:
    """What `meltemi` and `runmeltemi` would resolve here, without a command line."""
    from . import config

    django = None
    try:
        from django.conf import settings

        if settings.configured:
            django = config.django_setting(settings)
    except ImportError:
        pass
    return config.resolve(None, os.environ, django)


def _default_app() -> Any:
    try:
        from django.conf import settings

        if settings.configured:
            from django.core.handlers.wsgi import WSGIHandler

            return WSGIHandler()
    except ImportError:
        pass
    from .api.app import not_found

    return not_found


class _django_test_mode:
    """Like Django's test client: stale-connection cleanup is off while a
    test request runs (it would close the test's transaction)."""

    def __enter__(self):
        self.signals = None
        try:
            from django.conf import settings

            if settings.configured:
                from django.core import signals
                from django.db import close_old_connections

                self.signals = signals
                self.close = close_old_connections
                signals.request_started.disconnect(close_old_connections)
                signals.request_finished.disconnect(close_old_connections)
        except ImportError:
            pass
        return self

    def __exit__(self, *exc):
        if self.signals is not None:
            self.signals.request_started.connect(self.close)
            self.signals.request_finished.connect(self.close)


def _multipart(fields: Mapping[str, Any], files: Mapping[str, tuple]) -> tuple[bytes, str]:
    boundary = "meltemi" + os.urandom(12).hex()
    out = []
    for name, value in fields.items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{v}\r\n'.encode())
    for name, spec in files.items():
        filename, content, *rest = spec
        ctype = rest[0] if rest else "application/octet-stream"
        out.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"
