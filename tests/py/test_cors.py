"""CORS decided in C, compared with django-cors-headers on the same settings.

For each settings case, three real servers of the same Django project
(tests/py/corsproject): django-cors-headers' middleware in MIDDLEWARE
(meltemi's `cors` option `auto` then leaves CORS to it); the same settings
without the middleware (meltemi applies them in C, project-wide: Django
views, API routes in Python and in C, static files); and an API with the
same settings as its own policy (`API(cors=CORS(...))`), no project policy.
Every request case is sent to each, and the CORS part of the answers must
be equal.

Normalized, and why: field names are compared without regard to case (RFC
9110 5.1); Vary is compared as a set of lowercase tokens (5.6.1) without
Accept-Encoding (the server's compression, the same in both setups);
fields that are not CORS's (Content-Type, X-Frame-Options... of Django's
200 to a preflight that never reaches Django in meltemi) are not compared.
For API routes and static files, only the CORS fields are compared, against
the middleware's answer on the same path (there a Django view): their status
is the route's own (a static file answers 405 to an OPTIONS that is no
preflight, the view 200).
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from conftest import ResponseReader, ft_needs

PROJECT = Path(__file__).resolve().parent / "corsproject"

DEFAULT_ORIGINS = ["https://a.example", "http://localhost:3000", "null"]
CASES = {
    "exact": {"CORS_ALLOWED_ORIGINS": DEFAULT_ORIGINS},
    "credentials": {
        "CORS_ALLOWED_ORIGINS": ["https://a.example", "http://localhost:3000"],
        "CORS_ALLOW_CREDENTIALS": True,
        "CORS_EXPOSE_HEADERS": ["x-total", "x-page"],
        "CORS_PREFLIGHT_MAX_AGE": 600,
        "CORS_ALLOW_METHODS": ["GET", "POST"],
        "CORS_ALLOW_HEADERS": ["content-type", "x-custom"],
        "CORS_ALLOW_PRIVATE_NETWORK": True,
    },
    "regexes": {
        "CORS_ALLOWED_ORIGIN_REGEXES": [r"^https://\w+\.example\.com$", r"^http://localhost:\d+"],
        "CORS_PREFLIGHT_MAX_AGE": 0,
    },
    "all": {"CORS_ALLOW_ALL_ORIGINS": True},
    "all-credentials": {"CORS_ALLOW_ALL_ORIGINS": True, "CORS_ALLOW_CREDENTIALS": True},
    "urls": {"CORS_ALLOWED_ORIGINS": ["https://a.example"], "CORS_URLS_REGEX": r"^/api/"},
    "old-names": {"CORS_ORIGIN_WHITELIST": ["https://a.example"], "CORS_ORIGIN_ALLOW_ALL": False},
}

ORIGINS = [
    None,
    "https://a.example",
    "https://A.example",  # host case: compared exactly
    "HTTPS://a.example",  # scheme case: compared without regard to case
    "https://a.example:443",  # a port written out is another origin
    "http://a.example",
    "http://localhost:3000",
    "http://localhost:3001",
    "null",
    "https://api.example.com",
    "https://a.b.example.com",
    "https://api.example.com.evil",
    "http://localhost:8080.evil",
    "http://[::1",  # urlsplit refuses it
    "http://[::1]:3000",
    "",
]

PREFLIGHT = {"Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "x-custom, content-type"}


def request_cases(path: str):
    """(label, method, path, fields) for every origin: simple GET, POST, preflight, OPTIONS."""
    cases = []
    for origin in ORIGINS:
        fields = {} if origin is None else {"Origin": origin}
        cases.append((f"GET {origin!r}", "GET", path, fields))
        cases.append((f"POST {origin!r}", "POST", path, {**fields, "Content-Length": "2"}))
        cases.append((f"preflight {origin!r}", "OPTIONS", path, {**fields, **PREFLIGHT}))
        cases.append((f"OPTIONS {origin!r}", "OPTIONS", path, fields))
    cases.append(
        ("GET PNA", "GET", path, {"Origin": "https://a.example", "Access-Control-Request-Private-Network": "true"})
    )
    cases.append(
        (
            "preflight PNA",
            "OPTIONS",
            path,
            {"Origin": "https://a.example", **PREFLIGHT, "Access-Control-Request-Private-Network": "true"},
        )
    )
    return cases


class Client:
    """One keep-alive connection, raw requests."""

    def __init__(self, server):
        self.sock = socket.create_connection((server.host, server.port), timeout=10)
        self.reader = ResponseReader(self.sock)

    def send(self, method: str, path: str, fields: dict[str, str]):
        head = f"{method} {path} HTTP/1.1\r\nHost: cors.test\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in fields.items())
        body = b"{}" if fields.get("Content-Length") == "2" else b""
        self.sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        return self.reader.read_response(method)

    def close(self):
        self.sock.close()


def cors_view(response) -> dict:
    fields = {name.lower(): value for name, value in response.headers if name.lower().startswith("access-control-")}
    vary = set()
    for name, value in response.headers:
        if name.lower() == "vary":
            vary |= {token.strip().lower() for token in value.split(",") if token.strip()}
    vary.discard("accept-encoding")
    return {"fields": fields, "vary": sorted(vary)}


def count(client: Client, path: str) -> int:
    return json.loads(client.send("GET", path, {}).body)["calls"]


def start(start_server, mode: str, settings: dict, *args: str, api_policy: dict | None = None):
    env = {
        "DJANGO_SETTINGS_MODULE": "corsproject.settings",
        "CORS_TEST_MODE": mode,
        "CORS_TEST_SETTINGS": json.dumps(settings),
    }
    if api_policy is not None:
        env["CORS_TEST_API_POLICY"] = json.dumps(api_policy)
    return start_server("corsproject.wsgi", "--threads", "2", *args, env=env)


@ft_needs("msgspec")  # the test project mounts a typed API
@pytest.mark.parametrize("case", list(CASES))
def test_same_cors_headers_as_django_cors_headers(case, start_server):
    settings = CASES[case]
    reference = start(start_server, "middleware", settings)
    meltemi = start(
        start_server, "meltemi", settings, "--api", "corsproject.api:api", "--static", f"/static/={PROJECT / 'static'}"
    )
    api_only = start(start_server, "meltemi", {}, "--api", "corsproject.api:api", api_policy=settings)
    ref, mt, api = Client(reference), Client(meltemi), Client(api_only)
    try:
        compared = 0
        for path in ("/hello", "/api/x", "/other/api/"):
            for label, method, target, fields in request_cases(path):
                expected = ref.send(method, target, fields)
                got = mt.send(method, target, fields)
                assert (got.status, cors_view(got)) == (expected.status, cors_view(expected)), (
                    f"{case}: {label} on {target} (WSGI)"
                )
                assert got.body == expected.body, f"{case}: {label} on {target} (WSGI)"
                compared += 1
        # API routes (Python and C) and static files, against the middleware on the same path.
        for path in ("/api/py", "/api/const", "/static/hello.txt"):
            for label, method, target, fields in request_cases(path):
                expected = cors_view(ref.send(method, target, fields))
                got = mt.send(method, target, fields)
                assert cors_view(got) == expected, f"{case}: {label} on {target} (project policy)"
                if path.startswith("/api/"):
                    own = api.send(method, target, fields)
                    if "CORS_URLS_REGEX" not in settings or target.startswith("/api/"):
                        assert cors_view(own) == expected, f"{case}: {label} on {target} (the API's own policy)"
                compared += 1
        assert compared > 200
    finally:
        ref.close()
        mt.close()
        api.close()


@ft_needs("msgspec")  # the test project mounts a typed API
def test_preflights_never_reach_python(start_server):
    settings = {"CORS_ALLOWED_ORIGINS": ["http://localhost:3000"]}
    reference = start(start_server, "middleware", settings)
    meltemi = start(start_server, "meltemi", settings, "--api", "corsproject.api:api")
    api_only = start(start_server, "meltemi", {}, "--api", "corsproject.api:api", api_policy=settings)
    preflight = {"Origin": "http://localhost:3000", **PREFLIGHT}
    for server, path, counter, reaches in (
        (reference, "/hello", "/count", True),  # the middleware answers them in Python: the count shows it
        (meltemi, "/hello", "/count", False),
        (meltemi, "/api/py", "/api/calls", False),
        (api_only, "/api/py", "/api/calls", False),
    ):
        client = Client(server)
        try:
            before = count(client, counter)
            for _ in range(20):
                response = client.send("OPTIONS", path, preflight)
                assert response.status == 200
                assert response.header("access-control-allow-origin") == "http://localhost:3000"
            after = count(client, counter)
            # /count itself reaches Django once; /api/calls is not counted.
            own = 1 if counter == "/count" else 0
            assert after - before - own == (20 if reaches else 0), (server.args, path)
            # A request that is no preflight does reach it.
            client.send("PUT" if path == "/api/py" else "GET", path, {"Origin": "http://localhost:3000"})
            assert count(client, counter) - after - own == 1
        finally:
            client.close()


@ft_needs("msgspec")  # the test project mounts a typed API
def test_api_policy_does_not_leak_to_django_views(start_server):
    server = start(
        start_server, "meltemi", {}, "--api", "corsproject.api:api", api_policy={"CORS_ALLOW_ALL_ORIGINS": True}
    )
    client = Client(server)
    try:
        view = client.send("GET", "/hello", {"Origin": "https://x.example"})
        route = client.send("GET", "/api/py", {"Origin": "https://x.example"})
        assert cors_view(view) == {"fields": {}, "vary": []}
        assert route.header("access-control-allow-origin") == "*"
        # A preflight to a path no API route has goes to Django.
        assert client.send("OPTIONS", "/hello", {"Origin": "https://x.example", **PREFLIGHT}).body == b"ok"
    finally:
        client.close()


def test_cors_option_from_the_command_line(start_server):
    server = start(start_server, "meltemi", {}, "--cors", "http://localhost:3000")
    client = Client(server)
    try:
        response = client.send("OPTIONS", "/hello", {"Origin": "http://localhost:3000", **PREFLIGHT})
        assert response.status == 200 and response.body == b""
        assert response.header("access-control-allow-methods") == "DELETE, GET, OPTIONS, PATCH, POST, PUT"
        assert response.header("access-control-max-age") == "86400"
        other = client.send("GET", "/hello", {"Origin": "http://localhost:3001"})
        assert other.header("access-control-allow-origin") is None and "Origin" in other.header("vary")
    finally:
        client.close()


def test_bad_policies_are_refused_at_start():
    from meltemi import CORS
    from meltemi.config import ConfigError, resolve

    with pytest.raises(ValueError, match="not an origin"):
        CORS(allow_origins=["localhost:3000"])
    with pytest.raises(ValueError, match="unknown CORS setting"):
        CORS.from_mapping({"CORS_ALLOWED_ORIGIN": ["https://a.example"]})
    with pytest.raises(Exception, match="unterminated|missing"):
        CORS(allow_origin_regexes=["^(https://"])
    with pytest.raises(ConfigError, match="--cors"):
        resolve({"cors": "a.example"}, {}, None)


def test_settings_map_onto_the_policy():
    from meltemi import CORS
    from meltemi.config import resolve

    both = {"CORS_ALLOWED_ORIGINS": ["https://new.example"], "CORS_ORIGIN_WHITELIST": ["https://old.example"]}
    assert CORS.from_mapping(both).allow_origins == ["https://new.example"], "the current name wins"
    policy = resolve({}, {}, {"CORS": {"allow_origins": ["*"], "allow_credentials": True}}).cors
    spec = policy.c_spec()
    assert spec[0] == () and spec[3] is True and spec[4] is True, "'*' means every origin"
    assert resolve({"cors": "off"}, {}, None).cors == "off"
    assert resolve({}, {"MELTEMI_CORS": "https://a.example, http://localhost:3000"}, None).cors.c_spec()[0] == (
        "https://a.example",
        "http://localhost:3000",
    )
    regex = CORS(allow_origin_regexes=[re.compile(r"^https://x\.example\Z", re.IGNORECASE)]).c_spec()[1]
    assert regex == ("(?i)^https://x\\.example\\z",), "re.IGNORECASE and \\Z carried over to PCRE2"


@ft_needs("msgspec")  # the test project mounts a typed API
def test_an_api_policy_keeps_to_its_url_regex(start_server):
    policy = {"CORS_ALLOW_ALL_ORIGINS": True, "CORS_URLS_REGEX": r"^/api/const$"}
    server = start(start_server, "meltemi", {}, "--api", "corsproject.api:api", api_policy=policy)
    client = Client(server)
    try:
        assert client.send("GET", "/api/const", {"Origin": "https://x.example"}).header("access-control-allow-origin")
        route = client.send("GET", "/api/py", {"Origin": "https://x.example"})
        assert cors_view(route) == {"fields": {}, "vary": []}
        before = json.loads(client.send("GET", "/api/calls", {}).body)["calls"]
        # A preflight to a route the policy does not cover is the route's: the router's own OPTIONS answer.
        answer = client.send("OPTIONS", "/api/py", {"Origin": "https://x.example", **PREFLIGHT})
        assert answer.status == 204 and answer.header("allow") and cors_view(answer)["fields"] == {}
        assert json.loads(client.send("GET", "/api/calls", {}).body)["calls"] == before
    finally:
        client.close()
