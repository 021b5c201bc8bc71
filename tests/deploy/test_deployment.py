"""docs/deployment.md, run: PostgreSQL, Redis, two meltemi instances of examples/deployment/mysite and
nginx in front of them, all on free loopback ports, under a load of logged-in users while one instance is
reloaded (SIGHUP) and the other is killed (SIGKILL of its master and workers) and restarted.

The files the document shows are the ones started here: nginx gets examples/deployment/nginx.conf with
its placeholders filled in, instance 1 runs the Containerfile's CMD, instance 2 the systemd unit's
ExecStart with the socket its .socket unit describes passed as systemd passes it (LISTEN_FDS) and its
readiness read as systemd reads it (NOTIFY_SOCKET). test_document_shows_the_tested_files fails when the
document and the files differ. `make test-deploy` (.ci/run calls it); 30 to 55 s.
"""

from __future__ import annotations

import http.client
import http.cookies
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "deployment"
DOC = ROOT / "docs" / "deployment.md"
MELTEMI = Path(sys.executable).parent / "meltemi"
PLACEHOLDER = re.compile(r"\{\{ ([A-Z0-9_]+) \}\}")

CLIENTS = 8  # concurrent logged-in users, one keep-alive connection to nginx each
MIN_REQUESTS = 3000
NGINX_FAIL_TIMEOUT = 2.0  # examples/deployment/nginx.conf: max_fails=1 fail_timeout=2s
LOAD_LIMIT = 60.0  # seconds: the load stops here even if MIN_REQUESTS were not reached


def render(template: str, **values: str) -> str:
    """The template with each {{ NAME }} replaced; every placeholder must be given a value."""
    missing = set(PLACEHOLDER.findall(template)) - set(values)
    assert not missing, f"no value for {sorted(missing)}"
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{what} did not listen on port {port} within {timeout} s")


def alive(pid: int) -> bool:
    """Whether pid is a process that has not exited (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


class Processes:
    """Every process the test starts, stopped by PID at the end (a meltemi master with its workers)."""

    def __init__(self):
        self.procs: list[tuple[str, subprocess.Popen, int]] = []

    def start(self, name: str, argv: list[str], stop_signal: int = signal.SIGTERM, **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(argv, **kwargs)
        self.procs.append((name, proc, stop_signal))
        return proc

    def stop_all(self) -> None:
        for name, proc, sig in reversed(self.procs):
            if proc.poll() is not None:
                continue
            workers = children(proc.pid)
            proc.send_signal(sig)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                print(f"deploy-test: {name} (pid {proc.pid}) did not stop; killed", file=sys.stderr)
                proc.kill()
                proc.wait()
            for pid in workers:
                deadline = time.monotonic() + 10
                while alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def procs():
    p = Processes()
    yield p
    p.stop_all()


@pytest.fixture(scope="module")
def work():
    # Not pytest's tmp_path: PostgreSQL runs as another user when the test runs as root, and must reach it.
    path = Path(tempfile.mkdtemp(prefix="meltemi-deploy-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL is not installed (scripts/bootstrap installs postgresql-15)")
    return found[-1].parent


@pytest.fixture(scope="module")
def postgres(procs, work) -> int:
    """A throwaway cluster; as root, it runs as the postgres system user (PostgreSQL refuses root)."""
    bindir = postgres_bin()
    data = work / "pg"
    data.mkdir()
    as_user = {}
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
        as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    subprocess.run(
        [bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
        **as_user,
    )
    port = free_port()
    server = procs.start(
        "postgres",
        [bindir / "postgres", "-D", data, "-p", str(port), "-k", data, "-c", "listen_addresses=127.0.0.1"]
        + ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
        stop_signal=signal.SIGINT,  # PostgreSQL's fast shutdown
        stdout=subprocess.DEVNULL,
        stderr=open(work / "postgres.log", "w"),  # the child keeps it open
        **as_user,
    )
    wait_for_port(port, server, "postgres")
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True)
            break
        except psycopg.OperationalError:  # listening, not accepting yet ("the database system is starting up")
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with conn:
        conn.execute("CREATE ROLE mysite LOGIN PASSWORD 'mysite'")
        conn.execute("CREATE DATABASE mysite OWNER mysite")
    return port


@pytest.fixture(scope="module")
def redis(procs, work) -> int:
    port = free_port()
    server = procs.start(
        "redis",
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
        + ["--dir", str(work), "--daemonize", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
    )
    wait_for_port(port, server, "redis-server")
    return port


@pytest.fixture(scope="module")
def site_env(postgres, redis, work) -> dict[str, str]:
    """The instances' environment (the systemd unit's EnvironmentFile, the container's --env-file), migrated."""
    env = {
        **os.environ,
        "MYSITE_SECRET_KEY": "deployment-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "MYSITE_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "MYSITE_DB_HOST": "127.0.0.1",
        "MYSITE_DB_PORT": str(postgres),
        "MYSITE_DB_NAME": "mysite",
        "MYSITE_DB_USER": "mysite",
        "MYSITE_DB_PASSWORD": "mysite",
        "MYSITE_REDIS_URL": f"redis://127.0.0.1:{redis}/0",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    site = EXAMPLE / "mysite"
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=site, env=env, check=True)
    users = "; ".join(f"User.objects.create_user('user{i}', password='pw{i}')" for i in range(CLIENTS))
    script = f"from django.contrib.auth.models import User; {users}"
    subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=site, env=env, check=True)
    return env


class Instance:
    """One meltemi instance of the example, its readiness read from its NOTIFY_SOCKET as systemd would."""

    def __init__(self, name: str, argv: list[str], env: dict, work: Path, listen: socket.socket | None = None):
        self.name, self.argv, self.listen = name, argv, listen
        self.notify_path = work / f"notify-{name}"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.env = {**env, "NOTIFY_SOCKET": str(self.notify_path), "MYSITE_INSTANCE": name}
        self.log = open(work / f"{name}.log", "a")  # appended to by each start
        self.proc: subprocess.Popen | None = None

    def start(self, procs: Processes) -> None:
        argv, kwargs = self.argv, {}
        if self.listen is not None:
            # As systemd starts a socket-activated service: the socket is descriptor 3, LISTEN_PID is the
            # pid of the process that execs meltemi, LISTEN_FDS the number of sockets.
            argv = ["sh", "-c", 'exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh", *argv]
            kwargs["stdin"] = self.listen.fileno()
        self.proc = procs.start(
            self.name, argv, env=self.env, cwd=EXAMPLE / "mysite", stdout=self.log, stderr=subprocess.STDOUT, **kwargs
        )
        self.expect("READY=1")

    def expect(self, message: str, timeout: float = 60.0) -> None:
        """Waits for an sd_notify message from the master."""
        self.notify.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            self.notify.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                got = self.notify.recv(4096).decode()
            except TimeoutError:
                pytest.fail(f"{self.name}: no {message} within {timeout} s; its log: {self.log.name}")
            if message in got.split("\n"):
                return
            if "STOPPING=1" in got:
                pytest.fail(f"{self.name} stopped; its log: {self.log.name}")

    def kill(self) -> None:
        """A full outage: the master and every worker killed at once (systemctl kill -s KILL, the OOM killer)."""
        pids = [self.proc.pid, *children(self.proc.pid)]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.02)


def container_command() -> list[str]:
    """The Containerfile's CMD, with the image's venv replaced by this one's."""
    lines = [line for line in (EXAMPLE / "Containerfile").read_text().splitlines() if line.startswith("CMD ")]
    assert len(lines) == 1, "the Containerfile has one CMD"
    argv = json.loads(lines[0][4:])
    assert argv[0] == "/opt/venv/bin/meltemi"
    return [str(MELTEMI), *argv[1:]]


def unit_command() -> list[str]:
    """meltemi.service's ExecStart, with the unit's venv replaced by this one's."""
    lines = [line for line in (EXAMPLE / "meltemi.service").read_text().splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1
    argv = shlex.split(lines[0].removeprefix("ExecStart="))
    assert argv[0] == "/srv/mysite/venv/bin/meltemi"
    return [str(MELTEMI), *argv[1:]]


def with_bind(argv: list[str], address: str) -> list[str]:
    i = argv.index("--bind")
    return [*argv[: i + 1], address, *argv[i + 2 :]]


@pytest.fixture(scope="module")
def instances(procs, site_env, work) -> list[Instance]:
    # Instance 1: the container's command line (it binds its own port).
    one = Instance("one", with_bind(container_command(), f"127.0.0.1:{free_port()}"), site_env, work)
    # Instance 2: the systemd service, on a socket bound the way meltemi.socket says (its port aside).
    unit_socket = (EXAMPLE / "meltemi.socket").read_text()
    backlog = int(re.search(r"^Backlog=(\d+)$", unit_socket, re.M).group(1))
    listen = socket.socket()
    listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listen.bind(("127.0.0.1", 0))
    listen.listen(backlog)
    two = Instance("two", unit_command(), site_env, work, listen=listen)
    for instance in (one, two):
        instance.start(procs)
    yield [one, two]
    listen.close()


def instance_address(instance: Instance) -> str:
    if instance.listen is not None:
        return f"127.0.0.1:{instance.listen.getsockname()[1]}"
    return instance.argv[instance.argv.index("--bind") + 1]


@pytest.fixture(scope="module")
def nginx(procs, instances, work) -> int:
    if not shutil.which("nginx"):
        pytest.fail("nginx is not installed (scripts/bootstrap installs nginx-light)")
    port = free_port()
    site = render(
        (EXAMPLE / "nginx.conf").read_text(),
        INSTANCE_1=instance_address(instances[0]),
        INSTANCE_2=instance_address(instances[1]),
        LISTEN=f"127.0.0.1:{port}",
    )
    (work / "mysite.conf").write_text(site)
    # What Debian's /etc/nginx/nginx.conf gives the site's file, with every path in the work folder.
    temp = " ".join(f"{kind}_temp_path {work}/nginx-{kind};" for kind in ("client_body", "proxy", "fastcgi"))
    temp += f" uwsgi_temp_path {work}/nginx-uwsgi; scgi_temp_path {work}/nginx-scgi;"
    main = (
        f"daemon off; worker_processes 1; user root root; pid {work}/nginx.pid; error_log {work}/nginx-error.log;\n"
        f"events {{ worker_connections 1024; }}\n"
        # The log records each request's id and every instance it was sent to ("A, B" when retried).
        f"http {{ log_format deploy '$request_id $status $request_uri \"$upstream_addr\"';\n"
        f"access_log {work}/nginx-access.log deploy; {temp} include {work}/mysite.conf; }}\n"
    )
    (work / "nginx-main.conf").write_text(main)
    check = subprocess.run(["nginx", "-t", "-c", work / "nginx-main.conf"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    server = procs.start("nginx", ["nginx", "-c", str(work / "nginx-main.conf")], stop_signal=signal.SIGQUIT)
    wait_for_port(port, server, "nginx")
    return port


class User(threading.Thread):
    """A logged-in user on one keep-alive connection to nginx, asking for its page until told to stop."""

    def __init__(self, index: int, port: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.index, self.port, self.stop = index, port, stop
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.ok = 0
        self.failures: list[str] = []
        self.instances: set[str] = set()
        self.hits = 0
        self.cookie = self.login()

    def login(self) -> str:
        body = urllib.parse.urlencode({"username": f"user{self.index}", "password": f"pw{self.index}"})
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        self.conn.request("POST", "/login", body=body, headers=headers)
        response = self.conn.getresponse()
        assert response.status == 200, response.read()
        response.read()
        cookies = http.cookies.SimpleCookie()
        for header in response.msg.get_all("Set-Cookie") or []:
            cookies.load(header)
        assert "sessionid" in cookies, response.msg
        return f"sessionid={cookies['sessionid'].value}"

    def get_me(self) -> tuple[int, bytes]:
        self.conn.request("GET", "/me", headers={"Cookie": self.cookie})
        response = self.conn.getresponse()
        return response.status, response.read()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                status, body = self.get_me()
            except (OSError, http.client.HTTPException) as exc:
                # nginx itself never drops the connection; this is a failure the user would see.
                self.failures.append(f"{type(exc).__name__}: {exc}")
                self.conn.close()
                continue
            if status != 200:
                self.failures.append(f"{status} {body[:200]!r}")
                continue
            page = json.loads(body)
            if page["user"] != f"user{self.index}":
                self.failures.append(f"session of {page['user']}")
                continue
            self.ok += 1
            self.instances.add(page["instance"])
            self.hits = page["hits"]


def test_document_shows_the_tested_files():
    """Every example file appears whole in docs/deployment.md, so what the document shows is what is tested."""
    doc = DOC.read_text()
    names = ("requirements.txt", "meltemi.socket", "meltemi.service", "Containerfile", "nginx.conf")
    for name in (*names, "mysite/mysite/settings.py"):
        text = (EXAMPLE / name).read_text()
        assert text in doc, f"docs/deployment.md does not show examples/deployment/{name} as it is"


def test_example_pins_are_the_tested_ones():
    """The example's requirements pin the versions the test runs with (requirements-dev.txt)."""
    dev = set((ROOT / "requirements-dev.txt").read_text().splitlines())
    pins = [line for line in (EXAMPLE / "requirements.txt").read_text().splitlines() if "==" in line]
    assert pins and all(pin in dev for pin in pins), pins


def test_container_file_copies_what_exists():
    """The Containerfile's COPY sources are the repository's (dist/ aside: `make wheel` makes it), and its
    pip install names the wheel as `make wheel` names it."""
    text = (EXAMPLE / "Containerfile").read_text()
    sources = [line.split()[1] for line in text.splitlines() if line.startswith("COPY ")]
    assert sources[0] == "dist/"
    for source in sources[1:]:
        assert (ROOT / source).exists(), source
    assert "/tmp/dist/meltemi-*-manylinux_*.whl" in text
    assert (
        "meltemi-*-manylinux_*.whl" in (ROOT / "Makefile").read_text() + (ROOT / "tests/wheel/conftest.py").read_text()
    )


def test_unit_files_verify(work):
    """systemd-analyze verify accepts the units (with the venv path pointing at an existing meltemi)."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    units = work / "units"
    units.mkdir()
    (units / "meltemi.socket").write_text((EXAMPLE / "meltemi.socket").read_text())
    service = (EXAMPLE / "meltemi.service").read_text().replace("/srv/mysite/venv/bin/meltemi", str(MELTEMI))
    (units / "meltemi.service").write_text(service)
    out = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", units / "meltemi.socket", units / "meltemi.service"],
        capture_output=True,
        text=True,
    )
    # Outside a booted systemd, verify also complains about the host's own units; ours must not be named.
    problems = [line for line in (out.stdout + out.stderr).splitlines() if "meltemi." in line]
    assert not problems, "\n".join(problems)


def test_reload_and_kill_behind_nginx_fail_no_request(nginx, instances, procs, work):
    one, two = instances
    stop = threading.Event()
    users = [User(i, nginx, stop) for i in range(CLIENTS)]
    for user in users:
        user.start()

    def served() -> int:
        return sum(u.ok for u in users)

    def wait_served(more: int) -> None:
        target = served() + more
        deadline = time.monotonic() + 20
        while served() < target and time.monotonic() < deadline:
            time.sleep(0.05)

    started = time.monotonic()
    events = []
    try:
        wait_served(500)
        # Instance one: a reload (new workers first, then the old ones drain).
        one.proc.send_signal(signal.SIGHUP)
        one.expect("RELOADING=1")
        one.expect("READY=1")
        events.append(f"one reloaded at {served()} requests")
        wait_served(500)
        # As a rolling deploy does, two goes down only once one's old workers have drained and exited, and
        # nginx's fail_timeout has passed since: a drain can cost a request a keep-alive connection closed as
        # nginx reused it, which nginx retries on two but counts against one for fail_timeout; two down
        # inside that window would leave nginx no live instance (502s).
        deadline = time.monotonic() + 30
        while len(re.findall(r"Worker \d+ \(pid \d+\) exited with code 0", Path(one.log.name).read_text())) < 2:
            assert time.monotonic() < deadline, f"one's old workers did not exit; its log: {one.log.name}"
            time.sleep(0.05)
        time.sleep(NGINX_FAIL_TIMEOUT + 0.5)
        # Instance two: killed outright; requests in flight on it are retried by nginx on instance one,
        # new connections wait in the socket systemd (here, the test) keeps until two serves again.
        two.kill()
        events.append(f"two killed at {served()} requests")
        wait_served(200)
        two.start(procs)
        events.append(f"two restarted at {served()} requests")
        deadline = started + LOAD_LIMIT
        while served() < MIN_REQUESTS and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for user in users:
            user.join(timeout=40)
    elapsed = time.monotonic() - started
    total = served()
    failures = [f"user{u.index}: {f}" for u in users for f in u.failures]
    # What nginx saw go wrong upstream (a reset connection, a refused one) and the requests it retried.
    upstream_errors = [line for line in (work / "nginx-error.log").read_text().splitlines() if "upstream" in line]
    for line in upstream_errors[:3]:
        print(f"deploy-test: nginx: {line[:200]}")
    logged = [line.split(" ", 3) for line in (work / "nginx-access.log").read_text().splitlines()]
    tried = [upstreams.strip('"').split(", ") for _, _, _, upstreams in logged]
    retried = sum(len(peers) > 1 for peers in tried)
    elsewhere = sum(len(set(peers)) > 1 for peers in tried)
    print(
        f"deploy-test: {total} requests in {elapsed:.1f} s, {len(failures)} failed, {len(upstream_errors)} upstream "
        f"errors in nginx's log, {retried} requests retried ({elsewhere} on the other instance); " + "; ".join(events)
    )
    assert not failures, f"{len(failures)} failed requests through nginx:\n" + "\n".join(failures[:20])
    assert total >= MIN_REQUESTS, f"only {total} requests in {LOAD_LIMIT} s"
    # nginx's request id reached meltemi (X-Request-ID) and its JSON access log: every request instance one
    # (never killed, so its log is whole) answered is there under the id nginx logged.
    ids_one = set()
    for line in Path(one.log.name).read_text().splitlines():
        if line.startswith("{"):
            ids_one.add(json.loads(line)["request_id"])
    answered_by_one = [
        rid
        for rid, status, _, upstreams in logged
        if upstreams.strip('"').split(", ")[-1] == instance_address(one) and status == "200"
    ]
    assert answered_by_one and all(rid in ids_one for rid in answered_by_one), "request ids differ"
    for user in users:
        # Each session was served by both instances (one store of sessions), and the counter in Redis
        # counted every request of the user whichever instance served it (one cache).
        assert user.instances == {"one", "two"}, (user.index, user.instances)
        assert user.hits >= user.ok, (user.index, user.hits, user.ok)
    # The session made before the reload and the kill still works on the restarted instance: ask until
    # both instances answered (nginx alternates, but skips an instance for fail_timeout after an error:
    # the kill's can be that recent when the load ends quickly).
    seen = set()
    deadline = time.monotonic() + NGINX_FAIL_TIMEOUT + 8
    while seen != {"one", "two"} and time.monotonic() < deadline:
        status, body = users[0].get_me()
        assert status == 200, body
        seen.add(json.loads(body)["instance"])
        time.sleep(0.05)
    assert seen == {"one", "two"}
