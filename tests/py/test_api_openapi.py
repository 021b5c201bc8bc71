"""The API's OpenAPI 3.1 document and its docs page (issue 3, item 7).

The document of tests/py/openapi_app.py is validated against the OpenAPI 3.1
schema and checked against the routes it describes; the document, the docs
page and Swagger UI's files are fetched through the C pipeline (TestClient)
and from a real server started with --api.
"""

from __future__ import annotations

import copy
import json
import os
import re
from urllib.parse import urljoin

import pytest
from conftest import API_NOT_APPLICABLE, FREE_THREADED

if API_NOT_APPLICABLE:
    pytest.skip(API_NOT_APPLICABLE, allow_module_level=True)
try:
    from openapi_spec_validator import OpenAPIV31SpecValidator, validate
except ImportError:
    if not FREE_THREADED:
        raise
    # Its rpds-py (a Rust extension) has no free-threaded build; the GIL build checks the documents.
    pytest.skip("openapi-spec-validator needs rpds-py, which has no free-threaded build", allow_module_level=True)

import msgspec  # noqa: E402
import openapi_app  # noqa: E402
import requests  # noqa: E402

from meltemi import API, Router  # noqa: E402
from meltemi.api import docs  # noqa: E402
from meltemi.api.openapi import humanize, openapi_path  # noqa: E402
from meltemi.testing import TestClient  # noqa: E402

pytestmark = pytest.mark.timeout(60)

VALIDATION_REF = {"$ref": "#/components/schemas/HTTPValidationError"}


@pytest.fixture(scope="module")
def doc():
    return openapi_app.api.openapi()


def op(doc, method, path):
    return doc["paths"][path][method]


def params(operation):
    """{(in, name): parameter}"""
    return {(p["in"], p["name"]): p for p in operation.get("parameters", [])}


def schema_of(doc, schema):
    """The schema a $ref names (or the schema itself)."""
    ref = schema.get("$ref")
    if ref:
        return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


# ---- the document as a whole ----


def test_document_validates_against_openapi_31(doc):
    assert doc["openapi"] == "3.1.0"
    validate(doc, cls=OpenAPIV31SpecValidator)
    # And it is JSON as it is (what the openapi route encodes).
    assert json.loads(msgspec.json.encode(doc)) == doc


def test_the_validator_would_see_a_broken_document(doc):
    """The validation above can fail: a path parameter left undeclared is caught."""
    broken = copy.deepcopy(doc)
    del broken["paths"]["/api/v1/items/{item_id}"]["get"]["parameters"][0]
    with pytest.raises(Exception, match="item_id"):
        validate(broken, cls=OpenAPIV31SpecValidator)


def test_info_and_servers(doc):
    assert doc["info"] == {"title": "Shop API", "version": "3.2.1", "description": "Items and their **prices**."}
    assert doc["servers"] == [{"url": "https://shop.example", "description": "production"}]


def test_paths_and_methods_are_the_routes(doc):
    """Every documented route with its methods; hidden, constant and docs routes are absent."""
    found = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert found == {
        ("GET", "/api/v1/items/{item_id}"),
        ("DELETE", "/api/v1/items/{item_id}"),
        ("POST", "/api/v1/items"),
        ("GET", "/api/types/{u}/{d}"),
        ("GET", "/api/headers"),
        ("GET", "/api/files/{rest}"),
        ("POST", "/api/upload"),
        ("POST", "/api/form"),
        ("POST", "/api/pair"),
        ("GET", "/api/paged"),
        ("GET", "/api/old"),
        ("GET", "/api/multi"),
        ("PUT", "/api/multi"),
        ("GET", "/api/page"),
        ("GET", "/api/opaque"),
    }
    # The routes left out do exist (so their absence above means something).
    paths = {r.path for r in openapi_app.api.routes}
    assert {"/api/hidden", "/api/health", "/api/openapi.json", "/api/docs"} <= paths


def test_operation_ids_are_unique(doc):
    ids = [o["operationId"] for item in doc["paths"].values() for o in item.values()]
    assert len(ids) == len(set(ids))
    assert op(doc, "get", "/api/v1/items/{item_id}")["operationId"] == "get_item"
    # operation_id= is used; a route of several methods gets one per method.
    assert op(doc, "get", "/api/multi")["operationId"] == "multiThing_get"
    assert op(doc, "put", "/api/multi")["operationId"] == "multiThing_put"


def test_duplicate_operation_ids_are_made_unique():
    api = API(prefix="/x", docs_url=None, openapi_url=None)
    a, b = Router(), Router()

    @a.get("/items")
    def list_items() -> list[int]:
        return []

    @b.get("/items")
    def list_items_b() -> list[int]:
        return []

    b.routes[0].name = "list_items"  # the same handler name in two routers
    api.include_router(a, prefix="/a")
    api.include_router(b, prefix="/b")
    d = api.openapi()
    assert d["paths"]["/x/a/items"]["get"]["operationId"] == "list_items"
    assert d["paths"]["/x/b/items"]["get"]["operationId"] == "list_items_2"
    validate(d, cls=OpenAPIV31SpecValidator)


# ---- operations ----


def test_summaries_and_descriptions(doc):
    get = op(doc, "get", "/api/v1/items/{item_id}")
    assert get["summary"] == "Get Item"  # the handler's name, humanized
    assert get["description"] == "Reads one item.\n\nThe query string's `q` is ignored."  # its docstring
    create = op(doc, "post", "/api/v1/items")
    assert create["summary"] == "Create an item"  # summary=
    assert "description" not in create  # no docstring, no description
    assert humanize("old_thing") == "Old Thing"


def test_tags_from_router_includes(doc):
    assert op(doc, "get", "/api/v1/items/{item_id}")["tags"] == ["shop", "items"]
    assert op(doc, "post", "/api/v1/items")["tags"] == ["shop", "items"]
    assert op(doc, "get", "/api/old")["tags"] == ["legacy"]
    assert "tags" not in op(doc, "get", "/api/headers")
    assert doc["tags"] == [{"name": "shop"}, {"name": "items"}, {"name": "legacy"}]


def test_deprecated(doc):
    assert op(doc, "get", "/api/old")["deprecated"] is True
    assert "deprecated" not in op(doc, "get", "/api/headers")


# ---- parameters ----


def test_path_parameters(doc):
    get = op(doc, "get", "/api/v1/items/{item_id}")
    assert params(get)[("path", "item_id")] == {
        "name": "item_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
    }
    types = params(op(doc, "get", "/api/types/{u}/{d}"))
    assert types[("path", "u")]["schema"] == {"type": "string", "format": "uuid"}
    assert types[("path", "d")]["schema"] == {"type": "string", "format": "date"}
    # {rest:path} is written {rest}, its parameter a required string.
    rest = params(op(doc, "get", "/api/files/{rest}"))[("path", "rest")]
    assert rest["required"] is True and rest["schema"] == {"type": "string"}
    assert openapi_path("/a/{x:int}/{rest:path}") == "/a/{x}/{rest}"


def test_query_parameters(doc):
    get = params(op(doc, "get", "/api/v1/items/{item_id}"))
    q = get[("query", "q")]
    assert q["required"] is False
    assert q["schema"] == {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}

    types = params(op(doc, "get", "/api/types/{u}/{d}"))
    assert types[("query", "f")] == {"name": "f", "in": "query", "required": True, "schema": {"type": "number"}}
    assert types[("query", "b")]["schema"] == {"type": "boolean", "default": False}
    assert types[("query", "b")]["required"] is False
    assert types[("query", "ids")]["schema"] == {"type": "array", "items": {"type": "integer"}, "default": []}
    limit = types[("query", "limit")]
    assert limit["description"] == "At most this many"  # from Query(description=...)
    assert limit["schema"]["type"] == "integer" and limit["schema"]["default"] == 20
    assert limit["schema"]["examples"] == [10]
    # Query(include_in_schema=False) is not shown.
    assert ("query", "secret") not in types
    assert [k for k in types] == [
        ("path", "u"),
        ("path", "d"),
        ("query", "f"),
        ("query", "b"),
        ("query", "ids"),
        ("query", "limit"),
    ]


def test_header_and_cookie_parameters(doc):
    headers = params(op(doc, "get", "/api/headers"))
    request_id = headers[("header", "X-Request-ID")]  # the alias as written
    assert request_id["required"] is True
    assert request_id["description"] == "Echoed back"
    assert request_id["schema"]["type"] == "string"
    # Without an alias, a header is the name with '-' for '_'.
    retries = headers[("header", "x-retries")]
    assert retries["schema"] == {"type": "integer", "minimum": 0, "description": "Retries so far", "default": 0}
    assert retries["description"] == "Retries so far"  # from msgspec.Meta, shown beside the parameter
    session = headers[("cookie", "session")]
    assert session["required"] is False
    assert set(headers) == {("header", "X-Request-ID"), ("header", "x-retries"), ("cookie", "session")}


def test_dependency_parameters(doc):
    """A Depends(fn)'s own parameters are the operation's, by their wire names."""
    paged = params(op(doc, "get", "/api/paged"))
    assert set(paged) == {("query", "page"), ("query", "page-size")}
    assert paged[("query", "page-size")]["schema"] == {"type": "integer", "default": 50}
    assert "requestBody" not in op(doc, "get", "/api/paged")


# ---- request bodies ----


def test_json_body_is_a_component_ref(doc):
    body = op(doc, "post", "/api/v1/items")["requestBody"]
    assert body["required"] is True
    assert body["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}
    item = doc["components"]["schemas"]["Item"]
    assert item["description"] == "An item for sale."
    assert item["required"] == ["name", "price"]
    assert item["properties"]["price"] == {"type": "number", "exclusiveMinimum": 0}  # msgspec.Meta(gt=0)
    assert item["properties"]["name"] == {"type": "string", "minLength": 1}


def test_several_body_parameters_make_an_object(doc):
    schema = op(doc, "post", "/api/pair")["requestBody"]["content"]["application/json"]["schema"]
    ref = {"$ref": "#/components/schemas/Item"}
    assert schema == {"type": "object", "properties": {"first": ref, "second": ref}, "required": ["first", "second"]}


def test_files_and_form_fields(doc):
    body = op(doc, "post", "/api/upload")["requestBody"]
    assert list(body["content"]) == ["multipart/form-data"]  # files: multipart only
    schema = body["content"]["multipart/form-data"]["schema"]
    binary = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}
    assert schema["properties"]["doc"] == binary
    assert schema["properties"]["extra"] == {"type": "array", "items": binary}
    assert schema["properties"]["title"] == {"type": "string", "default": ""}
    assert schema["required"] == ["doc"]

    form = op(doc, "post", "/api/form")["requestBody"]
    assert sorted(form["content"]) == ["application/x-www-form-urlencoded", "multipart/form-data"]
    fields = form["content"]["application/x-www-form-urlencoded"]["schema"]
    assert fields["properties"] == {"name": {"type": "string"}, "age": {"type": "integer", "default": 0}}
    assert fields["required"] == ["name"]


def test_no_body_without_body_parameters(doc):
    assert "requestBody" not in op(doc, "get", "/api/v1/items/{item_id}")
    assert "requestBody" not in op(doc, "delete", "/api/v1/items/{item_id}")


# ---- responses ----


def test_response_schema_is_the_return_type(doc):
    get = op(doc, "get", "/api/v1/items/{item_id}")["responses"]
    assert get["200"]["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/ItemOut"}}}
    item_out = doc["components"]["schemas"]["ItemOut"]
    assert item_out["properties"]["item"] == {"$ref": "#/components/schemas/Item"}  # shared, not copied

    create = op(doc, "post", "/api/v1/items")["responses"]
    assert "200" not in create
    assert create["201"]["description"] == "Created"
    assert create["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ItemOut"}

    pair = op(doc, "post", "/api/pair")["responses"]["200"]["content"]["application/json"]["schema"]
    assert pair == {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}


def test_response_media_types(doc):
    assert op(doc, "get", "/api/headers")["responses"]["200"]["content"] == {
        "text/plain": {"schema": {"type": "string"}}
    }
    files = op(doc, "get", "/api/files/{rest}")["responses"]["200"]["content"]
    assert list(files) == ["application/octet-stream"]
    assert files["application/octet-stream"]["schema"]["contentMediaType"] == "application/octet-stream"
    assert op(doc, "get", "/api/page")["responses"]["200"]["content"] == {"text/html": {}}


def test_no_content_for_204(doc):
    assert op(doc, "delete", "/api/v1/items/{item_id}")["responses"]["204"] == {"description": "No Content"}


def test_422_validation_error_shape(doc):
    r422 = op(doc, "get", "/api/v1/items/{item_id}")["responses"]["422"]
    assert r422["content"]["application/json"]["schema"] == VALIDATION_REF
    shape = doc["components"]["schemas"]["HTTPValidationError"]
    assert shape["required"] == ["detail"]
    assert shape["properties"]["detail"] == {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}
    error = doc["components"]["schemas"]["ValidationError"]
    assert error["required"] == ["loc", "msg", "type"]
    assert error["properties"]["loc"] == {
        "type": "array",
        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    }
    # An operation that reads nothing from the request cannot answer 422.
    assert "422" not in op(doc, "get", "/api/old")["responses"]


def test_422_shape_is_what_the_api_answers(doc):
    """The documented shape fits the body of a real 422 (validated with the
    document's own schema, through the C pipeline)."""
    import jsonschema

    with TestClient(openapi_app.api) as c:
        r = c.get("/api/types/not-a-uuid/2024-01-01", params={"f": "x"})
    assert r.status_code == 422
    schema = {"$ref": "#/components/schemas/HTTPValidationError", "components": doc["components"]}
    jsonschema.validate(r.json(), schema)


def test_declared_responses(doc):
    delete = op(doc, "delete", "/api/v1/items/{item_id}")["responses"]
    assert delete["404"] == {
        "description": "No such item",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPError"}}},
    }
    assert op(doc, "post", "/api/v1/items")["responses"]["409"]["description"] == "Already there"


def test_declared_response_kinds():
    class Conflict(msgspec.Struct):
        existing: int

    api = API(prefix="", docs_url=None, openapi_url=None)

    @api.get(
        "/r",
        responses={
            200: "The thing",  # a description for the route's own status keeps its schema
            "5XX": "Server trouble",
            409: Conflict,
            410: None,
            418: {"description": "A teapot", "model": list[str]},
            503: {"description": "Later", "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
        },
    )
    def r() -> dict:
        return {}

    d = api.openapi()
    validate(d, cls=OpenAPIV31SpecValidator)
    responses = d["paths"]["/r"]["get"]["responses"]
    assert responses["200"] == {
        "description": "The thing",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    assert responses["5XX"]["description"] == "Server trouble"
    assert responses["5XX"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/HTTPError"}
    assert responses["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Conflict"}
    assert responses["410"]["description"] == "Gone"
    assert responses["418"] == {
        "description": "A teapot",
        "content": {"application/json": {"schema": {"type": "array", "items": {"type": "string"}}}},
    }
    assert responses["503"]["headers"] == {"Retry-After": {"schema": {"type": "integer"}}}
    assert responses["503"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/HTTPError"}


def test_a_type_without_json_schema_is_any_value(doc):
    """A response type msgspec cannot describe is documented as any value
    (with a warning), and the rest of the document is still made."""
    assert op(doc, "get", "/api/opaque")["responses"]["200"]["content"] == {"application/json": {"schema": {}}}
    assert "Item" in doc["components"]["schemas"]


def _other_item():
    class Item(msgspec.Struct):
        other: str

    return Item


OtherItem = _other_item()  # another "Item", at module level so annotations find it


def test_components_are_shared_and_named_apart():
    """One component per type however often it is used; two types of one name are both kept."""
    api = API(prefix="", docs_url=None, openapi_url=None)

    @api.post("/a")
    def a(item: openapi_app.Item) -> openapi_app.Item:
        return item

    @api.post("/b")
    def b(item: OtherItem) -> list[openapi_app.Item]:
        return []

    d = api.openapi()
    validate(d, cls=OpenAPIV31SpecValidator)
    components = d["components"]["schemas"]
    item_like = [name for name in components if name.split(".")[-1] == "Item"]
    assert len(item_like) == 2
    refs_a = d["paths"]["/a"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    refs_b = d["paths"]["/b"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert refs_a != refs_b
    assert components[refs_a.rsplit("/", 1)[1]]["properties"].keys() == {"name", "price", "tags"}
    assert components[refs_b.rsplit("/", 1)[1]]["properties"].keys() == {"other"}


def test_the_test_projects_api_is_documented():
    """The document of the other API tests' project (every parameter kind and
    converter, Django responses, dependencies) validates and lists its routes."""
    from apiclient import django_ready

    django_ready()
    from apiproject.api import api

    d = api.openapi()
    validate(d, cls=OpenAPIV31SpecValidator)
    expected = {
        (m.lower(), openapi_path(ep.route.path))
        for ep in api.compile()
        if ep.route.include_in_schema and ep.route.constant is None
        for m in ep.route.methods
    }
    assert {(m, p) for p, item in d["paths"].items() for m in item} == expected
    assert len(expected) > 20


def test_document_is_made_once():
    assert openapi_app.api.openapi() is openapi_app.api.openapi()


# ---- served: through the C pipeline ----


@pytest.fixture(scope="module")
def client():
    with TestClient(openapi_app.api) as c:
        yield c


def test_openapi_json_is_served(client, doc):
    r = client.get("/api/openapi.json")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == json.loads(msgspec.json.encode(doc))


def page_links(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


def test_docs_page_and_its_assets(client):
    r = client.get("/api/docs")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-cache"
    page = r.text
    assert "<title>Shop API – API docs</title>" in page
    assert 'url: "openapi.json"' in page  # relative to /api/docs: /api/openapi.json
    links = page_links(page)
    assert len(links) == 3  # favicon, stylesheet, script
    directory = docs.asset_dir()
    base = "http://testserver/api/docs"
    for link in links:
        assert "://" not in link and not link.startswith("/")  # nothing from elsewhere: works offline
        url = urljoin(base, link)
        path = url[len("http://testserver") :]
        asset = client.get(path)
        assert asset.status_code == 200, path
        name = path.split("?")[0].rsplit("/", 1)[1]
        assert asset.headers["Content-Type"] == docs.ASSETS[name]
        assert asset.headers["Cache-Control"] == "public, max-age=604800"
        with open(os.path.join(directory, name), "rb") as f:
            assert asset.content == f.read()
    script = client.get("/api/docs/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in script.content
    # Swagger UI 5 or later: the one that reads OpenAPI 3.1 documents.
    assert b"isOAS31" in script.content
    # The OAuth2 redirect page and its script are there too.
    assert client.get("/api/docs/oauth2-redirect.html").status_code == 200
    assert client.get("/api/docs/oauth2-redirect.js").status_code == 200
    assert client.get("/api/docs/nothing.js").status_code == 404


def test_page_escapes_the_title():
    page = docs.render_page(
        title="</title><script>x</script>",
        openapi_url="a</script>.json",
        css_url="c.css",
        js_url="j.js",
        favicon_url="f.png",
        oauth2_redirect="o.html",
    )
    assert "<script>x" not in page
    assert "a</script>" not in page
    assert page.count("</script>") == 2  # the bundle's tag and the starter's


def test_docs_urls_follow_the_api_settings():
    api = API(prefix="/v2", title="T", openapi_url="/schema/openapi.json", docs_url="/help/")

    @api.get("/x")
    def x() -> int:
        return 1

    with TestClient(api) as c:
        page = c.get("/v2/help/")
        assert page.status_code == 200
        assert 'url: "../schema/openapi.json"' in page.text  # from /v2/help/ to /v2/schema/openapi.json
        assert c.get("/v2/schema/openapi.json").json()["paths"].keys() == {"/v2/x"}
        for link in page_links(page.text):
            assert c.get(urljoin("/v2/help/", link)).status_code == 200


def test_no_docs_routes_when_turned_off():
    api = API(prefix="/api", docs_url=None)
    api.get("/x")(lambda: 1)
    hidden = API(prefix="/api", openapi_url=None)  # a page without a document has nothing to show
    hidden.get("/x")(lambda: 1)
    with TestClient(api) as c:
        assert c.get("/api/openapi.json").status_code == 200
        assert c.get("/api/docs").status_code == 404
    with TestClient(hidden) as c:
        assert c.get("/api/openapi.json").status_code == 404
        assert c.get("/api/docs").status_code == 404


def test_docs_page_without_the_package(monkeypatch):
    """Without Swagger UI's package the page says what to install; the rest works."""
    monkeypatch.setattr(docs, "_ASSET_MODULE", "meltemi_no_such_package")
    assert docs.asset_dir() is None
    api = API(prefix="/api")
    api.get("/x")(lambda: 1)
    with TestClient(api) as c:
        r = c.get("/api/docs")
        assert r.status_code == 501
        assert r.headers["Content-Type"].startswith("text/plain")
        assert "pip install drf-spectacular-sidecar" in r.text
        assert c.get("/api/docs/swagger-ui-bundle.js").status_code == 404
        assert c.get("/api/openapi.json").status_code == 200
        assert c.get("/api/x").json() == 1


# ---- served: a real server started with --api ----


def test_served_by_a_real_server(start_server):
    server = start_server("meltemi.api.app:not_found", "--api", "openapi_app:api")
    base = f"http://{server.host}:{server.port}"
    r = requests.get(f"{base}/api/openapi.json", timeout=10)
    assert r.status_code == 200
    served = r.json()
    validate(served, cls=OpenAPIV31SpecValidator)
    assert "/api/v1/items/{item_id}" in served["paths"]
    page = requests.get(f"{base}/api/docs", timeout=10)
    assert page.status_code == 200 and "SwaggerUIBundle(" in page.text
    css = [link for link in page_links(page.text) if ".css" in link][0]
    asset = requests.get(urljoin(f"{base}/api/docs", css), timeout=10)
    assert asset.status_code == 200
    assert asset.headers["Content-Type"] == "text/css; charset=utf-8"
    assert b".swagger-ui" in asset.content
