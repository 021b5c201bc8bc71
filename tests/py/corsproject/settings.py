"""A Django project for tests/py/test_cors.py: django-cors-headers' settings
from CORS_TEST_SETTINGS (JSON), with its middleware when CORS_TEST_MODE is
"middleware" (meltemi's `cors` option is then `auto` and leaves CORS to it),
without it when "meltemi" (meltemi applies the same settings in C)."""

import json
import os

SECRET_KEY = "corsproject-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "corsheaders"]
ROOT_URLCONF = "corsproject.urls"
DATABASES = {}
MIDDLEWARE = ["corsproject.views.CountingMiddleware"]
if os.environ.get("CORS_TEST_MODE") == "middleware":
    MIDDLEWARE.append("corsheaders.middleware.CorsMiddleware")
globals().update(json.loads(os.environ.get("CORS_TEST_SETTINGS", "{}")))
