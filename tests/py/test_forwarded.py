"""Trusted proxies through the real server: Forwarded and X-Forwarded-* are
believed only from a trusted peer, chains are walked from the right to the
first untrusted hop, IPv6 peers and hops work, malformed values are ignored,
and the access log records the resolved client."""

from __future__ import annotations

import json
import socket
import time

import pytest

from meltemi.config import ConfigError, resolve

APP = "proxyapps:app"


def ask(server, *fields: str) -> dict:
    """One GET with the given raw header lines; the application's view of the client."""
    sock = server.connect()
    head = "GET / HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n" + "".join(f + "\r\n" for f in fields)
    sock.sendall(head.encode("latin-1") + b"\r\n")
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    status, _, body = data.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 200 "), data
    return json.loads(body)


def test_spoofed_fields_from_an_untrusted_peer_are_ignored(start_server):
    server = start_server(APP, "--forwarded-allow-ips", "192.0.2.1")
    seen = ask(
        server,
        "X-Forwarded-For: 203.0.113.9",
        "X-Forwarded-Proto: https",
        "X-Forwarded-Host: evil.test",
        "Forwarded: for=198.51.100.1;proto=https;host=evil.test",
    )
    assert seen["remote_addr"] == "127.0.0.1"
    assert seen["remote_port"] not in (None, "0")
    assert seen["scheme"] == "http"
    assert seen["host"] == "origin.test"


def test_loopback_is_trusted_by_default(start_server):
    server = start_server(APP)
    seen = ask(server, "X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https", "X-Forwarded-Host: api.test")
    assert seen == {
        "remote_addr": "203.0.113.9",
        "remote_port": None,
        "scheme": "https",
        "host": "api.test",
        "server_name": "127.0.0.1",
    }


def test_chain_from_trusted_proxies_resolves_to_the_rightmost_untrusted_hop(start_server):
    server = start_server(APP, "--forwarded-allow-ips", "127.0.0.1, 10.0.0.0/8")
    # The client forged the first entry; 10.x are our proxies.
    seen = ask(server, "X-Forwarded-For: 6.6.6.6, 203.0.113.5, 10.1.2.3", "X-Forwarded-For: 10.0.0.7")
    assert seen["remote_addr"] == "203.0.113.5"
    seen = ask(server, "Forwarded: for=6.6.6.6, for=203.0.113.5;proto=https, for=10.1.2.3;proto=http")
    assert (seen["remote_addr"], seen["scheme"]) == ("203.0.113.5", "https")
    # Without the range, the nearest hop is already untrusted.
    server2 = start_server(APP, "--forwarded-allow-ips", "127.0.0.1")
    assert ask(server2, "X-Forwarded-For: 6.6.6.6, 203.0.113.5, 10.1.2.3")["remote_addr"] == "10.1.2.3"


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback on this machine")
def test_ipv6_peer_and_hops(start_server):
    server = start_server(APP, "--forwarded-allow-ips", "::1", bind="[::1]:0")
    seen = ask(server, 'Forwarded: for="[2001:db8:cafe::17]:4711";proto=https;host="api.example:8443"')
    assert seen["remote_addr"] == "2001:db8:cafe::17"
    assert seen["remote_port"] == "4711"
    assert (seen["scheme"], seen["host"]) == ("https", "api.example:8443")
    assert ask(server, "X-Forwarded-For: 2001:db8::9")["remote_addr"] == "2001:db8::9"
    # ::1 is not trusted by an IPv4-only list.
    server2 = start_server(APP, "--forwarded-allow-ips", "127.0.0.1", bind="[::1]:0")
    assert ask(server2, "X-Forwarded-For: 2001:db8::9")["remote_addr"] == "::1"


MALFORMED = [
    "X-Forwarded-For: not-an-address",
    "X-Forwarded-For: 1.2.3.4:99999",
    "X-Forwarded-For: [::1",
    "X-Forwarded-For: " + "1.2.3.4, " * 500 + "junk",
    'Forwarded: for="1.2.3.4',
    "Forwarded: for=[::1]",
    "Forwarded: for=1.2.3.4;for=5.6.7.8",
    "Forwarded: ;;;,,,=",
    'Forwarded: for="\\',
    "Forwarded: for=" + "9" * 3000,
    "X-Forwarded-Proto: javascript",
    "X-Forwarded-Host: a/b@c",
    "X-Forwarded-Host: " + "h" * 300,
]


@pytest.mark.parametrize("field", MALFORMED)
def test_malformed_values_are_ignored(start_server_shared, field):
    seen = ask(start_server_shared, field)
    assert seen["remote_addr"] == "127.0.0.1"
    assert seen["scheme"] == "http"
    assert seen["host"] == "origin.test"


@pytest.fixture(scope="module")
def start_server_shared(request):
    from conftest import Server

    server = Server(["proxyapps:app", "--bind", "127.0.0.1:0", "--workers", "1"])
    request.addfinalizer(lambda: server.stop())
    return server


def test_access_log_records_the_resolved_client(start_server, tmp_path):
    log = tmp_path / "access.log"
    server = start_server(APP, "--access-log", str(log))
    ask(server, "X-Forwarded-For: 203.0.113.77")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (log.exists() and log.read_text()):
        time.sleep(0.05)
    assert log.read_text().startswith("203.0.113.77 - - [")


def test_option_values():
    assert resolve().forwarded_allow_ips == ("127.0.0.0/8", "::1/128", "unix")
    cfg = resolve(cli={"forwarded_allow_ips": "10.0.0.1, fd00::/8 unix"})
    assert cfg.forwarded_allow_ips == ("10.0.0.1/32", "fd00::/8", "unix")
    assert resolve(cli={"forwarded_allow_ips": "none"}).forwarded_allow_ips == ()
    assert resolve(cli={"forwarded_allow_ips": "*"}).forwarded_allow_ips == ("*",)
    assert resolve(django={"FORWARDED_ALLOW_IPS": ["10.0.0.0/8"]}).forwarded_allow_ips == ("10.0.0.0/8",)
    with pytest.raises(ConfigError, match="--forwarded-allow-ips: expected addresses"):
        resolve(cli={"forwarded_allow_ips": "proxy.example"})
    with pytest.raises(ConfigError):
        resolve(cli={"forwarded_allow_ips": "10.0.0.0/40"})


def test_the_asgi_scope_uses_the_trusted_proxys_client_and_scheme(start_server):
    trusted = start_server("proxyapps:asgi_app")
    seen = ask(trusted, "X-Forwarded-For: 203.0.113.9, 127.0.0.1", "X-Forwarded-Proto: https")
    assert seen["client"] == ["203.0.113.9", 0] and seen["scheme"] == "https"
    untrusted = start_server("proxyapps:asgi_app", "--forwarded-allow-ips", "192.0.2.1")
    seen = ask(untrusted, "X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https")
    assert seen["client"][0] == "127.0.0.1" and seen["client"][1] > 0 and seen["scheme"] == "http"
