"""ASGI entry point of the demo (for meltemi's future ASGI bridge and for comparisons)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

application = get_asgi_application()
