"""meltemi: a C HTTP/1.1 server for Django and any WSGI application.

Run `meltemi module:application`, or `python manage.py runmeltemi` with
"meltemi.django" in INSTALLED_APPS.  Importing this package loads no C code.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("meltemi")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

# The typed API's names, importable from the package (``from meltemi import
# API, Query``) without loading msgspec or the C core until first used.
_API_NAMES = frozenset(
    "API Router Request Query Path Header Cookie Body Form File UploadFile Depends HTTPException ValidationError "
    "Response JSONResponse HTMLResponse PlainTextResponse RedirectResponse FileResponse StreamingResponse".split()
)


def __getattr__(name: str):
    if name == "CORS":  # the CORS policy, for the project (settings) or an API: needs neither msgspec nor C
        from .cors import CORS

        return CORS
    if name in _API_NAMES:
        try:
            from . import api
        except ModuleNotFoundError as exc:
            if exc.name != "msgspec":
                raise
            raise ImportError("meltemi's typed API needs msgspec: pip install 'meltemi[api]'") from exc
        return getattr(api, name)
    raise AttributeError(f"module 'meltemi' has no attribute {name!r}")
