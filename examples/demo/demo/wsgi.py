"""WSGI entry point of the demo: `python -m meltemi demo.wsgi:application` (run from examples/demo)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

application = get_wsgi_application()
