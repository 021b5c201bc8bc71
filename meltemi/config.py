"""meltemi's configuration: one declaration per option.

Every option is declared once, in `OPTIONS`.  That declaration gives its
command-line flag (`--max-requests`), its environment variable
(`MELTEMI_MAX_REQUESTS`), its key in the Django setting `MELTEMI`
(`MELTEMI = {"MAX_REQUESTS": 1000}`) and its entry in docs/config.md, which
scripts/gen_config_docs.py writes from this module.

A value is taken from the first of these places that sets it:
command line > environment > Django setting > default.

Every bad value ends in a `ConfigError` whose text is one line naming where
the value came from, what was expected and what was given, e.g.
"--workers: expected a positive integer or 'auto', got 'x'".
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .values import (  # the option value types, also used through this module by callers
    AccessLog,
    Account,
    Address,
    Bind,
    Choice,
    Codings,
    ConfigError,
    CorsPolicy,
    FieldName,
    FilePath,
    Flag,
    Integer,
    MetricsAddress,
    Mount,
    MountType,
    ObjectPath,
    OutOfRange,
    Seconds,
    Size,
    TrustedProxies,
    ValueType,
    Workers,
)

__all__ = [
    "Config",
    "ConfigError",
    "Mount",
    "OPTIONS",
    "resolve",
    "worker_config",
]

ENV_PREFIX = "MELTEMI_"
DJANGO_SETTING = "MELTEMI"

# Free-threaded CPython (3.13t/3.14t, scripts/build-python ft) running without
# the GIL: handler threads run Python on several cores at once, so a few
# defaults differ (`Option.free_threaded_default`; docs/design.md,
# "Free-threaded CPython"). With PYTHON_GIL=1 the GIL build's defaults apply.
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED")) and not sys._is_gil_enabled()
# Handler threads per worker there: one per core, and at least the GIL build's 4
# (a view that blocks holds a thread).
FREE_THREADED_THREADS = max(4, os.cpu_count() or 1)


# --- the declarations -----------------------------------------------------------


@dataclass(frozen=True)
class Option:
    name: str
    type: ValueType
    default: Any
    help: str
    section: str
    short: str | None = None
    # Repeatable: the command line and the environment give a list, which
    # replaces (not extends) the list from a lower-precedence source.
    multiple: bool = False
    # A field of the same name in WorkerConfig, the object meltemi._core.Worker
    # takes (see worker_config).
    core: bool = False
    # The default on free-threaded CPython without the GIL (FREE_THREADED), where
    # it differs, and how docs/config.md states it.
    free_threaded_default: Any = None
    free_threaded_shown: str | None = None
    flags: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        flag = "--" + self.name.replace("_", "-")
        object.__setattr__(self, "flags", (self.short, flag) if self.short else (flag,))

    @property
    def flag(self) -> str:
        return self.flags[-1]

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def setting(self) -> str:
        return self.name.upper()

    @property
    def default_value(self) -> Any:
        """The default on this interpreter."""
        if FREE_THREADED and self.free_threaded_default is not None:
            return self.free_threaded_default
        return self.default

    def show_default(self) -> str:
        """The GIL build's default, as the docs write it."""
        if self.multiple:
            return " ".join(self.type.show(item) for item in self.default)
        return self.type.show(self.default)


SERVER = "Server socket"
PROCESSES = "Processes and threads"
LIMITS = "Request limits"
TIMEOUTS = "Timeouts"
LOGGING = "Logging"
COMPRESSION = "Compression"
STATIC = "Static and media files"
API = "Typed API"
METRICS = "Metrics"
SECTIONS = (SERVER, PROCESSES, TIMEOUTS, LIMITS, COMPRESSION, STATIC, API, LOGGING, METRICS)

# The longest timeout: a week, in milliseconds, still fits the C server's int.
MAX_TIMEOUT = 7 * 24 * 3600.0

OPTIONS: tuple[Option, ...] = (
    Option(
        "bind",
        Bind(),
        (Address("127.0.0.1", 8000),),
        "Address to listen on: `HOST:PORT`, `[IPV6]:PORT` or `unix:PATH`. Repeat the flag to listen on several "
        "addresses; in the environment, separate them with commas or spaces. Port 0 picks a free port. A stale "
        "Unix socket file is replaced; the new one gets mode 0660.",
        SERVER,
        short="-b",
        multiple=True,
    ),
    Option(
        "backlog",
        Integer(minimum=1),
        2048,
        "Length of each listening socket's queue of connections not yet accepted (capped by the kernel's "
        "`net.core.somaxconn`).",
        SERVER,
    ),
    Option(
        "url_scheme",
        Choice("http", "https"),
        "http",
        "The `wsgi.url_scheme` given to the application. Set `https` when a proxy in front of meltemi "
        "terminates TLS and only that proxy can reach meltemi.",
        SERVER,
        core=True,
    ),
    Option(
        "forwarded_allow_ips",
        TrustedProxies(),
        ("127.0.0.0/8", "::1/128", "unix"),
        "The proxies whose `Forwarded` (RFC 7239) or `X-Forwarded-For`, `-Proto` and `-Host` fields are "
        "believed: addresses and CIDR ranges (`10.0.0.0/8`, `fd00::/8`), `unix` for peers on a Unix socket, "
        "`*` for every peer (only when nothing but the proxy can reach meltemi), `none` for nobody. From a "
        "trusted peer, the client is the rightmost hop of the chain that is not trusted itself; its address "
        "becomes `REMOTE_ADDR`, the access log's client and the rate limits' `ip` key, and the proxy's scheme "
        "and host become `wsgi.url_scheme` and `HTTP_HOST`. From any other peer these fields are ignored. "
        'docs/api.md ("Trusted proxies") has the rules.',
        SERVER,
        core=True,
    ),
    Option(
        "workers",
        Workers(),
        1,
        "Number of worker processes; `auto` is one per CPU core (`os.cpu_count()`). Each worker has its own "
        "listening socket (SO_REUSEPORT), so the kernel spreads new connections evenly over the workers.",
        PROCESSES,
        short="-w",
    ),
    Option(
        "threads",
        Integer(minimum=1),
        4,
        "Python threads per worker that run the application. A view that blocks (database, `time.sleep`) holds "
        "one thread; the worker's other connections go on being served by the others. On free-threaded CPython "
        "(3.14t) the threads run Python on as many cores at once, so one worker can use every core: the default "
        "there is one thread per core, at least 4.",
        PROCESSES,
        core=True,
        free_threaded_default=FREE_THREADED_THREADS,
        free_threaded_shown="one per CPU core, at least 4",
    ),
    Option(
        "interface",
        Choice("auto", "wsgi", "asgi"),
        "auto",
        "How the application is called. `auto`: ASGI 3 when the application is a coroutine function or an "
        "object whose `__call__` is one (Django's `ASGIHandler`, Starlette, FastAPI), WSGI otherwise. With "
        "`runmeltemi`, `asgi` (or a Django setting `ASGI_APPLICATION`) serves the project's ASGI application. "
        "An ASGI application runs on one event loop per worker (docs/asgi.md); `threads` then does not apply.",
        PROCESSES,
    ),
    Option(
        "loop",
        Choice("auto", "asyncio", "uvloop"),
        "auto",
        "The event loop of an ASGI application: `uvloop` (an error if it is not installed), `asyncio` (the "
        "standard library's), or `auto`: uvloop when it is installed.",
        PROCESSES,
    ),
    Option(
        "lifespan",
        Choice("auto", "on", "off"),
        "auto",
        'The ASGI lifespan protocol (startup and shutdown events, `scope["state"]`). `on`: an application '
        "that fails it stops the worker at boot with the reason; `auto`: as `on`, except that an application "
        "raising before startup completes is taken not to support lifespan; `off`: no lifespan events.",
        PROCESSES,
    ),
    Option(
        "dispatch",
        Choice("lazy", "eager"),
        "lazy",
        "How the I/O thread hands requests to the handler threads. `lazy`: a queued request wakes a sleeping "
        "handler only when no handler is running; a running one takes the next request itself when it is done, so "
        "under load one handler answers a batch and the GIL is not passed around (more handlers are woken by "
        "`stall_ms` when the running ones block). `eager`: every queued request wakes a sleeping handler, so "
        "handlers run side by side; the default on free-threaded CPython, where they run on several cores. "
        'docs/design.md ("Dispatch policy", "Free-threaded CPython") has the measurements.',
        PROCESSES,
        free_threaded_default="eager",
        free_threaded_shown="eager",
    ),
    Option(
        "stall_ms",
        Integer(minimum=0, maximum=1000),
        2,
        "With `lazy` dispatch: when requests have waited this many milliseconds while the running handlers took "
        "none, and no busy handler is running or runnable (its state in `/proc/self/task/<tid>/stat`), one more "
        "handler is woken: the busy ones are blocked (a sleep, a database query). `0` never wakes one for a stall: "
        "requests queued behind a blocking view then wait for it.",
        PROCESSES,
    ),
    Option(
        "sched_batch",
        Choice("auto", "on", "off"),
        "auto",
        "Run the I/O thread and the handler threads under Linux's `SCHED_BATCH` policy (no wake-up preemption), "
        "so that each side works through a batch of requests per context switch. `auto`: on with `lazy` dispatch "
        "(one handler runs at a time unless one blocks), off with `eager` (handlers passing the GIL among "
        "themselves then made tail latency worse).",
        PROCESSES,
    ),
    Option(
        "max_requests",
        Integer(minimum=0),
        0,
        "Replace a worker once it has handled this many requests (0: never). The replacement is started and "
        "ready before the old worker stops accepting, so no request fails. A bound on slow memory leaks.",
        PROCESSES,
    ),
    Option(
        "max_requests_jitter",
        Integer(minimum=0),
        0,
        "Add a random number between 0 and this to each worker's `max_requests`, so that workers started "
        "together are not all replaced at the same moment.",
        PROCESSES,
    ),
    Option(
        "max_rss",
        Size(minimum=0),
        0,
        "Replace a worker whose resident memory exceeds this many bytes (checked every quarter second), the "
        "same way as `max_requests`: the replacement is ready before the old worker drains. 0: never.",
        PROCESSES,
    ),
    Option(
        "worker_lifetime",
        Seconds(allow_zero=True),
        0.0,
        "Replace each worker after it has served for this many seconds, plus a random tenth of that so that "
        "workers started together are not replaced together. 0: never.",
        PROCESSES,
    ),
    Option(
        "boot_timeout",
        Seconds(),
        60.0,
        "Time a new worker has to load the application and report ready; one that takes longer is killed. "
        "During a reload (SIGHUP) or a recycling the previous worker goes on serving; at start the slot is "
        "tried again with backoff.",
        PROCESSES,
    ),
    Option(
        "pid",
        FilePath(),
        None,
        "Write the master's process id to this file once the sockets are bound, and remove it at exit.",
        PROCESSES,
    ),
    Option(
        "user",
        Account("user"),
        None,
        "Once the sockets are bound, the master gives up root and runs (with its workers) as this user, with "
        "the user's supplementary groups and, unless `group` is set, its primary group. Needs root.",
        PROCESSES,
    ),
    Option(
        "group",
        Account("group"),
        None,
        "The group to run as once the sockets are bound (see `user`). Needs root.",
        PROCESSES,
    ),
    Option(
        "reload",
        Flag(),
        False,
        "Development: watch the application's source tree (the folder of its top-level package) and replace the "
        "workers, as SIGHUP does, when a `.py` file changes. If the new code cannot be imported, the error is "
        "printed and the previous workers go on serving. Not with `preload`.",
        PROCESSES,
    ),
    Option(
        "preload",
        Flag(),
        False,
        "Import the application in the master process before forking the workers: workers boot faster and "
        "share memory, but a reload (SIGHUP) then keeps the code the master imported.",
        PROCESSES,
    ),
    Option(
        "graceful_timeout",
        Seconds(allow_zero=True),
        30.0,
        "On SIGTERM, SIGINT, SIGHUP or worker recycling, how long a worker may take to finish the requests it "
        "has in flight after it stops accepting. Workers still busy after that are killed. Open WebSockets of an "
        "ASGI application get close 1001 at once on a stop; a worker replaced by SIGHUP or recycling keeps them "
        "open until this timeout, then closes them with 1012 (service restart).",
        TIMEOUTS,
    ),
    Option(
        "head_timeout",
        Seconds(maximum=MAX_TIMEOUT),
        10.0,
        "Time a client has to send a request's line and headers, from its first byte; then 408 and close (slowloris).",
        TIMEOUTS,
        core=True,
    ),
    Option(
        "body_timeout",
        Seconds(maximum=MAX_TIMEOUT),
        30.0,
        "Longest pause allowed while a request body is being received; then the connection is closed.",
        TIMEOUTS,
        core=True,
    ),
    Option(
        "keepalive_timeout",
        Seconds(maximum=MAX_TIMEOUT),
        5.0,
        "How long an idle keep-alive connection is kept open waiting for the next request.",
        TIMEOUTS,
        core=True,
    ),
    Option(
        "write_timeout",
        Seconds(maximum=MAX_TIMEOUT),
        30.0,
        "Longest time a client may leave a response unread (socket full) before the connection is closed.",
        TIMEOUTS,
        core=True,
    ),
    Option(
        "ws_ping_interval",
        Seconds(allow_zero=True, maximum=MAX_TIMEOUT),
        20.0,
        "WebSockets of an ASGI application: after this many seconds without a frame from the client, the server "
        "sends a ping; `0` sends none. Checked by one sweep per worker (a quarter of the shorter of this and "
        "`ws_ping_timeout`), so a ping may go out that much later.",
        TIMEOUTS,
    ),
    Option(
        "ws_ping_timeout",
        Seconds(maximum=MAX_TIMEOUT),
        20.0,
        "How long a WebSocket client has to answer the idle ping (any frame will do) before the server sends "
        "close 1011 and drops the connection; the application gets `websocket.disconnect` with code 1006.",
        TIMEOUTS,
    ),
    Option(
        "write_buffer",
        Size(minimum=4096, maximum=1 << 40),
        256 << 10,
        "Most response bytes kept in memory per connection for a client that reads slower than the "
        "application writes. Above it the application's response iterator is paused (without the GIL) until "
        "the client has taken three quarters of it. Files (static files, `wsgi.file_wrapper`) are queued as "
        "file ranges and cost no memory here.",
        LIMITS,
        core=True,
    ),
    Option(
        "max_request_line",
        Size(minimum=16, maximum=1 << 20),
        8190,
        "Longest request line (method, target, version) in bytes; longer ones get 414.",
        LIMITS,
        core=True,
    ),
    Option(
        "max_head_size",
        Size(minimum=64, maximum=1 << 30),
        16384,
        "Largest request head (request line and all headers) in bytes; larger ones get 431.",
        LIMITS,
        core=True,
    ),
    Option(
        "max_headers",
        Integer(minimum=1, maximum=10000),
        100,
        "Most header fields in a request; more get 431.",
        LIMITS,
        core=True,
    ),
    Option(
        "max_body_size",
        Size(minimum=1, maximum=1 << 40),
        100 << 20,
        "Largest request body in bytes; a larger Content-Length (or chunked body) gets 413 without being read. "
        "Django applies its own, smaller limits on top (DATA_UPLOAD_MAX_MEMORY_SIZE) to what it keeps in memory.",
        LIMITS,
        core=True,
    ),
    Option(
        "ws_max_size",
        Size(minimum=1, maximum=1 << 40),
        16 << 20,
        "Largest WebSocket frame and message (after inflating) from a client, in bytes; a larger one closes the "
        "connection with 1009 (message too big), decided from the frame header before its payload is read.",
        LIMITS,
    ),
    Option(
        "max_connections",
        Integer(minimum=1, maximum=1 << 24),
        10000,
        "Most open client connections per worker; beyond it, new connections are answered 503 and closed.",
        LIMITS,
        core=True,
    ),
    Option(
        "compress",
        Codings(),
        ("zstd", "br", "gzip"),
        "Content codings offered for responses, chosen per request from `Accept-Encoding` (RFC 9110 q-values; "
        "at equal preference zstd, then br, then gzip). Only responses of a compressible type (text, JSON, "
        "JavaScript, XML, SVG...) of at least `compress_min_size` bytes that carry no `Content-Encoding` and no "
        "`Cache-Control: no-transform` are compressed; streamed ones chunk by chunk, each chunk flushed. "
        "`off` turns compression off.",
        COMPRESSION,
        core=True,
    ),
    Option(
        "ws_per_message_deflate",
        Flag(),
        True,
        "Accept a WebSocket client's offer of permessage-deflate (RFC 7692). `off`: messages go uncompressed, "
        "which saves the compression's CPU and its memory per connection (about 300 KiB with 15-bit windows).",
        COMPRESSION,
    ),
    Option(
        "compress_min_size",
        Size(minimum=0, maximum=1 << 40),
        512,
        "Smallest response body worth compressing, in bytes (streamed bodies of unknown length are always "
        "compressed when their type is).",
        COMPRESSION,
        core=True,
    ),
    Option("gzip_level", Integer(minimum=1, maximum=9), 6, "gzip compression level (1-9).", COMPRESSION, core=True),
    Option(
        "brotli_level", Integer(minimum=0, maximum=11), 4, "Brotli compression level (0-11).", COMPRESSION, core=True
    ),
    Option("zstd_level", Integer(minimum=1, maximum=19), 3, "zstd compression level (1-19).", COMPRESSION, core=True),
    Option(
        "breach_padding",
        Flag(),
        False,
        "Mitigate BREACH: end every compressed HTML response with a comment of random length (0-255 "
        "characters), so that compressed lengths stop revealing secrets (a CSRF token, a session value) that a "
        "page shows next to attacker-controlled input. Costs a few hundred bytes per page; off by default "
        "(Django already masks its CSRF token per request).",
        COMPRESSION,
        core=True,
    ),
    Option(
        "static",
        MountType(),
        (),
        "Serve a directory under a URL prefix entirely in C, before Python: `--static /static/=staticfiles`. "
        "Repeat for several. `runmeltemi` adds `STATIC_URL` from `STATIC_ROOT` on its own (and `MEDIA_URL` "
        "from `MEDIA_ROOT` with `serve_media`). Files are sent with sendfile, with ETag, Last-Modified, "
        "304s, single ranges and precompressed `.zst`/`.br`/`.gz` variants found beside them (or copies the "
        "server compresses once, see `static_compress_cache`).",
        STATIC,
        multiple=True,
        core=True,
    ),
    Option(
        "static_max_age",
        Integer(minimum=0, maximum=(1 << 31) - 1),
        60,
        "Cache-Control max-age (seconds) of static files whose names carry no content hash; hashed names "
        "(ManifestStaticFilesStorage) are cached for a year as immutable.",
        STATIC,
        core=True,
    ),
    Option(
        "static_compress_cache",
        Size(minimum=0),
        16 << 20,
        "Memory per worker for compressed copies of static files that have no precompressed variant beside "
        "them: a file of a compressible type between `compress_min_size` and 1 MiB is compressed once per "
        "version and coding (with the `compress` codings and levels), on the first request that accepts the "
        "coding, then served like a precompressed variant; the least recently used copies go first. Larger "
        "files are never compressed on the fly (it would stall the worker's other connections): run "
        "`precompress` for them. `0` turns the cache off.",
        STATIC,
        core=True,
    ),
    Option(
        "serve_media",
        Flag(),
        False,
        "With `runmeltemi`: also serve `MEDIA_URL` from `MEDIA_ROOT` in C (user uploads; off by default "
        "because many deployments keep media behind access control).",
        STATIC,
    ),
    Option(
        "api",
        ObjectPath(),
        None,
        "The typed API to serve (a `meltemi.API` object): `--api myproject.api:api`, or in Django settings "
        '`MELTEMI = {"API": "myproject.api:api"}`. Its routes are matched in C first; every other '
        "request goes to the WSGI application (the Django project) on the same port.",
        API,
    ),
    Option(
        "cors",
        CorsPolicy(),
        "auto",
        "CORS for every response of the project (WSGI views, API routes, static files), decided in C, "
        'preflights answered without Python (docs/api.md, "CORS"). `auto`: django-cors-headers\' settings '
        "(`CORS_ALLOWED_ORIGINS`, `CORS_ALLOWED_ORIGIN_REGEXES`, `CORS_ALLOW_ALL_ORIGINS`, ...) when the project "
        "has them and `corsheaders.middleware.CorsMiddleware` is no longer in `MIDDLEWARE`; `off`: none; or the "
        "allowed origins, separated by commas (`*`: any). In the Django setting, also a dict of `meltemi.CORS` "
        'keywords or of django-cors-headers\' setting names (`MELTEMI = {"CORS": {"allow_origins": [...]}}`), '
        "or a `meltemi.CORS`. An API's own policy (`API(cors=...)`) applies to its routes where this one does "
        "not.",
        API,
    ),
    Option(
        "access_log",
        AccessLog(),
        None,
        "Write an access log, one line per request (in `access_log_format`), including the requests "
        "answered in C (static files, the API's own answers, the server's errors such as 400 and 408): "
        "`-` for standard error, or a file path (appended to; each line is one write, so workers never "
        "interleave lines). `off` turns it off again (to override the environment or the Django setting).",
        LOGGING,
    ),
    Option(
        "access_log_format",
        Choice("common", "combined", "json"),
        "common",
        "The access log's format: `common` (Common Log Format), `combined` (common, then the Referer and "
        "User-Agent), or `json`: one object per line with `time` (ISO 8601, UTC), `remote_addr`, `method`, "
        "`target`, `protocol`, `status`, `bytes` (of body), `duration_ms` (from the complete request head "
        "to the last byte handed to the socket), `request_id`, `referer` and `user_agent`. Strings are "
        "JSON-escaped; bytes that are not UTF-8 become U+FFFD. In the text formats, bytes outside "
        'printable ASCII, `"` and `\\` are written as `\\xHH`.',
        LOGGING,
        core=True,
    ),
    Option(
        "request_id_header",
        FieldName(),
        "X-Request-ID",
        "The request field a request id is taken from; the application sees it there (WSGI "
        "`HTTP_X_REQUEST_ID`, the API's `request.request_id` and `request.headers`), the response carries "
        "it in the same field "
        "(replacing one the application set) and the JSON access log records it. An incoming id is kept "
        'when it is 1 to 128 visible ASCII characters other than `"` and `\\`, given once; otherwise, '
        "or when the request has none, the server generates one (32 hex digits). Empty: no request ids.",
        LOGGING,
        core=True,
    ),
    Option(
        "log_level",
        Choice("debug", "info", "warning", "error"),
        "info",
        "Level of meltemi's own log (workers starting and stopping, errors raised by the application).",
        LOGGING,
    ),
    Option(
        "metrics",
        MetricsAddress(),
        None,
        "Serve Prometheus metrics (text format 0.0.4) at `http://HOST:PORT/metrics`, from the master process: "
        "requests by route and status class, a duration histogram, bytes in and out, open connections, "
        "requests in flight and queued, worker restarts by reason and each worker's resident memory, added up "
        "over all workers (each counts in its own slot of memory the master shares; a worker's counts outlive "
        "it). A separate listener, so the metrics need not be reachable where the application is. `off` (the "
        "default): no listener, nothing counted. docs/operations.md has the list and a scrape configuration.",
        METRICS,
    ),
)

BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}


# --- resolving ----------------------------------------------------------------


class Config:
    """The resolved configuration: `config.workers`, and `config.source("workers")`."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str]):
        self._values = values
        self._sources = sources

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def source(self, name: str) -> str:
        """Where the value came from: 'default', or the flag, variable or setting that set it."""
        return self._sources[name]

    def replace(self, **changes: Any) -> Config:
        values = dict(self._values)
        sources = dict(self._sources)
        for name, value in changes.items():
            if name not in BY_NAME:
                raise AttributeError(name)
            values[name] = value
            sources[name] = "override"
        return Config(values, sources)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def __repr__(self) -> str:
        return f"Config({self._values!r})"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds one flag per option. Unset flags stay None, so `resolve` can tell them apart."""
    groups = {section: parser.add_argument_group(section) for section in SECTIONS}
    for option in OPTIONS:
        group = groups[option.section]
        # The help text of --help is the first sentence of the documented help.
        short_help = option.help.split(". ")[0].rstrip(".").replace("`", "") + f" (default: {option.show_default()})"
        short_help = short_help.replace("%", "%%")
        dest = "meltemi_" + option.name
        if isinstance(option.type, Flag):
            group.add_argument(
                *option.flags, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=short_help
            )
        else:
            group.add_argument(
                *option.flags,
                dest=dest,
                metavar=option.type.metavar,
                action="append" if option.multiple else "store",
                default=None,
                help=short_help,
            )


def cli_values(namespace: argparse.Namespace | Mapping[str, Any]) -> dict[str, Any]:
    """The raw values given on the command line (as parsed by `add_arguments`), by option name."""
    items = vars(namespace) if isinstance(namespace, argparse.Namespace) else namespace
    given = {}
    for option in OPTIONS:
        value = items.get("meltemi_" + option.name)
        if value is not None:
            given[option.name] = value
    return given


def _fail(source: str, option: Option, shown: Any, error: ValueError | None = None) -> ConfigError:
    expected = error.args[0] if isinstance(error, OutOfRange) else option.type.expected
    return ConfigError(f"{source}: expected {expected}, got {shown!r}")


def _from_text(option: Option, source: str, text: str) -> Any:
    try:
        return option.type.parse(text)
    except ValueError as error:
        raise _fail(source, option, text, error) from None


def _from_cli(option: Option, raw: Any) -> Any:
    if isinstance(raw, bool):  # --preload / --no-preload
        return raw
    if option.multiple:
        return tuple(_from_text(option, option.flag, item) for item in raw)
    return _from_text(option, option.flag, raw)


def _from_env(option: Option, text: str) -> Any:
    if option.multiple:
        items = [item for item in re.split(r"[,\s]+", text) if item]
        return tuple(_from_text(option, option.env, item) for item in items)
    return _from_text(option, option.env, text)


def _from_setting(option: Option, value: Any) -> Any:
    source = f"settings.{DJANGO_SETTING}[{option.setting!r}]"
    items = [value] if option.multiple and isinstance(value, str) else value
    try:
        if option.multiple:
            if not isinstance(items, list | tuple) or not items:
                raise ValueError
            return tuple(option.type.coerce(item) for item in items)
        return option.type.coerce(value)
    except ValueError as error:
        raise _fail(source, option, value, error) from None


def resolve(
    cli: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    django: Mapping[str, Any] | None = None,
) -> Config:
    """Builds the configuration: command line > environment > Django setting > default.

    `cli` holds raw command-line values by option name (see `cli_values`),
    `environ` the environment (default os.environ; empty variables count as
    unset), `django` the Django setting `MELTEMI` (keys this module does not
    know are left to the other parts of meltemi that read that setting).
    Raises ConfigError.
    """
    cli = cli or {}
    environ = os.environ if environ is None else environ
    if django is not None and not isinstance(django, Mapping):
        raise ConfigError(f"settings.{DJANGO_SETTING}: expected a dict, got {type(django).__name__}")
    django = django or {}
    for name in cli:
        if name not in BY_NAME:
            raise ConfigError(f"unknown option {name!r}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        if option.name in cli:
            values[option.name] = _from_cli(option, cli[option.name])
            sources[option.name] = option.flag
        elif environ.get(option.env, "").strip():
            values[option.name] = _from_env(option, environ[option.env])
            sources[option.name] = option.env
        elif option.setting in django:
            values[option.name] = _from_setting(option, django[option.setting])
            sources[option.name] = f"settings.{DJANGO_SETTING}"
        else:
            values[option.name] = option.default_value
            sources[option.name] = "default"
    return Config(values, sources)


def worker_options(config: Config) -> dict[str, Any]:
    """The WorkerConfig fields that are server options, by name, as the C side takes them."""
    options = {option.name: getattr(config, option.name) for option in OPTIONS if option.core}
    # Several processes serve the same application: tells WSGI applications
    # (wsgi.multiprocess) that process-local state is not shared.
    options["multiprocess"] = config.workers > 1
    # The C side takes plain values: "zstd,br,gzip" and [(prefix, root), ...].
    options["compress"] = ",".join(config.compress)
    options["static"] = [(mount.prefix, mount.root) for mount in config.static]
    options["forwarded_allow_ips"] = ",".join(config.forwarded_allow_ips)
    return options


@dataclass(frozen=True)
class DispatchPolicy:
    """How requests reach the handler threads (options dispatch, stall_ms and
    sched_batch), as mechanisms the C server applies without choosing any."""

    # Every queued request wakes a sleeping handler (eager); else only when no
    # handler runs (lazy).
    wake_each: bool
    # Lazy: wake one more handler when requests waited this long while the busy
    # ones are blocked; 0 never.
    stall_ms: int
    # SCHED_BATCH for the I/O thread and the handler threads.
    sched_batch: bool


@dataclass(frozen=True)
class WorkerConfig:
    """What meltemi._core.Worker takes: every value of the C server, checked here
    (the C side restates no default and no range). Built by `worker_config`."""

    threads: int
    max_request_line: int
    max_head_size: int
    max_headers: int
    max_body_size: int
    head_timeout: float
    body_timeout: float
    keepalive_timeout: float
    write_timeout: float
    write_buffer: int
    max_connections: int
    url_scheme: str
    multiprocess: bool
    compress: str  # "zstd,br,gzip"; "" for none
    compress_min_size: int
    gzip_level: int
    brotli_level: int
    zstd_level: int
    static: list[tuple[str, str]]  # [(url_prefix, directory), ...]
    static_max_age: int
    static_compress_cache: int  # bytes of compressed static copies per worker; 0: none
    breach_padding: bool
    access_log_format: str  # "common", "combined" or "json"
    request_id_header: str  # "" for none
    forwarded_allow_ips: str  # "127.0.0.0/8,::1/128,unix"; "" for nobody
    dispatch: DispatchPolicy
    cors: tuple | None = None  # the project's CORS policy (meltemi.cors.CORS.c_spec()), or None


def dispatch_policy(config: Config) -> DispatchPolicy:
    """The dispatch options as the C server applies them ("auto" decided here)."""
    batch = config.dispatch == "lazy" if config.sched_batch == "auto" else config.sched_batch == "on"
    eager = config.dispatch == "eager"
    # Eager dispatch leaves no sleeping handler behind a queued request: no stall to watch.
    return DispatchPolicy(wake_each=eager, stall_ms=0 if eager else config.stall_ms, sched_batch=batch)


def worker_config(config: Config) -> WorkerConfig:
    """The object meltemi._core.Worker takes, for production and meltemi.testing alike."""
    from .cors import project_policy

    policy = project_policy(config.cors)
    return WorkerConfig(
        **worker_options(config), dispatch=dispatch_policy(config), cors=policy.c_spec() if policy else None
    )


def option_table() -> list[Option]:
    """The options, in documentation order."""
    return sorted(OPTIONS, key=lambda option: SECTIONS.index(option.section))


def django_setting(settings: Any) -> Mapping[str, Any] | None:
    """The `MELTEMI` dict of a configured `django.conf.settings`, or None."""
    value = getattr(settings, DJANGO_SETTING, None)
    if value is not None and not isinstance(value, Mapping):
        raise ConfigError(f"settings.{DJANGO_SETTING}: expected a dict, got {type(value).__name__}")
    return value
