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

from django.conf import settings
from django.core.management.base import BaseCommand
from django.core.servers.basehttp import get_internal_wsgi_application
from django.utils import autoreload

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
