"""The master process: binds the listening sockets, forks workers and supervises them.

Sockets.  Every address is bound here, before any fork, so a port in use is
reported once and plainly.  A TCP address gets one socket per worker *slot*,
all bound with SO_REUSEPORT: the kernel then spreads new connections over the
slots by hash, evenly, and a busy worker does not win accept() races the way
it does on one shared socket.  Each worker keeps only its own slot's sockets.
The master keeps them all, so a slot's socket (and the connections queued on
it) outlives the worker serving it: a replacement worker for the slot accepts
from the same socket, and nothing queued is lost.  A Unix socket cannot be
spread that way; it is one socket shared by all workers.

Supervision.  One loop waits (selectors, no busy loop) on a self-pipe that
receives signal numbers (signal.set_wakeup_fd) and on one status pipe per
worker (see meltemi.worker).  Within a slot, a worker that reports ready
retires every older worker of that slot: this one rule gives SIGHUP reloads
and max-requests recycling without a moment when the slot has nobody
accepting.

    SIGTERM, SIGINT   graceful stop: workers drain, up to graceful_timeout
    SIGINT twice      immediate stop
    SIGQUIT           immediate stop
    SIGHUP            replace every worker (new ones first, then the old drain;
                      they are sent RETIRE_SIGNAL, see meltemi.worker)

A worker that cannot load the application exits with BOOT_ERROR.  At start
that stops the server (restarting would fail the same way forever); during a
reload or a recycling, the older worker of the slot goes on serving.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import socket
import stat
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from . import metrics as metrics_module
from . import sharedmem
from . import worker as worker_module
from .config import Address, Config
from .reloader import DEBOUNCE, SourceWatcher, source_root
from .systemd import Notifier, listen_fds
from .worker import BOOT_ERROR, RECYCLE, RETIRE_SIGNAL, AppLoader, Listener

# The restart reason (meltemi_worker_restarts_total) of each status byte a worker asks to be replaced with.
RECYCLE_REASON = {ord("M"): "max-requests", ord("S"): "max-rss", ord("L"): "lifetime"}

_logger = logging.getLogger("meltemi.master")

# A worker that dies within this many seconds of its start counts as a crash
# at boot: its slot is restarted with exponential backoff, up to MAX_BACKOFF.
QUICK_DEATH = 2.0
MAX_BACKOFF = 30.0
# Time the workers get to exit on an immediate stop before they are killed,
# and the margin above graceful_timeout (workers enforce it themselves and
# should get the chance to print their counters).
QUIT_TIMEOUT = 2.0
KILL_MARGIN = 2.0
UNIX_SOCKET_MODE = 0o660
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGCHLD)


class BindError(Exception):
    """An address cannot be bound. str() is the one line for the user."""


# --- sockets ------------------------------------------------------------------


@dataclass
class Sockets:
    """The listening sockets: per slot for TCP, shared for Unix paths."""

    slots: list[list[Listener]] = field(default_factory=list)
    shared: list[Listener] = field(default_factory=list)
    unix_paths: list[tuple[str, int]] = field(default_factory=list)  # (path, inode) we created

    def for_slot(self, slot: int) -> list[Listener]:
        return self.slots[slot] + self.shared

    def all(self) -> list[Listener]:
        return [listener for slot in self.slots for listener in slot] + self.shared

    def labels(self) -> list[str]:
        """One label per address, in --bind order."""
        return [listener.label for listener in (self.slots[0] if self.slots else [])] + [
            listener.label for listener in self.shared
        ]

    def close_others(self, slot: int) -> None:
        """In a worker: closes every slot's sockets but its own."""
        for index, listeners in enumerate(self.slots):
            if index != slot:
                for listener in listeners:
                    listener.sock.close()

    def close(self) -> None:
        for listener in self.all():
            listener.sock.close()
        for path, inode in self.unix_paths:
            # Remove the file only if it is still ours: a newer server may
            # already have replaced it.
            try:
                if os.stat(path).st_ino == inode:
                    os.unlink(path)
            except OSError:
                pass


def bind(addresses: tuple[Address, ...], slots: int, backlog: int) -> Sockets:
    """Binds every address (one socket per slot for TCP); raises BindError."""
    sockets = Sockets(slots=[[] for _ in range(slots)])
    try:
        for address in addresses:
            if address.is_unix:
                listener, inode = _bind_unix(address, backlog)
                sockets.shared.append(listener)
                sockets.unix_paths.append((address.path, inode))
            else:
                for slot, listener in enumerate(_bind_tcp(address, slots, backlog)):
                    sockets.slots[slot].append(listener)
    except BaseException:
        sockets.close()
        raise
    return sockets


def _resolve(address: Address) -> tuple[int, tuple]:
    try:
        infos = socket.getaddrinfo(
            address.host, address.port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise BindError(f"cannot bind {address}: {exc.strerror}") from None
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def _bind_tcp(address: Address, count: int, backlog: int) -> list[Listener]:
    family, sockaddr = _resolve(address)
    # SO_REUSEPORT would let us join a group of sockets another process (of
    # the same user) has on this port, and share its traffic silently. So
    # first bind once without it: that fails if anyone has the port.  The
    # same probe picks the port when 0 was asked for.
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(sockaddr)
        port = probe.getsockname()[1]
    except OSError as exc:
        raise BindError(f"cannot bind {address}: {_strerror(exc)}") from None
    finally:
        probe.close()
    sockaddr = (sockaddr[0], port, *sockaddr[2:])
    host = sockaddr[0]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    listeners: list[Listener] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            listeners.append(Listener(sock, shown, str(port), f"http://{shown}:{port}"))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(sockaddr)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError as exc:
        for listener in listeners:
            listener.sock.close()
        raise BindError(f"cannot bind {address}: {_strerror(exc)}") from None
    return listeners


def _bind_unix(address: Address, backlog: int) -> tuple[Listener, int]:
    path = address.path
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise BindError(f"cannot bind {address}: {_strerror(exc)}") from None
    else:
        if not stat.S_ISSOCK(mode):
            raise BindError(f"cannot bind {address}: a file that is not a socket is in the way")
        # A socket file nobody listens on is left over from a server that did
        # not clean up; one that answers belongs to a running server.
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)
        else:
            raise BindError(f"cannot bind {address}: address already in use")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, UNIX_SOCKET_MODE)
        sock.listen(backlog)
        sock.setblocking(False)
        inode = os.stat(path).st_ino
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot bind {address}: {_strerror(exc)}") from None
    return Listener(sock, "localhost", "80", f"unix:{path}"), inode


def _strerror(exc: OSError) -> str:
    if exc.errno is not None:
        return os.strerror(exc.errno).lower()
    return str(exc)


# --- supervision --------------------------------------------------------------


@dataclass(eq=False)
class Child:
    slot: int
    pid: int
    fd: int  # read end of its status pipe; -1 once it is closed
    seq: int  # order of creation: within a slot, a ready child retires older ones
    started: float
    ready: bool = False
    retiring: bool = False  # told to drain; its exit is expected
    boot_killed: bool = False  # killed for not being ready within boot_timeout
    metrics_slot: int | None = None  # its slot of the metrics region (option metrics), freed once it is reaped
    replaces: str | None = None  # why it was started to replace a running worker (a restart reason), if it was


RUNNING, STOPPING = "running", "stopping"


class Master:
    def __init__(self, config: Config, loader: AppLoader, app: Any = None):
        self.config = config
        self.loader = loader
        self.app = app  # preloaded application, or None: each worker loads it
        self.sockets = Sockets()
        self.children: dict[int, Child] = {}
        self.selector: selectors.BaseSelector | None = None
        self.state = RUNNING
        self.exit_code = 0
        self.seq = 0
        self.failures = [0] * config.workers  # quick deaths in a row, per slot
        self.respawn_at: dict[int, float] = {}  # slot -> when to start it again
        self.kill_at: float | None = None
        self.wake_r = self.wake_w = -1
        self.pid = os.getpid()
        self.notifier = Notifier()
        # Readiness is announced (sd_notify) once every slot has a ready worker younger than this sequence
        # number: 0 at start, the last worker before a reload during one; None once announced.
        self.announce_after: int | None = 0
        self.pid_file: str | None = None
        self.watcher: SourceWatcher | None = None  # --reload
        self.reload_at: float | None = None
        self.changed_file = ""
        self.metrics: metrics_module.Metrics | None = None  # option metrics

    # The loop ------------------------------------------------------------

    def run(self) -> int:
        """Serves until stopped; returns the exit code. Raises BindError before forking anything."""
        try:
            activated = listen_fds()
        except (ValueError, OSError) as exc:
            raise BindError(str(exc)) from None
        if activated:
            # systemd bound the sockets (a .socket unit): every worker shares each of them.
            self.sockets = Sockets(slots=[[] for _ in range(self.config.workers)], shared=activated)
        else:
            self.sockets = bind(self.config.bind, self.config.workers, self.config.backlog)
        try:
            # Signals first: from the moment the address is announced, a SIGTERM is a graceful stop (handled in
            # the loop below, after the workers started), not the default death.
            self._install_signals()
            if self.config.metrics is not None:
                self._serve_metrics()
            self._write_pid_file()
            _drop_privileges(self.config, self.sockets)
            if self.config.reload:
                self._watch_sources()
            for label in self.sockets.labels():
                _logger.info("Listening at %s", label)
            _logger.info(
                "Using %d worker(s) of %d thread(s) for %s", self.config.workers, self.config.threads, self.loader.name
            )
            # Before any fork: every worker inherits the same rate-limit counters.
            sharedmem.rate_limit_table()
            for slot in range(self.config.workers):
                self._spawn(slot)
            while self.children or self.state == RUNNING:
                self._wait()
            _logger.info("Shut down")
            return self.exit_code
        finally:
            self._remove_pid_file()
            self.notifier.close()
            if self.watcher is not None:
                self.watcher.close()
            # On the way out the signals stay ignored, not defaulted: a second SIGTERM from a supervisor that
            # arrives between the last worker's exit and the master's must not turn exit code 0 into -15.
            self._restore_signals(signal.SIG_IGN if self.state == STOPPING else signal.SIG_DFL)
            self.sockets.close()
            if self.metrics is not None and self.metrics.listener is not None:
                self.metrics.listener.sock.close()

    def _wait(self) -> None:
        assert self.selector is not None
        for key, events in self.selector.select(self._timeout()):
            if key.fd == self.wake_r:
                self._on_signals()
            elif self.watcher is not None and key.fd == self.watcher.fileno():
                self._on_source_change()
            elif callable(key.data):  # the metrics listener and its clients
                key.data(events)
            else:
                self._on_status(key.data)
        self._reap()
        now = time.monotonic()
        if self.metrics is not None and self.metrics.listener is not None:
            self.metrics.listener.expire(now)
        if self.reload_at is not None and now >= self.reload_at:
            self.reload_at = None
            if self.state == RUNNING:
                _logger.info("%s changed: replacing the workers", self.changed_file)
                self._reload()
        for slot, when in list(self.respawn_at.items()):
            if when <= now:
                del self.respawn_at[slot]
                self._spawn(slot)
        for child in list(self.children.values()):
            if (
                not (child.ready or child.retiring or child.boot_killed)
                and now >= child.started + self.config.boot_timeout
            ):
                self._boot_timed_out(child)
        if self.kill_at is not None and now >= self.kill_at:
            self.kill_at = None
            for child in self.children.values():
                _logger.warning("Killing worker %d (pid %d): it did not stop in time", child.slot + 1, child.pid)
                _kill(child.pid, signal.SIGKILL)

    def _timeout(self) -> float | None:
        deadlines = list(self.respawn_at.values())
        deadlines += [
            child.started + self.config.boot_timeout
            for child in self.children.values()
            if not (child.ready or child.retiring or child.boot_killed)
        ]
        if self.kill_at is not None:
            deadlines.append(self.kill_at)
        if self.reload_at is not None:
            deadlines.append(self.reload_at)
        if self.metrics is not None and self.metrics.listener is not None:
            scrape = self.metrics.listener.deadline()
            if scrape is not None:
                deadlines.append(scrape)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    # Signals -------------------------------------------------------------

    def _install_signals(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        # The handlers do nothing: the C-level handler writes the signal
        # number to wake_w, and the loop reads it from there, in order.
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, _ignore)

    def _restore_signals(self, handler: Any = signal.SIG_DFL) -> None:
        if self.selector is None:
            return
        signal.set_wakeup_fd(-1)
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, signal.SIG_DFL if signum == signal.SIGCHLD else handler)
        self.selector.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.selector = None

    def _on_signals(self) -> None:
        try:
            data = os.read(self.wake_r, 256)
        except BlockingIOError:
            return
        for signum in data:
            if signum in (signal.SIGTERM, signal.SIGINT):
                if self.state == RUNNING:
                    _logger.info("Received %s: stopping gracefully", _signal_name(signum))
                    self._stop(graceful=True)
                elif signum == signal.SIGINT:
                    _logger.info("Received SIGINT again: stopping now")
                    self._stop(graceful=False)
            elif signum == signal.SIGQUIT:
                _logger.info("Received SIGQUIT: stopping now")
                self._stop(graceful=False)
            elif signum == signal.SIGHUP and self.state == RUNNING:
                _logger.info("Received SIGHUP: replacing the workers")
                self._reload()

    # Workers -------------------------------------------------------------

    def _spawn(self, slot: int, replaces: str | None = None) -> None:
        metrics_slot = self.metrics.claim() if self.metrics is not None else None
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        # Anything buffered would otherwise be written twice, once per process.
        sys.stdout.flush()
        sys.stderr.flush()
        # Signals stay blocked across fork until the child has dropped the
        # master's handlers: a SIGTERM meant for the new worker would
        # otherwise be swallowed by the inherited (do-nothing) handler.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        try:
            pid = os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            if metrics_slot is not None:
                self.metrics.region.release(metrics_slot)
            raise
        if pid == 0:
            code = 1
            try:
                os.close(read_fd)
                self._become_worker(slot)
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                shared = (self.metrics.region.map, metrics_slot) if metrics_slot is not None else None
                code = worker_module.run(
                    self.config, self.loader, self.sockets.for_slot(slot), write_fd, self.pid, self.app, shared
                )
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(write_fd)
        self.seq += 1
        child = Child(slot, pid, read_fd, self.seq, time.monotonic(), metrics_slot=metrics_slot, replaces=replaces)
        self.children[pid] = child
        assert self.selector is not None
        self.selector.register(read_fd, selectors.EVENT_READ, child)
        _logger.info("Booting worker %d (pid %d)", slot + 1, pid)

    def _become_worker(self, slot: int) -> None:
        """In the child, before it runs: drops what belongs to the master and to the other slots."""
        worker_module.reset_signals()
        if self.selector is not None:
            self.selector.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        for child in self.children.values():
            if child.fd >= 0:
                os.close(child.fd)
        if self.watcher is not None:
            self.watcher.close()
        if self.metrics is not None and self.metrics.listener is not None:
            self.metrics.listener.close_in_child()
        self.sockets.close_others(slot)

    def _on_status(self, child: Child) -> None:
        try:
            data = os.read(child.fd, 64)
        except OSError:
            data = b""
        if not data:
            # The worker exited (or closed its end): waitpid tells how.
            self._close_status(child)
            return
        for byte in data:
            if byte == ord("R"):
                self._on_ready(child)
            elif byte in RECYCLE and self.state == RUNNING and not child.retiring:
                if not any(other.seq > child.seq for other in self._active(child.slot)):
                    _logger.info("Worker %d (pid %d) %s: replacing it", child.slot + 1, child.pid, RECYCLE[byte])
                    self._spawn(child.slot, replaces=RECYCLE_REASON[byte])

    def _on_ready(self, child: Child) -> None:
        child.ready = True
        _logger.debug("Worker %d (pid %d) is ready", child.slot + 1, child.pid)
        if self.state != RUNNING:
            return
        for older in self._active(child.slot):
            if older.seq < child.seq:
                _logger.info(
                    "Worker %d: pid %d replaces pid %d, which now drains", child.slot + 1, child.pid, older.pid
                )
                self._retire(older, RETIRE_SIGNAL)  # a drain whose WebSockets end with 1012, not 1001
                if child.replaces is not None:  # counted once the replacement is serving, not when it may fail
                    self._count_restart(child.replaces)
                    child.replaces = None
        self._announce_if_serving()

    def _announce_if_serving(self) -> None:
        """Tells systemd READY=1 once every slot has a ready worker started after the last (re)load began."""
        after = self.announce_after
        if after is None:
            return
        for slot in range(self.config.workers):
            if not any(child.ready and child.seq > after for child in self._active(slot)):
                return
        self.announce_after = None
        self.notifier.ready(f"serving with {self.config.workers} worker(s)")

    def _boot_timed_out(self, child: Child) -> None:
        name = f"Worker {child.slot + 1} (pid {child.pid})"
        serving = any(other.ready for other in self._active(child.slot) if other is not child)
        _logger.error(
            "%s did not load the application within boot-timeout (%gs); killing it%s",
            name,
            self.config.boot_timeout,
            "; the previous worker goes on serving" if serving else "",
        )
        if serving:
            child.retiring = True  # its exit is expected: the slot is served
        _kill(child.pid, signal.SIGKILL)
        child.boot_killed = True  # killed once; waitpid reports it

    def _active(self, slot: int) -> list[Child]:
        return [child for child in self.children.values() if child.slot == slot and not child.retiring]

    def _retire(self, child: Child, signum: int = signal.SIGTERM) -> None:
        child.retiring = True
        _kill(child.pid, signum)

    def _close_status(self, child: Child) -> None:
        if child.fd >= 0:
            assert self.selector is not None
            self.selector.unregister(child.fd)
            os.close(child.fd)
            child.fd = -1

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            if child.metrics_slot is not None and self.metrics is not None:
                # The process is gone: nothing writes to its slot any more.
                self.metrics.region.release(child.metrics_slot)
            self._close_status(child)
            self._on_exit(child, os.waitstatus_to_exitcode(status))

    def _on_exit(self, child: Child, code: int) -> None:
        name = f"Worker {child.slot + 1} (pid {child.pid})"
        how = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
        if code == BOOT_ERROR and not child.ready:
            # The application cannot be loaded: restarting would fail the same
            # way forever. The worker already printed why.
            if self.state == RUNNING and any(other.ready for other in self._active(child.slot)):
                # A reload or a recycling found broken code: the workers that
                # loaded the previous code go on serving until it is fixed.
                _logger.error("%s could not load the application; the previous worker goes on serving", name)
                return
            _logger.error("%s could not load the application; stopping", name)
            self.exit_code = BOOT_ERROR
            if self.state == RUNNING:
                self._stop(graceful=True)
            return
        if self.state != RUNNING or child.retiring:
            _logger.info("%s %s", name, how)
            return
        _logger.error("%s %s unexpectedly", name, how)
        if self._active(child.slot) or child.slot in self.respawn_at:
            return  # a younger worker already serves the slot
        self._count_restart("boot-timeout" if child.boot_killed else "crash")
        if child.ready and time.monotonic() - child.started > QUICK_DEATH:
            self.failures[child.slot] = 0
            self._spawn(child.slot)
            return
        self.failures[child.slot] += 1
        delay = min(0.1 * 2 ** self.failures[child.slot], MAX_BACKOFF)
        _logger.warning("Worker %d keeps dying; starting it again in %.1fs", child.slot + 1, delay)
        self.respawn_at[child.slot] = time.monotonic() + delay

    def _count_restart(self, reason: str, count: int = 1) -> None:
        if self.metrics is not None:
            self.metrics.restarted(reason, count)

    # Metrics ---------------------------------------------------------------

    def _serve_metrics(self) -> None:
        """Creates the shared region (before any fork) and binds the scrape listener. Raises BindError."""
        assert self.selector is not None
        self.metrics = metrics_module.Metrics(self.config.metrics, self.config.workers)
        try:
            self.metrics.listener = metrics_module.Listener(self.config.metrics, self.selector, self._render_metrics)
        except metrics_module.BindError as exc:
            raise BindError(str(exc)) from None
        _logger.info("Metrics at %s", self.metrics.listener.url)

    def _render_metrics(self) -> str:
        assert self.metrics is not None
        live = {
            child.metrics_slot: metrics_module.WorkerInfo(child.slot + 1, child.pid)
            for child in self.children.values()
            if child.metrics_slot is not None
        }
        return self.metrics.render(live)

    def _reload(self) -> None:
        self.notifier.reloading()
        self.announce_after = self.seq
        self.respawn_at.clear()
        for slot in range(self.config.workers):
            self.failures[slot] = 0
            self._spawn(slot, replaces="reload")

    def _stop(self, graceful: bool) -> None:
        if self.state == RUNNING:
            self.notifier.stopping()
        self.state = STOPPING
        self.respawn_at.clear()
        # No worker will be started again: give up the listening sockets now, so that (with the workers
        # giving up theirs as they begin to drain) a new client is refused at once rather than left in
        # a backlog nobody accepts from until the drain ends.
        self.sockets.close()
        signum = signal.SIGTERM if graceful else signal.SIGQUIT
        for child in self.children.values():
            self._retire(child, signum)
        timeout = self.config.graceful_timeout + KILL_MARGIN if graceful else QUIT_TIMEOUT
        deadline = time.monotonic() + timeout
        self.kill_at = deadline if self.kill_at is None else min(self.kill_at, deadline)

    # --reload --------------------------------------------------------------

    def _watch_sources(self) -> None:
        try:
            root = source_root(self.loader.name)
            self.watcher = SourceWatcher(root)
        except (ValueError, OSError) as exc:
            raise BindError(str(exc)) from None
        assert self.selector is not None
        self.selector.register(self.watcher.fileno(), selectors.EVENT_READ)
        _logger.info("Watching %s for changes to .py files (%d folders)", root, len(self.watcher.paths))

    def _on_source_change(self) -> None:
        assert self.watcher is not None
        changed = self.watcher.changed()
        if changed:
            # A quiet period first: an editor or a checkout writes several files in a burst.
            self.changed_file = os.path.relpath(changed[0], self.watcher.root)
            self.reload_at = time.monotonic() + DEBOUNCE

    # The pid file ---------------------------------------------------------

    def _write_pid_file(self) -> None:
        path = self.config.pid
        if not path:
            return
        try:
            # Written whole under another name, then renamed: a reader never sees a partial file.
            partial = f"{path}.{self.pid}.tmp"
            with open(partial, "w") as f:
                f.write(f"{self.pid}\n")
            os.replace(partial, path)
        except OSError as exc:
            raise BindError(f"cannot write the pid file {path}: {exc.strerror}") from None
        self.pid_file = path

    def _remove_pid_file(self) -> None:
        path, self.pid_file = self.pid_file, None
        if path is None:
            return
        try:
            with open(path) as f:
                ours = f.read().strip() == str(self.pid)
            if ours:  # a newer server may have written its own
                os.unlink(path)
        except OSError as exc:
            _logger.warning("Cannot remove the pid file %s: %s", path, exc.strerror)


def _drop_privileges(config: Config, sockets: Sockets) -> None:
    """Runs the master (and so its workers) as config.user / config.group from now on. Raises BindError."""
    if not config.user and not config.group:
        return
    import grp
    import pwd

    try:
        user = pwd.getpwnam(config.user) if config.user else None
        gid = grp.getgrnam(config.group).gr_gid if config.group else user.pw_gid
        uid = user.pw_uid if user else os.getuid()
        # The Unix socket files we created belong to the new owner, so the server can remove them at exit.
        for path, _ in sockets.unix_paths:
            os.chown(path, uid, gid)
        if user is not None:
            os.initgroups(user.pw_name, gid)
        else:
            os.setgroups([])
        os.setgid(gid)
        if user is not None:
            os.setuid(uid)
    except PermissionError:
        raise BindError("--user/--group: changing the user or group needs root") from None
    except (OSError, KeyError) as exc:
        raise BindError(f"--user/--group: {exc}") from None
    _logger.info("Running as user %s, group %s", config.user or uid, config.group or gid)


def _ignore(signum: int, frame: Any) -> None:
    """The Python-level handler; the work happens in Master._on_signals."""


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
