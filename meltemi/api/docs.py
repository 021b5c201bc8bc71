"""The API's interactive docs page: Swagger UI, served by the API itself
(ReDoc's and Scalar's pages are docpages.py's; docs_routes adds all three).

``API(docs_url="/docs")`` (the default) adds, under the API's prefix:

- ``<prefix>/docs``: an HTML page that runs Swagger UI on the API's
  OpenAPI document (``<prefix>/openapi.json``; no page without it);
- ``<prefix>/docs/swagger-ui-bundle.js``, ``swagger-ui.css``, the favicon
  and the OAuth2 redirect page: Swagger UI's own files.

Swagger UI's files come from the ``drf-spectacular-sidecar`` package on
PyPI (Swagger UI 5, which reads OpenAPI 3.1; Apache-2.0, in a BSD-licensed
Django app that needs nothing but Django), so the page works offline, with
no CDN. ``pip install "meltemi[api]"`` installs it. Without it the page
answers 501 with a text that says what to install; the API itself works.

The page refers to its files and to the OpenAPI document by relative URLs,
so it also works behind a proxy that mounts the site under a path. The files
are sent with ``sendfile`` and may be cached for a week; their URLs carry
the package's version, so an upgrade is seen at once.
"""

from __future__ import annotations

import html
import importlib.metadata
import importlib.util
import json
import os
import posixpath
from typing import TYPE_CHECKING

from .request import Request
from .responses import FileResponse, HTMLResponse, PlainTextResponse, Response

if TYPE_CHECKING:
    from .app import API

# The PyPI package with Swagger UI's files, and where they are in it.
ASSET_PACKAGE = "drf-spectacular-sidecar"
_ASSET_MODULE = "drf_spectacular_sidecar"
_ASSET_DIR = ("static", "drf_spectacular_sidecar", "swagger-ui-dist")

# The files the page needs, with their media types.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "oauth2-redirect.html": "text/html; charset=utf-8",
    "oauth2-redirect.js": "text/javascript; charset=utf-8",
}

_ASSET_CACHE = "public, max-age=604800"  # a week; the page's URLs change with the package's version
_PAGE_CACHE = "no-cache"  # the page names the files' version: always revalidated

MISSING_TEXT = (
    f"The API docs page needs Swagger UI's files from the {ASSET_PACKAGE} package, "
    f'which is not installed: pip install {ASSET_PACKAGE} (or pip install "meltemi[api]").\n'
)


def asset_dir() -> str | None:
    """The directory of Swagger UI's files, or None when the package (or one of its files) is missing."""
    # find_spec locates the package without importing it (its __init__ imports Django).
    try:
        spec = importlib.util.find_spec(_ASSET_MODULE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        directory = os.path.join(location, *_ASSET_DIR)
        if all(os.path.isfile(os.path.join(directory, name)) for name in ASSETS):
            return directory
    return None


def _asset_version(directory: str) -> str:
    try:
        return importlib.metadata.version(ASSET_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        # Files found without the package's metadata (a copy on the path): their date tells versions apart.
        return str(int(os.stat(os.path.join(directory, "swagger-ui-bundle.js")).st_mtime))


def docs_routes(api: API) -> None:
    """Adds the docs pages and their files' routes to `api` (see the module's doc)."""
    if not api.openapi_url:
        return  # the pages show the OpenAPI document: without it there is nothing to show
    if api.docs_url:
        swagger_routes(api)
    from .docpages import REDOC, SCALAR

    for page in (REDOC, SCALAR):
        page.add_routes(api)


def swagger_routes(api: API) -> None:
    """Swagger UI's page and files."""
    page_path = api.prefix + api.docs_url
    directory = asset_dir()
    if directory is None:

        def docs_missing(request: Request) -> Response:
            return PlainTextResponse(MISSING_TEXT, 501)

        api.add_route(api.docs_url, docs_missing, ("GET",), include_in_schema=False)
        return

    # URLs relative to the page: "/api/docs" reaches "/api/docs/x.css" as
    # "docs/x.css" and "/api/openapi.json" as "openapi.json".
    base = page_path if page_path.endswith("/") else posixpath.dirname(page_path)
    assets_path = page_path.rstrip("/")
    version = _asset_version(directory)

    def url(path: str, versioned: bool = False) -> str:
        rel = posixpath.relpath(path, base)
        return f"{rel}?v={version}" if versioned else rel

    page = render_page(
        title=f"{api.title} – API docs",
        openapi_url=url(api.prefix + api.openapi_url),
        css_url=url(f"{assets_path}/swagger-ui.css", True),
        js_url=url(f"{assets_path}/swagger-ui-bundle.js", True),
        favicon_url=url(f"{assets_path}/favicon-32x32.png", True),
        # Swagger UI wants this one absolute; it is made from the page's own location in the browser.
        oauth2_redirect=posixpath.relpath(f"{assets_path}/oauth2-redirect.html", base),
    ).encode()

    def docs_page(request: Request) -> Response:
        return HTMLResponse(page, headers={"Cache-Control": _PAGE_CACHE})

    api.add_route(api.docs_url, docs_page, ("GET",), include_in_schema=False)
    for name, media_type in ASSETS.items():
        api.add_route(
            f"{api.docs_url.rstrip('/')}/{name}",
            _asset_handler(os.path.join(directory, name), media_type),
            ("GET",),
            include_in_schema=False,
        )


def _asset_handler(path: str, media_type: str):
    def docs_asset(request: Request) -> Response:
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": _ASSET_CACHE})

    return docs_asset


def render_page(
    *, title: str, openapi_url: str, css_url: str, js_url: str, favicon_url: str, oauth2_redirect: str
) -> str:
    """The docs page's HTML: Swagger UI started on the OpenAPI document at `openapi_url`."""

    def js(value: str) -> str:
        # A JSON string is a JS string; "<" escaped so that no "</script>" can end the script early.
        return json.dumps(value).replace("<", "\\u003c")

    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" type="image/png" href="{html.escape(favicon_url)}">
<link rel="stylesheet" href="{html.escape(css_url)}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{html.escape(js_url)}"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: {js(openapi_url)},
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  oauth2RedirectUrl: new URL({js(oauth2_redirect)}, window.location.href).href,
}});
</script>
</body>
</html>
"""
