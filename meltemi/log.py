"""meltemi's logs: its own log, the access log, and one-line fatal errors.

The access log is not a logger: the C worker formats and writes its lines
(see `open_access_log`). Loggers:
- `meltemi` (and children such as `meltemi.master`): what the server does, as
  `[2026-11-21 14:00:00 +0000] [pid] [INFO] Booting worker 1 (pid 123)`;
- `meltemi.error`: exceptions raised by the application, with their traceback;

They do not propagate to the root logger, so a Django project's LOGGING does
not print them twice; a project may still add handlers to them.
"""

from __future__ import annotations

import logging
import os
import sys

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


def open_access_log(target: str | None) -> int | None:
    """The descriptor the C worker writes access log lines to, or None when off.

    `target` is "-" (standard error) or a file path, opened in append mode by
    each worker (the worker keeps a duplicate; the caller closes this one).
    The lines are formatted and written in C, one write() per line, for every
    request, those answered on the I/O thread included. A rotated file is
    reopened by the workers that SIGHUP starts (or use copytruncate).
    """
    if target is None:
        return None
    if target == "-":
        return os.dup(sys.stderr.fileno())
    return os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)


def application_error(message: str, exc: BaseException) -> None:
    """Called by the C worker when the application raised: logs it with its traceback."""
    logging.getLogger("meltemi.error").error("%s", message, exc_info=(type(exc), exc, exc.__traceback__))


def fatal(message: str) -> None:
    """Prints the one line that explains why meltemi cannot go on (callers choose the exit code)."""
    sys.stderr.write(f"meltemi: error: {message}\n")
    sys.stderr.flush()
