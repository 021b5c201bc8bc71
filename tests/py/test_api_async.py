"""`async def` endpoints of the typed API (meltemi/api/aio.py): through a
real server (a WSGI Django project with --api) and through TestClient; the
same C checks, validation, errors and responses as sync endpoints."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import requests
from apiclient import django_ready
from conftest import ROOT, TESTS, Server

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
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(s.url + "/api/health", timeout=5).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, s.output
        time.sleep(0.1)
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
    """`threads` slow requests at once end in about one sleep: each waits on the
    loop, with the GIL released (a handler thread per request in flight)."""
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
