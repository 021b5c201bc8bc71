"""Shared fixtures: real meltemi server processes on free ports, raw sockets.

A server is started as `python -m meltemi APP --bind 127.0.0.1:0 ...`; the port
the kernel picked is read from the master's "Listening at http://HOST:PORT"
line, so there is no race on a pre-chosen free port.  When the server stops,
every worker prints its debug counters (MELTEMI_DEBUG_COUNTERS=1) and the
fixture asserts that they balance: each connection, request and buffer that
was opened was also closed.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parent
LISTEN_RE = re.compile(r"Listening at (?:http://(\[[^\]]+\]|[^:\s]+):(\d+)|unix:(\S+))")
COUNTERS_RE = re.compile(r"meltemi-counters pid=(\d+) (.*)")

# Free-threaded CPython (scripts/build-python ft; `make test-ft`).
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def _api_not_applicable() -> str | None:
    """Why the typed API's tests cannot run on this interpreter, or None.

    The API needs msgspec, whose free-threading support begins with CPython
    3.14t: on a free-threaded 3.13 (what scripts/build-python ft builds where
    the mirror serves only 3.13's source) there is no msgspec to install. On
    any other interpreter a missing msgspec is an error, not a skip."""
    try:
        import msgspec  # noqa: F401
    except ImportError:
        if FREE_THREADED and sys.version_info < (3, 14):
            return "the typed API needs msgspec, which has no build for free-threaded CPython 3.13 (only from 3.14t)"
        raise
    return None


API_NOT_APPLICABLE = _api_not_applicable()
needs_api = pytest.mark.skipif(API_NOT_APPLICABLE is not None, reason=API_NOT_APPLICABLE or "")

# On a free-threaded interpreter, the packages of requirements-dev.txt that have
# no build for it (scripts/build-python ft writes their names; e.g. msgspec and
# cryptography on 3.13t): a test module that cannot be imported without one of
# them is not collected there, and the summary lists each with the package.
_FT_UNAVAILABLE_FILE = Path(sys.prefix) / "unavailable-packages.txt"
_IMPORT_NAMES = {"pyjwt": "jwt", "django_cors_headers": "corsheaders"}  # where the module is not the package
FT_UNAVAILABLE = (
    {
        _IMPORT_NAMES.get(name, name)
        for name in (
            line.split("==")[0].split("[")[0].strip().lower().replace("-", "_")
            for line in _FT_UNAVAILABLE_FILE.read_text().split()
        )
    }
    if FREE_THREADED and _FT_UNAVAILABLE_FILE.exists()
    else set()
)
if API_NOT_APPLICABLE:
    FT_UNAVAILABLE.add("msgspec")
_NOT_COLLECTED: list[tuple[str, str]] = []


def ft_needs(package: str):
    """Marks a test whose server needs `package` (its application imports it): on a
    free-threaded interpreter without a build of it, the test cannot apply and says so;
    anywhere else it runs (a missing package there is an error)."""
    return pytest.mark.skipif(
        package in FT_UNAVAILABLE, reason=f"its application needs {package}, which has no free-threaded build here"
    )


def pytest_ignore_collect(collection_path, config):
    if not FT_UNAVAILABLE or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    import importlib

    sys.path.insert(0, str(collection_path.parent))
    try:
        importlib.import_module(collection_path.stem)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0].lower()
        if top in FT_UNAVAILABLE:
            _NOT_COLLECTED.append((collection_path.name, top))
            return True
        return None  # pytest reports it when it collects the module
    except BaseException:  # a module-level skip, or an error that pytest reports itself
        return None
    finally:
        sys.path.pop(0)
    return None


def pytest_terminal_summary(terminalreporter):
    if _NOT_COLLECTED:
        terminalreporter.section("not collected on this free-threaded interpreter")
        for name, package in _NOT_COLLECTED:
            terminalreporter.write_line(f"{name}: needs {package}, which has no free-threaded build here")


class Server:
    """A meltemi master process and what it printed."""

    def __init__(
        self,
        args: list[str],
        env: dict | None = None,
        cwd: Path | None = None,
        timeout: float = 30.0,
        command: list[str] | None = None,
        pass_fds: tuple[int, ...] = (),
    ):
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT), full_env.get("PYTHONPATH", "")])
        full_env["MELTEMI_DEBUG_COUNTERS"] = "1"
        full_env["PYTHONUNBUFFERED"] = "1"
        # Let the servers cache bytecode: compiling Django afresh in every
        # server process made each start cost seconds.
        full_env.pop("PYTHONDONTWRITEBYTECODE", None)
        if env:
            full_env.update(env)
        self.args = args
        self.proc = subprocess.Popen(
            [*(command or [sys.executable, "-m", "meltemi"]), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=str(cwd or ROOT),
            text=True,
            errors="replace",
            pass_fds=pass_fds,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.host = "127.0.0.1"
        self.port = 0
        self.unix_path: str | None = None
        self.addresses: list[tuple[str, int]] = []
        match = self.wait_for(LISTEN_RE, timeout)
        if match is None:
            self.kill()
            raise RuntimeError("meltemi did not start:\n" + self.output)
        if match.group(3):
            self.unix_path = match.group(3)
        else:
            self.host = match.group(1).strip("[]")
            self.port = int(match.group(2))
        self.stopped = False

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, pattern: re.Pattern | str, timeout: float = 10.0, start: int = 0):
        """Waits until a printed line (from index `start` on) matches; returns the match or None."""
        if isinstance(pattern, str):
            pattern = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            index = start
            while True:
                while index < len(self.lines):
                    found = pattern.search(self.lines[index])
                    index += 1
                    if found:
                        return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and index >= len(self.lines)):
                    if self.proc.poll() is not None:
                        self._reader.join(1)
                        while index < len(self.lines):
                            found = pattern.search(self.lines[index])
                            index += 1
                            if found:
                                return found
                    return None
                self._cond.wait(min(remaining, 0.2))

    def connect(self, timeout: float = 10.0) -> socket.socket:
        if self.unix_path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(self.unix_path)
            return sock
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def wait_answering(self, path: str, timeout: float = 60.0) -> Server:
        """Until GET `path` answers 200 (a worker is serving, the API compiled); returns the server."""
        import requests

        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(self.url + path, timeout=5).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, self.output
            time.sleep(0.1)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        """Graceful stop (SIGTERM); returns the exit code."""
        if not self.stopped:
            self.stopped = True
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"meltemi did not stop within {timeout}s:\n{self.output}") from None
            self._reader.join(5)
        return self.proc.returncode

    def kill(self) -> None:
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)

    def counters(self) -> list[dict[str, int]]:
        result = []
        for line in self.lines:
            found = COUNTERS_RE.search(line)
            if found:
                values = dict(item.split("=") for item in found.group(2).split())
                result.append({k: int(v) for k, v in values.items()} | {"pid": int(found.group(1))})
        return result

    def assert_balanced(self) -> None:
        """Every worker that exited cleanly reported counters that balance."""
        reports = self.counters()
        assert reports, "no worker printed its counters:\n" + self.output
        for report in reports:
            assert report["connections_opened"] == report["connections_closed"], report
            assert report["requests_started"] == report["requests_finished"], report
            assert report["buffers_acquired"] == report["buffers_released"], report
            assert report["output_bytes_queued"] == report["output_bytes_released"], report


@pytest.fixture
def start_server():
    """Factory: start_server("apps:hello", "--threads", "2") -> Server.

    Stops every server at the end of the test, checks its exit code and that
    its counters balance (unless the test already stopped or killed it).
    """
    servers: list[Server] = []

    def start(app: str, *args: str, bind: str | None = "127.0.0.1:0", workers: int | None = 1, **kwargs) -> Server:
        argv = [app]
        if bind:
            argv += ["--bind", bind]
        if workers is not None:
            argv += ["--workers", str(workers)]
        argv += list(args)
        server = Server(argv, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if not server.stopped:
            code = server.stop()
            assert code == 0, f"meltemi exited with {code}:\n{server.output}"
            server.assert_balanced()


def recv_all(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Reads until the peer closes the connection (or the timeout passes)."""
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


class RawResponse:
    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes, version: str):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.version = version
        self.trailers: list[tuple[str, str]] = []  # the trailer section of a chunked body

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def header_list(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def __repr__(self) -> str:
        return f"<RawResponse {self.status} {self.headers!r} {self.body[:200]!r}>"


class ResponseReader:
    """Parses HTTP/1.1 responses off a raw socket, strictly, one at a time."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buffer = b""
        self.eof = False

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._fill():
                raise EOFError(f"connection closed before {marker!r}; have {self.buffer[:500]!r}")
        line, self.buffer = self.buffer.split(marker, 1)
        return line

    def _read_exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise EOFError(f"connection closed {n - len(self.buffer)} bytes before the end of the body")
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_response(self, method: str = "GET") -> RawResponse:
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        status_line, *header_lines = head.split("\r\n")
        version, status, *reason = status_line.split(" ", 2)
        headers = []
        for line in header_lines:
            name, _, value = line.partition(":")
            assert name and name == name.strip(), f"bad header line {line!r}"
            headers.append((name, value.strip()))
        response = RawResponse(int(status), reason[0] if reason else "", headers, b"", version)
        if method == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200:
            return response
        te = response.header("transfer-encoding")
        length = response.header("content-length")
        if te is not None:
            assert te.lower() == "chunked", te
            body = []
            while True:
                size = int(self._read_until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    while line := self._read_until(b"\r\n").decode("latin-1"):
                        name, _, value = line.partition(":")
                        assert name and name == name.strip(), f"bad trailer line {line!r}"
                        response.trailers.append((name, value.strip()))
                    break
                body.append(self._read_exact(size))
                assert self._read_exact(2) == b"\r\n"
            response.body = b"".join(body)
        elif length is not None:
            response.body = self._read_exact(int(length))
        else:
            while self._fill():
                pass
            response.body, self.buffer = self.buffer, b""
        return response

    def closed(self, timeout: float = 5.0) -> bool:
        """True when the server closes the connection with nothing more to say."""
        if self.buffer:
            return False
        self.sock.settimeout(timeout)
        try:
            return not self._fill()
        except TimeoutError:
            return False


def send_split(sock: socket.socket, data: bytes, at: int) -> None:
    """Sends `data` in two writes, split at byte `at`, with a pause between."""
    sock.sendall(data[:at])
    time.sleep(0.002)
    sock.sendall(data[at:])
