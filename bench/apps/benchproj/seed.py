"""Creates the tables and the rows the ORM scenarios read: `python -m benchproj.seed`.

Settings come from the environment (BENCH_DB, BENCH_WORK)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproj.settings")
django.setup()

from django.core.management import call_command  # noqa: E402

from benchproj.models import Row  # noqa: E402
from benchproj.payloads import ROWS  # noqa: E402

call_command("migrate", run_syncdb=True, verbosity=0)
Row.objects.all().delete()
Row.objects.bulk_create(Row(**row) for row in ROWS)
print(f"seeded {Row.objects.count()} rows")
