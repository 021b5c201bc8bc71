"""Django's ASGI handler, Starlette and FastAPI served by meltemi (real processes, httpx clients)."""

from __future__ import annotations

import sys

import httpx
from conftest import Server, ft_needs


def test_django_asgi_handler_async_and_sync_views(start_server):
    server = start_server("asgidjango_app:application")
    with httpx.Client(base_url=server.url) as client:
        r = client.get("/async/", params={"q": "é"})
        assert r.json() == {
            "kind": "async",
            "method": "GET",
            "path": "/async/",
            "q": "é",
            "thread": "meltemi-asgi-loop",
        }
        r = client.post("/sync/", content=b"posted")
        assert r.json()["kind"] == "sync" and r.json()["body"] == "posted"
        assert r.json()["thread"] != "meltemi-asgi-loop"  # sync views run in asgiref's executor
        r = client.get("/stream/")
        assert r.text == "chunk 0\nchunk 1\nchunk 2\n"
        assert client.get("/missing/").status_code == 404
    assert server.wait_for("ASGI application on the", 5)


def test_runmeltemi_serves_the_asgi_application():
    server = Server(
        ["runmeltemi", "--settings", "asgidjango", "--interface", "asgi", "--bind", "127.0.0.1:0", "--workers", "1"],
        command=[sys.executable, "-m", "django"],
    )
    try:
        r = httpx.get(server.url + "/async/")
        assert r.json()["thread"] == "meltemi-asgi-loop"
    finally:
        assert server.stop() == 0


def test_runmeltemi_follows_asgi_application_setting(tmp_path):
    (tmp_path / "asgisettings.py").write_text(
        "from asgidjango import *  # noqa\nASGI_APPLICATION = 'asgidjango_app.application'\n"
    )
    server = Server(
        ["runmeltemi", "--settings", "asgisettings", "--bind", "127.0.0.1:0", "--workers", "1"],
        command=[sys.executable, "-m", "django"],
        cwd=tmp_path,
    )
    try:
        assert httpx.get(server.url + "/async/").json()["thread"] == "meltemi-asgi-loop"
    finally:
        assert server.stop() == 0


@ft_needs("fastapi")  # tests/py/asgiframeworks.py holds both apps
def test_starlette_app(start_server, tmp_path, monkeypatch):
    data = b"file body " * 10000
    (tmp_path / "f.bin").write_bytes(data)
    monkeypatch.setenv("ASGI_TEST_FILE", str(tmp_path / "f.bin"))
    server = start_server("asgiframeworks:starlette_app")
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/hello").text == "Hello, world!"
        assert client.post("/echo", content=b"x" * 100000).json() == {"length": 100000, "state": "yes"}
        r = client.get("/stream")
        assert r.text == "0\n1\n2\n3\n4\n"
        r = client.get("/file")
        assert r.content == data and r.headers["content-length"] == str(len(data))


@ft_needs("fastapi")
def test_fastapi_app(start_server, tmp_path, monkeypatch):
    data = b"fastapi file " * 5000
    (tmp_path / "f.bin").write_bytes(data)
    monkeypatch.setenv("ASGI_TEST_FILE", str(tmp_path / "f.bin"))
    server = start_server("asgiframeworks:fastapi_app")
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/hello").json() == {"message": "Hello, world!"}
        assert client.post("/items", json={"name": "pen", "price": 1.5}).json() == {"name": "pen", "total": 3.0}
        assert client.post("/items", json={"name": "pen"}).status_code == 422
        assert client.get("/sync").json() == {"sync": True}
        assert client.get("/stream").text == "line 0\nline 1\nline 2\n"
        r = client.get("/file")
        assert r.content == data
        assert client.get("/openapi.json").json()["info"]["title"] == "FastAPI"
