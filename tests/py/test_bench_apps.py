"""The benchmark's scenario apps answer as the harness expects (bench/apps/, bench/scenarios.py).

Each server is started exactly as `make bench` starts it (bench/servers.py),
here in host mode with this interpreter, and every scenario it serves must
pass the same check the harness makes before it measures. meltemi runs from
the test environment (.venv). A peer runs when its host-mode environment
exists (build/bench-host/venvs/<name>, made by `python -m bench --env host
--servers <name>`); otherwise its test is skipped with that reason: the peers
are covered by `make bench`, which checks every answer before measuring.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import API_NOT_APPLICABLE, ft_needs

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import measure, servers  # noqa: E402
from bench.envs import Env  # noqa: E402
from bench.run import prepare_work  # noqa: E402
from bench.scenarios import SCENARIOS, WS_MESSAGE_SIZE, CheckError, Scenario  # noqa: E402

HOST_VENVS = ROOT / "build" / "bench-host" / "venvs"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    base = tmp_path_factory.mktemp("bench")
    env = Env("host", Path("/"), HOST_VENVS, base / "work")
    apps = prepare_work(env)
    seeded = subprocess.run(
        [sys.executable, "-m", "benchproj.seed"],
        cwd=apps,
        env={"PATH": "/usr/bin:/bin", "BENCH_WORK": str(env.work)},
        capture_output=True,
        text=True,
    )
    assert seeded.returncode == 0, seeded.stderr
    return env, apps


def python_for(server: servers.Server) -> Path:
    if server.venv == "meltemi":
        return Path(sys.executable)
    if server.venv == servers.SYSTEM:
        if not shutil.which("nginx"):
            pytest.skip(f"{server.name} is not installed here (scripts/bootstrap installs nginx-light)")
        return Path(sys.executable)  # not used: the server is no Python program
    python = HOST_VENVS / server.venv / "bin" / "python"
    if not (HOST_VENVS / server.venv / ".bench-ready").exists():
        pytest.skip(f"{server.name} is not installed here; covered by `make bench` (or: python -m bench --env host)")
    return python


def served(server: str, python: Path, work: Path) -> list[tuple[Scenario, servers.Launch]]:
    found = []
    for scenario in SCENARIOS:
        if scenario.db == "postgres":
            continue  # needs a PostgreSQL server: `make bench` starts one in its root
        try:
            found.append((scenario, servers.launch(server, scenario, python, 0, work, {"api": True})))
        except servers.Unsupported:
            continue
    return found


@pytest.mark.parametrize("server", [s for s in servers.SERVERS if s.name != "bolt"], ids=lambda s: s.name)
def test_scenario_answers(server, work, tmp_path):
    if API_NOT_APPLICABLE and server.name.startswith("meltemi"):
        pytest.skip(API_NOT_APPLICABLE + " (the bench project's urls mount it)")
    env, apps = work
    python = python_for(server)
    plan = served(server.name, python, env.work)
    assert plan, f"{server.name} serves no scenario"
    failures = []
    groups: dict[tuple, list] = {}
    for scenario, _ in plan:
        port = measure.free_port(20500)
        how = servers.launch(server.name, scenario, python, port, env.work, {"api": True})
        groups.setdefault(how.key(), []).append((scenario, how, port))
    for members in groups.values():
        _, how, port = members[0]
        process = measure.ServerProcess(env, how.argv, how.env, apps, tmp_path / f"{server.name}.log")
        try:
            process.wait_ready(port, timeout=30)
            for scenario, how, _ in members:
                try:
                    if scenario.kind == "ws":  # a second of echo, every message verified by meltemi-wsload
                        measure.check_ws(port, how.path, WS_MESSAGE_SIZE)
                    else:
                        measure.check(port, scenario, how.path)
                except (CheckError, OSError, RuntimeError) as error:
                    failures.append(f"{scenario.name} ({how.path}): {error}")
        finally:
            process.stop()
    assert not failures, f"{server.name}: " + "; ".join(failures) + f"\nlog: {process.tail()}"


def test_meltemi_serves_every_api_scenario(work):
    """The typed-API scenarios are meltemi's headline: none of them may fall back to 'unsupported'."""
    env, _ = work
    names = {scenario.name for scenario, _ in served("meltemi", Path(sys.executable), env.work)}
    assert servers.MELTEMI_API - {"orm-postgres"} <= names  # PostgreSQL: make bench only
    assert {"orm-sqlite", "django-page", "wait-10ms", "static-1k", "static-100k", "compress"} <= names


def test_ws_check_rejects_a_server_without_websockets(work, tmp_path):
    """The WebSocket echo's check fails on a server that does not upgrade (here: the WSGI Django project)."""
    env, apps = work
    port = measure.free_port(20650)
    argv = [sys.executable, "-m", "meltemi", servers.DJANGO, "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    process = measure.ServerProcess(
        env, argv, {"DJANGO_SETTINGS_MODULE": "benchproj.settings"}, apps, tmp_path / "m.log"
    )
    try:
        process.wait_ready(port, timeout=30)
        with pytest.raises((CheckError, RuntimeError)):
            measure.check_ws(port, "/ws/echo", WS_MESSAGE_SIZE)
    finally:
        process.stop()


def test_wsload_counts_echoes_and_latency(work, tmp_path):
    """meltemi-wsload against meltemi's ASGI echo: many verified messages over several connections, ordered
    percentiles, no errors."""
    env, apps = work
    port = measure.free_port(20700)
    argv = [sys.executable, "-m", "meltemi", servers.WS_ECHO, "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    process = measure.ServerProcess(env, argv, {}, apps, tmp_path / "ws.log")
    try:
        process.wait_ready(port, timeout=30)
        figures = measure.run_wsload(port, "/ws/echo", WS_MESSAGE_SIZE, 8, 1)
    finally:
        process.stop()
    assert figures["connections"] == 8 and figures["errors"] == 0, figures
    assert figures["messages"] > 100, figures
    assert 0 < figures["p50_us"] <= figures["p99_us"] <= figures["max_us"], figures


def test_check_rejects_a_wrong_answer(work, tmp_path):
    """The harness's check fails on a server that answers something else (here: a 404 for every path)."""
    env, apps = work
    port = measure.free_port(20600)
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp_path)]
    process = measure.ServerProcess(env, argv, {}, apps, tmp_path / "http.log")
    try:
        process.wait_ready(port, timeout=30)
        scenario = next(s for s in SCENARIOS if s.name == "json")
        with pytest.raises(CheckError):
            measure.check(port, scenario, scenario.path)
    finally:
        process.stop()


@ft_needs("msgspec")  # the bench project's views import it
def test_asgi_servers_get_the_async_django_views(work):
    """Under Django's ASGI handler the hellos are `async def` views; the WSGI servers keep the sync ones."""
    env, apps = work
    by_name = {scenario.name: scenario for scenario in SCENARIOS}
    paths = {}
    for server in ("meltemi-asgi", "uvicorn", "granian-asgi", "meltemi-wsgi", "gunicorn", "granian"):
        for name in ("plaintext", "json", "wait-10ms"):
            try:
                paths[server, name] = servers.launch(server, by_name[name], Path(sys.executable), 0, env.work, {}).path
            except servers.Unsupported:
                continue
    script = (
        "import asyncio, json, sys, django; django.setup(); from django.urls import resolve; "
        "print(json.dumps({p: asyncio.iscoroutinefunction(resolve(p).func) for p in sys.argv[1:]}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, *sorted(set(paths.values()))],
        cwd=apps,
        env={"PATH": "/usr/bin:/bin", "BENCH_WORK": str(env.work), "DJANGO_SETTINGS_MODULE": "benchproj.settings"},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    is_async = json.loads(out.stdout)
    for (server, name), path in paths.items():
        wanted = server in ("meltemi-asgi", "uvicorn", "granian-asgi")
        assert is_async[path] is wanted, (server, name, path)
