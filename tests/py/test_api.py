"""The typed API layer through the real C pipeline (meltemi.testing's
TestClient: C parser, C router, handler in this thread): every parameter
kind, converter, error path and response class of tests/py/apiproject/api.py."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from typing import Annotated  # noqa: F401  (read by a handler's string annotations below)

import pytest
from conftest import API_NOT_APPLICABLE

if API_NOT_APPLICABLE:
    pytest.skip(API_NOT_APPLICABLE, allow_module_level=True)

from apiclient import client as _client  # noqa: E402

from meltemi import Query  # noqa: F401, E402  (same)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def c():
    return _client()


def detail_locs(r):
    return [tuple(e["loc"]) for e in r.json()["detail"]]


# ---- path converters ----


@pytest.mark.parametrize(
    "path, value, type_name",
    [
        ("/api/types/int/42", 42, "int"),
        ("/api/types/int/-7", -7, "int"),
        ("/api/types/int/123456789012345678901234567890", 123456789012345678901234567890, "int"),
        ("/api/types/float/1.5", 1.5, "float"),
        ("/api/types/float/-2e3", -2000.0, "float"),
        ("/api/types/bool/true", True, "bool"),
        ("/api/types/bool/0", False, "bool"),
        ("/api/types/bool/OFF", False, "bool"),
        ("/api/types/str/caf%C3%A9", "café", None),
        ("/api/types/str/a%2Fb", "a/b", None),
        ("/api/types/uuid/123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-426614174000", "UUID"),
        ("/api/types/uuid/123e4567e89b12d3a456426614174000", "123e4567-e89b-12d3-a456-426614174000", "UUID"),
        ("/api/types/date/2024-02-29", "2024-02-29", "date"),
        ("/api/types/datetime/2024-02-29T10:11:12Z", "2024-02-29T10:11:12+00:00", "datetime"),
        ("/api/types/decimal/10.25", "10.25", "Decimal"),
        ("/api/types/enum/blue", "blue", None),
        ("/api/types/bounded/10", 10, None),
    ],
)
def test_path_converters(c, path, value, type_name):
    r = c.get(path)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["v"] == value
    if type_name:
        assert body["type"] == type_name


@pytest.mark.parametrize(
    "path, kind",
    [
        ("/api/types/int/abc", "int_parsing"),
        ("/api/types/int/1.5", "int_parsing"),
        ("/api/types/float/nan", "float_parsing"),
        ("/api/types/float/0x10", "float_parsing"),
        ("/api/types/bool/maybe", "bool_parsing"),
        ("/api/types/uuid/not-a-uuid", "uuid_parsing"),
    ],
)
def test_path_values_refused_in_c(c, path, kind):
    """Answered by the C router: a 422 in the API's error shape."""
    r = c.get(path)
    assert r.status_code == 422
    assert r.headers["Content-Type"] == "application/json"
    [error] = r.json()["detail"]
    assert error["loc"] == ["path", "v"]
    assert error["type"] == kind


@pytest.mark.parametrize(
    "path",
    ["/api/types/date/2024-13-01", "/api/types/decimal/ten", "/api/types/enum/green", "/api/types/bounded/11"],
)
def test_path_values_refused_in_python(c, path):
    r = c.get(path)
    assert r.status_code == 422
    assert detail_locs(r) == [("path", "v")]


def test_path_param_rest(c):
    assert c.get("/api/files/css/site.css").json() == {"rest": "css/site.css"}
    assert c.get("/api/files/a%20b/c").json() == {"rest": "a b/c"}


def test_static_segment_before_typed(c):
    assert c.get("/api/items/new").text == "the static segment wins"


def test_many_typed_segments(c):
    u = str(uuid.uuid4())
    assert c.get(f"/api/many/1/2.5/yes/{u}").json() == [1, 2.5, True, u]
    r = c.get(f"/api/many/1/x/yes/{u}")
    assert r.status_code == 422 and detail_locs(r) == [("path", "b")]


# ---- routing edge cases ----


def test_dot_segments_fall_through_to_django(c):
    for path in ("/api/types/int/../int/1", "/api/types/%2e%2e/x", "/api//types/int/1"):
        r = c.get(path)
        assert r.status_code == 404, path
        assert r.headers["Content-Type"].startswith("text/html"), "Django's 404, not the API's"


def test_unknown_path_falls_through_to_django(c):
    r = c.get("/django/")
    assert r.status_code == 200 and r.text == "django:/django/"
    r = c.get("/api/not-a-route/")
    assert r.status_code == 200 and r.text == "django:/api/not-a-route/", "the API prefix is not reserved"


def test_trailing_slash_redirect(c):
    r = c.get("/api/v2/hello/?x=1")
    assert r.status_code == 308
    assert r.headers["Location"] == "/api/v2/hello?x=1"
    r = c.get("/api/v2/slash")
    assert r.status_code == 308 and r.headers["Location"] == "/api/v2/slash/"
    assert c.get("/api/v2/slash/").json() == {"slash": True}


def test_method_not_allowed_and_options(c):
    r = c.post("/api/types/int/1")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert r.json() == {"detail": "Method Not Allowed"}
    r = c.options("/api/items/3")
    assert r.status_code == 204
    assert r.headers["Allow"] == "GET, HEAD, PUT, DELETE, OPTIONS"
    assert r.content == b""


def test_head_of_a_get_route(c):
    r = c.head("/api/r/big?n=5000")
    assert r.status_code == 200
    assert r.headers["Content-Length"] == str(len(json.dumps({"data": "x" * 5000}, separators=(",", ":"))))
    assert r.content == b""


def test_router_include_and_methods(c):
    assert c.get("/api/v2/hello").json() == {"version": 2}
    for method in ("GET", "POST", "PATCH"):
        assert c.request(method, "/api/v2/multi").json() == {"method": method}
    assert c.put("/api/v2/multi").status_code == 405


def test_constant_route(c):
    r = c.get("/api/health")
    assert r.status_code == 200 and r.content == b'{"ok":true}'
    assert r.headers["Content-Type"] == "application/json"
    assert c.head("/api/health").content == b""


def test_very_long_path(c):
    long = "a" * 6000
    assert c.get(f"/api/files/{long}").json() == {"rest": long}
    r = c.get(f"/api/types/int/{'9' * 5000}")
    assert r.status_code == 422, "longer than Python converts from text: refused in C"
    assert detail_locs(r) == [("path", "v")]


# ---- query, headers, cookies ----


def test_query_parameters(c):
    r = c.get("/api/query?q=hi&limit=5&ratio=0.5&flag=true&tags=a&tags=b&id=1&id=2&kind=b&when=2024-01-02")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "q": "hi",
        "limit": 5,
        "ratio": 0.5,
        "flag": True,
        "tags": ["a", "b"],
        "ids": [1, 2],
        "short": "abc",
        "kind": "b",
        "when": "2024-01-02",
    }


def test_query_defaults_and_decoding(c):
    r = c.get("/api/query?q=a+b%26c%C3%A9")
    assert r.json()["q"] == "a b&cé"
    assert r.json()["limit"] == 10 and r.json()["tags"] == [] and r.json()["ratio"] is None


def test_query_repeated_scalar_takes_the_last(c):
    assert c.get("/api/query?q=1&q=2").json()["q"] == "2"


@pytest.mark.parametrize(
    "qs, loc",
    [
        ("", ("query", "q")),
        ("q=x&limit=ten", ("query", "limit")),
        ("q=x&id=1&id=x", ("query", "id", 1)),
        ("q=x&short=toolong", ("query", "short")),
        ("q=x&kind=c", ("query", "kind")),
        ("q=x&when=yesterday", ("query", "when")),
    ],
)
def test_query_errors(c, qs, loc):
    r = c.get("/api/query?" + qs)
    assert r.status_code == 422
    assert detail_locs(r) == [loc]
    assert {"loc", "msg", "type"} == set(r.json()["detail"][0])


def test_headers(c):
    r = c.get("/api/headers", headers={"User-Agent": "ua/1", "X-Token": "t", "X-Num": "7", "Accept": "a/b, c/d"})
    assert r.json() == {"user_agent": "ua/1", "x_token": "t", "x_num": 7, "accept": ["a/b", "c/d"]}
    r = c.get("/api/headers")
    assert r.status_code == 422 and detail_locs(r) == [("header", "user-agent")]
    r = c.get("/api/headers", headers={"User-Agent": "u", "X-Num": "x"})
    assert detail_locs(r) == [("header", "x-num")]


def test_cookies(c):
    r = c.get("/api/cookies", cookies={"session_id": "abc", "theme": "dark"})
    assert r.json() == {"session_id": "abc", "theme": "dark"}
    r = c.get("/api/cookies", headers={"Cookie": 'session_id="quoted"'})
    assert r.json() == {"session_id": "quoted", "theme": "light"}
    r = c.get("/api/cookies")
    assert r.status_code == 422 and detail_locs(r) == [("cookie", "session_id")]


def test_request_object(c):
    r = c.get("/api/request?a=1&a=2&b=%20")
    assert r.json() == {
        "method": "GET",
        "path": "/api/request",
        "query_string": "a=1&a=2&b=%20",
        "query": {"a": ["1", "2"], "b": " "},
        "host": "testserver",
    }


# ---- JSON bodies ----


def test_struct_body_and_orm_write(c):
    r = c.post("/api/items", json={"name": "widget", "price": 9.5, "tags": ["x"]})
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["name"] == "widget" and item["price"] == 9.5 and item["tags"] == ["x"]
    assert c.get(f"/api/items/{item['id']}").json() == item
    r = c.put(f"/api/items/{item['id']}", json={"name": "gadget", "price": 1})
    assert r.json()["name"] == "gadget"
    assert c.delete(f"/api/items/{item['id']}").status_code == 204
    r = c.get(f"/api/items/{item['id']}")
    assert r.status_code == 404 and r.json() == {"detail": f"no item {item['id']}"}


@pytest.mark.parametrize(
    "body, loc",
    [
        ({"name": "x"}, ("body", "price")),
        ({"name": "x", "price": 0}, ("body", "price")),
        ({"name": "", "price": 1}, ("body", "name")),
        ({"name": "x", "price": "1"}, ("body", "price")),
        ({"name": "x", "price": 1, "tags": [1]}, ("body", "tags", 0)),
        ([], ("body",)),
    ],
)
def test_struct_body_errors(c, body, loc):
    r = c.post("/api/items", json=body)
    assert r.status_code == 422, r.text
    assert detail_locs(r) == [loc]


def test_malformed_json_is_400(c):
    r = c.post("/api/items", data=b'{"name": ', headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert "Malformed JSON" in r.json()["detail"]


def test_wrong_content_type_is_415(c):
    r = c.post("/api/items", data=b"name=x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert "application/json" in r.json()["detail"]


def test_missing_body_is_422(c):
    r = c.post("/api/items")
    assert r.status_code == 422 and detail_locs(r) == [("body",)]


def test_optional_body(c):
    assert c.post("/api/optional-body").json() == {"item": None}
    r = c.post("/api/optional-body", json={"name": "a", "price": 1})
    assert r.json() == {"item": {"name": "a", "price": 1.0, "tags": []}}


def test_dataclass_body(c):
    assert c.post("/api/point", json={"x": 2, "y": 3}).json() == {"sum": 5}
    assert c.post("/api/point", json={"x": 2}).status_code == 422


def test_embedded_bodies(c):
    r = c.post("/api/embed", json={"item": {"name": "a", "price": 1}, "point": {"x": 1, "y": 2}})
    assert r.json() == {"item": {"name": "a", "price": 1.0, "tags": []}, "point": {"x": 1, "y": 2}, "note": "none"}
    r = c.post("/api/embed", json={"item": {"name": "a", "price": 1}, "point": {"x": 1}})
    assert detail_locs(r) == [("body", "point", "y")]


def test_raw_body(c):
    assert c.post("/api/raw", json={"a": 1}).json() == {"length": 7, "json": {"a": 1}}


def test_chunked_json_body(c):
    body = b'{"x": 4, "y": 5}'
    raw = (
        b"POST /api/point HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + f"{len(body):x}\r\n".encode()
        + body
        + b"\r\n0\r\n\r\n"
    )
    r = c.raw(raw, "POST")
    assert r.status_code == 200 and r.json() == {"sum": 9}


# ---- forms and files ----


def test_urlencoded_form(c):
    r = c.post("/api/form", data={"name": "ann", "age": "7", "tags": ["a", "b"]})
    assert r.json() == {"name": "ann", "age": 7, "tags": ["a", "b"]}
    r = c.post("/api/form", data={"age": "x"})
    assert r.status_code == 422
    assert sorted(detail_locs(r)) == [("body", "age"), ("body", "name")], "every problem at once"
    r = c.post("/api/form", data={"name": "a", "age": "x"})
    assert detail_locs(r) == [("body", "age")]


def test_multipart_form_fields(c):
    r = c.post("/api/form", data={"name": "bo"}, files={"ignored": ("f.txt", b"x")})
    assert r.json() == {"name": "bo", "age": 0, "tags": []}


def test_upload_small_in_memory(c):
    data = os.urandom(1000)
    r = c.post("/api/upload", data={"title": "t"}, files={"doc": ("a.bin", data, "application/x-test")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["filename"] == "a.bin" and body["content_type"] == "application/x-test"
    assert body["size"] == 1000 and body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["title"] == "t" and body["on_disk"] is False


def test_upload_large_spooled_and_cleaned(c):
    data = os.urandom(300_000)  # above FILE_UPLOAD_MAX_MEMORY_SIZE (64 KiB)
    r = c.post("/api/upload", files={"doc": ("big.bin", data)})
    body = r.json()
    assert body["on_disk"] is True and body["sha256"] == hashlib.sha256(data).hexdigest()
    assert not os.path.exists(body["temp_path"]), "the temporary file is removed after the request"


def test_upload_several_and_limits(c):
    files = {"docs": ("1.txt", b"a")}
    assert c.post("/api/uploads", files=files).json() == [{"filename": "1.txt", "size": 1}]
    r = c.post("/api/upload", data={"title": "x"})
    assert r.status_code == 422 and detail_locs(r) == [("body", "doc")]
    r = c.post("/api/upload", data=b"{}", headers={"Content-Type": "application/json"})
    assert r.status_code == 415


def test_upload_count_limit(c):
    from meltemi.testing import _multipart

    body, ctype = _multipart({}, {f"f{i}": (f"{i}.txt", b"x") for i in range(5)})
    r = c.post("/api/uploads", data=body, headers={"Content-Type": ctype})
    assert r.status_code == 400, r.text  # DATA_UPLOAD_MAX_NUMBER_FILES = 3


def test_malformed_multipart(c):
    r = c.post("/api/upload", data=b"garbage", headers={"Content-Type": "multipart/form-data; boundary=zz"})
    assert r.status_code in (400, 422)
    r = c.post("/api/upload", data=b"x", headers={"Content-Type": "multipart/form-data"})
    assert r.status_code == 400


# ---- dependencies ----


def test_dependencies_cached_and_cleaned(c):
    before = c.get("/api/deps/calls").json()
    r = c.get("/api/deps?page=2", headers={"X-Token": "secret"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["same_db"] is True and body["page"] == 2 and body["user"]["token"] == "secret"
    after = c.get("/api/deps/calls").json()
    assert after["db"] == before["db"] + 1, "one call per request, shared"
    assert after["closed"] == before["closed"] + 1, "the generator's cleanup ran"


def test_dependency_errors(c):
    r = c.get("/api/deps")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Token"
    assert c.get("/api/paged?size=500").status_code == 422
    assert c.get("/api/paged?page=3").json() == {"page": 3, "size": 20}


# ---- responses ----


def test_response_kinds(c):
    r = c.get("/api/r/text")
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8" and r.text == "plain words"
    r = c.get("/api/r/bytes")
    assert r.headers["Content-Type"] == "application/octet-stream" and r.content == b"\x00\x01\x02"
    r = c.get("/api/r/html")
    assert r.headers["Content-Type"] == "text/html; charset=utf-8" and r.text == "<h1>hi</h1>"
    r = c.get("/api/r/plain")
    assert r.status_code == 202 and r.headers["X-Extra"] == "1"
    r = c.get("/api/r/json")
    assert r.status_code == 203 and r.json() == {"a": [1, 2]}
    r = c.get("/api/r/redirect")
    assert r.status_code == 307 and r.headers["Location"] == "/api/r/text"
    assert c.get("/api/r/none").json() is None


def test_cookies_set(c):
    r = c.get("/api/r/cookie")
    cookies = r.headers.get_all("Set-Cookie")
    flavour = next(v for v in cookies if v.startswith("flavour="))
    for part in ("flavour=oat", "HttpOnly", "Max-Age=60", "Path=/api", "SameSite=Lax", "Secure", "expires="):
        assert part in flavour, (part, flavour)
    assert any(v.startswith('other="x y"') for v in cookies)
    assert any(v.startswith('gone=""') and "Max-Age=0" in v for v in cookies)


def test_file_response(c):
    r = c.get("/api/r/file")
    assert r.status_code == 200
    assert r.content == bytes(range(256)) * 1000
    assert r.headers["Content-Disposition"] == 'attachment; filename="data.bin"'
    assert r.headers["Content-Length"] == "256000"


def test_streaming_response(c):
    before = c.get("/api/r/stream/closed").json()["closed"]
    r = c.get("/api/r/stream?n=4")
    assert r.text == "line 0\nline 1\nline 2\nline 3\n"
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert c.get("/api/r/stream/closed").json()["closed"] == before + 1


def test_django_responses(c):
    r = c.get("/api/r/django")
    assert r.status_code == 201 and r.text == "from django" and r.headers["X-Django"] == "yes"
    assert "dj=1" in r.headers["Set-Cookie"]
    assert c.get("/api/r/django-json").json() == {"django": True}


def test_return_annotation(c):
    assert c.get("/api/r/struct").json() == {"name": "n", "price": 1.5, "tags": []}
    assert c.get("/api/r/dict-as-struct").json() == {"name": "n", "price": 2.0, "tags": []}
    assert c.get("/api/r/model").json() == [1, 2, 3]


def test_wrong_return_shape_is_a_logged_500(c, caplog):
    with caplog.at_level("ERROR", logger="meltemi.api"):
        r = c.get("/api/r/wrong-shape")
    assert r.status_code == 500 and r.json() == {"detail": "Internal Server Error"}
    assert any("returned a value that is not a Item" in rec.getMessage() or rec.exc_info for rec in caplog.records)


# ---- errors ----


def test_errors(c, caplog):
    r = c.get("/api/e/http")
    assert r.status_code == 409 and r.json() == {"detail": {"reason": "conflict"}} and r.headers["X-Why"] == "because"
    r = c.get("/api/e/404")
    assert r.status_code == 404 and r.json() == {"detail": "nothing here"}
    r = c.get("/api/e/403")
    assert r.status_code == 403 and r.json() == {"detail": "Permission denied"}
    assert c.get("/api/e/custom").status_code == 418
    with caplog.at_level("ERROR", logger="meltemi.api"):
        r = c.get("/api/e/500")
    assert r.status_code == 500 and r.json() == {"detail": "Internal Server Error"}
    assert any(rec.exc_info and "boom in handler" in str(rec.exc_info[1]) for rec in caplog.records)


def test_debug_page_when_debug(c):
    from django.test import override_settings

    with override_settings(DEBUG=True):
        r = c.get("/api/e/500")
    assert r.status_code == 500
    assert r.headers["Content-Type"].startswith("text/html")
    assert "boom in handler" in r.text and "RuntimeError" in r.text


def test_bad_requests_never_reach_python(c):
    r = c.raw(b"GET /api/types/int/1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert r.status_code == 400


# ---- Django inside handlers ----


def test_settings_and_anonymous_user(c):
    assert c.get("/api/settings").json()["secret_key_len"] == len("apiproject-tests-only")
    assert c.get("/api/me").json() == {"authenticated": False, "username": ""}


def test_user_from_session_cookie(c):
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore

    user, _ = User.objects.get_or_create(username="ann")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    r = c.get("/api/me", cookies={settings.SESSION_COOKIE_NAME: session.session_key})
    assert r.json() == {"authenticated": True, "username": "ann"}


def test_request_started_resets_queries(c):
    assert c.get("/api/signals").json() == {"queries_reset": True}


def test_many_routes_each_reaches_its_handler():
    """500 routes of mixed shapes in one API: every path finds its own handler."""
    from meltemi import API
    from meltemi.testing import TestClient

    api = API(prefix="/m", docs_url=None, openapi_url=None)

    def make(i):
        def handler(n: int):
            return {"route": i, "n": n}

        return handler

    for i in range(500):
        api.add_route(f"/r{i}/{{n}}" if i % 2 else f"/r{i}/fixed/{{n}}", make(i), ("GET",))
    with TestClient(api) as client:
        for i in range(0, 500, 7):
            path = f"/m/r{i}/{i * 3}" if i % 2 else f"/m/r{i}/fixed/{i * 3}"
            assert client.get(path).json() == {"route": i, "n": i * 3}
        assert client.get("/m/r2/5").status_code == 404


def test_request_started_and_finished_are_sent(c):
    """Django's request signals frame every API request (CONN_MAX_AGE relies on them)."""
    from django.core import signals

    seen = []

    def started(sender, **kw):
        seen.append("started")

    def finished(sender, **kw):
        seen.append("finished")

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        c.get("/api/types/int/1")
        assert seen == ["started", "finished"]
        seen.clear()
        c.get("/api/r/stream?n=2")
        assert seen == ["started", "finished"], "a streamed response finishes when the stream is closed"
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)


def test_constraints_on_optional_parameters(c):
    assert c.get("/api/optional-constrained").json() == [None, None]
    assert c.get("/api/optional-constrained?q=ab&n=2").json() == ["ab", 2]
    r = c.get("/api/optional-constrained?q=abcd&n=0")
    assert r.status_code == 422
    assert sorted(e["type"] for e in r.json()["detail"]) == ["greater_than_equal", "string_too_long"]


def test_impossible_constraint_is_refused_when_the_api_compiles():
    from meltemi import API

    api = API(docs_url=None, openapi_url=None)

    @api.get("/bad")
    def bad(n: Annotated[int, Query(max_length=3)] = 1):
        return n

    with pytest.raises(TypeError, match="bad: Can only set `max_length`"):
        api.compile()


def test_struct_result_holding_model_instances(c):
    """A Struct of the declared type built around ORM objects: its fields are converted by attribute."""
    c.post("/api/items", json={"name": "paged", "price": 1})
    body = c.get("/api/items-page").json()
    assert body["count"] >= 1 and {"id", "name", "price", "tags"} <= set(body["items"][0])
    assert c.get("/api/items-page-wrong").status_code == 500
