"""`meltemi capacity URL`: the highest request rate an endpoint holds under a p99 target.

The open-loop generator (meltemi/loadgen.py) sends requests at a fixed rate
whatever the answers, and counts each latency from the request's due time, so
a server that falls behind is charged for its queue (docs/capacity.md says why
closed-loop tools hide it). The search: a short warm-up that also tells whether
the target answers at all and how long one request takes; an exponential ramp
from half what that latency suggests until a rate breaks the target (p99 over
it, or any failure); then bisection between the last rate that held and the
first that broke, down to a resolution. Each step lasts --duration seconds
(plus a bounded wait for the last answers), and the steps are bounded, so the
whole search is.

Exit codes: 0 when a rate was found; 1 when the target cannot be reached (or
the generator cannot run); 2 for a usage error, a remote target without
--allow-remote among them; 3 when the target fails at every rate tried.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import re
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from . import cli, log, plot
from .loadgen import LoadgenError, Step, raw_request, run

FOUND = 0
UNREACHABLE = 1
USAGE_ERROR = cli.USAGE_ERROR
FAILS_AT_EVERY_RATE = 3

# Bounds of the search: at most this many ramp steps (doubling each time, so a
# 2**16 range), this many bisection steps, and a floor under which a rate is
# not worth measuring in steps of a few seconds.
MAX_RAMP_STEPS = 16
MAX_BISECT_STEPS = 8
LOWEST_RATE = 1.0
WARMUP_RATE = 20.0
SETTLE_SECONDS = 10.0
SETTLE_CONNECTIONS = 8


def build_parser(prog: str = "meltemi capacity") -> argparse.ArgumentParser:
    # The serving command's parser class: usage errors are one line and exit 2 in both.
    parser = cli._Parser(
        prog=prog,
        description="Find the highest request rate URL holds with p99 latency under a target and no errors: an "
        "open-loop load (requests sent on schedule, latency counted from each due time) searched by ramp and "
        "bisection. Prints progress, a one-line answer and writes a latency-versus-rate plot. See docs/capacity.md.",
    )
    parser.add_argument("url", metavar="URL", help="an http:// URL on this machine (127.0.0.1, ::1, localhost)")
    parser.add_argument("--method", default="GET", help="the request method (default: GET)")
    parser.add_argument("--body", metavar="FILE", type=Path, help="send the content of FILE as the request body")
    parser.add_argument(
        "--header",
        metavar="H",
        action="append",
        default=[],
        help="a request header 'Name: value' (repeat for several)",
    )
    parser.add_argument("--p99", default="50ms", type=duration_ms, help="the p99 latency target (default: 50ms)")
    parser.add_argument(
        "--connections",
        type=positive_int,
        default=64,
        help="connections, each with one request in flight: bounds the concurrency offered (default: 64)",
    )
    parser.add_argument(
        "--duration",
        type=positive_float,
        default=3.0,
        metavar="S",
        help="seconds each step of the search sends for (default: 3); the search takes a few dozen steps at most",
    )
    parser.add_argument(
        "--resolution",
        type=positive_float,
        default=0.05,
        help="stop bisecting when the gap between holding and breaking rates is this fraction (default: 0.05)",
    )
    parser.add_argument(
        "--plot",
        metavar="FILE",
        type=Path,
        default=Path("meltemi-capacity.png"),
        help="where to write the latency-versus-rate plot (default: meltemi-capacity.png)",
    )
    parser.add_argument("--no-plot", action="store_true", help="do not write the plot")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a target that is not on this machine (load only what you own: this is a load test)",
    )
    return parser


def duration_ms(text: str) -> float:
    """'50ms', '0.2s' or '50' (milliseconds) -> milliseconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration such as 50ms or 0.2s, got {text!r}")
    value = float(match.group(1))
    return value * 1000 if match.group(2) == "s" else value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


@dataclass(frozen=True)
class Target:
    """Where the load goes: a numeric address, a port, and the request's pieces."""

    url: str
    address: str
    port: int
    host_header: str
    path: str
    addresses: tuple[str, ...] = ()  # every address the host name resolved to


def connectable(target: Target, timeout: float = 3.0) -> Target:
    """The target with the first of its addresses that accepts a connection ('localhost' may
    resolve to ::1 first while the server listens on 127.0.0.1 only); raises ConnectionError."""
    problems = []
    for address in target.addresses or (target.address,):
        try:
            socket.create_connection((address, target.port), timeout=timeout).close()
        except OSError as exc:
            problems.append(f"{address} port {target.port}: {exc.strerror or exc}")
            continue
        return replace(target, address=address)
    raise ConnectionError("cannot connect to " + "; ".join(problems))


def parse_target(url: str, allow_remote: bool) -> Target:
    """Resolves the URL; raises ValueError with the message to print (remote without leave, https, ...)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http":
        raise ValueError(f"only http:// URLs can be measured (got {parts.scheme}://); measure the server behind TLS")
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise ValueError(f"bad port in {url!r}") from exc
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectionError(f"cannot resolve {parts.hostname}: {exc.strerror}") from exc
    addresses = [info[4][0] for info in infos]
    if not allow_remote and not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise ValueError(
            f"{parts.hostname} is not on this machine: capacity sends as much load as the target takes, "
            "so it only measures loopback addresses unless --allow-remote is given"
        )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(url, addresses[0], port, parts.netloc, path, tuple(dict.fromkeys(addresses)))


@dataclass
class Search:
    """The steps of one search and what they concluded."""

    p99_ms: float
    steps: list[Step] = field(default_factory=list)
    holding: Step | None = None  # the highest rate that held
    breaking: Step | None = None  # the lowest rate above it that broke

    def record(self, step: Step) -> bool:
        self.steps.append(step)
        if step.holds(self.p99_ms):
            if self.holding is None or step.rate > self.holding.rate:
                self.holding = step
            return True
        if self.breaking is None or step.rate < self.breaking.rate:
            self.breaking = step
        return False


class Progress:
    """A progress bar on a terminal; one plain line per step otherwise (a log, a CI job)."""

    def __init__(self, stream: TextIO, total: int):
        self.stream = stream
        self.tty = stream.isatty()
        self.total = total
        self.done = 0

    def step(self, step: Step, held: bool, p99_ms: float) -> None:
        self.done += 1
        verdict = "holds" if held else "breaks"
        detail = f"{step.rate:,.0f} req/s: p99 {format_ms(step.p99_us)}"
        if step.failures:
            detail += f", {step.failures:,} failed"
        if self.tty:
            width = 24
            filled = min(width, round(width * self.done / self.total))
            bar = "#" * filled + "." * (width - filled)
            self.stream.write(f"\r\033[K[{bar}] step {self.done}: {detail} ({verdict})")
        else:
            self.stream.write(f"capacity: step {self.done}: {detail} ({verdict} p99 <= {p99_ms:g} ms)\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def format_ms(us: int) -> str:
    ms = us / 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:,.0f} ms"


def search(
    target: Target,
    request_file: Path,
    p99_ms: float,
    connections: int,
    duration: float,
    resolution: float,
    progress: Progress,
) -> Search:
    """Warm-up, ramp, bisection; raises LoadgenError when the target cannot be reached."""
    # Answers still missing this long after a step's end are over the target
    # anyway (the generator charges each the time since it was due): waiting
    # longer would only make a breaking step slower.
    grace = 2 * p99_ms / 1000 + 0.25

    def measure(rate: float, seconds: float = duration, conns: int = connections) -> Step:
        step = run(target.address, target.port, rate, conns, seconds, request_file, grace)
        if not step.holds(p99_ms):
            settle()
        return step

    burst = min(connections, SETTLE_CONNECTIONS)

    def burst_max_us() -> int:
        # One request on each of a few new connections at once (spread over
        # the workers by the kernel): the slowest answer.
        return run(target.address, target.port, burst * 100.0, burst, 0.01, request_file, SETTLE_SECONDS).max_us

    def settle() -> None:
        # A step that broke leaves queues in the server (requests whose
        # connections the generator closed are still served), in each worker.
        # Once a burst is answered about as fast as on the idle server after
        # the warm-up, the queues are gone: the next step starts from an idle
        # server instead of inheriting the backlog.
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline and burst_max_us() > 2 * idle_burst_us + 5000:
            time.sleep(0.05)

    result = Search(p99_ms)
    warmup = run(target.address, target.port, WARMUP_RATE, min(connections, 4), min(duration, 1.0), request_file, grace)
    idle_burst_us = burst_max_us()
    if warmup.completed and warmup.bad_status == warmup.completed:
        result.breaking = warmup
        return result
    # Half of what one connection at the warm-up's median latency would send:
    # low enough to hold on most servers, close enough to ramp from in a few steps.
    rate = max(LOWEST_RATE, 0.5 / max(warmup.p50_us / 1e6, 1e-5))
    for _ in range(MAX_RAMP_STEPS):
        step = measure(rate)
        held = result.record(step)
        progress.step(step, held, p99_ms)
        if not held:
            break
        rate *= 2
    if result.holding is None:
        # Not even the first rate held: walk down until one does, or give up at the floor.
        while rate > LOWEST_RATE and result.holding is None:
            rate = max(LOWEST_RATE, rate / 4)
            step = measure(rate)
            progress.step(step, result.record(step), p99_ms)
        if result.holding is None:
            return result
    for _ in range(MAX_BISECT_STEPS):
        if result.breaking is None:
            break
        low, high = result.holding.rate, result.breaking.rate
        if (high - low) / high <= resolution:
            break
        step = measure((low + high) / 2)
        progress.step(step, result.record(step), p99_ms)
    return result


def answer(target: Target, found: Search) -> str:
    """The one-line answer."""
    holding, breaking = found.holding, found.breaking
    where = target.path.split("?")[0]
    line = f"{where} holds {holding.rate:,.0f} req/s at p99 ≤ {found.p99_ms:g} ms on this machine"
    if target.address and not ipaddress.ip_address(target.address.split("%")[0]).is_loopback:
        line = line.replace(" on this machine", f" from this machine to {target.address}")
    if breaking is None:
        return line + f" (the most the search tried; p99 there {format_ms(holding.p99_us)})"
    if breaking.failures:
        return line + f"; above that, at {breaking.rate:,.0f} req/s, {describe_failures(breaking)}"
    return line + f"; above that p99 climbs to {format_ms(breaking.p99_us)} (at {breaking.rate:,.0f} req/s)"


def connections_hint(found: Search, connections: int) -> str | None:
    """A warning when the generator's connections, not the server, may have set the limit.

    By Little's law a rate λ answered in W keeps λ·W requests in flight; the
    generator has one per connection, so when the breaking rate at the
    median latency (standing in for the mean) of the highest holding step needs about as many as it has, the
    requests queued in the generator (charged to the answer: rightly, for
    latency) and the server might hold more with more connections.
    """
    breaking, holding = found.breaking, found.holding
    if breaking is None or holding is None or breaking.failures:
        return None
    needed = breaking.rate * holding.p50_us / 1e6
    if needed < 0.8 * connections:
        return None
    return (
        f"at {breaking.rate:,.0f} req/s with a median of {format_ms(holding.p50_us)}, about {needed:,.0f} requests "
        f"are in flight (Little's law) for {connections} connections: try --connections {2 * max(1, round(needed))}"
    )


def describe_failures(step: Step) -> str:
    parts = []
    if step.bad_status:
        parts.append(f"{step.bad_status:,} responses were errors (status {step.last_bad_status})")
    if step.errors:
        parts.append(f"{step.errors:,} requests failed (connection lost or unreadable response)")
    return " and ".join(parts)


def run_command(argv: list[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Parses `meltemi capacity` arguments and searches; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        target = parse_target(args.url, args.allow_remote)
    except ValueError as exc:
        log.fatal(str(exc))
        return USAGE_ERROR
    except ConnectionError as exc:
        log.fatal(str(exc))
        return UNREACHABLE
    headers = []
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            log.fatal(f"--header: expected 'Name: value', got {header!r}")
            return USAGE_ERROR
        headers.append((name.strip(), value.strip()))
    try:
        body = args.body.read_bytes() if args.body else None
    except OSError as exc:
        log.fatal(f"cannot read --body {args.body}: {exc.strerror}")
        return USAGE_ERROR
    try:
        target = connectable(target)
    except ConnectionError as exc:
        log.fatal(f"cannot measure {args.url}: {exc}")
        return UNREACHABLE
    request = raw_request(args.method.upper(), target.host_header, target.path, headers, body)
    progress = Progress(err, MAX_RAMP_STEPS // 2 + MAX_BISECT_STEPS // 2)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="meltemi-capacity-") as work:
        request_file = Path(work) / "request"
        request_file.write_bytes(request)
        try:
            found = search(target, request_file, args.p99, args.connections, args.duration, args.resolution, progress)
        except LoadgenError as exc:
            progress.finish()
            log.fatal(f"cannot measure {args.url}: {exc}")
            return UNREACHABLE
    progress.finish()
    if not args.no_plot and found.steps:
        try:
            plot.write_capacity_png(args.plot, found.steps, args.p99, found.holding.rate if found.holding else None)
        except OSError as exc:
            log.fatal(f"cannot write the plot {args.plot}: {exc.strerror}")
    if found.holding is None:
        step = found.breaking
        if step is not None and step.failures:
            log.fatal(
                f"{args.url} fails at every rate tried, down to {step.rate:,.0f} req/s: {describe_failures(step)}"
            )
        elif step is not None:
            log.fatal(
                f"{args.url} misses p99 ≤ {args.p99:g} ms at every rate tried, down to {step.rate:,.0f} req/s "
                f"(p99 {format_ms(step.p99_us)})"
            )
        return FAILS_AT_EVERY_RATE
    out.write(answer(target, found) + "\n")
    hint = connections_hint(found, args.connections)
    if hint:
        err.write(f"capacity: note: {hint}\n")
    if not args.no_plot:
        err.write(f"capacity: {len(found.steps)} steps in {time.monotonic() - started:.0f} s; plot: {args.plot}\n")
    return FOUND
