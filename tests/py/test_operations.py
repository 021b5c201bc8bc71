"""What operating meltemi under a supervisor needs: a pid file, running as an
unprivileged user, systemd socket activation and readiness notification,
recycling by memory and by age, and a bound on how long a new worker may take
to boot. Each test runs a real `python -m meltemi procapps:...`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT, TESTS, Server
from test_process import get, pid_of, wait_until, worker_pids


def test_pid_file_written_then_removed(start_server, tmp_path):
    path = tmp_path / "run" / "meltemi.pid"
    path.parent.mkdir()
    server = start_server("procapps:app", "--pid", str(path), workers=2)
    assert path.read_text() == f"{server.proc.pid}\n"
    assert server.stop() == 0
    server.stopped = True
    assert not path.exists()
    assert os.listdir(path.parent) == [], "a partial pid file was left behind"


def failed_start(*args: str) -> tuple[int, str]:
    """Runs a meltemi that is expected not to start: its exit code and what it printed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-m", "meltemi", *args], capture_output=True, text=True, timeout=30, env=env, cwd=ROOT
    )
    return out.returncode, out.stdout + out.stderr


def test_pid_file_that_cannot_be_written_stops_the_start(tmp_path):
    code, output = failed_start("procapps:app", "--pid", str(tmp_path / "no-such-dir" / "m.pid"), "-b", "127.0.0.1:0")
    assert code != 0
    assert "cannot write the pid file" in output and "No such file or directory" in output


def _uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError("no Uid line")


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root (CI runs as root)")
def test_user_and_group_dropped_after_binding(start_server):
    import pwd

    nobody = pwd.getpwnam("nobody")
    # A directory the unprivileged master can reach and write, to remove its socket file at exit.
    folder = Path(tempfile.mkdtemp(prefix="meltemi-user-", dir="/tmp"))
    os.chmod(folder, 0o777)
    sock_path = folder / "s.sock"
    server = start_server("procapps:app", "--user", "nobody", "--bind", f"unix:{sock_path}", bind=None, workers=2)
    assert server.wait_for(r"Running as user nobody"), server.output
    assert _uid_of(server.proc.pid) == nobody.pw_uid
    workers = {pid_of(get(server)[1]) for _ in range(10)}
    assert workers and all(_uid_of(pid) == nobody.pw_uid for pid in workers)
    assert os.stat(sock_path).st_uid == nobody.pw_uid
    assert server.stop() == 0
    server.stopped = True
    assert not sock_path.exists()
    folder.rmdir()


def test_unknown_user_is_a_configuration_error():
    code, output = failed_start("procapps:app", "--user", "no-such-user-here", "--bind", "127.0.0.1:0")
    assert code != 0
    assert "--user: expected an existing user (name or id), got 'no-such-user-here'" in output


def test_systemd_socket_activation(tmp_path):
    """A socket bound by the supervisor, passed as descriptor 3 with LISTEN_PID/LISTEN_FDS, is served by every
    worker; --bind is not used."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    inode = os.fstat(fd).st_ino
    # As systemd does: the socket moved to descriptor 3, then meltemi exec'd under the pid LISTEN_PID names.
    launcher = (
        f"import os, sys; os.dup2({fd}, 3); os.close({fd}); "
        "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1'); "
        "os.execv(sys.executable, [sys.executable, '-m', 'meltemi', *sys.argv[1:]])"
    )
    server = Server(
        ["procapps:app", "--workers", "2", "--bind", "127.0.0.1:1", "--log-level", "debug"],
        command=[sys.executable, "-c", launcher],
        pass_fds=(fd,),
    )
    try:
        listener.close()
        assert f"Listening at http://127.0.0.1:{port} (from systemd)" in server.output
        assert server.port == port
        assert server.wait_for(r"Worker 1 \(pid \d+\) is ready") and server.wait_for(r"Worker 2 \(pid \d+\) is ready")
        # Both workers serve the one socket systemd bound (which of them accepts a given connection is the
        # kernel's choice): each holds it, and requests are answered.
        for pid in worker_pids(server):
            links = {os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")}
            assert f"socket:[{inode}]" in links, f"worker {pid} does not hold the activated socket"
        assert all(get(server)[0] == 200 for _ in range(10))
        assert "LISTEN_FDS" not in get(server, "/environ")[1]
        assert server.stop() == 0
        server.assert_balanced()
    finally:
        if server.proc.poll() is None:
            server.kill()


def test_sd_notify_ready_reloading_stopping(start_server, tmp_path):
    path = str(tmp_path / "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(path)
    notify.settimeout(20)
    server = start_server("procapps:app", "--log-level", "debug", workers=2, env={"NOTIFY_SOCKET": path})
    message = notify.recv(4096).decode()
    assert message.startswith("READY=1\n"), message
    # READY comes only once both workers serve (the master logs each before it notifies).
    assert server.wait_for(r"Worker 1 \(pid \d+\) is ready") and server.wait_for(r"Worker 2 \(pid \d+\) is ready")
    mark = len(server.lines)
    server.signal(signal.SIGHUP)
    message = notify.recv(4096).decode()
    assert message.startswith("RELOADING=1\nMONOTONIC_USEC="), message
    assert notify.recv(4096).decode().startswith("READY=1\n")
    for slot in (1, 2):
        assert server.wait_for(rf"Worker {slot}: pid \d+ replaces pid \d+", start=mark), server.output
    server.signal(signal.SIGTERM)
    assert notify.recv(4096).decode() == "STOPPING=1"
    assert server.proc.wait(15) == 0
    server.stopped = True
    notify.close()


def test_max_rss_recycles_a_worker_without_failing_requests(start_server):
    server = start_server("procapps:app", "--max-rss", "400M", "--log-level", "debug")
    first = pid_of(get(server)[1])
    assert get(server, "/alloc?mb=450")[0] == 200
    assert server.wait_for(r"over max-rss \(400 MiB\); asking to be replaced", timeout=10), server.output
    assert wait_until(lambda: pid_of(get(server)[1]) != first, timeout=15), server.output
    assert server.wait_for(rf"Worker 1 \(pid {first}\) exited with code 0", timeout=15), server.output


def test_worker_lifetime_recycles_under_load_without_failures(start_server):
    server = start_server("procapps:app", "--worker-lifetime", "1", workers=2)
    failures: list[BaseException] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                assert get(server)[0] == 200
            except BaseException as exc:  # noqa: BLE001 (recorded for the assertion below)
                failures.append(exc)

    client = threading.Thread(target=load)
    client.start()
    try:
        assert wait_until(lambda: len(worker_pids(server)) >= 4, timeout=15), server.output
    finally:
        stop.set()
        client.join(15)
    assert failures == [], failures[:3]
    assert "worker-lifetime 1s" in server.output


def test_replacement_that_hangs_at_boot_is_killed_and_the_old_worker_serves(start_server, tmp_path):
    hang = tmp_path / "hang"
    server = start_server(
        "procapps:hanging()", "--boot-timeout", "1", "--log-level", "debug", env={"PROCAPPS_HANG": str(hang)}
    )
    old = pid_of(get(server)[1])
    hang.touch()
    mark = len(server.lines)
    server.signal(signal.SIGHUP)
    pattern = r"Worker 1 \(pid \d+\) did not load the application within boot-timeout \(1s\); killing it; the previous"
    assert server.wait_for(pattern, timeout=10, start=mark), server.output
    assert server.wait_for(r"was killed by SIGKILL", timeout=10, start=mark), server.output
    time.sleep(0.5)
    assert {pid_of(get(server)[1]) for _ in range(5)} == {old}
    hang.unlink()
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: pid_of(get(server)[1]) != old, timeout=15), server.output


RELOAD_APP = """
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"VERSION"]
"""


def test_reload_on_source_change_keeps_serving_through_a_broken_save(tmp_path):
    """--reload: a saved change is served after a reload; a save that does not import keeps the old workers
    serving and prints the error; fixing it reloads again. (Each version has another length: Python's bytecode
    cache tells sources apart by size and whole-second mtime.)"""
    project = tmp_path / "project"
    (project / "webapp").mkdir(parents=True)
    (project / "webapp" / "__init__.py").write_text("")
    module = project / "webapp" / "web.py"
    module.write_text(RELOAD_APP.replace("VERSION", "one"))
    server = Server(
        ["webapp.web:application", "--reload", "--bind", "127.0.0.1:0"], cwd=project, env={"PYTHONPATH": str(project)}
    )
    try:
        assert server.wait_for(r"Watching .*project for changes to \.py files"), server.output
        assert get(server)[1] == "one"
        module.write_text(RELOAD_APP.replace("VERSION", "second"))
        assert wait_until(lambda: get(server)[1] == "second", timeout=15), server.output
        assert "webapp/web.py changed: replacing the workers" in server.output
        mark = len(server.lines)
        module.write_text("def application(:\n")
        assert server.wait_for(r"could not load the application; the previous worker goes on serving", start=mark)
        assert "SyntaxError" in server.output
        assert get(server)[1] == "second"
        # A new folder is watched too.
        (project / "webapp" / "sub").mkdir()
        time.sleep(0.2)
        (project / "webapp" / "sub" / "x.py").write_text("")
        module.write_text(RELOAD_APP.replace("VERSION", "the third"))
        assert wait_until(lambda: get(server)[1] == "the third", timeout=15), server.output
        assert server.stop() == 0
    finally:
        if server.proc.poll() is None:
            server.kill()


def test_reload_with_preload_is_refused():
    code, output = failed_start("procapps:app", "--reload", "--preload", "--bind", "127.0.0.1:0")
    assert code != 0 and "cannot be used with --preload" in output
