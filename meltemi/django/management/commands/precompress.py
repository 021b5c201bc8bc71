"""`python manage.py precompress`: writes .zst, .br and .gz variants of the files in STATIC_ROOT.

Run it after `collectstatic`; meltemi's static file handler then sends the
variant the client accepts instead of compressing on every request.  The
options and behaviour are those of `python -m meltemi.precompress` (files whose
variants are current are skipped, so running it on every deploy is cheap).
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from meltemi import precompress


class Command(BaseCommand):
    help = (
        "Writes precompressed variants (.zst, .br, .gz) beside the compressible files of STATIC_ROOT, "
        "skipping files unchanged since the last run. Run it after collectstatic."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        precompress.add_arguments(parser)

    def handle(self, *args, **options):
        root = getattr(settings, "STATIC_ROOT", None)
        if not root:
            raise CommandError("STATIC_ROOT is not set: set it to the directory collectstatic fills, then run again.")
        root = str(root)
        # The progress bar redraws its line: no newline added to each write.
        self.stdout.ending = self.stderr.ending = ""
        code = precompress.run(root, options, out=self.stdout, err=self.stderr)
        if code:
            raise CommandError(f"precompressing {root} failed (see the messages above)", returncode=code)
