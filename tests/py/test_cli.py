"""The `meltemi` command and `manage.py runmeltemi`: what a user sees when things go right and wrong.

Every failure must be one clear line (plus the application's traceback for an
import error) and a prompt, documented exit code: never a hang, never a
traceback from meltemi itself.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import tomllib

import pytest
from conftest import LISTEN_RE, ROOT, TESTS

STARTUP_TIMEOUT = 20


def child_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(extra or {})
    return env


def meltemi(*args: str, env: dict | None = None, timeout: float = STARTUP_TIMEOUT) -> subprocess.CompletedProcess:
    """Runs a meltemi that is expected to stop by itself."""
    return subprocess.run(
        [sys.executable, "-m", "meltemi", *args],
        capture_output=True,
        text=True,
        env=child_env(env),
        cwd=str(ROOT),
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def get(host: str, port: int, path: str = "/") -> tuple[int, str]:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


class Process:
    """A long-running command whose merged output is collected line by line."""

    def __init__(self, argv: list[str], env: dict | None = None, cwd=None):
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env(env),
            cwd=str(cwd or ROOT),
            text=True,
        )
        self.lines: list[str] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = STARTUP_TIMEOUT) -> list[re.Match]:
        """Waits until `count` lines match; returns the matches."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [m for m in map(re.compile(pattern).search, self.lines) if m]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no {count} lines matching {pattern!r}:\n" + "\n".join(self.lines))
                self.cond.wait(min(remaining, 0.2))

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    @property
    def output(self) -> str:
        with self.cond:
            return "\n".join(self.lines)


def test_version_is_the_package_version():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = meltemi("--version")
    assert result.returncode == 0
    assert result.stdout == f"meltemi {version}\n"


def test_help_lists_every_option():
    from meltemi import config

    result = meltemi("--help")
    assert result.returncode == 0
    for option in config.OPTIONS:
        assert option.flag in result.stdout


@pytest.mark.parametrize(
    "args, env, line",
    [
        (["procapps:app", "--workers", "x"], {}, "--workers: expected a positive integer or 'auto', got 'x'"),
        (
            ["procapps:app", "--bind", "nowhere"],
            {},
            "--bind: expected HOST:PORT, [IPV6]:PORT or unix:PATH, got 'nowhere'",
        ),
        (["procapps:app"], {"MELTEMI_THREADS": "0"}, "MELTEMI_THREADS: expected a positive integer, got '0'"),
        (["procapps:app", "--frobnicate"], {}, "unrecognized arguments: --frobnicate (see 'meltemi --help')"),
        (["procapps:app", "--threads"], {}, "argument --threads: expected one argument (see 'meltemi --help')"),
        ([], {}, "missing the application to serve, e.g. 'meltemi myproject.wsgi:application'"),
        (["procapps:app:more"], {}, "APP: expected 'module' or 'module:attribute', got 'procapps:app:more'"),
    ],
)
def test_usage_error_is_one_line_and_exit_2(args, env, line):
    result = meltemi(*args, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"meltemi: error: {line}\n"


def test_max_body_size_0_fails_at_config_time_not_in_the_worker():
    """It passed config.py and then made every worker fail to boot (exit 3)."""
    result = meltemi("procapps:app", "--max-body-size", "0")
    assert result.returncode == 2
    assert result.stderr == (
        "meltemi: error: --max-body-size: expected a size in bytes such as 16384, 64K or 100M, from 1 to 1024G, "
        "got '0'\n"
    )


def test_port_in_use_is_reported_at_once():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        started = time.monotonic()
        result = meltemi("procapps:app", "--bind", f"127.0.0.1:{port}", "--workers", "2", timeout=10)
        assert time.monotonic() - started < 5
    finally:
        blocker.close()
    assert result.returncode == 1
    assert f"meltemi: error: cannot bind 127.0.0.1:{port}: address already in use\n" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Booting worker" not in result.stderr


def test_access_log_that_cannot_be_opened(tmp_path):
    target = tmp_path / "missing-dir" / "access.log"
    result = meltemi("procapps:app", "--bind", "127.0.0.1:0", "--access-log", str(target), timeout=10)
    assert result.returncode == 1
    assert result.stderr == f"meltemi: error: cannot open the access log {target}: no such file or directory\n"


def test_unix_socket_path_taken_by_a_file(tmp_path):
    path = tmp_path / "not-a-socket"
    path.write_text("mine")
    result = meltemi("procapps:app", "--bind", f"unix:{path}", timeout=10)
    assert result.returncode == 1
    assert f"meltemi: error: cannot bind unix:{path}: a file that is not a socket is in the way" in result.stderr
    assert path.read_text() == "mine"


@pytest.mark.parametrize(
    "args",
    [["--workers", "1"], ["--workers", "2"], ["--workers", "2", "--preload"]],
    ids=["1-worker", "2-workers", "preload"],
)
def test_import_error_is_reported_with_its_traceback_and_no_restart(args):
    result = meltemi("no_such_module_xyz:app", "--bind", "127.0.0.1:0", *args, timeout=30)
    assert result.returncode == 3, result.stderr
    reason = "ModuleNotFoundError: No module named 'no_such_module_xyz'"
    assert f"meltemi: error: cannot import 'no_such_module_xyz:app': {reason}" in result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    if "--preload" in args:
        assert "Booting worker" not in result.stderr
    else:
        # Each worker fails once; none is started again.
        workers = int(args[1])
        assert result.stderr.count("Booting worker") == workers, result.stderr
        assert "could not load the application; stopping" in result.stderr


def test_exception_in_a_factory_shows_where_it_was_raised():
    result = meltemi("procapps:broken_factory()", "--bind", "127.0.0.1:0", timeout=30)
    assert result.returncode == 3
    assert (
        "meltemi: error: cannot import 'procapps:broken_factory()': RuntimeError: the factory refuses to build an app"
        in result.stderr
    )
    assert 'procapps.py", line' in result.stderr and "in broken_factory" in result.stderr


@pytest.mark.parametrize(
    "spec, reason",
    [
        ("procapps:missing", "'procapps' has no attribute 'missing'"),
        ("procapps:not_callable", "int object is not a WSGI callable"),
    ],
)
def test_wrong_attribute_is_one_line(spec, reason):
    result = meltemi(spec, "--bind", "127.0.0.1:0", "--preload", timeout=30)
    assert result.returncode == 3
    assert result.stderr == f"meltemi: error: cannot import {spec!r}: {reason}\n"


def booted_workers(server, expected: int) -> int:
    server.wait_for(rf"Booting worker {expected} \(pid", timeout=STARTUP_TIMEOUT)
    time.sleep(0.5)
    return len(re.findall(r"Booting worker \d+ \(pid", server.output))


def test_options_come_from_cli_then_env_then_django_setting(start_server):
    # procapps sets MELTEMI = {"WORKERS": 2, ...}.
    django = {"DJANGO_SETTINGS_MODULE": "procapps"}
    server = start_server("procapps:app", workers=None, env=django)
    assert booted_workers(server, 2) == 2
    server = start_server("procapps:app", workers=None, env=django | {"MELTEMI_WORKERS": "3"})
    assert booted_workers(server, 3) == 3
    server = start_server("procapps:app", workers=1, env=django | {"MELTEMI_WORKERS": "3"})
    assert booted_workers(server, 1) == 1
    status, body = get(server.host, server.port)
    assert status == 200 and body.startswith("pid=")


def test_factory_call_syntax(start_server):
    server = start_server("procapps:make_app('pid')")
    assert get(server.host, server.port) == (200, f"pid={server_worker_pid(server)}")


def server_worker_pid(server) -> int:
    return int(server.wait_for(r"Booting worker 1 \(pid (\d+)\)").group(1))


def test_access_log_and_application_errors(start_server):
    server = start_server("procapps:app", "--access-log", "-")
    assert get(server.host, server.port, "/logged?x=1")[0] == 200
    assert server.wait_for(r'"GET /logged\?x=1 HTTP/1.1" 200 ', timeout=5), server.output
    assert get(server.host, server.port, "/raise")[0] == 500
    assert server.wait_for(r"ZeroDivisionError: procapps was asked to fail", timeout=5), server.output
    assert "Traceback (most recent call last)" in server.output


def test_options_reach_the_worker(start_server, tmp_path):
    access = tmp_path / "access.log"
    server = start_server(
        "procapps:app",
        *("--max-body-size", "1K", "--max-request-line", "256", "--url-scheme", "https"),
        *("--access-log", str(access), "--threads", "2", "--keepalive-timeout", "1"),
        workers=2,
    )
    status, body = get(server.host, server.port, "/environ")
    assert status == 200
    assert body == "{'wsgi.url_scheme': 'https', 'wsgi.multiprocess': True, 'SERVER_NAME': '127.0.0.1'}"
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("POST", "/", body=b"x" * 2048)
    assert conn.getresponse().status == 413
    conn.close()
    assert get(server.host, server.port, "/" + "a" * 300)[0] == 414
    assert wait_for_file(access, '"GET /environ HTTP/1.1" 200 ')


def wait_for_file(path, text: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return True
        time.sleep(0.05)
    return False


# --- manage.py runmeltemi ---------------------------------------------------------


def test_runmeltemi_serves_the_project_with_the_django_setting():
    process = Process([sys.executable, "-m", "django", "runmeltemi", "--settings", "procapps", "--bind", "127.0.0.1:0"])
    try:
        found = process.wait_for(LISTEN_RE.pattern)[0]
        port = int(found.group(2))
        # settings.MELTEMI asks for 2 workers.
        process.wait_for(r"Booting worker 2 \(pid")
        status, body = get("127.0.0.1", port, "/anything")
        assert status == 200 and body.startswith("django pid="), body
    finally:
        code = process.stop()
    assert code == 0, process.output
    assert "System check identified no issues" in process.output


def test_runmeltemi_rejects_bad_values_in_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "django", "runmeltemi", "--settings", "procapps", "--threads", "none"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=STARTUP_TIMEOUT,
    )
    assert result.returncode == 2
    assert result.stderr == "meltemi: error: --threads: expected a positive integer, got 'none'\n"


def test_runmeltemi_dev_reloads_on_code_change(tmp_path):
    (tmp_path / "devsettings.py").write_text(
        textwrap.dedent(
            """
            SECRET_KEY = "dev"
            ALLOWED_HOSTS = ["*"]
            INSTALLED_APPS = ["meltemi.django"]
            ROOT_URLCONF = "devurls"
            DATABASES = {}
            """
        )
    )
    urls = tmp_path / "devurls.py"
    template = textwrap.dedent(
        """
        from django.http import HttpResponse
        from django.urls import path
        urlpatterns = [path("", lambda request: HttpResponse("VERSION"))]
        """
    )
    urls.write_text(template.replace("VERSION", "v1"))
    process = Process(
        [sys.executable, "-m", "django", "runmeltemi", "--settings", "devsettings", "--dev", "--bind", "127.0.0.1:0"],
        env={"PYTHONPATH": os.pathsep.join([str(tmp_path), str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")])},
        cwd=tmp_path,
    )
    try:
        port = int(process.wait_for(LISTEN_RE.pattern)[0].group(2))
        assert get("127.0.0.1", port) == (200, "v1")
        process.wait_for(r'"GET / HTTP/1.1" 200', timeout=5)  # --dev turns the access log on
        # Django's StatReloader notes each file's modification time once a
        # second; change the file only after it has seen the first version.
        time.sleep(1.5)
        urls.write_text(template.replace("VERSION", "v2"))
        # Make sure the reloader sees a new modification time even on a coarse clock.
        later = time.time() + 2
        os.utime(urls, (later, later))
        port = int(process.wait_for(LISTEN_RE.pattern, count=2, timeout=30)[1].group(2))
        assert get("127.0.0.1", port) == (200, "v2")
    finally:
        process.stop()
