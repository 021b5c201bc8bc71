"""meltemi's logs: its own log, the access log, and one-line fatal errors.

Loggers:
- `meltemi` (and children such as `meltemi.master`): what the server does, as
  `[2026-11-21 14:00:00 +0000] [pid] [INFO] Booting worker 1 (pid 123)`;
- `meltemi.error`: exceptions raised by the application, with their traceback;
- `meltemi.access`: one Common Log Format line per request, when turned on.

They do not propagate to the root logger, so a Django project's LOGGING does
not print them twice; a project may still add handlers to them.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import Callable

FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"

logger = logging.getLogger("meltemi")


def setup(level: str = "info") -> None:
    """Sends meltemi's log to standard error at `level` (debug, info, warning, error)."""
    logger.setLevel(level.upper())
    logger.propagate = False
    for handler in list(logger.handlers):
        if getattr(handler, "_meltemi", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    handler._meltemi = True
    logger.addHandler(handler)


def access_logger(target: str | None) -> Callable[[str], None] | None:
    """The callable the C worker calls with each access log line, or None when off.

    `target` is "-" (standard error) or a file path, opened in append mode by
    each worker; WatchedFileHandler reopens it when logrotate moves it away.
    """
    if target is None:
        return None
    access = logging.getLogger("meltemi.access")
    access.setLevel(logging.INFO)
    access.propagate = False
    handler = logging.StreamHandler(sys.stderr) if target == "-" else logging.handlers.WatchedFileHandler(target)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)

    def write(line: str) -> None:
        # A line holds client-controlled text: never use it as a format string.
        access.info("%s", line)

    return write


def application_error(message: str, exc: BaseException) -> None:
    """Called by the C worker when the application raised: logs it with its traceback."""
    logging.getLogger("meltemi.error").error("%s", message, exc_info=(type(exc), exc, exc.__traceback__))


def fatal(message: str) -> None:
    """Prints the one line that explains why meltemi cannot go on (callers choose the exit code)."""
    sys.stderr.write(f"meltemi: error: {message}\n")
    sys.stderr.flush()
