"""Applications for the process tests (test_process.py, test_cli.py).

`app` answers every request with the pid of the worker that served it, so a
test can tell workers apart; `/sleep?s=1` sleeps first (a slow or blocking
view), `/alloc?mb=N` keeps N MiB more resident, `/raise` raises and
`/environ` shows some of the environ.  The module doubles as a minimal Django
settings module (DJANGO_SETTINGS_MODULE=procapps) and URLconf, to test the
`MELTEMI` setting and `manage.py runmeltemi`.
"""

import os
import time
from urllib.parse import parse_qs

held = []  # what /alloc?mb=N allocated: it stays resident


def app(environ, start_response):
    if environ["PATH_INFO"] == "/alloc":
        held.append(b"x" * (int(parse_qs(environ["QUERY_STRING"])["mb"][0]) << 20))
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(float(parse_qs(environ["QUERY_STRING"]).get("s", ["1"])[0]))
    elif environ["PATH_INFO"] == "/raise":
        raise ZeroDivisionError("procapps was asked to fail")
    body = f"pid={os.getpid()}".encode()
    if environ["PATH_INFO"] == "/environ":
        body = repr({key: environ[key] for key in ("wsgi.url_scheme", "wsgi.multiprocess", "SERVER_NAME")}).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def make_app(greeting="pid"):
    """A factory, for `procapps:make_app()`."""
    return app


def breakable():
    """A factory that fails while the file named by $PROCAPPS_BROKEN exists (a bad deploy)."""
    if os.path.exists(os.environ["PROCAPPS_BROKEN"]):
        raise ImportError("procapps is broken for now")
    return app


def hanging():
    """A factory that hangs while the file named by $PROCAPPS_HANG exists (an import stuck on a network drive)."""
    while os.path.exists(os.environ["PROCAPPS_HANG"]):
        time.sleep(0.1)
    return app


def broken_factory():
    raise RuntimeError("the factory refuses to build an app")


not_callable = 42


# --- Django: settings and URLconf -------------------------------------------------

SECRET_KEY = "meltemi-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["meltemi.django"]
MIDDLEWARE = []
DATABASES = {}
ROOT_URLCONF = "procapps"
USE_TZ = True
# Read by meltemi when DJANGO_SETTINGS_MODULE=procapps; the tests override
# these with the environment and the command line.
MELTEMI = {"WORKERS": 2, "THREADS": 3}


def django_view(request):
    from django.http import HttpResponse

    if request.path == "/sleep":
        time.sleep(float(request.GET.get("s", "1")))
    return HttpResponse(f"django pid={os.getpid()}", content_type="text/plain")


def __getattr__(name):
    # The URLconf is built on first use, so importing this module as an
    # application does not need Django configured.
    if name == "urlpatterns":
        from django.urls import re_path

        return [re_path(r"", django_view)]
    raise AttributeError(name)
