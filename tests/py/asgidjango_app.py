"""`meltemi asgidjango_app:application`: Django's ASGI handler for the project in asgidjango.py."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asgidjango")

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
