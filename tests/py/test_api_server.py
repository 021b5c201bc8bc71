"""The typed API in a real meltemi server: the MELTEMI["API"] setting, the
fall-through to Django on the same port, answers given in C mixed with
Python ones on one keep-alive connection, compression, the CLI's checks."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys

import pytest
import requests
from conftest import ROOT, TESTS, ResponseReader, Server, needs_api

pytestmark = needs_api

APP = "apiproject.wsgi:application"


@pytest.fixture(scope="module")
def api_env(tmp_path_factory):
    db = tmp_path_factory.mktemp("apiproject") / "db.sqlite3"
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


@pytest.fixture
def server(start_server, api_env):
    s = start_server(APP, "--threads", "2", env=api_env)
    assert requests.get(s.url + "/api/health", timeout=30).status_code == 200
    return s


def test_setting_names_the_api_and_django_serves_the_rest(server):
    r = requests.get(server.url + "/api/types/int/5", timeout=10)
    assert r.status_code == 200 and r.json() == {"v": 5, "type": "int"}
    r = requests.get(server.url + "/django/", timeout=10)
    assert r.status_code == 200 and r.text == "django:/django/"
    r = requests.get(server.url + "/nowhere/", timeout=10)
    assert r.status_code == 404 and "text/html" in r.headers["Content-Type"]


def test_orm_through_the_server(server):
    r = requests.post(server.url + "/api/items", json={"name": "served", "price": 4.5}, timeout=10)
    assert r.status_code == 201
    item = r.json()
    assert requests.get(f"{server.url}/api/items/{item['id']}", timeout=10).json() == item


def test_c_and_python_answers_pipelined_on_one_connection(server):
    """405, 422, 308, a constant route, an API handler and a Django view, in one
    write: each answered in order, the connection kept."""
    requests_ = [
        ("POST", "/api/types/int/1", 405),
        ("GET", "/api/types/int/x", 422),
        ("GET", "/api/v2/hello/", 308),
        ("GET", "/api/health", 200),
        ("GET", "/api/types/int/9", 200),
        ("GET", "/django/", 200),
        ("OPTIONS", "/api/items", 204),
        ("HEAD", "/api/r/text", 200),
    ]
    sock = server.connect()
    data = b"".join(
        f"{m} {p} HTTP/1.1\r\nHost: x\r\n{'Content-Length: 0' + chr(13) + chr(10) if m == 'POST' else ''}\r\n".encode()
        for m, p, _ in requests_
    )
    sock.sendall(data)
    reader = ResponseReader(sock)
    for method, path, status in requests_:
        resp = reader.read_response(method)
        assert resp.status == status, (method, path, resp)
        assert resp.header("connection") is None, "kept alive"
    sock.close()


def test_body_of_a_c_answer_is_skipped(server):
    """A 405 for a POST with a body: the body is drained, the next request is read correctly."""
    sock = server.connect()
    sock.sendall(b"PUT /api/types/int/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    sock.sendall(b"GET /api/types/int/2 HTTP/1.1\r\nHost: x\r\n\r\n")
    reader = ResponseReader(sock)
    assert reader.read_response().status == 405
    second = reader.read_response()
    assert second.status == 200 and b'"v":2' in second.body
    sock.close()


def test_api_responses_are_compressed(server):
    r = requests.get(server.url + "/api/r/big?n=20000", headers={"Accept-Encoding": "gzip"}, timeout=10, stream=True)
    raw = r.raw.read(decode_content=False)
    assert r.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in r.headers["Vary"]
    assert gzip.decompress(raw) == b'{"data":"' + b"x" * 20000 + b'"}'


def test_http10_keep_alive_on_a_c_answer(server):
    sock = server.connect()
    sock.sendall(b"GET /api/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    resp = ResponseReader(sock).read_response()
    assert resp.status == 200 and resp.header("connection") == "keep-alive"
    sock.close()


def test_handler_error_is_logged_by_the_server(server):
    r = requests.get(server.url + "/api/e/500", timeout=10)
    assert r.status_code == 500
    assert server.wait_for("boom in handler", 10), server.output


def test_api_alone_from_the_command_line(api_env):
    """`meltemi --api MODULE:ATTR` without an application: a JSON 404 behind the API."""
    server = Server(["--api", "apiproject.api:api", "--bind", "127.0.0.1:0", "--workers", "1"], env=api_env)
    try:
        assert requests.get(server.url + "/api/types/bool/yes", timeout=30).json() == {"v": True, "type": "bool"}
        r = requests.get(server.url + "/django/", timeout=10)
        assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    finally:
        assert server.stop() == 0
        server.assert_balanced()


@pytest.mark.parametrize(
    "spec, message",
    [
        ("apiproject.nothing:api", "cannot import the API 'apiproject.nothing:api'"),
        ("apiproject.api:CALLS", "is a dict, not a meltemi.API"),
        ("apiproject.badapi:api", "has no parameter 'missing'"),
    ],
)
def test_bad_api_is_a_boot_error(api_env, spec, message):
    env = {**os.environ, **api_env, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-m", "meltemi", APP, "--api", spec, "--bind", "127.0.0.1:0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout


def test_oversized_bodies_are_413(start_server, api_env):
    """Over --max-body-size: refused by the I/O thread when Content-Length says so up front,
    and by the body reader when a chunked body grows too large, before the handler runs."""
    server = start_server(APP, "--max-body-size", "1000", env=api_env)
    assert requests.get(server.url + "/api/health", timeout=30).status_code == 200
    big = {"name": "x" * 2000, "price": 1}
    r = requests.post(server.url + "/api/items", json=big, timeout=10)
    assert r.status_code == 413
    chunks = (piece for piece in [b'{"name": "', b"x" * 2000, b'", "price": 1}'])
    r = requests.post(server.url + "/api/items", data=chunks, headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 413
