"""Types of meltemi._core, the C extension (src/python/).

tests/py/test_core_stub.py checks that this stub and the module name the
same things, with the same parameters.
"""

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from .config import WorkerConfig

# The methods and the path parameter types the C router knows
# (meltemi/api/routing.py takes them as its own).
API_METHODS: Final[tuple[str, ...]]
API_PARAM_TYPES: Final[tuple[str, ...]]
# The version of the llhttp library the extension was built with.
llhttp_version: Final[str]

class ClientDisconnected(OSError):
    """The client closed the connection before the exchange ended."""

class RequestBodyError(OSError):
    """The request body could not be read: too slow, too large or malformed."""

# A WSGI application: environ, start_response -> iterable of bytes.
_WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# A bound listening socket: (file descriptor, SERVER_NAME, SERVER_PORT).
_Listener = tuple[int, str, str]
# What meltemi.API.c_routes() returns: (redirect_slash, routes[, CORS spec or None[, auth per route[,
# rate-limit table]]]).
_APIRoutes = (
    tuple[bool, list[tuple[Any, ...]]]
    | tuple[bool, list[tuple[Any, ...]], tuple[Any, ...] | None]
    | tuple[bool, list[tuple[Any, ...]], tuple[Any, ...] | None, list[tuple[Any, ...] | None]]
    | tuple[bool, list[tuple[Any, ...]], tuple[Any, ...] | None, list[tuple[Any, ...] | None], Any]
)

class Worker:
    """A worker process's HTTP server (see meltemi/worker.py)."""

    def __init__(
        self,
        app: _WSGIApp,
        listeners: list[_Listener],
        config: WorkerConfig,
        *,
        access_log: int | None = None,  # a descriptor; the worker writes to its own duplicate
        error_log: Callable[[str, BaseException], None] | None = None,
        api: _APIRoutes | None = None,
        metrics: tuple[Any, int, list[str]] | None = None,  # (shared region, slot, API route names)
    ) -> None: ...
    def start(self) -> None:
        """Starts the I/O thread (which never holds the GIL)."""
    def handle_requests(self) -> None:
        """Answers requests until the worker stops; run it in each handler thread."""
    def serve_one(self, timeout: float, /) -> bool:
        """Serves one connection's request in the calling thread if one arrives within timeout seconds."""
    def shutdown(self) -> None:
        """Begins a graceful stop: no more accepting, requests in flight complete."""
    def join(self, timeout: float | None = None, /) -> bool:
        """Waits for the I/O thread to exit; True if it did."""
    def stats(self) -> dict[str, int]:
        """The process's object counters."""
    @property
    def requests_handled(self) -> int:
        """Requests answered by this worker."""

class FileWrapper:
    """wsgi.file_wrapper: sends a file with sendfile(2)."""

    filelike: Any
    blksize: int
    def __init__(self, filelike: Any, blksize: int = 65536) -> None: ...
    def __iter__(self) -> FileWrapper: ...
    def __next__(self) -> bytes: ...
    def close(self) -> None: ...

def metrics_layout() -> dict[str, Any]:
    """{'slot_size': bytes per worker slot, 'bounds': the duration histogram's upper bounds in seconds}."""

def metrics_read(region: Any, slot: int, /) -> dict[str, Any]:
    """The counters and gauges of one slot of a metrics region (a writable buffer)."""

def metrics_reset(region: Any, slot: int, /) -> None:
    """Zeroes one slot (that no worker writes any more)."""

class JWTVerifier:
    """A JWT key set (set_keys) and the checks of its tokens (src/python/auth.c)."""

    def __init__(
        self,
        *,
        issuers: Sequence[str] = (),
        audiences: Sequence[str] = (),
        leeway: int = 0,
        require_exp: bool = False,
        max_len: int = 8192,
    ) -> None: ...
    def set_keys(self, keys: list[tuple[str, str | None, str | None, bytes]], /) -> None:
        """Replaces the key set, atomically: (kind, alg, kid, data), kind "secret", "pem" or "jwk"."""
    def verify(self, token: str, now: int | None = None, /) -> tuple[bytes, str | None]:
        """(claims JSON, sub); ValueError with the reason when refused."""
    @property
    def key_count(self) -> int:
        """The number of keys in the current set."""

def compress(data: bytes | bytearray | memoryview, coding: str, level: int = -1, chunks: int = 1) -> bytes:
    """Compresses data with 'gzip', 'br', 'zstd' or 'identity'."""

def compressible_type(content_type: str, /) -> bool:
    """Whether responses of this Content-Type are worth compressing."""

def negotiate_encoding(accept: str, enabled: str = "zstd,br,gzip") -> str:
    """The content coding to answer an Accept-Encoding value with."""

def parse_query(qs: str, /) -> dict[str, str | list[str]]:
    """A query string's keys and values, decoded; repeated keys give lists."""

def precompress_file(
    path: str | bytes | os.PathLike[str],
    codings: str = "zstd,br,gzip",
    levels: Mapping[str, int] | None = None,
    min_size: int = 512,
) -> list[str]:
    """Writes the precompressed variants of a file beside it; returns the codings written."""

def asgi_enable(worker: Worker, /) -> int:
    """Hands the worker's requests to an event loop (meltemi.asgi); returns the eventfd it watches."""

def api_loop_enable(worker: Worker, /) -> int:
    """Hands the typed API's async routes (Endpoint.on_loop) to an event loop (meltemi.api.aio); returns the
    eventfd it watches."""

def asgi_take(worker: Worker, /) -> tuple[list[Any], list[int], bool]:
    """What woke the loop: new exchanges (AsgiRequest, internal), drained connection ids, whether the queue closed.
    Two or more exchanges begin a batch: their complete responses are held until asgi_flush."""

def asgi_flush(worker: Worker, /) -> list[Any]:
    """Ends the batch: writes the held responses; returns the pipelined exchanges found while ending them."""

def asgi_ws_configure(worker: Worker, max_size: int, deflate: bool, /) -> None:
    """The worker's WebSocket options (after asgi_enable): the largest frame or message (1009 beyond), and
    whether permessage-deflate offers are accepted."""
