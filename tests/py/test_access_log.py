"""The access log in each format, for requests answered by Python and in C
(static files, the API's C answers, the server's own errors), and request
ids: kept, replaced, generated, echoed, seen by the application, logged."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
import requests
from conftest import needs_api, recv_all

from meltemi import config
from meltemi.cli import build_parser
from meltemi.config import ConfigError, resolve

# Every test serves logapps with its typed API (--api logapps:api).
pytestmark = needs_api

APP = ("logapps:app", "--api", "logapps:api", "--threads", "2")
HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def static_dir(tmp_path):
    root = tmp_path / "static"
    root.mkdir()
    (root / "a.txt").write_text("hello static\n")
    return root


def start(start_server, tmp_path, static_dir, fmt: str, *extra: str):
    log = tmp_path / "access.log"
    server = start_server(
        *APP[:1], *APP[1:], "--static", f"/s={static_dir}", "--access-log", str(log), "--access-log-format", fmt, *extra
    )
    return server, log


def parse_cli(*argv: str) -> dict:
    return config.cli_values(build_parser().parse_args(["app:app", *argv]))


def lines(log, count: int, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        if text.count("\n") >= count:
            return text.splitlines()
        time.sleep(0.05)
    raise AssertionError(f"expected {count} lines in the access log, got:\n{text}")


def exercise(server) -> None:
    """One request of each kind, in a known order, each on its own connection."""
    headers = {"Referer": "http://ref/", "User-Agent": 'ua/1 "q"', "X-Request-ID": "req-1"}
    assert requests.get(server.url + "/s/a.txt", headers=headers, timeout=10).status_code == 200  # static, C
    assert requests.post(server.url + "/api/items/1", timeout=10).status_code == 405  # API, C
    assert requests.get(server.url + "/api/health", timeout=10).status_code == 200  # constant route, C
    assert requests.get(server.url + "/api/items/2", timeout=10).status_code == 200  # API, Python
    assert requests.get(server.url + "/missing", timeout=10).status_code == 404  # the WSGI app
    sock = server.connect()
    sock.sendall(b"GET /bad path HTTP/1.1\r\nHost: x\r\n\r\n")
    assert recv_all(sock).startswith(b"HTTP/1.1 400 ")  # refused by the parser, on the I/O thread
    sock.close()


EXPECTED = [
    ("GET", "/s/a.txt", 200, 13),
    ("POST", "/api/items/1", 405, None),
    ("GET", "/api/health", 200, 11),
    ("GET", "/api/items/2", 200, 7),
    ("GET", "/missing", 404, 8),
]


@pytest.mark.parametrize("fmt", ["common", "combined"])
def test_text_formats_log_every_kind_of_answer(start_server, tmp_path, static_dir, fmt):
    server, log = start(start_server, tmp_path, static_dir, fmt)
    exercise(server)
    got = lines(log, 6)
    assert len(got) == 6, got
    for line, (method, target, status, size) in zip(got[:5], EXPECTED, strict=True):
        found = re.fullmatch(r'127\.0\.0\.1 - - \[[^\]]+ \+0000\] "(\S+) (\S+) HTTP/1\.1" (\d+) (\S+)(.*)', line)
        assert found, line
        assert found.group(1, 2) == (method, target), line
        assert int(found.group(3)) == status, line
        if size is not None:
            assert found.group(4) == str(size), line
        rest = found.group(5)
        if fmt == "common":
            assert rest == "", line
        else:
            assert rest.startswith(' "'), line
    if fmt == "combined":
        assert got[0].endswith('"http://ref/" "ua/1 \\x22q\\x22"'), got[0]
        assert got[1].endswith(' "-" "python-requests/' + requests.__version__ + '"'), got[1]
    # The request line did not parse: "-" stands for it.
    assert re.fullmatch(r'127\.0\.0\.1 - - \[[^\]]+\] "-" 400 \d+( "-" "-")?', got[5]), got[5]


def test_json_format_logs_every_kind_of_answer(start_server, tmp_path, static_dir):
    server, log = start(start_server, tmp_path, static_dir, "json")
    exercise(server)
    records = [json.loads(line) for line in lines(log, 6)]
    assert len(records) == 6
    for record, (method, target, status, size) in zip(records[:5], EXPECTED, strict=True):
        assert (record["method"], record["target"], record["status"]) == (method, target, status), record
        assert record["protocol"] == "HTTP/1.1" and record["remote_addr"] == "127.0.0.1"
        if size is not None:
            assert record["bytes"] == size, record
        assert isinstance(record["duration_ms"], float) and 0 <= record["duration_ms"] < 5000, record
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["time"]), record
    assert records[0]["request_id"] == "req-1"
    assert records[0]["referer"] == "http://ref/" and records[0]["user_agent"] == 'ua/1 "q"'
    for record in records[1:5]:
        assert HEX32.fullmatch(record["request_id"]), record
    bad = records[5]
    assert bad["status"] == 400 and bad["request_id"] is None and bad["duration_ms"] is None, bad
    assert set(records[0]) == {
        "time",
        "remote_addr",
        "method",
        "target",
        "protocol",
        "status",
        "bytes",
        "duration_ms",
        "request_id",
        "referer",
        "user_agent",
    }


def test_json_escapes_what_the_client_sent(start_server, tmp_path, static_dir):
    server, log = start(start_server, tmp_path, static_dir, "json")
    sock = server.connect()
    sock.sendall(b'GET /q?"\\ HTTP/1.1\r\nHost: x\r\nUser-Agent: a\tb\xff\xfe "z"\r\nConnection: close\r\n\r\n')
    assert recv_all(sock).startswith(b"HTTP/1.1 404 ")
    sock.close()
    [line] = lines(log, 1)
    record = json.loads(line)
    assert record["target"] == '/q?"\\'
    assert record["user_agent"] == 'a\tb\ufffd\ufffd "z"'
    assert '"a\\tb\ufffd\ufffd \\"z\\""' in line


def test_a_body_read_in_several_parts_still_logs_the_fields(start_server, tmp_path, static_dir):
    server, log = start(start_server, tmp_path, static_dir, "json")
    body = b"x" * 300_000
    r = requests.post(server.url + "/post", data=body, headers={"User-Agent": "big/1"}, timeout=10)
    assert r.text == str(len(body))
    record = json.loads(lines(log, 1)[0])
    assert (record["target"], record["user_agent"], record["status"]) == ("/post", "big/1", 200)


def test_request_id_kept_replaced_generated_and_echoed(start_server, tmp_path, static_dir):
    server, log = start(start_server, tmp_path, static_dir, "json")
    r = requests.get(server.url + "/id", headers={"X-Request-ID": "abc-123"}, timeout=10)
    assert r.text == "abc-123" and r.headers["X-Request-ID"] == "abc-123"  # kept, seen by the app, echoed
    r = requests.get(server.url + "/id", headers={"X-Request-ID": "has space"}, timeout=10)
    assert HEX32.fullmatch(r.text) and r.headers["X-Request-ID"] == r.text  # replaced, the app sees the new one
    r = requests.get(server.url + "/id", headers={"X-Request-ID": "a" * 129}, timeout=10)
    assert HEX32.fullmatch(r.text), "longer than 128 bytes: replaced"
    r = requests.get(server.url + "/id", timeout=10)
    generated = r.text
    assert HEX32.fullmatch(generated) and r.headers["X-Request-ID"] == generated  # generated
    r = requests.get(server.url + "/set-id", headers={"X-Request-ID": "mine"}, timeout=10)
    assert r.headers["X-Request-ID"] == "mine", "the server's id replaces the application's own"
    r = requests.get(server.url + "/api/id", headers={"X-Request-ID": "api-1"}, timeout=10)
    assert r.json() == {"id": "api-1", "request_id": "api-1"} and r.headers["X-Request-ID"] == "api-1"
    r = requests.get(server.url + "/api/id", timeout=10)
    assert r.json()["id"] == r.headers["X-Request-ID"]
    assert requests.get(server.url + "/s/a.txt", timeout=10).headers["X-Request-ID"]
    assert requests.get(server.url + "/api/health", timeout=10).headers["X-Request-ID"]
    records = [json.loads(line) for line in lines(log, 9)]
    assert [rec["request_id"] for rec in records[:1]] == ["abc-123"]
    assert records[3]["request_id"] == generated
    assert records[4]["request_id"] == "mine"


def test_request_id_header_configurable_and_off(start_server, tmp_path, static_dir):
    server, _ = start(start_server, tmp_path, static_dir, "common", "--request-id-header", "X-Trace")
    r = requests.get(server.url + "/id", headers={"X-Trace": "t-1", "X-Request-ID": "ignored"}, timeout=10)
    assert r.headers["X-Trace"] == "t-1" and "X-Request-ID" not in r.headers
    assert r.text == "ignored", "X-Request-ID is an ordinary field now"
    r = requests.get(server.url + "/api/id", headers={"X-Trace": "t-2"}, timeout=10)
    assert r.json()["request_id"] == "t-2"
    server.stop()
    server, _ = start(start_server, tmp_path, static_dir, "common", "--request-id-header", "")
    r = requests.get(server.url + "/id", timeout=10)
    assert r.text == "none" and "X-Request-ID" not in r.headers
    assert requests.get(server.url + "/api/id", timeout=10).json() == {"id": None, "request_id": None}


def test_stderr_and_off(start_server, static_dir):
    server = start_server(*APP, "--access-log", "-", "--access-log-format", "json")
    requests.get(server.url + "/id", timeout=10)
    assert server.wait_for(r'^\{"time":"[^"]+","remote_addr":"127\.0\.0\.1","method":"GET","target":"/id"', timeout=5)
    server.stop()
    server = start_server(*APP)
    requests.get(server.url + "/id?unlogged", timeout=10)
    time.sleep(0.3)
    assert "unlogged" not in server.output


def test_option_validation():
    assert resolve(parse_cli("--access-log-format", "JSON"), {}, None).access_log_format == "json"
    assert resolve(parse_cli(), {}, None).access_log_format == "common"
    assert resolve(parse_cli(), {}, None).request_id_header == "X-Request-ID"
    assert resolve(parse_cli("--request-id-header", ""), {}, None).request_id_header == ""
    assert resolve(parse_cli(), {}, {"REQUEST_ID_HEADER": ""}).request_id_header == ""
    assert resolve(parse_cli(), {"MELTEMI_ACCESS_LOG_FORMAT": "combined"}, None).access_log_format == "combined"
    with pytest.raises(ConfigError):
        resolve(parse_cli("--access-log-format", "xml"), {}, None)
    with pytest.raises(ConfigError):
        resolve(parse_cli("--request-id-header", "X Request"), {}, None)
    with pytest.raises(ConfigError):
        resolve(parse_cli(), {"MELTEMI_REQUEST_ID_HEADER": "X:Y"}, None)
    # Request fields whose name has an '_' are dropped by the server: such a name could never be read.
    with pytest.raises(ConfigError, match="no '_'"):
        resolve(parse_cli("--request-id-header", "X_Request_ID"), {}, None)


def test_head_timeout_is_logged(start_server, tmp_path, static_dir):
    server, log = start(start_server, tmp_path, static_dir, "json", "--head-timeout", "0.5")
    sock = server.connect()
    sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n")  # never finished
    assert recv_all(sock).startswith(b"HTTP/1.1 408 ")
    sock.close()
    record = json.loads(lines(log, 1)[0])
    assert record["status"] == 408 and record["duration_ms"] is None, record
    assert record["method"] == "GET" and record["target"] == "/slow", "the request line had arrived"


def test_lines_of_several_workers_and_threads_never_interleave(start_server, tmp_path, static_dir):
    log = tmp_path / "access.log"
    server = start_server(
        *APP, "--static", f"/s={static_dir}", "--access-log", str(log), "--access-log-format", "json", workers=2
    )
    long_ua = "u" * 2000

    def hammer(path: str) -> None:
        with requests.Session() as session:
            for _ in range(100):
                session.get(server.url + path, headers={"User-Agent": long_ua}, timeout=10)

    threads = [threading.Thread(target=hammer, args=(path,)) for path in ("/s/a.txt", "/id", "/api/health", "/x") * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = [json.loads(line) for line in lines(log, 800)]
    assert len(records) == 800
    assert all(record["user_agent"] == long_ua for record in records)
