"""ReDoc and Scalar: two more docs pages on the API's OpenAPI document, offline.

``API(redoc_url="/redoc", scalar_url="/scalar")`` (the defaults; None turns
a page off) adds, under the API's prefix, the page and its one script:

- ReDoc: ``<prefix>/redoc`` and ``<prefix>/redoc/redoc.standalone.js``, from
  ``drf-spectacular-sidecar`` (the package that brings Swagger UI's files;
  ReDoc is MIT licensed);
- Scalar: ``<prefix>/scalar`` and ``<prefix>/scalar/scalar.standalone.js``,
  from ``flask-openapi-scalar`` on PyPI, whose wheel carries Scalar's
  standalone bundle (MIT). meltemi reads only that file and never imports the
  package, so it may be installed without its dependencies (Flask, pydantic):
  ``pip install --no-deps flask-openapi-scalar``. The bundles of its siblings
  ``flask-openapi3-scalar`` and ``star-openapi-scalar`` are found as well.

Like Swagger UI's page (docs.py): relative URLs, files sent with sendfile
and cached for a week under URLs that carry the package's version, and a 501
that says what to install when the package is missing. Scalar is started
with its web fonts, telemetry and AI agent off, so the page makes no request
but to the API's own origin.
"""

from __future__ import annotations

import html
import importlib.metadata
import importlib.util
import json
import os
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .request import Request
from .responses import FileResponse, HTMLResponse, PlainTextResponse, Response

if TYPE_CHECKING:
    from .app import API

_ASSET_CACHE = "public, max-age=604800"
_PAGE_CACHE = "no-cache"


def _js(value: object) -> str:
    # JSON is JS; "<" escaped so that no "</script>" can end the script early.
    return json.dumps(value).replace("<", "\\u003c")


def render_redoc(title: str, openapi_url: str, script_url: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<div id="redoc"></div>
<script src="{html.escape(script_url)}"></script>
<script>
Redoc.init({_js(openapi_url)}, {{}}, document.getElementById("redoc"));
</script>
</body>
</html>
"""


# No request leaves for another origin: no web fonts, no telemetry, no AI agent.
SCALAR_CONFIGURATION = {"withDefaultFonts": False, "telemetry": False, "agent": {"disabled": True}}


def render_scalar(title: str, openapi_url: str, script_url: str) -> str:
    config = {"url": openapi_url, **SCALAR_CONFIGURATION}
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
</head>
<body>
<div id="app"></div>
<script src="{html.escape(script_url)}"></script>
<script>
Scalar.createApiReference("#app", {_js(config)});
</script>
</body>
</html>
"""


@dataclass(frozen=True)
class DocsPage:
    """One docs page: where its script is found (the first of `sources`,
    each a distribution, its module and the script's directory in it)."""

    name: str  # "redoc": the API's attribute is redoc_url
    label: str
    script: str
    sources: tuple[tuple[str, str, tuple[str, ...]], ...]
    render: object

    def find(self) -> tuple[str, str] | None:
        """(the script's path, its package's version), or None when no source is installed."""
        for dist, module, subdir in self.sources:
            # find_spec locates a package without importing it (and its dependencies).
            try:
                spec = importlib.util.find_spec(module)
            except (ImportError, ValueError):
                spec = None
            if spec is None or not spec.submodule_search_locations:
                continue
            for location in spec.submodule_search_locations:
                path = os.path.join(location, *subdir, self.script)
                if os.path.isfile(path):
                    try:
                        version = importlib.metadata.version(dist)
                    except importlib.metadata.PackageNotFoundError:
                        version = str(int(os.stat(path).st_mtime))
                    return path, version
        return None

    def missing_text(self) -> str:
        dist = self.sources[0][0]
        return f"The {self.label} docs page needs {self.script} from the {dist} package, which is not installed: " + (
            f"pip install --no-deps {dist}\n" if self.name == "scalar" else f"pip install {dist}\n"
        )

    def add_routes(self, api: API) -> None:
        url = getattr(api, f"{self.name}_url", None)
        if not url:
            return
        found = self.find()
        if found is None:
            text = self.missing_text()

            def docs_missing(request: Request) -> Response:
                return PlainTextResponse(text, 501)

            api.add_route(url, docs_missing, ("GET",), include_in_schema=False, name=f"{self.name}_missing")
            return
        path, version = found
        page_path = api.prefix + url
        base = page_path if page_path.endswith("/") else posixpath.dirname(page_path)
        script_path = f"{page_path.rstrip('/')}/{self.script}"
        page = self.render(
            f"{api.title} – API docs",
            posixpath.relpath(api.prefix + api.openapi_url, base),
            f"{posixpath.relpath(script_path, base)}?v={version}",
        ).encode()

        def docs_page(request: Request) -> Response:
            return HTMLResponse(page, headers={"Cache-Control": _PAGE_CACHE})

        def docs_script(request: Request) -> Response:
            return FileResponse(
                path, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": _ASSET_CACHE}
            )

        api.add_route(url, docs_page, ("GET",), include_in_schema=False, name=f"{self.name}_page")
        api.add_route(
            f"{url.rstrip('/')}/{self.script}",
            docs_script,
            ("GET",),
            include_in_schema=False,
            name=f"{self.name}_script",
        )


REDOC = DocsPage(
    "redoc",
    "ReDoc",
    "redoc.standalone.js",
    (
        (
            "drf-spectacular-sidecar",
            "drf_spectacular_sidecar",
            ("static", "drf_spectacular_sidecar", "redoc", "bundles"),
        ),
    ),  # noqa: E501
    render_redoc,
)

SCALAR = DocsPage(
    "scalar",
    "Scalar",
    "scalar.standalone.js",
    tuple(
        (dist, dist.replace("-", "_"), ("templates", "scalar", "js"))
        for dist in ("flask-openapi-scalar", "flask-openapi3-scalar", "star-openapi-scalar")
    ),
    render_scalar,
)
