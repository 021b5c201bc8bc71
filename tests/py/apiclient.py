"""Django set up in the test process for the typed API tests: apiproject's
settings with a fresh SQLite database, migrated once per session."""

from __future__ import annotations

import os
import tempfile

_client = None


def django_ready() -> None:
    import django
    from django.conf import settings

    if settings.configured:
        return
    from apiproject import settings as project

    db = os.path.join(tempfile.mkdtemp(prefix="meltemi-apiproject-"), "db.sqlite3")
    values = {k: getattr(project, k) for k in dir(project) if k.isupper()}
    values["DATABASES"] = {"default": {**project.DATABASES["default"], "NAME": db}}
    settings.configure(**values)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def client():
    """One TestClient of apiproject's API for the whole session."""
    global _client
    if _client is None:
        django_ready()
        from meltemi.testing import TestClient

        _client = TestClient()
    return _client
