"""`async def` endpoints of the typed API (meltemi/api/aio.py): through a
real server (a WSGI Django project with --api) and through TestClient; the
same C checks, validation, errors and responses as sync endpoints."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time

import pytest
import requests
from apiclient import django_ready
from conftest import ROOT, TESTS, Server
from test_asgi_batching import block_the_loop, read_responses, send
from test_asgi_batching import get as raw_get

django_ready()

import asyncapi  # noqa: E402
from apiproject.models import Item as ItemRow  # noqa: E402
from django.test import TestCase  # noqa: E402

from meltemi.testing import TestClient  # noqa: E402

APP = "apiproject.wsgi:application"
THREADS = 4


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    db = tmp_path_factory.mktemp("asyncapi") / "db.sqlite3"
    env = {"DJANGO_SETTINGS_MODULE": "apiproject.settings", "APIPROJECT_DB": str(db)}
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v0"],
        env={
            **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            **env,
            "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]),
        },
        check=True,
        timeout=120,
    )
    return env


@pytest.fixture(scope="module")
def server(env):
    s = Server(
        [APP, "--bind", "127.0.0.1:0", "--workers", "1", "--threads", str(THREADS), "--api", "asyncapi:api"], env=env
    )
    s.wait_answering("/api/health")
    yield s
    code = s.stop()
    assert code == 0, s.output
    s.assert_balanced()


def get(server, path, **kw):
    return requests.get(server.url + path, timeout=10, **kw)


def test_json_hello(server):
    r = get(server, "/api/hello")
    assert r.status_code == 200 and r.json() == {"hello": "world"}
    assert r.headers["Content-Type"] == "application/json"


def test_coroutine_runs_on_the_api_loop(server):
    assert get(server, "/api/where").json() == {"thread": "meltemi-api-loop", "running": True}


def test_path_and_query_parameters(server):
    assert get(server, "/api/items/7?detail=true&limit=3").json() == {"id": 7, "detail": True, "limit": 3}
    r = get(server, "/api/items/x")  # the path parameter, checked in C
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "item_id"]
    r = get(server, "/api/items/7?limit=11")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "limit"]
    assert get(server, "/api/nowhere").status_code == 404
    assert requests.post(server.url + "/api/hello", timeout=10).status_code == 405


def test_body_validation_and_async_orm(server):
    r = requests.post(server.url + "/api/items", json={"name": "", "price": 1}, timeout=10)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"]
    r = requests.post(server.url + "/api/items", data=b"{", headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400
    r = requests.post(server.url + "/api/items", json={"name": "async", "price": 2.5}, timeout=10)
    assert r.status_code == 201, r.text
    item = r.json()
    assert get(server, f"/api/items/{item['id']}/row").json() == item
    assert get(server, "/api/items/99999/row").status_code == 404
    counted = get(server, "/api/count").json()
    assert counted["count"] >= 1 and "async" in counted["names"]


def test_async_orm_connections_are_closed_after_requests(server):
    """The async ORM's thread gets Django's close_old_connections within a second of a request (CONN_MAX_AGE 0
    here: the connection is closed), as each request's end would do on a handler thread."""
    assert get(server, "/api/orm-connection?query=true").json() == {"open": True}  # a query opened it
    deadline = time.monotonic() + 10
    while get(server, "/api/orm-connection").json()["open"]:
        assert time.monotonic() < deadline, "the async ORM's connection stayed open"
        time.sleep(0.3)


def test_exceptions(server):
    r = get(server, "/api/boom")
    assert r.status_code == 500 and r.json() == {"detail": "Internal Server Error"}
    server.wait_for("async boom")
    r = get(server, "/api/teapot")
    assert r.status_code == 418 and r.json() == {"detail": "short and stout"}
    assert get(server, "/api/hello").status_code == 200  # the loop survived


def test_response_classes(server):
    r = get(server, "/api/text")
    assert r.text == "plain" and r.headers["X-Async"] == "1" and r.headers["Content-Type"].startswith("text/plain")
    r = get(server, "/api/json")
    assert r.status_code == 202 and r.json() == {"a": 1}


def test_async_dependencies(server):
    assert get(server, "/api/whoami?user=ann").json() == {"user": "ANN"}
    assert get(server, "/api/whoami-sync?user=bob").json() == {"user": "BOB"}


def test_auth_checked_in_c_before_the_loop(server):
    r = get(server, "/api/secret")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'APIKey header="X-API-Key"'
    r = get(server, "/api/secret", headers={"X-API-Key": "key-ci-2"})
    assert r.status_code == 401
    r = get(server, "/api/secret", headers={"X-API-Key": "key-ci-1"})
    assert r.status_code == 200 and r.json() == {"key": "ci"}


def test_openapi_lists_async_routes(server):
    doc = get(server, "/api/openapi.json").json()
    op = doc["paths"]["/api/items/{item_id}"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"item_id", "detail", "limit"}
    assert "requestBody" in doc["paths"]["/api/items"]["post"]


def test_concurrent_slow_requests_overlap(server):
    """`threads` slow requests at once end in about one sleep: each waits on the loop."""
    results = []

    def one():
        results.append(get(server, "/api/sleep?seconds=1").status_code)

    start = time.monotonic()
    clients = [threading.Thread(target=one) for _ in range(THREADS)]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    elapsed = time.monotonic() - start
    assert results == [200] * THREADS
    assert elapsed < 1.8, elapsed


# ---- one handler thread, many async requests (meltemi/api/aio.py, src/python/asgi_api.c) ----


@pytest.fixture
def one_thread(env):
    s = Server(
        [APP, "--bind", "127.0.0.1:0", "--workers", "1", "--threads", "1", "--api", "asyncapi:api"],
        env=env,
    )
    s.wait_answering("/api/health")
    yield s
    if s.proc.poll() is None:
        assert s.stop() == 0, s.output
    s.assert_balanced()


def test_many_async_requests_in_flight_with_one_thread(one_thread):
    """50 requests that each await 0.2 s, with --threads 1: the handler thread hands each to the loop and
    is free at once, so they overlap (one after the other would take 10 s)."""
    results = []

    def one():
        results.append(get(one_thread, "/api/sleep?seconds=0.2").json())

    start = time.monotonic()
    clients = [threading.Thread(target=one) for _ in range(50)]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    elapsed = time.monotonic() - start
    assert results == [{"slept": 0.2}] * 50
    assert elapsed < 3.0, elapsed
    # A sync route still answers beside them, and on the same connection as an async one (keep-alive).
    with requests.Session() as session:
        assert session.get(one_thread.url + "/api/hello", timeout=10).json() == {"hello": "world"}
        assert session.get(one_thread.url + "/api/sync", timeout=10).json() == {"hello": "world"}
        assert session.get(one_thread.url + "/api/hello", timeout=10).json() == {"hello": "world"}


def test_pipelined_requests_after_an_async_one(one_thread):
    """A request pipelined behind an async one goes back to the router (sync route, async route, WSGI 404)."""
    sock = one_thread.connect()
    head = "GET {} HTTP/1.1\r\nHost: x\r\n\r\n"
    sock.sendall("".join(head.format(p) for p in ("/api/hello", "/api/sync", "/api/items/3", "/api/hello")).encode())
    data = b""
    sock.settimeout(10)
    while data.count(b"HTTP/1.1 200") < 4:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    sock.close()
    assert data.count(b'{"hello":"world"}') == 3 and b'"id":3' in data


def test_client_gone_while_the_coroutine_awaits(one_thread):
    """The client closes while its coroutine sleeps: the response finds nobody, nothing breaks."""
    for _ in range(5):
        sock = one_thread.connect()
        sock.sendall(b"GET /api/sleep?seconds=0.3 HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.close()
    time.sleep(0.6)
    assert get(one_thread, "/api/hello").json() == {"hello": "world"}
    r = get(one_thread, "/api/items/x")
    assert r.status_code == 422
    r = requests.post(one_thread.url + "/api/items", json={"name": "", "price": 1}, timeout=10)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"]
    assert get(one_thread, "/api/boom").status_code == 500
    one_thread.wait_for("async boom")


def test_request_body_arriving_late(one_thread):
    """The body is read on the loop without blocking: a slow client does not hold the handler thread."""
    sock = one_thread.connect()
    body = b'{"name": "late", "price": 4.5}'
    sock.sendall(b"POST /api/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
    sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
    time.sleep(0.3)
    assert get(one_thread, "/api/sync").json() == {"hello": "world"}  # meanwhile, the one thread is free
    sock.sendall(body[10:])
    sock.settimeout(10)
    data = b""
    while b'"late"' not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    sock.close()
    assert data.startswith(b"HTTP/1.1 201")


def test_graceful_stop_completes_async_requests(one_thread):
    results = []

    def one():
        results.append(get(one_thread, "/api/sleep?seconds=0.8").json())

    clients = [threading.Thread(target=one) for _ in range(5)]
    for t in clients:
        t.start()
    time.sleep(0.3)
    assert one_thread.stop() == 0, one_thread.output
    for t in clients:
        t.join()
    assert results == [{"slept": 0.8}] * 5


def test_head_and_compression_on_the_loop(one_thread):
    r = requests.head(one_thread.url + "/api/items/4", timeout=10)
    assert r.status_code == 405 or (r.status_code == 200 and r.content == b"")
    r = get(one_thread, "/api/hello", headers={"Accept-Encoding": "gzip"})
    assert r.json() == {"hello": "world"}


# ---- WebSocket routes (API.websocket) ----


def ws_url(server, path):
    return server.url.replace("http://", "ws://") + path


def refused(server, path, **kw):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(server, path), open_timeout=10, **kw)
    return info.value.response


def test_websocket_echo(server):
    from websockets.sync.client import connect

    with connect(ws_url(server, "/api/ws/echo"), open_timeout=10) as ws:
        for i in range(20):
            ws.send(f"message {i}")
            assert ws.recv(timeout=10) == f"message {i}"
        ws.send(b"\x00\x01binary")
        assert ws.recv(timeout=10) == b"\x00\x01binary"
        ws.send("x" * 100_000)
        assert ws.recv(timeout=10) == "x" * 100_000


def test_websocket_typed_parameters_and_close_code(server):
    import json

    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(ws_url(server, "/api/ws/rooms/lobby?n=3"), open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10)) == {"room": "lobby", "n": 3, "thread": "meltemi-api-loop"}
        ws.send("bye")
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 4003 and ws.close_reason == "bye"
    with connect(ws_url(server, "/api/ws/items/42"), open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10)) == {"id": 42}


def test_websocket_refusals_are_http_before_the_upgrade(server):
    r = refused(server, "/api/ws/items/x")  # a path parameter of the wrong type: 422 in C
    assert r.status_code == 422 and b'"item_id"' in r.body
    r = refused(server, "/api/ws/rooms/lobby?n=9")  # a query parameter out of range: 422 before the 101
    assert r.status_code == 422 and b'"query"' in r.body and b'"n"' in r.body
    assert refused(server, "/api/ws/nowhere").status_code == 404
    r = refused(server, "/api/ws/secret")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'APIKey header="X-API-Key"'
    assert refused(server, "/api/ws/secret", additional_headers={"X-API-Key": "nope"}).status_code == 401
    assert refused(server, "/api/ws/refuse").status_code == 403
    # A plain GET to a WebSocket route: 426, and an invalid handshake: 400 (checked in C).
    r = get(server, "/api/ws/echo")
    assert r.status_code == 426 and r.headers["Upgrade"] == "websocket"
    bad = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}
    assert get(server, "/api/ws/echo", headers=bad).status_code == 400  # no Sec-WebSocket-Key
    assert requests.post(server.url + "/api/ws/echo", timeout=10).status_code == 405


def test_websocket_auth_checked_in_c(server):
    from websockets.sync.client import connect

    with connect(ws_url(server, "/api/ws/secret"), additional_headers={"X-API-Key": "key-ci-1"}) as ws:
        assert ws.recv(timeout=10) == "ci"


def test_websocket_handler_error_closes_1011(server):
    from websockets.exceptions import ConnectionClosedError
    from websockets.sync.client import connect

    with connect(ws_url(server, "/api/ws/boom"), open_timeout=10) as ws:
        with pytest.raises(ConnectionClosedError):
            ws.recv(timeout=10)
        assert ws.close_code == 1011
    server.wait_for("websocket boom")


def test_websocket_routes_are_not_openapi_operations(server):
    doc = get(server, "/api/openapi.json").json()
    assert not any("/ws/" in path for path in doc["paths"])


def test_websockets_closed_1001_on_stop(one_thread):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(connect(ws_url(one_thread, "/api/ws/wait"), open_timeout=10)) for _ in range(3)]
        for ws in sockets:
            assert ws.recv(timeout=10) == "ready"
        assert get(one_thread, "/api/hello").json() == {"hello": "world"}  # beside them, with one thread
        one_thread.signal(15)
        for ws in sockets:
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
            assert ws.close_code == 1001
    assert one_thread.stop() == 0, one_thread.output


def test_websocket_options_reach_the_api_loop(env):
    """--ws-max-size and --no-ws-per-message-deflate apply to the API's WebSocket routes as to an ASGI app's."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    argv = [APP, "--bind", "127.0.0.1:0", "--workers", "1", "--api", "asyncapi:api"]
    s = Server([*argv, "--ws-max-size", "1024", "--no-ws-per-message-deflate"], env=env)
    try:
        s.wait_answering("/api/health")
        with connect(ws_url(s, "/api/ws/echo"), open_timeout=10) as ws:
            assert ws.response.headers.get("Sec-WebSocket-Extensions") is None  # deflate off
            ws.send("x" * 1000)
            assert ws.recv(timeout=10) == "x" * 1000
            ws.send("x" * 2000)
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
            assert ws.close_code == 1009
    finally:
        if s.proc.poll() is None:
            assert s.stop() == 0, s.output


# ---- TestClient in Django's TestCase ----


class AsyncEndpointsInTestCase(TestCase):
    """The async ORM of an endpoint sees rows the test made in its transaction."""

    def setUp(self):
        self.client_ = TestClient(api=asyncapi.api)

    def tearDown(self):
        self.client_.close()

    def test_sync_facade(self):
        row = ItemRow.objects.create(name="in the transaction", price=3.0, tags=[])
        r = self.client_.get(f"/api/items/{row.id}/row")
        assert r.status_code == 200, r.text
        assert r.json() == {"id": row.id, "name": "in the transaction", "price": 3.0}
        assert self.client_.get("/api/hello").json() == {"hello": "world"}
        assert self.client_.get("/api/items/x").status_code == 422
        assert self.client_.get("/api/items/3?limit=2").json() == {"id": 3, "detail": False, "limit": 2}
        r = self.client_.post("/api/items", json={"name": "tc", "price": 1.5})
        assert r.status_code == 201, r.text
        assert ItemRow.objects.get(pk=r.json()["id"]).name == "tc"  # written in the test's transaction
        assert self.client_.get("/api/boom").status_code == 500
        assert self.client_.get("/api/secret").status_code == 401
        assert self.client_.get("/api/secret", headers={"X-API-Key": "key-ci-1"}).json() == {"key": "ci"}
        assert self.client_.get("/api/whoami?user=x").json() == {"user": "X"}

    async def test_async_mode(self):
        row = await ItemRow.objects.acreate(name="awaited", price=2.0, tags=[])
        r = await self.client_.aget(f"/api/items/{row.id}/row")
        assert r.status_code == 200 and r.json()["name"] == "awaited", r.text
        r = await self.client_.apost("/api/items", json={"name": "", "price": 1})
        assert r.status_code == 422
        assert (await self.client_.aget("/api/count")).json()["count"] == await ItemRow.objects.acount()


def test_routes_in_one_batch_with_pipelined_requests(server):
    """The loop takes the requests that queued while a route blocked it in one batch; their responses are
    held and written together (src/python/asgi_loop.c), the pipelined second request of each connection is
    found as the first's exchange ends and served after the batch."""
    blocker = block_the_loop(server, "/api/block?seconds=0.3")
    clients = [send(server, raw_get(f"/api/items/{i}") + raw_get(f"/api/items/{i}?limit=2")) for i in range(6)]
    assert json.loads(read_responses(blocker, 1)[0][1]) == {"blocked": 0.3}
    for i, sock in enumerate(clients):
        got = [json.loads(body) for _, body, _ in read_responses(sock, 2)]
        assert got == [{"id": i, "detail": False, "limit": 5}, {"id": i, "detail": False, "limit": 2}]
        sock.close()
    blocker.close()


def test_a_path_that_is_not_utf8(server):
    assert get(server, "/api/words/caf%C3%A9").json() == {"word": "café"}
    r = get(server, "/api/words/caf%E9")  # latin-1, not UTF-8
    assert r.status_code == 400 and "the request path is not valid UTF-8" in r.text, r.text
