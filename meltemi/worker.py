"""A worker process: loads the application and serves it with meltemi._core.Worker.

The master forks one worker per slot and runs `run` in the child; `run`
returns the process's exit code.  The worker tells the master how it is doing
by writing one byte on its status pipe:

    b"R"  ready: the application is loaded and the worker accepts connections;
    b"M"  it has handled max_requests requests and would like to be replaced;
    b"S"  its resident memory exceeds max_rss: likewise;
    b"L"  it has served for worker_lifetime seconds: likewise.

Signals: SIGTERM and SIGINT drain gracefully (stop accepting, finish what is
in flight, close idle connections, at most graceful_timeout seconds; open
WebSockets of an ASGI application get close 1001 at once); SIGQUIT exits at
once.  RETIRE_SIGNAL (SIGUSR2) is the master replacing the worker (a SIGHUP
reload, a recycling): the same drain, but open WebSockets stay up until the
drain timeout and then get close 1012 (service restart), so their clients
reconnect to the new worker.  A worker whose master died drains and exits too.
"""

from __future__ import annotations

import ast
import ctypes
import importlib
import logging
import os
import random
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import log
from .config import Config, worker_config

# Exit code of a worker that could not load the application: the master stops
# instead of restarting it forever.
BOOT_ERROR = 3

# How often the main thread wakes up to look at max-requests and at its parent.
POLL_INTERVAL = 0.25
# The master's signal to a worker it replaces (see the module's doc).
RETIRE_SIGNAL = signal.SIGUSR2
# After the drain timeout of a replaced worker, how long its WebSockets get to finish the 1012 close handshake.
CLOSE_GRACE = 1.0

_logger = logging.getLogger("meltemi.worker")


class BootError(Exception):
    """The application cannot be loaded. str() is one line; `cause`, if set, has the traceback."""

    def __init__(self, message: str, cause: BaseException | None = None):
        super().__init__(message)
        self.cause = cause

    def report(self) -> None:
        """Prints the traceback (if any), then the one-line explanation."""
        if self.cause is not None:
            traceback.print_exception(self.cause, file=sys.stderr)
        log.fatal(str(self))


class AppLoader:
    """Knows how to load the WSGI application; `load()` raises BootError."""

    def __init__(self, name: str, load: Callable[[], Any]):
        self.name = name
        self._load = load

    def load(self) -> Any:
        try:
            app = self._load()
        except BootError:
            raise
        except (Exception, SystemExit) as exc:
            raise BootError(f"cannot import {self.name!r}: {_reason(exc)}", exc) from exc
        if not callable(app):
            raise BootError(f"cannot import {self.name!r}: {type(app).__name__} object is not a WSGI callable")
        return app

    @classmethod
    def from_spec(cls, spec: str) -> AppLoader:
        """`module`, `module:attribute`, `module:obj.attr` or `module:factory(args)`.

        The default attribute is `application` (what Django's wsgi.py defines).
        Raises ValueError when the text cannot be such a name.
        """
        module_name, _, expression = spec.partition(":")
        expression = expression or "application"
        if not module_name or not all(part.isidentifier() for part in module_name.split(".")):
            raise ValueError(spec)
        try:
            tree = ast.parse(expression, mode="eval").body
        except SyntaxError:
            raise ValueError(spec) from None
        call_args: tuple = ()
        call_kwargs: dict = {}
        is_call = isinstance(tree, ast.Call)
        if is_call:
            try:
                call_args = tuple(ast.literal_eval(arg) for arg in tree.args)
                call_kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in tree.keywords if kw.arg}
            except ValueError:
                raise ValueError(spec) from None
            tree = tree.func
        attributes = _dotted(tree)
        if attributes is None:
            raise ValueError(spec)

        def load() -> Any:
            module = importlib.import_module(module_name)
            obj: Any = module
            for index, attribute in enumerate(attributes):
                try:
                    obj = getattr(obj, attribute)
                except AttributeError:
                    where = ".".join([module_name, *attributes[:index]])
                    raise BootError(f"cannot import {spec!r}: {where!r} has no attribute {attribute!r}") from None
            if is_call:
                obj = obj(*call_args, **call_kwargs)
            return obj

        return cls(spec, load)


def _dotted(node: ast.expr) -> list[str] | None:
    """['a', 'b'] for `a.b`; None for anything that is not a dotted name."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else [*base, node.attr]
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"{exc.msg} ({exc.filename}, line {exc.lineno})"
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}) raised while importing"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Listener:
    """A bound, listening, non-blocking socket and the names WSGI reports for it."""

    sock: Any  # socket.socket
    server_name: str
    server_port: str
    label: str  # "http://127.0.0.1:8000" or "unix:/run/app.sock"

    def core_tuple(self) -> tuple[int, str, str]:
        return (self.sock.fileno(), self.server_name, self.server_port)


def load_api(spec: str) -> Any:
    """The meltemi.API named by 'module:attribute', compiled; raises BootError."""
    from .api import API

    module_name, _, attr = spec.partition(":")
    try:
        if os.environ.get("DJANGO_SETTINGS_MODULE"):
            # An API of a Django project served without its WSGI application:
            # its models need Django's app registry.
            import django
            from django.apps import apps

            if not apps.ready:
                django.setup()
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (Exception, SystemExit) as exc:
        raise BootError(f"cannot import the API {spec!r}: {_reason(exc)}", exc) from exc
    if not isinstance(obj, API):
        raise BootError(f"the API {spec!r} is a {type(obj).__name__}, not a meltemi.API")
    try:
        obj.compile()
    except (TypeError, ValueError) as exc:
        raise BootError(f"the API {spec!r} has a bad route: {exc}", exc) from exc
    return obj


def build(
    app: Any, listeners: list[Listener], config: Config, api: Any = None, metrics: Any = None, api_loop: bool = True
) -> Any:
    """A new, not yet started _core.Worker serving `app` on `listeners`, and
    `api` (a meltemi.API) or else the typed API of config.api, loaded now:
    after the application, so Django is set up. meltemi.testing builds its
    worker here too, so tests run with the production configuration (but with
    `api_loop` False: its async endpoints are awaited on the test's thread)."""
    from . import _core  # imported here: the CLI and the master work without it loaded

    if api is None and config.api:
        api = load_api(config.api)
    if api is not None:
        # The API's Request.request_id reads the configured field. Only with an API: a WSGI application
        # alone does not load the API's modules (nor msgspec).
        from .api import request

        request.request_id_field = config.request_id_header.lower()
    shared = None
    if metrics is not None:
        # (region, slot) from the master: the slot's API routes are named after their templates.
        names = [endpoint.route.path for endpoint in api.compile()] if api is not None else []
        shared = (metrics[0], metrics[1], names)
    access_fd = log.open_access_log(config.access_log)
    try:
        core = _core.Worker(
            app,
            [listener.core_tuple() for listener in listeners],
            worker_config(config),
            access_log=access_fd,
            error_log=log.application_error,
            api=api.c_routes() if api is not None else None,
            metrics=shared,
        )
    finally:
        if access_fd is not None:
            os.close(access_fd)  # the worker keeps its own duplicate
    if api is not None and api_loop and any(endpoint.is_async for endpoint in api.compile()):
        from .api import aio

        # The loop the API's async endpoints run on (meltemi/api/aio.py); `on_loop` routes are handed to it.
        try:
            if any(endpoint.on_loop for endpoint in api.compile()):
                aio.attach(core, config.loop, **runtime_options(config))
            else:
                aio.start(config.loop)
        except ImportError as exc:
            raise BootError(f"--loop {config.loop}: {exc}") from None
    return core


def runtime_options(config: Config) -> dict[str, Any]:
    """What an event loop's runtime takes from the configuration (the ASGI application's, the API's)."""
    return {
        "body_timeout": config.body_timeout,
        "write_timeout": config.write_timeout,
        "ws_ping_interval": config.ws_ping_interval,
        "ws_ping_timeout": config.ws_ping_timeout,
        "ws_max_size": config.ws_max_size,
        "ws_per_message_deflate": config.ws_per_message_deflate,
    }


def serves_asgi(app: Any, config: Config) -> bool:
    """Whether the application is called as ASGI (option interface; `auto` looks at the callable)."""
    if config.interface == "auto":
        from .asgi import is_asgi

        return is_asgi(app)
    return config.interface == "asgi"


def start_asgi(core: Any, app: Any, config: Config) -> Any:
    """The worker's ASGI runtime (meltemi/asgi/runtime.py): its loop started, its lifespan startup done, the
    worker's requests handed to it (before core.start()). Raises BootError."""
    from .asgi.runtime import LifespanError, Runtime

    if config.api:
        raise BootError(
            "--api is served with a WSGI application only (the typed API does not run on the ASGI loop yet)"
        )
    try:
        runtime = Runtime(
            core,
            app,
            loop=config.loop,
            lifespan=config.lifespan,
            **runtime_options(config),
        )
    except ImportError as exc:
        raise BootError(f"--loop {config.loop}: {exc}") from None
    runtime.start()
    _logger.info("ASGI application on the %s event loop", runtime.loop_name)
    try:
        runtime.startup()
    except LifespanError as exc:
        runtime.stop()
        raise BootError(str(exc)) from None
    return runtime


def _start_threads(core: Any, count: int) -> list[threading.Thread]:
    threads = []
    for index in range(count):
        # Daemon threads: a worker that has to exit before its drain finished
        # (graceful timeout) must not be held back by a thread inside a view.
        thread = threading.Thread(target=core.handle_requests, name=f"meltemi-handler-{index}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def _die_with_parent() -> None:
    """Asks Linux to send us SIGTERM when the master dies (PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the periodic getppid() check covers it


def reset_signals() -> None:
    """In a new worker, before it unblocks signals: forgets the master's handlers.

    Until the worker can drain, a stop signal just ends the process: nothing
    is in flight yet. SIGHUP is the master's business (it reloads).
    """
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGCHLD, RETIRE_SIGNAL):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def run(
    config: Config,
    loader: AppLoader,
    listeners: list[Listener],
    status_fd: int,
    master_pid: int,
    app: Any = None,
    metrics: Any = None,
) -> int:
    """The body of a worker process (after fork and reset_signals); returns its exit code. `metrics`: the
    master's metrics region and this worker's slot in it, or None."""
    _die_with_parent()
    if os.getppid() != master_pid:
        return 0

    if app is None:
        try:
            app = loader.load()
        except BootError as exc:
            exc.report()
            return BOOT_ERROR
    asgi = None
    try:
        core = build(app, listeners, config, metrics=metrics)
        if serves_asgi(app, config):
            asgi = start_asgi(core, app, config)
    except BootError as exc:
        exc.report()
        return BOOT_ERROR
    except Exception:
        _logger.exception("Cannot start the server for %s", loader.name)
        return BOOT_ERROR

    stopping = threading.Event()
    replaced = threading.Event()  # RETIRE_SIGNAL came first: WebSockets get 1012 at the drain timeout

    def on_stop(signum: int, frame: Any) -> None:
        stopping.set()
        core.shutdown()
        if asgi is not None:
            asgi.begin_shutdown()  # open WebSockets get close 1001
        aio = sys.modules.get("meltemi.api.aio")
        if aio is not None:
            aio.begin_shutdown()  # the API's open WebSockets too

    def on_retire(signum: int, frame: Any) -> None:
        if stopping.is_set():
            return
        replaced.set()
        stopping.set()
        core.shutdown()

    def on_quit(signum: int, frame: Any) -> None:
        os._exit(0)

    # Once started, the I/O thread answers at once (static files need no handler thread): a stop signal from
    # then on must drain, not kill. So the signals wait, blocked, until their handlers are in place.
    stop_signals = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, RETIRE_SIGNAL}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        core.start()
        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGQUIT, on_quit)
        signal.signal(RETIRE_SIGNAL, on_retire)
    except Exception:
        _logger.exception("Cannot start the server for %s", loader.name)
        return BOOT_ERROR
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    # An ASGI application runs on its loop: no handler thread takes requests.
    threads = [] if asgi else _start_threads(core, config.threads)
    _notify(status_fd, b"R")

    limit = 0
    if config.max_requests:
        limit = config.max_requests + random.randint(0, config.max_requests_jitter)
    retire_at = None
    if config.worker_lifetime:
        retire_at = time.monotonic() + config.worker_lifetime * (1 + random.random() / 10)
    asked_to_be_replaced = False
    deadline = None
    restarted = False  # a replaced worker's WebSockets were sent 1012
    drained = False
    while True:
        if core.join(POLL_INTERVAL):
            drained = True
            break
        if stopping.is_set():
            if deadline is None:
                deadline = time.monotonic() + config.graceful_timeout
            elif time.monotonic() >= deadline:
                if asgi is not None and replaced.is_set() and not restarted:
                    # The drain timeout of a replaced worker: what is still open is a WebSocket (or a
                    # long request); WebSockets are told to reconnect, and get a moment to close.
                    restarted = True
                    asgi.begin_shutdown(1012, "service restart")
                    deadline = time.monotonic() + CLOSE_GRACE
                    continue
                _logger.warning("Graceful timeout (%gs) reached; exiting with work in flight", config.graceful_timeout)
                break
            continue
        if not asked_to_be_replaced:
            recycle = _recycle_reason(core, config, limit, retire_at)
            if recycle:
                asked_to_be_replaced = True
                _logger.info("%s; asking to be replaced", recycle[1])
                _notify(status_fd, recycle[0])
        if os.getppid() != master_pid:
            _logger.warning("The master (pid %d) is gone; stopping", master_pid)
            on_stop(signal.SIGTERM, None)

    if drained:
        for thread in threads:
            thread.join(1.0)
    if asgi is not None:
        if drained:
            asgi.shutdown(config.graceful_timeout)
        asgi.stop()
    if os.environ.get("MELTEMI_DEBUG_COUNTERS") == "1":
        stats = core.stats()
        fields = " ".join(f"{name}={stats[name]}" for name in COUNTERS)
        sys.stderr.write(f"meltemi-counters pid={os.getpid()} {fields}\n")
        sys.stderr.flush()
    return 0


def _recycle_reason(core: Any, config: Config, limit: int, retire_at: float | None) -> tuple[bytes, str] | None:
    """Whether this worker should be replaced now: its status byte for the master (see RECYCLE) and a line for
    the log, or None."""
    if limit and core.requests_handled >= limit:
        return b"M", f"Handled {core.requests_handled} requests (max-requests {limit})"
    if config.max_rss:
        rss = _rss_bytes()
        if rss > config.max_rss:
            return b"S", f"Resident memory {rss >> 20} MiB is over max-rss ({config.max_rss >> 20} MiB)"
    if retire_at is not None and time.monotonic() >= retire_at:
        return b"L", f"Served for its lifetime (worker-lifetime {config.worker_lifetime:g}s)"
    return None


# What a worker tells the master on its status pipe when it wants to be replaced, and why.
RECYCLE = {ord("M"): "reached max-requests", ord("S"): "exceeded max-rss", ord("L"): "reached worker-lifetime"}


def _rss_bytes() -> int:
    """This process's resident memory (the second field of /proc/self/statm, in pages)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


COUNTERS = (
    "connections_opened",
    "connections_closed",
    "requests_started",
    "requests_finished",
    "buffers_acquired",
    "buffers_released",
    "output_bytes_queued",
    "output_bytes_released",
)


def _notify(fd: int, message: bytes) -> None:
    try:
        os.write(fd, message)
    except OSError:
        pass  # the master is gone; the getppid() check stops this worker


def serve_in_process(config: Config, loader: AppLoader, listeners: list[Listener]) -> None:
    """Serves in the calling process and thread, forever: for `runmeltemi --dev`.

    Django's autoreloader runs this in a thread of a child process it kills and
    restarts on each code change, so there is no master, no fork and no signal
    handling here.  Raises BootError when the application cannot be loaded.
    """
    app = loader.load()
    core = build(app, listeners, config)
    asgi = start_asgi(core, app, config) if serves_asgi(app, config) else None
    core.start()
    if asgi is None:
        _start_threads(core, config.threads)
    while not core.join(None):
        pass
