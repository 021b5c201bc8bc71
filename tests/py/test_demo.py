"""End to end: the demo Django project (examples/demo) served by meltemi, driven by a real HTTP client.

Each test starts `python -m meltemi demo.wsgi:application` from examples/demo
through the shared `start_server` fixture.  The database, media and collected
static files live in a temporary directory made (and migrated) once per module,
so the developer's examples/demo/db.sqlite3 is never touched.

Most tests run the demo with DEBUG off, as in production: the 404 and 500
pages are then the project's own templates/404.html and templates/500.html,
and static files come from `collectstatic`'s output.  The DEBUG-on variants
check Django's technical 500 page and static files served by the finders.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from conftest import ROOT, ResponseReader, Server, needs_api, recv_all

# The demo project mounts the typed API (examples/demo, MELTEMI["API"]).
pytestmark = needs_api

DEMO = ROOT / "examples" / "demo"
APP = "demo.wsgi:application"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "test-admin-password-8151"
SAMPLE = "downloads/meltemi-sample.bin"
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def manage(env: dict[str, str], *args: str) -> str:
    """Runs examples/demo/manage.py with the test environment; fails the test with its output if it fails."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), full_env.get("PYTHONPATH", "")])
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)  # compiling Django afresh made each command take a minute
    full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=DEMO, env=full_env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"manage.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory) -> dict[str, str]:
    """A migrated temporary database with a superuser, a media root and collected static files."""
    base = tmp_path_factory.mktemp("demo")
    env = {
        "DEMO_DB_PATH": str(base / "db.sqlite3"),
        "DEMO_MEDIA_ROOT": str(base / "media"),
        "DEMO_STATIC_ROOT": str(base / "static"),
        "DEMO_SECRET_KEY": "meltemi-test-" + uuid.uuid4().hex * 2,
        "DEMO_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "DEMO_DEBUG": "0",
        # So `meltemi demo.wsgi:application` reads the MELTEMI setting (the API), as runmeltemi does.
        "DJANGO_SETTINGS_MODULE": "demo.settings",
    }
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    manage(env, "ensure_superuser", "--username", ADMIN_USER)
    return env


@pytest.fixture
def run_demo(start_server, demo_env):
    """Factory: run_demo(debug=False) -> a meltemi Server serving the demo."""

    def run(debug: bool = False):
        server = start_server(APP, cwd=DEMO, env=demo_env | {"DEMO_DEBUG": "1" if debug else "0"})
        # The master listens before its worker has imported Django; one request waits for that,
        # so the timings measured by the tests do not include the worker's boot.
        assert requests.get(server.url + "/hello/", timeout=30).status_code == 200
        return server

    return run


@pytest.fixture
def demo(run_demo):
    return run_demo()


def csrf_token(response: requests.Response) -> str:
    found = CSRF_RE.search(response.text)
    assert found, f"no CSRF token in {response.url}:\n{response.text[:2000]}"
    return found.group(1)


def unique_title(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:12]}"


def test_admin_login_and_add_object(demo):
    client = requests.Session()
    login_url = demo.url + "/admin/login/?next=/admin/"
    page = client.get(login_url)
    assert page.status_code == 200
    assert "csrftoken" in client.cookies

    response = client.post(
        login_url,
        data={
            "csrfmiddlewaretoken": csrf_token(page),
            "username": ADMIN_USER,
            "password": ADMIN_PASSWORD,
            "next": "/admin/",
        },
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[:2000]
    assert response.headers["Location"] == "/admin/"
    assert "sessionid" in client.cookies

    index = client.get(demo.url + "/admin/")
    assert index.status_code == 200
    assert "Site administration" in index.text
    assert "/admin/notes/note/" in index.text

    # Logging in rotates the CSRF token: take the one the add form carries now.
    add_url = demo.url + "/admin/notes/note/add/"
    form = client.get(add_url)
    assert form.status_code == 200
    title = unique_title("from the admin")
    response = client.post(
        add_url,
        data={"csrfmiddlewaretoken": csrf_token(form), "title": title, "body": "added in the admin", "_save": "Save"},
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[:2000]
    assert response.headers["Location"] == "/admin/notes/note/"

    changelist = client.get(demo.url + "/admin/notes/note/")
    assert changelist.status_code == 200
    assert title in changelist.text
    assert title in client.get(demo.url + "/").text


def test_admin_rejects_a_wrong_password(demo):
    client = requests.Session()
    login_url = demo.url + "/admin/login/?next=/admin/"
    page = client.get(login_url)
    response = client.post(
        login_url,
        data={"csrfmiddlewaretoken": csrf_token(page), "username": ADMIN_USER, "password": "wrong", "next": "/admin/"},
        allow_redirects=False,
    )
    assert response.status_code == 200
    assert "Please enter the correct username and password" in response.text
    assert "sessionid" not in client.cookies


def test_home_form_creates_a_note_and_redirects(demo):
    client = requests.Session()
    page = client.get(demo.url + "/")
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"

    title = unique_title("from the home page")
    body = "first line\nsecond line, ünïcödé"
    response = client.post(
        demo.url + "/",
        data={"csrfmiddlewaretoken": csrf_token(page), "title": title, "body": body},
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[:2000]
    assert response.headers["Location"] == "/"

    listing = client.get(demo.url + "/")
    assert title in listing.text
    assert "second line, ünïcödé" in listing.text


def test_home_form_without_csrf_token_is_forbidden(demo):
    title = unique_title("no token")
    response = requests.post(demo.url + "/", data={"title": title}, allow_redirects=False)
    assert response.status_code == 403
    assert title not in requests.get(demo.url + "/").text


@pytest.mark.parametrize(
    "size",
    [1000, 3 * 1024 * 1024 + 17],
    ids=["in-memory", "temporary-file"],  # Django spools uploads above 2.5 MB to a temporary file
)
def test_upload(demo, demo_env, size):
    client = requests.Session()
    page = client.get(demo.url + "/upload/")
    assert page.status_code == 200
    payload = os.urandom(size)

    response = client.post(
        demo.url + "/upload/",
        data={"csrfmiddlewaretoken": csrf_token(page)},
        files={"file": ("payload.bin", payload, "application/octet-stream")},
    )
    assert response.status_code == 200, response.text[:2000]
    assert f'<dd id="size">{size}</dd>' in response.text
    assert f'<dd id="sha256">{hashlib.sha256(payload).hexdigest()}</dd>' in response.text

    saved = re.search(r'<dd id="url"><a href="/media/(uploads/[^"]+)">', response.text)
    assert saved, response.text[:2000]
    assert (Path(demo_env["DEMO_MEDIA_ROOT"]) / saved.group(1)).read_bytes() == payload
    served = client.get(demo.url + "/media/" + saved.group(1))
    assert served.status_code == 200
    assert served.content == payload


def test_streaming_response_is_chunked(demo):
    response = requests.get(demo.url + "/stream/", stream=True)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.headers
    expected = "".join(f"line {i:05d} of 00100\n" for i in range(1, 101))
    assert response.content.decode() == expected


def test_streaming_response_is_sent_as_it_is_produced(demo):
    # 3 lines, 1 s apart: the head and the first line must arrive at once, before the second line is produced.
    with demo.connect() as sock:
        started = time.monotonic()
        request = f"GET /stream/?n=3&delay_ms=1000 HTTP/1.1\r\nHost: {demo.host}\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode())
        received = b""
        while b"line 00001" not in received:
            data = sock.recv(65536)
            assert data, f"connection closed before the first line: {received!r}"
            received += data
        first_at = time.monotonic() - started
        received += recv_all(sock)
        total = time.monotonic() - started
    assert total >= 2.0
    assert first_at < 0.7, f"first line after {first_at:.2f}s: the streamed response was held back"
    for i in range(1, 4):
        assert f"line {i:05d} of 00003\n".encode() in received


def test_download(demo, demo_env):
    response = requests.get(demo.url + "/download/")
    expected = (Path(demo_env["DEMO_MEDIA_ROOT"]) / SAMPLE).read_bytes()
    assert len(expected) == 256 * 1024
    assert response.status_code == 200
    assert response.content == expected
    assert response.headers["Content-Length"] == str(len(expected))
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == 'attachment; filename="meltemi-sample.bin"'
    assert "Transfer-Encoding" not in response.headers


def test_session_counter(demo):
    client = requests.Session()
    visits = [client.get(demo.url + "/session/").json()["visits"] for _ in range(3)]
    assert visits == [1, 2, 3]
    assert "sessionid" in client.cookies
    assert requests.get(demo.url + "/session/").json() == {"visits": 1}
    assert client.get(demo.url + "/session/").json() == {"visits": 4}


def test_hello_views(demo):
    response = requests.get(demo.url + "/hello/")
    assert response.status_code == 200
    assert response.content == b"Hello, World!"
    assert response.headers["Content-Type"] == "text/plain"
    assert response.headers["Content-Length"] == "13"

    page = requests.get(demo.url + "/hello/template/")
    assert page.status_code == 200
    assert "<h1>Hello, World!</h1>" in page.text
    assert "Session visits: 0." in page.text


def test_websocket_route(demo):
    """The demo API's WebSocket route: the note count from the async ORM, then an echo; a bad query is
    refused with 422 before the upgrade."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = demo.url.replace("http://", "ws://") + "/api/ws/notes"
    with connect(url + "?upper=true", open_timeout=10) as ws:
        assert set(json.loads(ws.recv(timeout=10))) == {"notes"}
        ws.send("hello")
        assert ws.recv(timeout=10) == "HELLO"
    with pytest.raises(InvalidStatus) as refused:
        connect(url + "?upper=maybe", open_timeout=10)
    assert refused.value.response.status_code == 422


def test_not_found_page(demo):
    response = requests.get(demo.url + "/no/such/page/")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<h1 id="error">404 — page not found</h1>' in response.text
    assert "/no/such/page/" in response.text


def test_server_error_page_with_debug_off(demo):
    client = requests.Session()
    response = client.get(demo.url + "/boom/")
    assert response.status_code == 500
    assert '<h1 id="error">500 — server error</h1>' in response.text
    assert "deliberate error" not in response.text
    # The worker survives and goes on serving, on the same connection too.
    assert client.get(demo.url + "/hello/").content == b"Hello, World!"
    assert demo.wait_for("RuntimeError: boom: a deliberate error", timeout=5), demo.output


def test_server_error_page_with_debug_on(run_demo):
    server = run_demo(debug=True)
    response = requests.get(server.url + "/boom/")
    assert response.status_code == 500
    # Django's technical 500 page.
    assert "RuntimeError" in response.text
    assert "boom: a deliberate error from the demo" in response.text
    assert "Traceback" in response.text


STATIC_FILES = [
    ("notes/style.css", "text/css", DEMO / "notes/static/notes/style.css"),
    ("notes/logo.svg", "image/svg+xml", DEMO / "notes/static/notes/logo.svg"),
    ("admin/css/base.css", "text/css", None),  # collected from django.contrib.admin
]


@pytest.mark.parametrize("debug", [False, True], ids=["collected", "finders"])
@pytest.mark.parametrize(("path", "content_type", "source"), STATIC_FILES, ids=[f[0] for f in STATIC_FILES])
def test_static_files(run_demo, demo_env, debug, path, content_type, source):
    server = run_demo(debug=debug)
    response = requests.get(f"{server.url}/static/{path}")
    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] == content_type
    expected = (source or Path(demo_env["DEMO_STATIC_ROOT"]) / path).read_bytes()
    assert response.content == expected
    assert response.headers["Content-Length"] == str(len(expected))


def test_head_sends_headers_only(demo):
    with demo.connect() as sock:
        reader = ResponseReader(sock)
        host = f"Host: {demo.host}:{demo.port}\r\n"
        # HEAD then GET on one connection: a body sent after the HEAD response would be read as the GET's status line.
        sock.sendall(b"HEAD /hello/ HTTP/1.1\r\n" + host.encode() + b"\r\n")
        head = reader.read_response("HEAD")
        sock.sendall(b"GET /hello/ HTTP/1.1\r\n" + host.encode() + b"\r\n")
        get = reader.read_response("GET")
        sock.sendall(b"HEAD / HTTP/1.1\r\n" + host.encode() + b"Connection: close\r\n\r\n")
        home = reader.read_response("HEAD")
        leftover = reader.buffer + recv_all(sock, timeout=5)

    assert head.status == 200
    assert head.header("Content-Type") == "text/plain"
    assert head.header("Content-Length") in (None, "13")
    assert get.status == 200
    assert get.body == b"Hello, World!"
    assert home.status == 200
    assert home.header("Content-Type") == "text/html; charset=utf-8"
    assert leftover == b"", f"bytes after the last HEAD response: {leftover[:200]!r}"


def test_blocking_view_does_not_stall_the_worker(demo):
    slow_result = {}

    def call_slow():
        response = requests.get(demo.url + "/slow/?ms=2000", timeout=20)
        slow_result["status"], slow_result["body"] = response.status_code, response.text

    thread = threading.Thread(target=call_slow)
    started = time.monotonic()
    thread.start()
    time.sleep(0.3)  # let the slow request reach its view
    response = requests.get(demo.url + "/hello/", timeout=20)
    fast_done = time.monotonic() - started
    thread.join(20)

    assert response.content == b"Hello, World!"
    assert slow_result == {"status": 200, "body": "slept 2000 ms\n"}
    assert fast_done < 1.5, f"/hello/ took {fast_done:.2f}s while /slow/ blocked its worker"


def test_api_items_crud_backed_by_the_orm(demo):
    base = demo.url + "/api/items"
    created = requests.post(base, json={"name": "Kite", "price": "12.50", "description": "red"}, timeout=10)
    assert created.status_code == 201, created.text
    item = created.json()
    assert item["name"] == "Kite" and item["price"] == "12.50" and item["in_stock"] is True
    assert requests.get(f"{base}/{item['id']}", timeout=10).json() == item
    found = requests.get(base, params={"q": "kite", "limit": 5}, timeout=10).json()
    assert item in found["items"] and found["count"] >= 1
    patched = requests.patch(f"{base}/{item['id']}", json={"in_stock": False}, timeout=10).json()
    assert patched["in_stock"] is False and patched["name"] == "Kite"
    replaced = requests.put(f"{base}/{item['id']}", json={"name": "Box", "price": 1}, timeout=10).json()
    assert replaced["name"] == "Box" and replaced["description"] == ""
    assert requests.delete(f"{base}/{item['id']}", timeout=10).status_code == 204
    gone = requests.get(f"{base}/{item['id']}", timeout=10)
    assert gone.status_code == 404 and gone.json() == {"detail": f"item {item['id']} does not exist"}


def test_api_errors_and_the_rest_of_the_site(demo):
    r = requests.post(demo.url + "/api/items", json={"name": "", "price": -1}, timeout=10)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][0] == "body"
    r = requests.post(demo.url + "/api/items", json={"name": "x", "price": 1, "colour": "red"}, timeout=10)
    assert r.status_code == 422, "unknown fields are refused"
    for price in ("-1", "1.234", "NaN", "Infinity", "abc"):
        r = requests.post(demo.url + "/api/items", json={"name": "x", "price": price}, timeout=10)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "price"], price
    assert requests.get(demo.url + "/api/items/abc", timeout=10).status_code == 422
    assert requests.get(demo.url + "/api/items?limit=1000", timeout=10).status_code == 422
    assert requests.delete(demo.url + "/api/items", timeout=10).status_code == 405
    assert requests.get(demo.url + "/api/health", timeout=10).json() == {"status": "ok"}
    assert requests.get(demo.url + "/api/hello?name=Ann", timeout=10).json() == {"message": "Hello, Ann!"}
    count = requests.get(demo.url + "/api/items?limit=1", timeout=10).json()["count"]
    assert requests.get(demo.url + "/api/item-count", timeout=10).json() == {"items": count}  # async def, async ORM
    assert requests.get(demo.url + "/api/me", timeout=10).json() == {"authenticated": False, "username": ""}
    statuses = [requests.get(demo.url + "/api/limited", timeout=10) for _ in range(6)]
    assert [r.status_code for r in statuses] == [200] * 5 + [429]
    assert statuses[5].json() == {"detail": "Too Many Requests"} and int(statuses[5].headers["Retry-After"]) >= 1
    assert statuses[5].headers["RateLimit-Policy"] == '"demo";q=5;w=60'
    assert requests.get(demo.url + "/hello/", timeout=10).content == b"Hello, World!", "Django still serves the rest"


def test_api_pagination_viewset_health_and_docs_pages(demo):
    """What the demo shows of the API's helpers (demo/catalog.py): pages, a viewset, a view, health, docs pages."""
    api = demo.url + "/api"
    tag = uuid.uuid4().hex[:8]
    made = []
    for i, price in enumerate(["3.00", "1.50", "2.25"]):
        r = requests.post(f"{api}/catalog", json={"name": f"{tag}-{i}", "price": price}, timeout=10)
        assert r.status_code == 201, r.text
        made.append(r.json())
    assert made[0]["in_stock"] is True and made[0]["description"] == "" and made[0]["price"] == "3.00"
    r = requests.get(
        f"{api}/catalog", params={"name__icontains": tag, "ordering": "-price", "page_size": 2}, timeout=10
    )
    page = r.json()
    assert [i["name"] for i in page["items"]] == [f"{tag}-0", f"{tag}-2"] and page["count"] == 3
    rest = requests.get(demo.url + page["next"], timeout=10).json()
    assert [i["name"] for i in rest["items"]] == [f"{tag}-1"] and rest["next"] is None
    one = f"{api}/catalog/{made[1]['id']}"
    assert requests.patch(one, json={"in_stock": False}, timeout=10).json()["in_stock"] is False
    r = requests.patch(one, json={"price": "1.234"}, timeout=10)  # max 2 decimals: the model's own check
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "price"]
    assert requests.delete(one, timeout=10).status_code == 204
    assert requests.get(one, timeout=10).status_code == 404
    listed = requests.get(f"{api}/items", params={"q": tag, "limit": 1}, timeout=10).json()
    assert listed["count"] == 2 and len(listed["items"]) == 1 and "offset=1" in listed["next"]
    notes = requests.get(f"{api}/notes", params={"page_size": 1}, timeout=10).json()
    assert set(notes) == {"items", "next_cursor", "previous_cursor", "next", "previous"}
    assert requests.get(f"{api}/notes", params={"cursor": "forged"}, timeout=10).status_code == 422
    stats = requests.get(f"{api}/stats", timeout=10).json()
    assert stats["items"] >= 2 and set(stats) == {"notes", "items", "items_in_stock"}
    assert requests.get(f"{api}/ready", timeout=10).json() == {"status": "ready", "checks": {"database:default": "ok"}}
    for page_url, marker in (("redoc", "Redoc.init("), ("scalar", "Scalar.createApiReference(")):
        html = requests.get(f"{api}/{page_url}", timeout=10)
        assert html.status_code == 200 and marker in html.text
        script = re.search(r'src="([^"]+)"', html.text).group(1)
        assert requests.get(f"{api}/{script}", timeout=30).status_code == 200


def test_api_cors_for_a_front_end_at_localhost_3000(demo):
    front = {"Origin": "http://localhost:3000"}
    preflight = requests.options(
        demo.url + "/api/items",
        headers={**front, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
        timeout=10,
    )
    assert preflight.status_code == 200 and preflight.content == b""
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "content-type" in preflight.headers["Access-Control-Allow-Headers"]
    r = requests.get(demo.url + "/api/health", headers=front, timeout=10)
    assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert r.headers["Access-Control-Expose-Headers"] == "X-Request-ID"
    assert "Origin" in r.headers["Vary"]
    other = requests.get(demo.url + "/api/health", headers={"Origin": "https://elsewhere.example"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in other.headers
    page = requests.get(demo.url + "/hello/", headers=front, timeout=10)
    assert "Access-Control-Allow-Origin" not in page.headers, "the API's policy, not the whole site's"


def test_api_docs_page_and_schema(demo):
    schema = requests.get(demo.url + "/api/openapi.json", timeout=10).json()
    assert schema["openapi"].startswith("3.1") and schema["info"]["title"] == "meltemi demo API"
    assert {"/api/items", "/api/items/{item_id}", "/api/hello", "/api/me"} <= set(schema["paths"])
    assert {"/api/catalog", "/api/catalog/{pk}", "/api/notes", "/api/stats", "/api/health", "/api/ready"} <= set(
        schema["paths"]
    )
    page = requests.get(demo.url + "/api/docs", timeout=10)
    assert page.status_code == 200 and "swagger" in page.text.lower()


def test_runmeltemi_serves_static_files_in_c_and_compresses_pages(demo_env):
    """`manage.py runmeltemi` mounts STATIC_URL on STATIC_ROOT in C (ETag, Accept-Ranges, 304: Django's own
    static view gives neither ETag nor ranges) and compresses the project's pages."""
    server = Server(
        ["--bind", "127.0.0.1:0", "--skip-checks"],
        env=demo_env,
        cwd=DEMO,
        command=[sys.executable, "manage.py", "runmeltemi"],
        timeout=60,
    )
    try:
        assert requests.get(server.url + "/hello/", timeout=30).status_code == 200
        url = f"{server.url}/static/notes/style.css"
        first = requests.get(url, headers={"Accept-Encoding": "identity"})
        assert first.status_code == 200 and first.headers["Accept-Ranges"] == "bytes"
        assert first.content == (DEMO / "notes/static/notes/style.css").read_bytes()
        etag = first.headers["ETag"]
        again = requests.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        part = requests.get(url, headers={"Range": "bytes=0-9", "Accept-Encoding": "identity"})
        assert part.status_code == 206 and part.content == first.content[:10]
        page = requests.get(server.url + "/hello/template/", headers={"Accept-Encoding": "br"})
        assert page.status_code == 200 and page.headers["Content-Encoding"] == "br"
        assert "Accept-Encoding" in page.headers["Vary"] and "<html" in page.text
    finally:
        assert server.stop() == 0, server.output
        server.assert_balanced()


def test_api_token_endpoint_jwt_and_api_key_routes(demo):
    base = demo.url + "/api"
    r = requests.post(base + "/auth/token", json={"username": ADMIN_USER, "password": "wrong"}, timeout=10)
    assert r.status_code == 401
    r = requests.post(base + "/auth/token", json={"username": ADMIN_USER, "password": ADMIN_PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert r.json()["token_type"] == "bearer"
    headers = {"Authorization": f"Bearer {token}"}
    me = requests.get(base + "/secure/whoami", headers=headers, timeout=10).json()
    assert me["username"] == ADMIN_USER and me["claims"]["scope"] == "admin" and me["claims"]["iss"] == "meltemi-demo"
    assert requests.get(base + "/secure/admin-scope", headers=headers, timeout=10).json() == {"scope": "admin"}
    assert requests.get(base + "/secure/staff", headers=headers, timeout=10).json() == {"staff": ADMIN_USER}
    r = requests.get(base + "/secure/whoami", timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    r = requests.get(base + "/secure/whoami", headers={"Authorization": f"Bearer {token}x"}, timeout=10)
    assert r.status_code == 401 and r.json() == {"detail": "Invalid token"}
    r = requests.get(base + "/secure/service", headers={"X-API-Key": "demo-api-key"}, timeout=10)
    assert r.json() == {"key": "demo-service"}
    assert requests.get(base + "/secure/service", headers={"X-API-Key": "nope"}, timeout=10).status_code == 401
    schema = requests.get(base + "/openapi.json", timeout=10).json()
    assert set(schema["components"]["securitySchemes"]) == {"bearerAuth", "apiKeyHeader"}
    assert schema["paths"]["/api/secure/whoami"]["get"]["security"] == [{"bearerAuth": []}]
