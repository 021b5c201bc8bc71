"""The `meltemi` command: `meltemi module:application [options]` serves;
`meltemi capacity URL [options]` measures an endpoint (meltemi/capacity.py).

Exit codes: 0 after a clean stop; 1 when the server cannot start (an address
cannot be bound, the access log cannot be opened); 2 for a usage or configuration error; 3 when the
application cannot be loaded.  Each failure prints one line starting with
`meltemi: error:` (an application that fails to import also gets its
traceback, printed above that line).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from . import __version__, config, log
from .worker import BOOT_ERROR, AppLoader, BootError

USAGE_ERROR = 2
START_ERROR = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would print the whole usage first; one line says it better.
        log.fatal(f"{message} (see '{self.prog} --help')")
        sys.exit(USAGE_ERROR)


def build_parser(prog: str = "meltemi") -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        usage=f"%(prog)s [APP] [options]\n       {prog} capacity URL [options]",
        description="Serve a WSGI application (a Django project's wsgi.py, for one) with meltemi. "
        f"'{prog} capacity URL' instead finds the highest request rate URL holds under a p99 latency target "
        f"(see '{prog} capacity --help'); a module named capacity is served as 'capacity:application'.",
        epilog=f"Every option can also be set with an environment variable ({config.ENV_PREFIX}WORKERS=4) or in "
        f'the Django setting {config.DJANGO_SETTING} ({{"WORKERS": 4}}), read when DJANGO_SETTINGS_MODULE is set; '
        "the command line wins, then the environment, then the setting. See docs/config.md.",
    )
    parser.add_argument(
        "app",
        nargs="?",
        metavar="APP",
        help="the WSGI application: 'module:attribute' (default attribute: application), "
        "or 'module:factory()' to call a factory",
    )
    parser.add_argument("--version", action="version", version=f"meltemi {__version__}")
    config.add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    """Parses the command line and serves (or measures, for `capacity`); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["capacity"]:
        from .capacity import run_command

        return run_command(argv[1:])
    args = build_parser().parse_args(argv)
    if not args.app and not (args.meltemi_api or os.environ.get("MELTEMI_API")):
        log.fatal("missing the application to serve, e.g. 'meltemi myproject.wsgi:application'")
        return USAGE_ERROR
    try:
        # An API alone: requests no route matches get a JSON 404.
        loader = AppLoader.from_spec(args.app or "meltemi.api.app:not_found")
    except ValueError:
        log.fatal(f"APP: expected 'module' or 'module:attribute', got {args.app!r}")
        return USAGE_ERROR
    # Like `python -m`, find the application's modules in the current
    # directory, also when started through the `meltemi` script.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        settings = django_setting(os.environ)
        resolved = config.resolve(config.cli_values(args), os.environ, settings)
    except config.ConfigError as exc:
        log.fatal(str(exc))
        return USAGE_ERROR
    except BootError as exc:
        exc.report()
        return BOOT_ERROR
    return serve(resolved, loader)


def django_setting(environ: Mapping[str, str]) -> Mapping[str, Any] | None:
    """settings.MELTEMI when DJANGO_SETTINGS_MODULE names the settings, else None.

    Only the settings module is imported (not the project's apps), so this is
    cheap and safe before the workers fork.
    """
    module = environ.get("DJANGO_SETTINGS_MODULE")
    if not module:
        return None
    try:
        from django.conf import settings
    except ImportError:
        return None
    try:
        return config.django_setting(settings)
    except config.ConfigError:
        raise
    except Exception as exc:
        raise BootError(f"cannot read the Django settings {module!r}: {type(exc).__name__}: {exc}", exc) from exc


def serve(resolved: config.Config, loader: AppLoader) -> int:
    """Runs the master until it stops; returns the exit code. Shared by `runmeltemi`."""
    from .master import BindError, Master

    log.setup(resolved.log_level)
    if resolved.access_log not in (None, "-"):
        # Each worker opens the file itself; find out now, once, if it can.
        try:
            open(resolved.access_log, "a").close()
        except OSError as exc:
            log.fatal(f"cannot open the access log {resolved.access_log}: {exc.strerror.lower()}")
            return START_ERROR
    if resolved.reload and resolved.preload:
        log.fatal("--reload replaces workers that import the application themselves: it cannot be used with --preload")
        return START_ERROR
    app = None
    if resolved.preload:
        try:
            app = loader.load()
        except BootError as exc:
            exc.report()
            return BOOT_ERROR
    try:
        return Master(resolved, loader, app).run()
    except BindError as exc:
        log.fatal(str(exc))
        return START_ERROR
