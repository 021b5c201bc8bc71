"""bench/RESULTS.md and the plots, generated from a results JSON of bench/run.py.

    python -m bench.report bench/results/<file>.json

Plots are drawn with matplotlib from the harness's own environment
(build/bench-tools, bench/requirements/tools.txt), made on first use.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TOOLS = REPO / "build" / "bench-tools"

# The issues' targets: (scenario, meltemi's server, peer, minimum ratio meltemi / peer).
TARGETS = [
    ("json", "meltemi", "bolt", 1.5),
    ("json10k", "meltemi", "bolt", 1.2),
    ("params", "meltemi", "bolt", 1.5),
    ("post", "meltemi", "bolt", 1.5),
    ("django-page", "meltemi", "granian", 1.1),
    ("django-page", "meltemi", "gunicorn", 1.5),
    # ASGI (issue 11): the same FastAPI app file, the same WebSocket echo app.
    ("plaintext", "meltemi-fastapi", "granian-fastapi", 1.3),
    ("json", "meltemi-fastapi", "granian-fastapi", 1.3),
    ("ws-echo", "meltemi-asgi", "uvicorn", 2.0),
    ("ws-echo", "meltemi-asgi", "granian-asgi", 1.2),
    ("json-async", "meltemi", "bolt", 1.5),
]
CEILING_SHARE = ("json", "json10k", "params", "post")
# Answers given in C without Python that must stay near the ceiling: (scenario, minimum share).
CEILING_SHARE_C = (("cors-preflight", 0.8), ("ratelimited", 0.8))


def ok_results(data: dict) -> dict[tuple[str, str], dict]:
    return {(r["server"], r["scenario"]): r for r in data["results"] if r["status"] == "ok"}


def rps(result: dict | None) -> float | None:
    return result["summary"]["rps"]["median"] if result else None


def fmt_rps(value: float) -> str:
    return f"{value:,.0f}"


def ratio_text(value: float | None, base: float | None) -> str:
    if not value or not base:
        return "–"
    return f"{value / base:.2f}"


def terminal_table(data: dict) -> str:
    found = ok_results(data)
    servers = list(data["servers"])
    width = 12
    lines = [
        "req/s (median); in brackets: ratio to meltemi",
        "scenario".ljust(14) + "".join(s.rjust(width + 8) for s in servers),
    ]
    for scenario in data["scenarios"]:
        base = rps(found.get(("meltemi", scenario)))
        cells = []
        for server in servers:
            value = rps(found.get((server, scenario)))
            if value is None:
                cells.append("–".rjust(width + 8))
            else:
                cells.append(f"{fmt_rps(value):>{width}} ({ratio_text(value, base):>5})")
        lines.append(scenario.ljust(14) + "".join(cells))
    return "\n".join(lines)


def summary_table(data: dict) -> list[str]:
    """req/s (median) per scenario and server, with the ratio to meltemi."""
    found = ok_results(data)
    servers = list(data["servers"])
    rows = ["| scenario | " + " | ".join(servers) + " |", "|---|" + "---:|" * len(servers)]
    for scenario in data["scenarios"]:
        base = rps(found.get(("meltemi", scenario)))
        cells = []
        for server in servers:
            value = rps(found.get((server, scenario)))
            cells.append("–" if value is None else f"{fmt_rps(value)} ({ratio_text(value, base)})")
        rows.append(f"| {scenario} | " + " | ".join(cells) + " |")
    return rows


def scenario_table(data: dict, scenario: str) -> list[str]:
    found = ok_results(data)
    base = rps(found.get(("meltemi", scenario)))
    rows = [
        "| server | req/s median (min–max) | p50 ms | p99 ms | CPU µs/req | ratio to meltemi |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    others = []
    for result in data["results"]:
        if result["scenario"] != scenario:
            continue
        server = result["server"]
        if result["status"] != "ok":
            others.append(f"{server}: {result['status']} — {result.get('reason', '')}")
            continue
        s = result["summary"]
        errors = f" ({s['errors']} errors)" if s["errors"] else ""
        rows.append(
            f"| {server} | {fmt_rps(s['rps']['median'])} "
            f"({fmt_rps(s['rps']['min'])}–{fmt_rps(s['rps']['max'])}){errors} "
            f"| {s['p50_us']['median'] / 1000:.2f} | {s['p99_us']['median'] / 1000:.2f} "
            f"| {s['cpu_us_per_req']['median']:.0f} | {ratio_text(s['rps']['median'], base)} |"
        )
    lines = rows if len(rows) > 2 else []
    encodings = [
        f"{r['server']} {r['response']['content_encoding']} ({r['response']['bytes']} bytes)"
        for r in data["results"]
        if r["scenario"] == scenario and r.get("response", {}).get("content_encoding")
    ]
    if encodings:
        lines += ["", "Content-Encoding chosen: " + ", ".join(encodings) + "."]
    if others:
        lines += ["", *(f"- {line}" for line in others)]
    return lines


def targets_table(data: dict) -> list[str]:
    found = ok_results(data)
    rows = ["| target | measured | met? |", "|---|---:|---|"]
    for scenario, server, peer, minimum in TARGETS:
        mine, theirs = rps(found.get((server, scenario))), rps(found.get((peer, scenario)))
        label = f"{scenario}: {server} ≥ {minimum}× {peer}"
        if mine and theirs:
            ratio = mine / theirs
            rows.append(f"| {label} | {ratio:.2f}× | {'yes' if ratio >= minimum else '**no**'} |")
        else:
            rows.append(f"| {label} | not measured | – |")
    ceiling = rps(found.get(("meltemi", "ceiling")))
    for scenario in CEILING_SHARE:
        mine = rps(found.get(("meltemi", scenario)))
        label = f"{scenario}: meltemi ≥ 50% of its pure-C ceiling"
        if mine and ceiling:
            share = mine / ceiling
            rows.append(f"| {label} | {share:.0%} | {'yes' if share >= 0.5 else '**no**'} |")
        else:
            rows.append(f"| {label} | not measured | – |")
    for scenario, minimum in CEILING_SHARE_C:
        mine = rps(found.get(("meltemi", scenario)))
        label = f"{scenario}: meltemi ≥ {minimum:.0%} of its pure-C ceiling"
        if mine and ceiling:
            share = mine / ceiling
            rows.append(f"| {label} | {share:.0%} | {'yes' if share >= minimum else '**no**'} |")
        else:
            rows.append(f"| {label} | not measured | – |")
    return rows


def slo_table(data: dict) -> list[str]:
    if not data.get("slo"):
        return ["Not run (`--slo none`)."]
    rows = ["| server | scenario | highest rate with p99 ≤ target | closed-loop max (wrk) |", "|---|---|---:|---:|"]
    for entry in data["slo"]:
        if "error" in entry:
            rows.append(f"| {entry['server']} | {entry['scenario']} | failed: {entry['error'][:80]} | |")
            continue
        rows.append(
            f"| {entry['server']} | {entry['scenario']} "
            f"| {fmt_rps(entry['rate'])} req/s (p99 ≤ {entry['p99_ms_target']:g} ms) "
            f"| {fmt_rps(entry['closed_loop_rps'])} |"
        )
    return rows


def commands(data: dict) -> list[str]:
    seen = {}
    for result in data["results"]:
        if result.get("command"):
            seen.setdefault(result["command"], []).append(f"{result['server']}/{result['scenario']}")
    lines = []
    for command, uses in seen.items():
        lines.append(f"- {', '.join(uses)}:")
        lines.append(f"  `{command}`")
    return lines


def markdown(data: dict, json_name: str, plots: list[str]) -> str:
    m, method = data["machine"], data["method"]
    kind = "QUICK run" if data["quick"] else "full run"
    out = [
        "<!-- Generated by bench/report.py from the results JSON: do not edit by hand. -->",
        "",
        "# meltemi benchmark results",
        "",
        f"**{kind}**, {data['started']} → {data['finished']} (UTC). "
        f"Raw results: [`results/{json_name}`](results/{json_name}).",
    ]
    if data.get("note"):
        out += ["", f"> {data['note']}"]
    out += [
        "",
        "Figures are ratios measured in one run, one server after the other on the same cores; absolute requests per "
        "second on another machine (or on this one at another moment) will differ.",
        "",
        "## Machine and method",
        "",
        f"- CPU: {m['cpu']} ({m['cores']} cores); kernel {m['kernel']}; host {m['host_os']}",
        f"- Servers run in: {m['env_os']}; Python {m['python']}; {m.get('postgresql') or 'PostgreSQL not used'}",
        f"- Load generator: {m['wrk']}, {method['connections']} keep-alive connections, one thread",
        f"- Server pinned to CPU {method['server_cpu']} (taskset, every thread), wrk to CPU {method['client_cpu']}; "
        f"one process per server",
        f"- Per server and scenario: answer checked, {method['warmup_s']:g} s warm-up, then {method['runs']} runs of "
        f"{method['duration_s']:g} s; the median is reported, with min and max",
        "- CPU µs/req: utime + stime of the server's process tree (from /proc) over a run, divided by the requests "
        "it answered",
        f"- meltemi commit {m['meltemi_commit']}; typed API available: {data['features'].get('api')}",
        f"- Load average before the run: {' '.join(m['load_before'])}"
        + (f"; after: {' '.join(m['load_after'])}" if m.get("load_after") else ""),
        f"- Command: `python -m bench {method['argv']}`",
        "",
        "## Summary",
        "",
        "Requests per second (median of the runs) and, in brackets, the ratio to meltemi; – where a server does not "
        "serve the scenario (see below why).",
        "",
        *summary_table(data),
        "",
        "## Targets (issues 4 and 11)",
        "",
        *targets_table(data),
        "",
        "## Results per scenario",
        "",
        "Ratio to meltemi: the server's req/s divided by meltemi's (above 1: faster than meltemi).",
    ]
    for name, scenario in data["scenarios"].items():
        out += ["", f"### {scenario['title']} (`{scenario['method']} {scenario['path']}`)", ""]
        if scenario.get("note"):
            out += [f"{scenario['note'][0].upper()}{scenario['note'][1:]}.", ""]
        out += scenario_table(data, name)
    out += ["", "## SLO: the highest rate with p99 under the target", "", *slo_table(data)]
    if plots:
        out += ["", "## Plots", ""] + [f"![{p}](results/{p})" for p in plots]
    out += [
        "",
        "## What these numbers do not show",
        "",
        "- One process per server on one core: not how servers scale over cores, nor the effect of worker counts "
        "other than 1 (and thread pools of 50 for the 10 ms wait).",
        "- Loopback with a local load generator: no network latency, no TLS, no slow clients, small requests.",
        "- Hello-world-sized handlers: in a real application the handler's own work (queries, templates) "
        "dominates and the differences between servers shrink.",
        "- The machine may have been shared with other work: wall-clock req/s moves with that; CPU µs/req "
        "is steadier. A quick run's 1-second samples are noisy.",
        "- Async servers (Bolt, uvicorn) and thread-pool servers reach their best with different connection "
        "counts; one count is used for all.",
        "- PostgreSQL runs on the server's core and its CPU time is not in CPU µs/req.",
        "- Sync Django views under uvicorn run in asgiref's worker thread: on one core, the hand-off between the event "
        "loop and that thread (and the GIL's 5 ms switch interval) dominates; async views would fare differently.",
        "- gunicorn's sync worker closes the connection after each response, so its figures include a TCP connect "
        "per request: that is how that worker serves.",
        "- meltemi's API scenarios (and the ORM ones) skip Django's middleware, as Bolt's and FastAPI's handlers do; "
        "meltemi-wsgi (full run) serves the same Django views as gunicorn, Granian and uvicorn get.",
        "- Memory use, start-up time, tail latency under overload and correctness under malformed input are not "
        "measured here.",
        "",
        "## Exact commands",
        "",
        *commands(data),
        "",
        "## Versions (`pip freeze` of each server's environment)",
        "",
    ]
    for venv, frozen in data["versions"].items():
        out.append(f"- {venv}: {', '.join(frozen)}")
    return "\n".join(out) + "\n"


def ensure_tools() -> Path | None:
    python = TOOLS / "bin" / "python"
    requirements = BENCH / "requirements" / "tools.txt"
    stamp = TOOLS / ".bench-ready"
    if stamp.exists() and stamp.read_text() == requirements.read_text():
        return python
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(TOOLS)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True)
    except subprocess.CalledProcessError as error:
        print(f"bench: no plots (could not install matplotlib: {error})", file=sys.stderr)
        return None
    stamp.write_text(requirements.read_text())
    return python


def plot(json_path: str, out_dir: str) -> list[str]:
    """Draws the plots (run with the tools environment's Python); returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(Path(json_path).read_text())
    found = ok_results(data)
    servers = list(data["servers"])
    scenarios = [s for s in data["scenarios"] if any((srv, s) in found for srv in servers)]
    stem = Path(json_path).stem
    names = []
    width = 0.8 / max(len(servers), 1)
    for kind, key, ylabel, title in (
        ("throughput", "rps", "requests/s (median; bars: min–max)", "Throughput per scenario, one process on one core"),
        ("latency", "p99_us", "p99 latency, ms (median of runs)", "p99 latency per scenario (lower is better)"),
    ):
        fig, ax = plt.subplots(figsize=(max(10, len(scenarios) * 1.3), 5.5))
        for i, server in enumerate(servers):
            xs, ys, lo, hi = [], [], [], []
            for j, scenario in enumerate(scenarios):
                result = found.get((server, scenario))
                if not result:
                    continue
                s = result["summary"][key]
                scale = 1 / 1000 if key == "p99_us" else 1
                xs.append(j + (i - (len(servers) - 1) / 2) * width)
                ys.append(s["median"] * scale)
                lo.append((s["median"] - s["min"]) * scale)
                hi.append((s["max"] - s["median"]) * scale)
            if xs:
                ax.bar(xs, ys, width, label=server, yerr=[lo, hi] if key == "rps" else None, capsize=2)
        ax.set_xticks(range(len(scenarios)))
        ax.set_xticklabels(scenarios, rotation=30, ha="right")
        ax.set_ylabel(ylabel)
        ax.set_yscale("log")
        ax.set_title(title + (" — quick run" if data["quick"] else ""))
        ax.legend(fontsize=8, ncols=min(len(servers), 6))
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        name = f"{stem}-{kind}.png"
        fig.savefig(Path(out_dir) / name, dpi=100)
        plt.close(fig)
        names.append(name)
    return names


def write(json_path: Path) -> Path:
    data = json.loads(json_path.read_text())
    plots: list[str] = []
    python = ensure_tools()
    if python:
        code = "import json, sys; from bench.report import plot; print(json.dumps(plot(sys.argv[1], sys.argv[2])))"
        out = subprocess.run(
            [str(python), "-c", code, str(json_path), str(json_path.parent)], cwd=REPO, capture_output=True, text=True
        )
        if out.returncode == 0:
            plots = json.loads(out.stdout.strip().splitlines()[-1])
        else:
            print(f"bench: plotting failed: {out.stderr[-500:]}", file=sys.stderr)
    target = BENCH / "RESULTS.md"
    target.write_text(markdown(data, json_path.name, plots))
    print(f"bench: wrote {target.relative_to(REPO)}" + (f" and {len(plots)} plots" if plots else ""))
    return target


if __name__ == "__main__":
    write(Path(sys.argv[1]).resolve())
