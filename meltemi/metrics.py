"""Prometheus metrics, added up over all workers by the master (option `metrics`).

The counting is done in C, by the workers, each in its own *slot* of one
shared memory region (src/core/loop/metrics.h): a request is counted where
its access log line is written, whoever answered it, with a few relaxed
atomic adds and no lock.  The region is an anonymous shared mapping the
master creates before it forks any worker, so every worker inherits it.

The master (this module, in its process):

* hands each new worker a free slot, zeroed (`Region.claim`);
* once it has reaped a worker, adds the worker's counters to its *retired*
  totals and frees the slot (`Region.release`): a worker that dies, even by
  SIGKILL, loses nothing it had counted, and no counter ever goes back;
* on a scrape, adds the retired totals and the live slots up and writes the
  text exposition format 0.0.4 (`render`), from a listener of its own that
  its supervision loop serves without blocking (`Listener`).

Slots are read through meltemi._core (metrics_read, metrics_reset), which
loads with the same atomics the workers store with: the layout is C's alone.
Counters are added up by route *name*: a reload may bring routes in another
order, or other routes, and a route's counts go on under its name.
"""

from __future__ import annotations

import logging
import math
import mmap
import os
import selectors
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .config import Address

_logger = logging.getLogger("meltemi.master")

CLASSES = ("other", "1xx", "2xx", "3xx", "4xx", "5xx")  # the slot's status classes, in order
RESTART_REASONS = ("crash", "boot-timeout", "max-requests", "max-rss", "lifetime", "reload")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PATH = "/metrics"

# Scrape connections: at most this many at once, each closed after this long.
MAX_CLIENTS = 16
CLIENT_TIMEOUT = 10.0
MAX_REQUEST = 8192


def slots_for(workers: int) -> int:
    """Slots a server with `workers` workers needs: each slot's worker, its replacement booting while it drains
    (reload, recycling), and room for reloads in a row."""
    return 4 * workers + 4


@dataclass
class RouteCounts:
    status: list[int]  # by CLASSES
    buckets: list[int]  # not cumulative; the last is above the largest bound
    duration_us: int = 0

    def add(self, status: Iterable[int], buckets: Iterable[int], duration_us: int) -> None:
        self.status = [a + b for a, b in zip(self.status, status, strict=True)]
        self.buckets = [a + b for a, b in zip(self.buckets, buckets, strict=True)]
        self.duration_us += duration_us


@dataclass
class Totals:
    """Counters added up over slots (and the retired workers), by route name."""

    nbuckets: int
    routes: dict[str, RouteCounts] = field(default_factory=dict)
    bytes_in: int = 0
    bytes_out: int = 0
    connections_accepted: int = 0
    # Gauges: live workers only.
    connections: int = 0
    in_flight: int = 0
    queued: int = 0

    def add_counters(self, slot: dict[str, Any]) -> None:
        for name, status, buckets, duration_us in slot["routes"]:
            counts = self.routes.get(name)
            if counts is None:
                counts = self.routes[name] = RouteCounts([0] * len(CLASSES), [0] * self.nbuckets)
            counts.add(status, buckets, duration_us)
        self.bytes_in += slot["bytes_in"]
        self.bytes_out += slot["bytes_out"]
        self.connections_accepted += slot["connections_accepted"]

    def add_gauges(self, slot: dict[str, Any]) -> None:
        self.connections += slot["connections"]
        self.in_flight += slot["in_flight"]
        self.queued += slot["queued"]

    def copy(self) -> Totals:
        routes = {name: RouteCounts(list(c.status), list(c.buckets), c.duration_us) for name, c in self.routes.items()}
        return Totals(self.nbuckets, routes, self.bytes_in, self.bytes_out, self.connections_accepted, 0, 0, 0)


class Region:
    """The shared memory of the metrics: `nslots` worker slots. Created by the master before any fork."""

    def __init__(self, nslots: int):
        from . import _core

        self._core = _core
        layout = _core.metrics_layout()
        self.bounds: tuple[float, ...] = layout["bounds"]
        self.nslots = nslots
        # An anonymous mapping is MAP_SHARED: the forked workers write to the pages the master reads.
        self.map = mmap.mmap(-1, nslots * layout["slot_size"])
        self.free = list(range(nslots - 1, -1, -1))
        self.retired = Totals(len(self.bounds) + 1)
        for slot in range(nslots):
            _core.metrics_reset(self.map, slot)

    def claim(self) -> int | None:
        """A zeroed slot for a new worker, or None when all are taken (the worker then counts nothing)."""
        if not self.free:
            return None
        slot = self.free.pop()
        self._core.metrics_reset(self.map, slot)
        return slot

    def release(self, slot: int) -> None:
        """After the slot's worker exited: keeps its counts in the retired totals, frees the slot."""
        self.retired.add_counters(self._core.metrics_read(self.map, slot))
        self._core.metrics_reset(self.map, slot)
        self.free.append(slot)

    def totals(self, live: Iterable[int]) -> Totals:
        """The retired totals plus the live slots' counters and gauges."""
        totals = self.retired.copy()
        for slot in live:
            counts = self._core.metrics_read(self.map, slot)
            totals.add_counters(counts)
            totals.add_gauges(counts)
        return totals


@dataclass
class WorkerInfo:
    """What the master knows of a live worker for the exposition."""

    number: int  # 1-based, as in the log
    pid: int


class Metrics:
    """The master's metrics: the region, restart counts and the scrape listener."""

    def __init__(self, address: Address, workers: int):
        self.address = address
        self.region = Region(slots_for(workers))
        self.restarts = dict.fromkeys(RESTART_REASONS, 0)
        self.start_time = time.time()
        self.listener: Listener | None = None
        self.warned_full = False

    def restarted(self, reason: str, count: int = 1) -> None:
        self.restarts[reason] = self.restarts.get(reason, 0) + count

    def claim(self) -> int | None:
        slot = self.region.claim()
        if slot is None and not self.warned_full:
            self.warned_full = True
            _logger.warning(
                "All %d metrics slots are taken (many workers draining at once): new workers count nothing "
                "until some exit",
                self.region.nslots,
            )
        return slot

    def render(self, live: dict[int, WorkerInfo]) -> str:
        """The exposition; `live` maps the slots of running workers to who they are."""
        return render(self.region.totals(live), self.region.bounds, self.restarts, live.values(), self.start_time)


# --- the text format ----------------------------------------------------------


def escape_label(value: str) -> str:
    """A label value as the text format writes it between quotes."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{escape_label(value)}"' for name, value in labels.items()) + "}"


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _bound(value: float) -> str:
    # Prometheus client libraries write bounds as floats ("0.005", "1.0"); the same here.
    return repr(float(value))


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        help_text = help_text.replace("\\", "\\\\").replace("\n", "\\n")
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels: str) -> None:
        self.lines.append(f"{name}{_labels(**labels)} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(
    totals: Totals,
    bounds: tuple[float, ...],
    restarts: dict[str, int],
    workers: Iterable[WorkerInfo],
    start_time: float,
) -> str:
    w = _Writer()
    routes = sorted(totals.routes.items())
    w.family(
        "meltemi_requests_total",
        "counter",
        "Requests answered, by route (the API's route template; static, wsgi, or server for the server's own "
        "answers to bad requests) and status class.",
    )
    for name, counts in routes:
        for status_class, count in zip(CLASSES, counts.status, strict=True):
            if count:
                w.sample("meltemi_requests_total", count, route=name, status=status_class)
    w.family(
        "meltemi_request_duration_seconds",
        "histogram",
        "Time from the complete request head to the last byte of the response handed to the socket, by route.",
    )
    for name, counts in routes:
        cumulative = 0
        for bound, count in zip((*bounds, math.inf), counts.buckets, strict=True):
            cumulative += count
            le = "+Inf" if math.isinf(bound) else _bound(bound)
            w.sample("meltemi_request_duration_seconds_bucket", cumulative, route=name, le=le)
        w.sample("meltemi_request_duration_seconds_sum", counts.duration_us / 1e6, route=name)
        w.sample("meltemi_request_duration_seconds_count", cumulative, route=name)
    w.family("meltemi_received_bytes_total", "counter", "Bytes read from client connections.")
    w.sample("meltemi_received_bytes_total", totals.bytes_in)
    w.family("meltemi_sent_bytes_total", "counter", "Bytes written to client connections.")
    w.sample("meltemi_sent_bytes_total", totals.bytes_out)
    w.family("meltemi_connections_accepted_total", "counter", "Client connections accepted.")
    w.sample("meltemi_connections_accepted_total", totals.connections_accepted)
    w.family("meltemi_open_connections", "gauge", "Client connections open now.")
    w.sample("meltemi_open_connections", totals.connections)
    w.family(
        "meltemi_requests_in_flight",
        "gauge",
        "Requests handed to handler threads and not answered yet (queued or running).",
    )
    w.sample("meltemi_requests_in_flight", totals.in_flight)
    w.family("meltemi_handler_queue_depth", "gauge", "Requests waiting for a handler thread.")
    w.sample("meltemi_handler_queue_depth", totals.queued)
    live = sorted(workers, key=lambda info: (info.number, info.pid))
    w.family("meltemi_workers", "gauge", "Worker processes running (booting and draining ones included).")
    w.sample("meltemi_workers", len(live))
    w.family(
        "meltemi_worker_restarts_total",
        "counter",
        "Workers replaced, by reason: crash (died unexpectedly), boot-timeout, max-requests, max-rss, lifetime, "
        "reload (SIGHUP or --reload).",
    )
    for reason, count in restarts.items():
        w.sample("meltemi_worker_restarts_total", count, reason=reason)
    w.family("meltemi_worker_resident_memory_bytes", "gauge", "Resident memory of each worker process.")
    for info in live:
        rss = resident_memory(info.pid)
        if rss is not None:
            w.sample("meltemi_worker_resident_memory_bytes", rss, worker=str(info.number), pid=str(info.pid))
    w.family("process_start_time_seconds", "gauge", "Start time of the master process since the Unix epoch.")
    w.sample("process_start_time_seconds", round(start_time, 3))
    return w.text()


def resident_memory(pid: int) -> int | None:
    """A process's resident memory in bytes (/proc/PID/statm), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


# --- the listener ---------------------------------------------------------------


class BindError(Exception):
    """The metrics address cannot be bound; str() is the line for the user."""


class Listener:
    """An HTTP listener served by the master's selector loop, one short exchange per connection, never
    blocking: GET /metrics answers the exposition, anything else 404 or 405."""

    def __init__(self, address: Address, selector: selectors.BaseSelector, render: Callable[[], str]):
        self.selector = selector
        self.render = render
        self.clients: dict[socket.socket, _Client] = {}
        try:
            infos = socket.getaddrinfo(address.host, address.port, socket.AF_UNSPEC, socket.SOCK_STREAM)
            family, _, _, _, sockaddr = infos[0]
            self.sock = socket.socket(family, socket.SOCK_STREAM)
        except (OSError, socket.gaierror) as exc:
            raise BindError(f"--metrics: cannot bind {address}: {exc.strerror or exc}") from None
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(sockaddr)
            self.sock.listen(64)
            self.sock.setblocking(False)
        except OSError as exc:
            self.sock.close()
            raise BindError(f"--metrics: cannot bind {address}: {os.strerror(exc.errno or 0).lower()}") from None
        host, port = self.sock.getsockname()[:2]
        self.url = f"http://{f'[{host}]' if family == socket.AF_INET6 else host}:{port}{PATH}"
        selector.register(self.sock, selectors.EVENT_READ, self._on_accept)

    def _on_accept(self, events: int) -> None:
        for _ in range(MAX_CLIENTS):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(self.clients) >= MAX_CLIENTS:
                conn.close()
                continue
            conn.setblocking(False)
            client = _Client(self, conn)
            self.clients[conn] = client
            self.selector.register(conn, selectors.EVENT_READ, client.on_event)

    def deadline(self) -> float | None:
        return min((client.deadline for client in self.clients.values()), default=None)

    def expire(self, now: float) -> None:
        for client in list(self.clients.values()):
            if now >= client.deadline:
                client.close()

    def close_in_child(self) -> None:
        """In a new worker: the sockets are the master's (the selector is closed there separately)."""
        for conn in list(self.clients):
            conn.close()
        self.clients.clear()
        self.sock.close()

    def close(self) -> None:
        for client in list(self.clients.values()):
            client.close()
        try:
            self.selector.unregister(self.sock)
        except (KeyError, ValueError):
            pass
        self.sock.close()


class _Client:
    def __init__(self, listener: Listener, conn: socket.socket):
        self.listener = listener
        self.conn = conn
        self.data = b""
        self.out = b""
        self.deadline = time.monotonic() + CLIENT_TIMEOUT

    def on_event(self, events: int) -> None:
        try:
            if self.out:
                self._send()
            else:
                self._receive()
        except OSError:
            self.close()

    def _receive(self) -> None:
        chunk = self.conn.recv(MAX_REQUEST)
        if not chunk:
            self.close()
            return
        self.data += chunk
        if b"\r\n\r\n" not in self.data and b"\n\n" not in self.data:
            if len(self.data) >= MAX_REQUEST:
                self._answer(431, "Request Header Fields Too Large", b"request head too large\n")
            return
        line = self.data.split(b"\n", 1)[0].decode("latin-1").strip().split(" ")
        if len(line) != 3 or not line[2].startswith("HTTP/1."):
            self._answer(400, "Bad Request", b"bad request line\n")
            return
        method, target = line[0], line[1]
        path = target.split("?", 1)[0]
        if path != PATH:
            self._answer(404, "Not Found", f"the metrics are at {PATH}\n".encode())
        elif method not in ("GET", "HEAD"):
            self._answer(405, "Method Not Allowed", b"GET or HEAD\n", extra="Allow: GET, HEAD\r\n")
        else:
            body = self.listener.render().encode()
            self._answer(200, "OK", body, content_type=CONTENT_TYPE, head_only=method == "HEAD")

    def _answer(
        self,
        status: int,
        reason: str,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        extra: str = "",
        head_only: bool = False,
    ) -> None:
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"{extra}Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        )
        self.out = head.encode() + (b"" if head_only else body)
        self._send()

    def _send(self) -> None:
        try:
            sent = self.conn.send(self.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        self.out = self.out[sent:]
        if not self.out:
            self.close()
            return
        self.listener.selector.modify(self.conn, selectors.EVENT_WRITE, self.on_event)

    def close(self) -> None:
        if self.conn in self.listener.clients:
            del self.listener.clients[self.conn]
            try:
                self.listener.selector.unregister(self.conn)
            except (KeyError, ValueError):
                pass
            self.conn.close()
