"""meltemi: a C HTTP/1.1 server for Django and any WSGI application.

Run `meltemi module:application`, or `python manage.py runmeltemi` with
"meltemi.django" in INSTALLED_APPS.  Importing this package loads no C code.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("meltemi")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
