"""Django Channels served by meltemi: consumers, the in-memory and Redis layers, auth, stop and reload.

The project is tests/py/chatproject.py (its ProtocolTypeRouter in chatproject_asgi.py); the clients are the
`websockets` library and httpx; Redis is Debian's redis-server, started on a free loopback port for the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, TESTS, Server
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

APP = "chatproject_asgi:application"
REPORT = "chat-report "


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def project_env(db: Path, redis: str | None = None) -> dict[str, str]:
    env = {"CHAT_DB": str(db), "DJANGO_SETTINGS_MODULE": "chatproject"}
    if redis:
        env["CHAT_REDIS"] = redis
    return env


@pytest.fixture
def chat_db(tmp_path) -> Path:
    """The project's SQLite database, migrated, with the user alice (password 'wonderland')."""
    db = tmp_path / "chat.sqlite3"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT)]), **project_env(db))
    subprocess.run([sys.executable, "-m", "django", "migrate", "-v", "0"], env=env, check=True, timeout=120)
    subprocess.run(
        [sys.executable, "-m", "django", "shell", "-c",
         "from django.contrib.auth.models import User; User.objects.create_user('alice', password='wonderland')"],
        env=env, check=True, timeout=120,
    )  # fmt: skip
    return db


@pytest.fixture
def redis_server(tmp_path):
    """Debian's redis-server on a free loopback port, without persistence; stopped by its PID."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path), "--daemonize", "no", "--protected-mode", "yes"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), 1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("redis-server did not start: " + proc.stdout.read().decode(errors="replace"))
        time.sleep(0.05)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ws_url(server: Server, path: str) -> str:
    return f"ws://{server.host}:{server.port}{path}"


def reports(server: Server) -> list[dict]:
    return [json.loads(line.split(REPORT, 1)[1]) for line in server.lines if REPORT in line]


def wait_report(server: Server, timeout: float = 10, **fields) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for report in reports(server):
            if all(report.get(k) == v for k, v in fields.items()):
                return report
        time.sleep(0.05)
    raise AssertionError(f"no report {fields} in:\n{server.output}")


async def recv_json(ws, timeout: float = 10) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws, key: str, timeout: float = 10) -> dict:
    """The next message that has `key` (a room also carries other members' joins and leaves)."""
    deadline = time.monotonic() + timeout
    while True:
        message = await recv_json(ws, max(0.1, deadline - time.monotonic()))
        if key in message:
            return message


def login_cookie(server: Server) -> str:
    r = httpx.post(server.url + "/login/", data={"username": "alice", "password": "wonderland"})
    assert r.status_code == 200, r.text
    sessionid = r.cookies["sessionid"]
    assert httpx.get(server.url + "/whoami/", cookies={"sessionid": sessionid}).json() == {"user": "alice"}
    return f"sessionid={sessionid}"


def test_chat_room_between_two_clients_with_session_user(start_server, chat_db):
    server = start_server(APP, env=project_env(chat_db))
    cookie = login_cookie(server)

    async def main():
        async with (
            connect(ws_url(server, "/ws/chat/lobby/"), additional_headers={"Cookie": cookie}) as alice,
            connect(ws_url(server, "/ws/chat/lobby/")) as anon,
            connect(ws_url(server, "/ws/chat/other/")) as elsewhere,
        ):
            assert (await recv_json(alice))["hello"] == "alice"  # AuthMiddlewareStack: the session's user
            assert (await recv_json(anon))["hello"] == "anonymous"
            await recv_json(elsewhere)
            await alice.send("hi from alice")
            for ws in (alice, anon):
                got = await recv_until(ws, "text")
                assert got["text"] == "hi from alice" and got["user"] == "alice"
            await anon.send("é" * 1000)
            for ws in (alice, anon):
                assert (await recv_until(ws, "text"))["text"] == "é" * 1000
            # Another room heard nothing.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(elsewhere.recv(), 0.3)
            # Disconnect handling: the consumer's disconnect() runs with the client's code and tells the room.
            await anon.close(code=4000, reason="bye")
            left = await recv_until(alice, "left")
            assert left == {"left": "anonymous", "code": 4000}

    asyncio.run(main())
    assert wait_report(server, event="disconnect", room="lobby", user="anonymous")["code"] == 4000


def test_json_consumer_runs_sync_in_a_thread(start_server, chat_db):
    server = start_server(APP, env=project_env(chat_db))

    async def main():
        async with connect(ws_url(server, "/ws/json/")) as one, connect(ws_url(server, "/ws/json/")) as two:
            await one.send(json.dumps({"n": [1, 2, 3]}))
            echo = await recv_json(one)
            assert echo["echo"] == {"n": [1, 2, 3]}
            assert echo["thread"] != "meltemi-asgi-loop"  # sync code ran off the loop (sync_to_async)
            await two.send(json.dumps({"broadcast": "to all"}))
            assert await recv_json(one) == {"broadcast": "to all"}
            assert await recv_json(two) == {"broadcast": "to all"}
            # Bad JSON from the client: the consumer raises, the socket closes 1011, the server lives on.
            await one.send("not json")
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(one.recv(), 10)
            assert info.value.rcvd.code == 1011

    asyncio.run(main())
    assert httpx.get(server.url + "/whoami/").json() == {"user": None}


def test_redis_layer_across_two_workers_and_two_instances(start_server, chat_db, redis_server):
    env = project_env(chat_db, redis_server)
    first = start_server(APP, workers=2, env=env)
    second = start_server(APP, workers=1, env=env)
    cookie = login_cookie(first)

    async def main():
        # Clients on both workers of the first instance (the kernel spreads connections; keep opening until
        # two landed on different workers) and one on the second instance, all in one room.
        clients, pids = [], set()
        try:
            for _ in range(40):
                ws = await connect(ws_url(first, "/ws/chat/redis/"), additional_headers={"Cookie": cookie})
                hello = await recv_json(ws)
                assert hello["hello"] == "alice"
                if hello["pid"] in pids:
                    await ws.close()
                    continue
                pids.add(hello["pid"])
                clients.append(ws)
                if len(pids) == 2:
                    break
            assert len(pids) == 2, "every connection went to one worker"
            ws = await connect(ws_url(second, "/ws/chat/redis/"))
            hello = await recv_json(ws)
            assert hello["pid"] not in pids
            clients.append(ws)
            for sender in clients:
                text = f"from {sender.id}"
                await sender.send(text)
                for receiver in clients:
                    got = await recv_until(receiver, "text")
                    assert got["text"] == text
            # A leaving client is announced through Redis to the other processes.
            await clients[-1].close()
            for receiver in clients[:-1]:
                assert (await recv_until(receiver, "left"))["left"] == "anonymous"
        finally:
            for ws in clients:
                await ws.close()

    asyncio.run(main())


def test_graceful_stop_closes_channels_sockets_with_1001(start_server, chat_db):
    server = start_server(APP, env=project_env(chat_db))

    async def main():
        async with connect(ws_url(server, "/ws/chat/stop/")) as ws:
            await recv_json(ws)
            server.signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            return info.value.rcvd

    rcvd = asyncio.run(main())
    assert rcvd.code == 1001
    assert wait_report(server, event="disconnect", room="stop")["code"] == 1001  # the consumer was told
    assert server.stop() == 0
    server.assert_balanced()


def test_reload_closes_old_workers_sockets_with_1012_after_the_drain_timeout(start_server, chat_db):
    server = start_server(APP, "--graceful-timeout", "1.5", env=project_env(chat_db))

    async def main():
        async with connect(ws_url(server, "/ws/chat/reload/")) as old:
            old_pid = (await recv_json(old))["pid"]
            server.signal(signal.SIGHUP)
            assert server.wait_for("which now drains", 30)
            reloaded = time.monotonic()
            # During the drain the old worker's socket still works.
            await old.send("still here")
            assert (await recv_until(old, "text"))["text"] == "still here"
            # A new client reaches the new worker (once the old one has handled the signal: until then a
            # connection may still land in its queue).
            for _ in range(50):
                new = await connect(ws_url(server, "/ws/chat/reload/"))
                if (await recv_json(new))["pid"] != old_pid:
                    break
                await new.close()
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("no connection reached the new worker")
            async with new:
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        await asyncio.wait_for(old.recv(), 10)
                elapsed = time.monotonic() - reloaded
                # The new worker's socket is untouched.
                await new.send("after")
                assert (await recv_until(new, "text"))["text"] == "after"
            return info.value.rcvd, elapsed

    rcvd, elapsed = asyncio.run(main())
    assert rcvd is not None and rcvd.code == 1012 and rcvd.reason == "service restart", server.output
    assert 1.0 < elapsed < 15, elapsed  # the drain timeout (1.5 s) first, then the close
    assert wait_report(server, event="disconnect", room="reload", code=1012)
    assert "Graceful timeout" not in server.output


def test_runmeltemi_serves_the_channels_project(chat_db):
    server = Server(
        ["runmeltemi", "--bind", "127.0.0.1:0", "--workers", "1"],
        command=[sys.executable, "-m", "django"],
        env=project_env(chat_db),
    )
    try:
        assert httpx.get(server.url + "/whoami/").json() == {"user": None}

        async def main():
            async with connect(ws_url(server, "/ws/chat/cli/")) as ws:
                assert (await recv_json(ws))["hello"] == "anonymous"
                await ws.send("via runmeltemi")
                assert (await recv_until(ws, "text"))["text"] == "via runmeltemi"

        asyncio.run(main())
    finally:
        assert server.stop() == 0
