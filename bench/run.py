"""meltemi's benchmark suite: meltemi and its peers, side by side, in one run.

    make bench                           # the full suite (about 22 minutes on 2 cores)
    make bench BENCH_ARGS=--quick        # a short run (under 4 minutes)
    python -m bench --scenarios json,post --servers meltemi,bolt --duration 5

Every server runs one process, pinned to core 0; wrk runs on core 1 with a
fixed number of keep-alive connections. Each (server, scenario) is checked for
the expected answer, warmed up, then measured several times; the median is
reported with the min and max. Results: bench/results/<date>.json, then
bench/RESULTS.md and the plots are generated from it (bench/report.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import envs, measure, report, slo
from .scenarios import BY_NAME as SCENARIO_BY_NAME
from .scenarios import SCENARIOS, WS_MESSAGE_SIZE, CheckError, static_content
from .servers import BY_NAME as SERVER_BY_NAME
from .servers import SERVERS, Unsupported, launch

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="all", help="comma-separated: " + ",".join(s.name for s in SCENARIOS))
    parser.add_argument("--servers", default="all", help="comma-separated: " + ",".join(s.name for s in SERVERS))
    parser.add_argument("--duration", type=int, default=4, help="seconds per measured run (default 4)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before measuring (default 2)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per server and scenario (default 3)")
    parser.add_argument("--connections", type=int, default=50, help="keep-alive connections (default 50)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short runs (1 s, 1 s warm-up), fewer scenarios, SLO search on one scenario with short steps",
    )
    parser.add_argument("--env", choices=("root", "host"), default="root", help="Debian 13 root (default) or host")
    parser.add_argument("--slo", default="json", help="scenario(s) of the SLO search, comma-separated; 'none' to skip")
    parser.add_argument(
        "--slo-servers", default=None, help="servers of the SLO search (default: all; with --quick: meltemi,bolt)"
    )
    parser.add_argument("--slo-p99-ms", type=float, default=50.0, help="the p99 target of the SLO search (ms)")
    parser.add_argument("--output", type=Path, default=None, help="results JSON (default bench/results/<date>.json)")
    parser.add_argument("--no-report", action="store_true", help="do not regenerate bench/RESULTS.md and the plots")
    parser.add_argument("--note", default="", help="a note printed in RESULTS.md (e.g. 'shared machine')")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = min(args.duration, 1.0)
        args.warmup = min(args.warmup, 1.0)
    if args.slo_servers is None:
        args.slo_servers = "meltemi,bolt" if args.quick else "all"
    # wrk takes whole seconds.
    args.duration = max(1, round(args.duration))
    args.warmup = max(1, round(args.warmup))
    return args


def pick(value: str, known: dict, quick: bool = False) -> list:
    if value == "all":
        items = list(known.values())
        return [item for item in items if not quick or getattr(item, "in_quick", True)]
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"bench: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    return [known[name] for name in names]


class Progress:
    def __init__(self, total: int, seconds_each: float):
        self.total = total
        self.done = 0
        self.seconds_each = seconds_each
        self.started = time.monotonic()

    def left(self) -> str:
        elapsed = time.monotonic() - self.started
        each = elapsed / self.done if self.done else self.seconds_each
        seconds = max(0, (self.total - self.done) * each)
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"

    def say(self, server: str, scenario: str, message: str) -> None:
        print(
            f"[{self.done + 1:>2}/{self.total}] {server:<12} {scenario:<13} {message}  (~{self.left()} left)",
            flush=True,
        )


# --- the environment's fixtures: apps, static files, databases ------------------------


def prepare_work(env: envs.Env) -> Path:
    """Copies the apps where the servers run, writes the static files; returns the apps directory (inside)."""
    apps = env.work.parent / "apps"
    if env.mode == "root":
        target = env.outside(apps)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(BENCH / "apps", target, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        apps = BENCH / "apps"
    static = env.outside(env.work / "static")
    static.mkdir(parents=True, exist_ok=True)
    for name in ("f1k.txt", "f100k.bin"):
        (static / name).write_bytes(static_content(name))
    return apps


def in_env(env: envs.Env, apps: Path, variables: dict[str, str], argv: list[str]) -> subprocess.CompletedProcess:
    if env.mode == "root":
        cmd = [*env.prefix(), "/usr/bin/env", "-C", str(apps), *(f"{k}={v}" for k, v in variables.items()), *argv]
        return subprocess.run(cmd, capture_output=True, text=True, check=False)
    return subprocess.run(argv, cwd=apps, env={**os.environ, **variables}, capture_output=True, text=True, check=False)


def seed(env: envs.Env, apps: Path, venv: str, variables: dict[str, str]) -> None:
    out = in_env(env, apps, variables, [str(env.python(venv)), "-m", "benchproj.seed"])
    if out.returncode != 0:
        raise RuntimeError(f"seeding failed: {out.stderr[-500:]}")


class Postgres:
    """A throwaway PostgreSQL cluster (Debian's server) in the work directory, on a local port."""

    def __init__(self, env: envs.Env, port: int):
        self.env = env
        self.port = port
        self.data = env.work / "pg"
        self.bin: str | None = None

    def find_bin(self) -> str | None:
        found = sorted(glob.glob(str(self.env.outside("/usr/lib/postgresql")) + "/*/bin/pg_ctl"))
        if not found:
            return None
        return str(Path(found[-1]).parent).removeprefix(str(self.env.base) if self.env.mode == "root" else "")

    def as_postgres(self, argv: list[str]) -> subprocess.CompletedProcess:
        if self.env.mode == "root":
            cmd = [*self.env.prefix()[:-2], "chroot", "--userspec=postgres:postgres", str(self.env.base), *argv]
        else:
            cmd = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(cmd, capture_output=True, text=True, check=False)

    def start(self) -> str | None:
        """Starts the cluster; returns why it could not, or None."""
        self.bin = self.find_bin()
        if not self.bin:
            return "PostgreSQL is not installed in this environment"
        data = self.env.outside(self.data)
        if data.exists():
            self.as_postgres([f"{self.bin}/pg_ctl", "-D", str(self.data), "-m", "immediate", "stop"])
            shutil.rmtree(data)
        data.mkdir(parents=True)
        uid = (
            int(self.env.sh("id -u postgres", capture_output=True, text=True).stdout) if self.env.mode == "root" else 0
        )
        if self.env.mode == "root":
            os.chown(data, uid, uid)
        out = self.as_postgres(
            [f"{self.bin}/initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        )
        if out.returncode:
            return f"initdb failed: {out.stderr[-300:]}"
        options = f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        options += " -c dynamic_shared_memory_type=mmap"
        log = f"{self.data}/server.log"
        out = self.as_postgres(
            [
                "taskset",
                "-c",
                measure.SERVER_CPU,
                f"{self.bin}/pg_ctl",
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                log,
                "-w",
                "start",
            ]
        )
        if out.returncode:
            return f"pg_ctl start failed: {out.stdout[-300:]} {out.stderr[-300:]}"
        psql = [f"{self.bin}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q"]
        for sql in ("CREATE ROLE bench LOGIN PASSWORD 'bench'", "CREATE DATABASE bench OWNER bench"):
            out = self.as_postgres([*psql, "-c", sql])
            if out.returncode:
                return f"psql failed: {out.stderr[-300:]}"
        return None

    def version(self) -> str:
        if not self.bin:
            return ""
        return self.as_postgres([f"{self.bin}/postgres", "--version"]).stdout.strip()

    def stop(self) -> None:
        if self.bin:
            self.as_postgres([f"{self.bin}/pg_ctl", "-D", str(self.data), "-m", "fast", "stop"])


# --- facts about the run ------------------------------------------------------------------


def load_average() -> list[str]:
    try:
        return Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return []


def machine_facts(env: envs.Env, load_before: list[str]) -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    os_release = {}
    for line in Path("/etc/os-release").read_text().splitlines():
        if "=" in line:
            key, _, value = line.partition("=")
            os_release[key] = value.strip('"')
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH.parent, capture_output=True, text=True)
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "host_os": os_release.get("PRETTY_NAME", ""),
        "env": env.mode,
        "env_os": "Debian GNU/Linux 13 (trixie), debootstrap --variant=minbase" if env.mode == "root" else "host",
        "python": env.interpreter(),
        "wrk": (wrk.stdout + wrk.stderr).splitlines()[0] if (wrk.stdout + wrk.stderr) else "",
        "load_before": load_before,
        "load_after": load_average(),
        "meltemi_commit": git.stdout.strip(),
    }


def versions(env: envs.Env, names: list[str]) -> dict[str, list[str]]:
    """`pip freeze` of each environment: every version the servers ran with."""
    result = {}
    for name in names:
        if name == "system":
            out = subprocess.run([*env.prefix(), "nginx", "-v"], capture_output=True, text=True)
            result[name] = [out.stderr.strip()]
            continue
        out = subprocess.run(
            [*env.prefix(), str(env.python(name)), "-m", "pip", "freeze", "--all"], capture_output=True, text=True
        )
        result[name] = [line for line in out.stdout.splitlines() if line and not line.startswith("#")]
    return result


def meltemi_features(env: envs.Env) -> dict:
    code = (
        "import meltemi, json; print(json.dumps({'api': hasattr(meltemi, 'API') and hasattr(meltemi.API, 'constant')}))"
    )
    # -I: the probe must see the installed meltemi, not the repository's source tree in the working directory.
    out = subprocess.run([*env.prefix(), str(env.python("meltemi")), "-I", "-c", code], capture_output=True, text=True)
    try:
        return json.loads(out.stdout)
    except ValueError:
        return {"api": False}


# --- the run --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args, argv)
    finally:
        if args.env == "root":
            envs.unmount_all()


def run(args: argparse.Namespace, argv: list[str] | None) -> int:
    scenarios = pick(args.scenarios, SCENARIO_BY_NAME, args.quick)
    servers = pick(args.servers, SERVER_BY_NAME, args.quick)
    slo_servers = [s for s in pick(args.slo_servers, SERVER_BY_NAME) if s in servers]
    if not shutil.which("wrk"):
        raise SystemExit("bench: wrk is missing (Debian package wrk; make bootstrap installs it)")
    started = dt.datetime.now(dt.UTC)
    load_before = load_average()  # before the servers' environments are built and the runs start
    env, missing = envs.prepare(args.env, sorted({server.venv for server in servers}))
    work_host = envs.BUILD / "bench-work"
    work_host.mkdir(parents=True, exist_ok=True)
    apps = prepare_work(env)
    venvs = sorted({server.venv for server in servers} - set(missing))
    features = meltemi_features(env) if "meltemi" in venvs else {"api": False}
    # The database is made with any environment that has Django (all pin the same version).
    django_venv = next((v for v in ("meltemi", "gunicorn", "granian", "uvicorn", "bolt") if v in venvs), None)
    if django_venv:
        seed(env, apps, django_venv, {"BENCH_WORK": str(env.work)})

    postgres = None
    pg_problem = None
    if any(s.db == "postgres" for s in scenarios):
        postgres = Postgres(env, measure.free_port(20400))
        pg_problem = postgres.start()
        if pg_problem is None and django_venv:
            features["pg_port"] = postgres.port
            seed(
                env,
                apps,
                django_venv,
                {"BENCH_WORK": str(env.work), "BENCH_DB": "postgres", "BENCH_PG_PORT": str(postgres.port)},
            )
        else:
            envs.log(pg_problem)

    # Plan: each server's scenarios, grouped by identical launches (one process serves the group).
    port = measure.free_port()
    plan: list[tuple] = []
    results: list[dict] = []
    for server in servers:
        for scenario in scenarios:
            entry = {"server": server.name, "scenario": scenario.name}
            if server.venv in missing:
                results.append({**entry, "status": "unavailable", "reason": missing[server.venv]})
                continue
            if scenario.db == "postgres" and pg_problem:
                results.append({**entry, "status": "unavailable", "reason": pg_problem})
                continue
            try:
                how = launch(server.name, scenario, env.python(server.venv), port, env.work, features)
            except Unsupported as why:
                results.append({**entry, "status": "unsupported", "reason": str(why)})
                continue
            plan.append((server, scenario, how))

    each = args.warmup + args.runs * (args.duration + 0.3) + 1.0
    slo_scenarios = [] if args.slo == "none" else [s for s in pick(args.slo, SCENARIO_BY_NAME)]
    progress = Progress(len(plan) + len(slo_scenarios) * len(slo_servers), each)
    print(
        f"bench: {len(plan)} server x scenario pairs, {args.runs} runs of {args.duration:g} s after {args.warmup:g} s "
        f"of warm-up, {args.connections} connections; environment: {env.mode}, Python {env.interpreter()}",
        flush=True,
    )
    scripts = {s.name: measure.wrk_script(s, work_host) for s in scenarios if s.kind == "http"}
    try:
        current, current_key = None, None
        for server, scenario, how in plan:
            entry = {"server": server.name, "scenario": scenario.name, "path": how.path}
            if current_key != how.key():
                if current:
                    current.stop()
                current = measure.ServerProcess(env, how.argv, how.env, apps, work_host / f"{server.name}.log")
                current_key = how.key()
                try:
                    current.wait_ready(port)
                except RuntimeError as error:
                    progress.say(server.name, scenario.name, f"FAILED to start: {error}")
                    results.append({**entry, "status": "failed", "reason": str(error)[:400]})
                    current.stop()
                    current, current_key = None, None
                    progress.done += 1
                    continue
            entry["command"] = " ".join(current.command)
            if scenario.kind == "ws":
                runs = measure_ws_scenario(current, port, how.path, scenario, args, progress, server, entry, results)
                if runs is None:
                    progress.done += 1
                    continue
                results.append({**entry, "status": "ok", "runs": runs, "summary": measure.summarize(runs)})
                progress.done += 1
                continue
            try:
                answer = measure.check(port, scenario, how.path)
                entry["response"] = {
                    "bytes": len(answer.body),
                    "content_type": answer.headers.get("content-type", ""),
                    "content_encoding": answer.headers.get("content-encoding", ""),
                    "server": answer.headers.get("server", ""),
                }
            except (CheckError, OSError, ValueError, KeyError, http_errors()) as error:
                progress.say(server.name, scenario.name, f"WRONG ANSWER: {error}")
                results.append({**entry, "status": "failed", "reason": f"wrong answer: {error}"[:400]})
                progress.done += 1
                continue
            progress.say(server.name, scenario.name, "warming up")
            measure.run_wrk(port, how.path, scripts[scenario.name], args.connections, args.warmup)
            runs = []
            for index in range(args.runs):
                figures = measure.measure(
                    current, port, how.path, scripts[scenario.name], args.connections, args.duration, scenario.status
                )
                runs.append(figures)
                progress.say(
                    server.name,
                    scenario.name,
                    f"run {index + 1}/{args.runs}: {figures['rps']:>9,.0f} req/s"
                    f"  p99 {figures['p99_us'] / 1000:6.2f} ms"
                    f"  {figures['cpu_us_per_req']:6.1f} us CPU/req"
                    + (f"  {figures['errors']} errors" if figures["errors"] else ""),
                )
            results.append({**entry, "status": "ok", "runs": runs, "summary": measure.summarize(runs)})
            progress.done += 1
        if current:
            current.stop()
            current = None

        slo_results = []
        for scenario in slo_scenarios:
            for server in slo_servers:
                found = [p for p in plan if p[0] is server and p[1].name == scenario.name]
                if not found:
                    progress.done += 1
                    continue
                how = found[0][2]
                progress.say(server.name, scenario.name, f"SLO search: highest rate with p99 <= {args.slo_p99_ms:g} ms")
                proc = measure.ServerProcess(env, how.argv, how.env, apps, work_host / f"{server.name}.slo.log")
                try:
                    proc.wait_ready(port)
                    measure.check(port, scenario, how.path)
                    outcome = slo.search(
                        port, scenario, how.path, args.slo_p99_ms, args.connections, args.quick, work_host
                    )
                    slo_results.append({"server": server.name, "scenario": scenario.name, **outcome})
                    progress.say(
                        server.name, scenario.name, f"SLO: {outcome['rate']:,} req/s with p99 <= {args.slo_p99_ms:g} ms"
                    )
                except (RuntimeError, CheckError, OSError) as error:
                    slo_results.append({"server": server.name, "scenario": scenario.name, "error": str(error)[:300]})
                finally:
                    proc.stop()
                progress.done += 1
    finally:
        if current:
            current.stop()
        if postgres:
            pg_version = postgres.version()
            postgres.stop()
        else:
            pg_version = ""

    facts = machine_facts(env, load_before)
    facts["postgresql"] = pg_version
    data = {
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "note": args.note,
        "method": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "runs": args.runs,
            "connections": args.connections,
            "server_cpu": measure.SERVER_CPU,
            "client_cpu": measure.CLIENT_CPU,
            "processes": 1,
            "slo_p99_ms": args.slo_p99_ms,
            "argv": shlex.join(sys.argv[1:] if argv is None else argv),
        },
        "machine": facts,
        "features": {k: v for k, v in features.items() if k != "pg_port"},
        "versions": versions(env, venvs),
        "scenarios": {
            s.name: {"title": s.title, "method": s.method, "path": s.path, "note": s.note} for s in scenarios
        },
        "servers": {s.name: s.title for s in servers},
        "results": results,
        "slo": slo_results,
    }
    output = args.output or RESULTS / f"{started.strftime('%Y-%m-%d-%H%M')}{'-quick' if args.quick else ''}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(data, indent=1) + "\n")
    print(f"\nbench: results in {output}")
    print(report.terminal_table(data))
    if not args.no_report:
        report.write(output)
    return 0


def measure_ws_scenario(current, port, path, scenario, args, progress, server, entry, results) -> list | None:
    """The WebSocket echo: checked, warmed up and measured with meltemi-wsload; None when the check failed."""
    try:
        measure.check_ws(port, path, WS_MESSAGE_SIZE)
    except (CheckError, RuntimeError, OSError, ValueError) as error:
        progress.say(server.name, scenario.name, f"WRONG ANSWER: {error}")
        results.append({**entry, "status": "failed", "reason": f"wrong answer: {error}"[:400]})
        return None
    entry["response"] = {
        "bytes": WS_MESSAGE_SIZE,
        "content_type": "websocket text",
        "content_encoding": "",
        "server": "",
    }
    progress.say(server.name, scenario.name, "warming up")
    runs = []
    try:
        measure.run_wsload(port, path, WS_MESSAGE_SIZE, args.connections, args.warmup)
        for index in range(args.runs):
            figures = measure.measure_ws(current, port, path, WS_MESSAGE_SIZE, args.connections, args.duration)
            runs.append(figures)
            progress.say(
                server.name,
                scenario.name,
                f"run {index + 1}/{args.runs}: {figures['rps']:>9,.0f} msg/s"
                f"  p99 {figures['p99_us'] / 1000:6.2f} ms"
                f"  {figures['cpu_us_per_req']:6.1f} us CPU/msg"
                + (f"  {figures['errors']} errors" if figures["errors"] else ""),
            )
    except RuntimeError as error:
        progress.say(server.name, scenario.name, f"FAILED: {error}")
        results.append({**entry, "status": "failed", "reason": str(error)[:400]})
        return None
    return runs


def http_errors():
    import http.client

    return http.client.HTTPException


if __name__ == "__main__":
    sys.exit(main())
