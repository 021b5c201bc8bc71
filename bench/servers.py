"""The servers and how each one serves each scenario: one process each, its idiomatic setup.

`launch(server, scenario, ...)` returns the command line and environment that
serve the scenario, or raises Unsupported with the reason shown in the results.
Scenarios that share a launch are measured against one server process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .scenarios import CORS_ORIGIN, Scenario


class Unsupported(Exception):
    pass


# The "venv" of a server that is a Debian package of the environment, not a Python package.
SYSTEM = "system"

# nginx as the static scenarios' ceiling: one worker process, no access log,
# sendfile with tcp_nopush (the head and the file's first bytes in one packet),
# keep-alive as the load generator uses it.
NGINX_CONF = """worker_processes 1;
daemon off;
# The worker reads the harness's files as the harness does (nginx ignores this unless started as root).
user root root;
pid {work}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types {{ text/plain txt; application/octet-stream bin; }}
    client_body_temp_path {work}/nginx-body;
    server {{
        listen {host}:{port};
        location /static/ {{ alias {static}/; }}
    }}
}}
"""


@dataclass(frozen=True)
class Server:
    name: str
    venv: str
    title: str
    in_quick: bool = True


SERVERS = [
    Server("meltemi", "meltemi", "meltemi (WSGI + typed API)"),
    # The same Django views as gunicorn and Granian serve: the server's own cost, with Django's.
    Server("meltemi-wsgi", "meltemi", "meltemi (Django views only, WSGI)", in_quick=False),
    # meltemi with one handler thread (SCHED_BATCH): its fastest setting for views that never block.
    Server("meltemi-t1", "meltemi", "meltemi, --threads 1", in_quick=False),
    # meltemi serving the same ASGI applications as uvicorn (Django's ASGI handler) and uvicorn + FastAPI.
    Server("meltemi-asgi", "meltemi", "meltemi + Django ASGI", in_quick=False),
    Server("meltemi-fastapi", "meltemi", "meltemi + FastAPI", in_quick=False),
    Server("bolt", "bolt", "Django Bolt (runbolt)"),
    Server("granian", "granian", "Granian (WSGI)"),
    # Granian's ASGI interface on the same applications as meltemi-asgi / uvicorn and meltemi-fastapi / fastapi.
    Server("granian-asgi", "granian", "Granian + Django ASGI", in_quick=False),
    Server("granian-fastapi", "granian", "Granian + FastAPI", in_quick=False),
    Server("gunicorn", "gunicorn", "gunicorn (sync; gthread for waits)"),
    Server("uvicorn", "uvicorn", "uvicorn + Django ASGI"),
    Server("fastapi", "fastapi", "uvicorn + FastAPI"),
    # The ceiling of the static scenarios: Debian's nginx, one worker, sendfile and tcp_nopush.
    Server("nginx", SYSTEM, "nginx (static files only: the ceiling)"),
]
BY_NAME = {server.name: server for server in SERVERS}

# Scenarios that meltemi answers with its typed API (`--api`).
MELTEMI_API = {
    "plaintext",
    "ceiling",
    "ratelimited",
    "json",
    "json10k",
    "params",
    "post",
    "orm-sqlite",
    "orm-postgres",
    "compress",
}
# Typed-API authentication: meltemi and Django Bolt only.
AUTH_SCENARIOS = {"jwt", "jwt-401"}
# The typed API's `async def` endpoints: meltemi and Django Bolt (whose handlers are all async).
ASYNC_SCENARIOS = {"json-async"}
MELTEMI_API |= AUTH_SCENARIOS | ASYNC_SCENARIOS
# What meltemi-wsgi is measured on: the API scenarios, as Django views.
DJANGO_VIEWS = MELTEMI_API - {"ceiling", "ratelimited"} - AUTH_SCENARIOS - ASYNC_SCENARIOS
# Threads given to servers that run sync views on a thread pool, for the 10 ms wait:
# as many as the load generator's connections.
WAIT_THREADS = 50

DJANGO = "benchproj.wsgi:application"
DJANGO_ASGI = "benchproj.asgi:application"
# The paths of the Django project's `async def` views, which the ASGI servers (meltemi-asgi, uvicorn,
# granian-asgi) get instead of the sync views the WSGI servers get: Django's ASGI handler runs a sync
# view on a thread (sync_to_async), an async one on the event loop.
ASYNC_VIEWS = {"plaintext": "/async/plaintext", "json": "/async/json", "wait-10ms": "/wait-async"}
# The WebSocket echo: one bare ASGI application for meltemi, uvicorn and Granian (bench/apps/ws_echo_app.py).
WS_ECHO = "ws_echo_app:app"


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str]
    path: str  # the path this server answers the scenario on

    def key(self) -> tuple:
        return (tuple(self.argv), tuple(sorted(self.env.items())))


def launch(server: str, scenario: Scenario, python: Path, port: int, work: Path, features: dict) -> Launch:
    """How `server` serves `scenario`. `features` says what the installed meltemi offers ("api": bool)."""
    bin_dir = python.parent
    env = {"BENCH_WORK": str(work), "BENCH_SERVER": server, "DJANGO_SETTINGS_MODULE": "benchproj.settings"}
    if scenario.db == "postgres":
        env.update(BENCH_DB="postgres", BENCH_PG_PORT=str(features["pg_port"]))
    name = scenario.name
    path = scenario.path
    host = "127.0.0.1"
    static_dir = str(work / "static")
    if scenario.kind == "ws":
        return ws_launch(server, python, host, port, env, path)

    if server in ("meltemi", "meltemi-t1"):
        argv = [str(python), "-m", "meltemi", DJANGO, "--bind", f"{host}:{port}", "--workers", "1"]
        if server == "meltemi-t1":
            if name == "wait-10ms":
                raise Unsupported("one thread cannot overlap waits: measured as meltemi")
            argv += ["--threads", "1"]
        if name in MELTEMI_API:
            if not features.get("api"):
                raise Unsupported("this meltemi has no typed API (meltemi.API is missing)")
            argv += ["--api", "benchproj.meltemi_api:api"]
        if name == "wait-10ms":
            argv += ["--threads", str(WAIT_THREADS)]
        if name == "cors-preflight":
            # The project-wide policy: the preflight is answered before the API router and Python.
            argv += ["--api", "benchproj.meltemi_api:api", "--cors", CORS_ORIGIN]
        if name.startswith("static"):
            argv += ["--static", f"/static/={static_dir}"]
        return Launch(argv, env, path)

    if server == "meltemi-wsgi":
        if name not in DJANGO_VIEWS:
            raise Unsupported("measured as meltemi (the same Django views)")
        argv = [str(python), "-m", "meltemi", DJANGO, "--bind", f"{host}:{port}", "--workers", "1"]
        return Launch(argv, env, path)  # compress: meltemi compresses the view's response in C

    if name in ("ceiling", "ratelimited"):
        raise Unsupported("meltemi only: a route answered in C")
    if name == "cors-preflight":
        raise Unsupported("meltemi only for now: measured against meltemi's own ceiling")
    if name in AUTH_SCENARIOS and server != "bolt":
        raise Unsupported("typed-API authentication: meltemi and Django Bolt")
    if name in ASYNC_SCENARIOS and server != "bolt":
        raise Unsupported("typed-API `async def` endpoints: meltemi and Django Bolt")

    if server == "nginx":
        if not name.startswith("static"):
            raise Unsupported("static files only (the ceiling of the static scenarios)")
        conf = NGINX_CONF.format(work=work, host=host, port=port, static=static_dir)
        # Written by a shell inside the environment (the work folder is the environment's), then exec'd.
        script = f'cat > "$0" <<"NGINX"\n{conf}NGINX\nexec nginx -c "$0"'
        return Launch(["sh", "-c", script, str(work / "nginx.conf")], env, path)

    if server == "bolt":
        if name.startswith("static") or name == "django-page":
            raise Unsupported("not a Django Bolt feature (its handlers are API endpoints)")
        if name == "wait-10ms":
            path = "/wait-async"
        if name == "json-async":
            path = "/json"  # Bolt's handlers are async already
        argv = [str(python), "manage.py", "runbolt", "--host", host, "--port", str(port), "--processes", "1"]
        return Launch(argv, env, path)

    if server in ("fastapi", "meltemi-fastapi", "granian-fastapi"):
        if name.startswith("orm") or name == "django-page":
            raise Unsupported("a Django scenario (FastAPI has no Django ORM or templates)")
        if name == "wait-10ms":
            path = "/wait-async"
        if server == "meltemi-fastapi":
            if name.startswith("static"):
                raise Unsupported("measured as meltemi (static files are answered in C before the application)")
            argv = [str(python), "-m", "meltemi", "fastapi_app:app", "--bind", f"{host}:{port}", "--workers", "1"]
            return Launch(argv, env, path)
        if server == "granian-fastapi":
            if name.startswith("static"):
                raise Unsupported("measured as granian (its static route is answered before the application)")
            return Launch(granian_asgi(bin_dir, host, port, "fastapi_app:app"), env, path)
        argv = [str(bin_dir / "uvicorn"), "fastapi_app:app", "--host", host, "--port", str(port)]
        argv += ["--no-access-log", "--log-level", "warning"]
        return Launch(argv, env, path)

    if name == "compress":
        path = "/json10k-gzip"  # Django's gzip_page: the server itself does not compress

    if server == "meltemi-asgi":
        if name.startswith("static"):
            raise Unsupported("measured as meltemi (static files are answered in C before the application)")
        path = ASYNC_VIEWS.get(name, path)
        argv = [
            str(python),
            "-m",
            "meltemi",
            "benchproj.asgi:application",
            "--bind",
            f"{host}:{port}",
            "--workers",
            "1",
        ]
        return Launch(argv, env, path)

    if server == "granian-asgi":
        if name.startswith("static"):
            raise Unsupported("measured as granian (its static route is answered before the application)")
        path = ASYNC_VIEWS.get(name, path)
        return Launch(granian_asgi(bin_dir, host, port, DJANGO_ASGI), env, path)

    if server == "uvicorn":
        if name.startswith("static"):
            raise Unsupported("no production static file handler for Django under ASGI (WhiteNoise is WSGI)")
        path = ASYNC_VIEWS.get(name, path)
        argv = [str(bin_dir / "uvicorn"), "benchproj.asgi:application", "--host", host, "--port", str(port)]
        argv += ["--no-access-log", "--log-level", "warning"]
        return Launch(argv, env, path)

    if server == "gunicorn":
        app = "static_wsgi:app" if name.startswith("static") else DJANGO
        argv = [str(bin_dir / "gunicorn"), app, "--bind", f"{host}:{port}", "--workers", "1"]
        if name == "wait-10ms":
            argv += ["--worker-class", "gthread", "--threads", str(WAIT_THREADS)]
        return Launch(argv, env, path)

    if server == "granian":
        argv = [str(bin_dir / "granian"), "--interface", "wsgi", "--host", host, "--port", str(port)]
        argv += ["--workers", "1"]
        if name.startswith("static"):
            argv += ["--static-path-route", "/static", "--static-path-mount", static_dir]
        if name == "wait-10ms":
            argv += ["--blocking-threads", str(WAIT_THREADS)]
        return Launch([*argv, DJANGO], env, path)

    raise Unsupported(f"unknown server {server!r}")


def granian_asgi(bin_dir: Path, host: str, port: int, app: str) -> list[str]:
    """Granian serving an ASGI application: one worker, its default runtime and loop, no access log."""
    argv = [str(bin_dir / "granian"), "--interface", "asgi", "--host", host, "--port", str(port), "--workers", "1"]
    return [*argv, "--log-level", "warning", app]


def ws_launch(server: str, python: Path, host: str, port: int, env: dict[str, str], path: str) -> Launch:
    """How `server` serves the WebSocket echo: the bare ASGI echo app, or Bolt's own WebSocket route."""
    bin_dir = python.parent
    if server == "meltemi-asgi":
        argv = [str(python), "-m", "meltemi", WS_ECHO, "--bind", f"{host}:{port}", "--workers", "1"]
        return Launch(argv, env, path)
    if server == "uvicorn":
        # uvicorn's default WebSocket implementation: the websockets library (pinned in its environment).
        argv = [str(bin_dir / "uvicorn"), WS_ECHO, "--host", host, "--port", str(port), "--ws", "websockets"]
        return Launch([*argv, "--no-access-log", "--log-level", "warning"], env, path)
    if server == "granian-asgi":
        return Launch(granian_asgi(bin_dir, host, port, WS_ECHO), env, path)
    if server == "bolt":
        argv = [str(python), "manage.py", "runbolt", "--host", host, "--port", str(port), "--processes", "1"]
        return Launch(argv, env, path)
    if server in ("meltemi-fastapi", "fastapi"):
        raise Unsupported("measured with the bare ASGI echo app (meltemi-asgi, uvicorn)")
    if server == "granian-fastapi":
        raise Unsupported("measured with the bare ASGI echo app (granian-asgi)")
    if server.startswith("meltemi"):
        raise Unsupported("measured as meltemi-asgi (meltemi serves WebSockets to ASGI applications)")
    raise Unsupported("no WebSockets (a WSGI server)" if server != "nginx" else "static files only")
