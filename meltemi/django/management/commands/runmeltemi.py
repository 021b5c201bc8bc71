"""`python manage.py runmeltemi [options]`: serve this Django project with meltemi.

The options are those of the `meltemi` command (declared once, in
meltemi/config.py), also read from the environment and from the `MELTEMI`
setting.  `--dev` is the development server: Django's autoreloader restarts
it on each code change, with one worker and the access log on.
"""

from __future__ import annotations

import logging
import os
import sys

import django
from django.conf import settings
from django.core.management.base import BaseCommand
from django.core.servers.basehttp import get_internal_wsgi_application
from django.utils import autoreload
from django.utils.module_loading import import_string

from meltemi import cli, config, log
from meltemi.master import BindError, bind
from meltemi.worker import AppLoader, BootError, serve_in_process

_logger = logging.getLogger("meltemi.django")


class Command(BaseCommand):
    help = "Serves this Django project with meltemi. Every option is described in meltemi's docs/config.md."
    # Checks run in handle(), like runserver: with --dev, on every reload.
    requires_system_checks = []

    def add_arguments(self, parser):
        config.add_arguments(parser)
        parser.add_argument(
            "--dev",
            action="store_true",
            help="development server: restart on code changes (Django's autoreloader), one worker, access log on",
        )
        parser.add_argument("--skip-checks", action="store_true", help="do not run Django's system checks")

    def handle(self, *args, **options):
        try:
            resolved = config.resolve(config.cli_values(options), os.environ, config.django_setting(settings))
        except config.ConfigError as exc:
            log.fatal(str(exc))
            sys.exit(cli.USAGE_ERROR)
        resolved = resolved.replace(static=static_mounts(resolved, dev=options["dev"]))
        asgi_name = getattr(settings, "ASGI_APPLICATION", None)
        if resolved.interface == "asgi" or (resolved.interface == "auto" and asgi_name):
            # The project's ASGI application: ASGI_APPLICATION, or Django's own handler.
            name = asgi_name or "django.core.asgi.get_asgi_application()"
            loader = AppLoader(name, get_internal_asgi_application)
            resolved = resolved.replace(interface="asgi")
        else:
            name = settings.WSGI_APPLICATION or "django.core.wsgi.get_wsgi_application()"
            loader = AppLoader(name, get_internal_wsgi_application)
        if options["dev"]:
            self.run_dev(resolved, loader, options["skip_checks"])
            return
        if not options["skip_checks"]:
            self.check(display_num_errors=True)
        code = cli.serve(resolved, loader)
        if code:
            sys.exit(code)

    def run_dev(self, resolved: config.Config, loader: AppLoader, skip_checks: bool) -> None:
        if resolved.workers != 1 and resolved.source("workers") != "default":
            self.stderr.write(f"--dev serves with one worker (ignoring workers={resolved.workers})")
        if resolved.metrics is not None:
            self.stderr.write("--dev runs no master process: metrics are served only without --dev (ignoring metrics)")
        changes = {"workers": 1}
        if resolved.source("access_log") == "default":
            changes["access_log"] = "-"
        resolved = resolved.replace(**changes)
        log.setup(resolved.log_level)
        # The reloader runs serve_dev in a thread of a child process, which it
        # kills and starts again when a source file changes.
        autoreload.run_with_reloader(self.serve_dev, resolved, loader, skip_checks)

    def serve_dev(self, resolved: config.Config, loader: AppLoader, skip_checks: bool) -> None:
        if not skip_checks:
            self.check(display_num_errors=True)
        try:
            sockets = bind(resolved.bind, 1, resolved.backlog)
        except BindError as exc:
            log.fatal(str(exc))
            os._exit(cli.START_ERROR)
        for label in sockets.labels():
            _logger.info("Listening at %s", label)
        try:
            serve_in_process(resolved, loader, sockets.for_slot(0))
        except BootError as exc:
            log.fatal(str(exc))
            if exc.cause is None:
                return  # the autoreloader goes on watching, and restarts once the code is fixed
            # Raised again, the original error lets the autoreloader watch the
            # file that failed (a syntax error, say) and restart once it is fixed.
            raise exc.cause from None


def get_internal_asgi_application():
    """The ASGI application named by settings.ASGI_APPLICATION, else Django's (as get_internal_wsgi_application
    does for WSGI)."""
    from django.core.asgi import get_asgi_application

    name = getattr(settings, "ASGI_APPLICATION", None)
    if not name:
        return get_asgi_application()
    django.setup(set_prefix=False)
    return import_string(name)


def _url_prefix(url: str | None) -> str | None:
    """A STATIC_URL or MEDIA_URL as a path prefix ("/static/"), or None for a full URL (a CDN)."""
    if not url or "://" in url or url.startswith("//"):
        return None
    url = "/" + url.lstrip("/")
    return url if url.endswith("/") else url + "/"


def static_mounts(resolved: config.Config, dev: bool) -> tuple[config.Mount, ...]:
    """The directories meltemi serves in C for this project.

    Mounts given by the user (flag, environment, `MELTEMI["STATIC"]`) come first.
    Then STATIC_URL: from STATIC_ROOT, or with --dev from the staticfiles finders
    (every app's static/ and STATICFILES_DIRS, searched in order, as runserver
    does). MEDIA_URL from MEDIA_ROOT only with `serve_media`.
    """
    mounts = list(resolved.static)
    static_prefix = _url_prefix(getattr(settings, "STATIC_URL", None))
    if static_prefix and "django.contrib.staticfiles" in settings.INSTALLED_APPS:
        if dev:
            mounts += _finder_mounts(static_prefix)
        elif getattr(settings, "STATIC_ROOT", None):
            if os.path.isdir(settings.STATIC_ROOT):
                mounts.append(config.Mount(static_prefix, os.path.abspath(settings.STATIC_ROOT)))
            else:
                _logger.warning(
                    "STATIC_ROOT %s does not exist (run collectstatic): %s is left to Django",
                    settings.STATIC_ROOT,
                    static_prefix,
                )
    media_prefix = _url_prefix(getattr(settings, "MEDIA_URL", None))
    if resolved.serve_media and media_prefix and getattr(settings, "MEDIA_ROOT", None):
        os.makedirs(settings.MEDIA_ROOT, exist_ok=True)
        mounts.append(config.Mount(media_prefix, os.path.abspath(settings.MEDIA_ROOT)))
    return tuple(dict.fromkeys(mounts))


def _finder_mounts(prefix: str) -> list[config.Mount]:
    from django.contrib.staticfiles import finders

    mounts = []
    for finder in finders.get_finders():
        for location in getattr(finder, "locations", ()):  # FileSystemFinder: (prefix, root)
            sub, root = location if isinstance(location, tuple) else ("", location)
            url = prefix + sub.strip("/") + "/" if sub else prefix
            if os.path.isdir(root):
                mounts.append(config.Mount(url, os.path.abspath(root)))
        for storage in getattr(finder, "storages", {}).values():  # AppDirectoriesFinder
            location = getattr(storage, "location", None)
            if location and os.path.isdir(location):
                mounts.append(config.Mount(prefix, os.path.abspath(location)))
    return mounts
