"""The typed API's ergonomics (issue 12, part 6): paginators, class-based
views, the model viewset, mounting and reverse, health and readiness, the
ReDoc and Scalar pages. Requests go through the C parser and router
(TestClient; Django TestCase where rows are involved) and, at the end,
through a real server, also one whose database is unreachable."""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Annotated
from urllib.parse import parse_qs, urljoin, urlsplit

import msgspec
import pytest
import requests
from apiclient import django_ready
from conftest import ROOT, TESTS
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

django_ready()

import ergonomics_api as ergo  # noqa: E402  (needs Django's settings)
from apiproject.models import Item  # noqa: E402
from django.test import TestCase  # noqa: E402

from meltemi.api import (  # noqa: E402
    API,
    NoReverseMatch,
    PageNumberPagination,
    Query,
    Router,
    docpages,  # noqa: E402
    paginate,
)
from meltemi.api.pagination import encode_cursor  # noqa: E402
from meltemi.testing import TestClient  # noqa: E402

pytestmark = pytest.mark.timeout(120)

_client = None


def client() -> TestClient:
    global _client
    if _client is None:
        _client = TestClient(ergo.api)
    return _client


def detail_locs(r) -> list[list]:
    assert r.status_code == 422, r.text
    return [e["loc"] for e in r.json()["detail"]]


def walk(first_url: str, key: str = "next") -> list[dict]:
    """Every page from first_url on, following `key` links."""
    pages, url = [], first_url
    while url:
        r = client().get(url)
        assert r.status_code == 200, r.text
        pages.append(r.json())
        url = pages[-1][key]
        assert len(pages) < 50, "the links never end"
    return pages


# ---- page number ----


def test_page_number_first_middle_last_and_links():
    first = client().get("/api/rows/pages").json()
    assert [r["id"] for r in first["items"]] == [1, 2, 3, 4, 5]
    assert (first["count"], first["page"], first["page_size"], first["pages"]) == (23, 1, 5, 5)
    assert first["previous"] is None and first["next"] == "/api/rows/pages?page=2"
    pages = walk("/api/rows/pages")
    assert [len(p["items"]) for p in pages] == [5, 5, 5, 5, 3]
    assert [r["id"] for p in pages for r in p["items"]] == list(range(1, 24))
    last = pages[-1]
    assert last["next"] is None and last["previous"] == "/api/rows/pages?page=4"


def test_page_number_links_keep_the_other_parameters():
    r = client().get("/api/rows/pages", params={"prefix": "row1", "page_size": 3, "page": 2}).json()
    # row1, row10..row19: 11 rows, 4 pages of 3
    assert r["count"] == 11 and r["pages"] == 4
    assert [i["name"] for i in r["items"]] == ["row12", "row13", "row14"]
    assert parse_qs(urlsplit(r["next"]).query) == {"prefix": ["row1"], "page_size": ["3"], "page": ["3"]}
    assert parse_qs(urlsplit(r["previous"]).query) == {"prefix": ["row1"], "page_size": ["3"], "page": ["1"]}


def test_page_number_bounds():
    assert client().get("/api/rows/pages?page=5").status_code == 200
    r = client().get("/api/rows/pages?page=6")
    assert r.status_code == 404 and "last is 5" in r.json()["detail"]
    assert detail_locs(client().get("/api/rows/pages?page=0")) == [["query", "page"]]
    assert detail_locs(client().get("/api/rows/pages?page=x")) == [["query", "page"]]
    assert detail_locs(client().get("/api/rows/pages?page_size=11")) == [["query", "page_size"]]
    assert detail_locs(client().get("/api/rows/pages?page_size=0&page=-1")) == [
        ["query", "page"],
        ["query", "page_size"],
    ]
    assert client().get("/api/rows/pages?page_size=10").json()["pages"] == 3
    # An empty list has one, empty, page.
    empty = client().get("/api/rows/pages?prefix=zzz").json()
    assert empty == {"items": [], "count": 0, "page": 1, "page_size": 5, "pages": 1, "next": None, "previous": None}


# ---- limit / offset ----


def test_limit_offset_slices_and_bounds():
    r = client().get("/api/rows/slices").json()
    assert [i["id"] for i in r["items"]] == [1, 2, 3, 4] and r["limit"] == 4 and r["offset"] == 0
    assert r["previous"] is None and r["next"] == "/api/rows/slices?offset=4"
    pages = walk("/api/rows/slices?limit=8")
    assert [r["id"] for p in pages for r in p["items"]] == list(range(1, 24))
    assert pages[-1]["offset"] == 16 and len(pages[-1]["items"]) == 7
    r = client().get("/api/rows/slices?offset=21&limit=5").json()
    assert [i["id"] for i in r["items"]] == [22, 23] and r["next"] is None
    assert r["previous"] == "/api/rows/slices?offset=16&limit=5"
    past = client().get("/api/rows/slices?offset=100").json()
    assert past["items"] == [] and past["count"] == 23 and past["next"] is None
    assert past["previous"] == "/api/rows/slices?offset=19"  # the last page, not offset 96
    assert detail_locs(client().get("/api/rows/slices?limit=9")) == [["query", "limit"]]
    assert detail_locs(client().get("/api/rows/slices?offset=-1")) == [["query", "offset"]]


# ---- cursor (over a list) ----


def test_cursor_walks_forward_and_back_in_order():
    expected = [r.id for r in sorted(ergo.ROWS, key=lambda r: r.when, reverse=True)]
    pages = walk("/api/rows/cursor")
    assert [len(p["items"]) for p in pages] == [5, 5, 5, 5, 3]
    assert [r["id"] for p in pages for r in p["items"]] == expected
    assert pages[0]["previous"] is None and pages[0]["previous_cursor"] is None
    back = walk(pages[-1]["previous"], "previous")
    assert [r["id"] for p in reversed(back) for r in p["items"]] == expected[:20]
    assert back[-1]["previous"] is None
    r = client().get("/api/rows/cursor?page_size=10").json()
    assert len(r["items"]) == 10 and "page_size=10" in r["next"]


def test_cursor_is_opaque_and_tampering_is_refused():
    first = client().get("/api/rows/cursor").json()
    cursor = first["next_cursor"]
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)
    assert client().get(f"/api/rows/cursor?cursor={cursor}").status_code == 200
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    payload = raw[:-16]
    # The position changed, the signature kept: refused.
    forged_payload = payload.replace(b'"n"', b'"p"')
    assert forged_payload != payload
    forged = base64.urlsafe_b64encode(forged_payload + raw[-16:]).rstrip(b"=").decode()
    flipped = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]
    for bad in (forged, flipped, "abc", "!!!", "", base64.urlsafe_b64encode(b"x" * 40).decode()):
        r = client().get("/api/rows/cursor", params={"cursor": bad})
        if bad == "":
            assert r.status_code == 200  # no cursor: the first page
            continue
        assert r.status_code == 422, bad
        assert r.json() == {"detail": [{"loc": ["query", "cursor"], "msg": "Invalid cursor", "type": "value_error"}]}
    # Well signed, but the wrong number of ordering values.
    r = client().get("/api/rows/cursor", params={"cursor": encode_cursor("n", [1, 2, 3])})
    assert r.status_code == 422
    r = client().get("/api/rows/cursor", params={"cursor": encode_cursor("n", ["not a date"])})
    assert r.status_code == 422


# ---- cursor and page number over QuerySets ----


class EmptyTable(TestCase):
    """Each test starts with no Item rows (other modules leave some in the
    session's database; the deletion is rolled back with the test)."""

    def setUp(self):
        Item.objects.all().delete()


class PaginatedQuerySets(EmptyTable):
    def test_page_number_over_a_queryset(self):
        for i in range(7):
            Item.objects.create(name=f"q{i}", price=i)
        r = client().get("/api/items/pages?page=3&min_price=0").json()
        assert r["count"] == 7 and r["pages"] == 3
        assert [i["name"] for i in r["items"]] == ["q6"]
        r = client().get("/api/items/pages?min_price=5").json()
        assert [i["name"] for i in r["items"]] == ["q5", "q6"] and r["count"] == 2

    def test_cursor_is_stable_with_equal_values_and_inserts(self):
        prices = [5, 3, 5, 1, 5, 3, 2, 5]
        rows = [Item.objects.create(name=f"c{i}", price=p) for i, p in enumerate(prices)]
        expected = [r.name for r in sorted(rows, key=lambda r: (-r.price, -r.id))]
        first = client().get("/api/items/cursor").json()
        assert [i["name"] for i in first["items"]] == expected[:3]
        # Rows inserted before the position (a higher price) do not shift the next pages.
        Item.objects.create(name="late-high", price=9)
        Item.objects.create(name="late-low", price=0)
        rest = walk(first["next"])
        names = [i["name"] for p in rest for i in p["items"]]
        assert names == expected[3:] + ["late-low"]
        # Back from the last page: every row before it, the one inserted first included.
        everything = ["late-high", *expected, "late-low"]
        before_last = everything[: everything.index(rest[-1]["items"][0]["name"])]
        back = walk(rest[-1]["previous"], "previous")
        assert [i["name"] for p in reversed(back) for i in p["items"]] == before_last

    def test_cursor_page_is_sliced_in_the_database(self):
        for i in range(4):
            Item.objects.create(name=f"s{i}", price=i)
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            client().get("/api/items/cursor")
        selects = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
        assert len(selects) == 1 and "LIMIT 4" in selects[0]


# ---- a class-based view ----


def test_class_based_view_methods_are_routes():
    c = client()
    r = c.put("/api/notes/7", json={"text": "hello"})
    assert r.status_code == 201 and r.json() == {"id": 7, "text": "hello", "served_by": "PUT"}
    r = c.get("/api/notes/7")
    assert r.status_code == 200 and r.json()["served_by"].startswith("GET ")  # self.request was set
    assert c.get("/api/notes/8").json() == {"detail": "note 8 not found"}
    assert detail_locs(c.put("/api/notes/7", json={"text": ""})) == [["body", "text"]]
    assert detail_locs(c.get("/api/notes/x")) == [["path", "note_id"]]  # in C
    r = c.post("/api/notes/7", json={})
    assert r.status_code == 405 and set(r.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "PUT", "DELETE"}
    assert c.delete("/api/notes/7").status_code == 204
    assert c.delete("/api/notes/7").status_code == 404


def test_each_request_gets_its_own_view_instance():
    seen = []

    api = API(prefix="")

    @api.view("/count")
    class Counter:
        def __init__(self):
            self.calls = 0

        def get(self, request) -> dict:
            self.calls += 1
            seen.append(self)
            return {"calls": self.calls, "path": self.request.path}

    with TestClient(api) as c:
        assert c.get("/count").json() == {"calls": 1, "path": "/count"}
        assert c.get("/count").json() == {"calls": 1, "path": "/count"}
    assert seen[0] is not seen[1]


def test_a_view_without_methods_is_refused():
    api = API()
    with pytest.raises(TypeError, match="none of the methods"):
        api.view("/x")(type("Empty", (), {}))


# ---- the model viewset ----


class ItemViewSetCrud(EmptyTable):
    def test_create_retrieve_update_patch_delete(self):
        c = client()
        r = c.post("/api/crud/items", json={"name": "kite", "price": 3.5, "tags": ["air"]})
        assert r.status_code == 201, r.text
        item = r.json()
        assert item == {"id": item["id"], "name": "kite", "price": 3.5, "tags": ["air"]}
        url = ergo.api.reverse("item-detail", pk=item["id"])
        assert url == f"/api/crud/items/{item['id']}"
        assert c.get(url).json() == item
        # PUT replaces: tags left out go back to the model's default.
        r = c.put(url, json={"name": "big kite", "price": 7})
        assert r.status_code == 200 and r.json() == {**item, "name": "big kite", "price": 7.0, "tags": []}
        # PATCH changes only what it is given.
        r = c.patch(url, json={"tags": ["x", "y"]})
        assert r.json() == {**item, "name": "big kite", "price": 7.0, "tags": ["x", "y"]}
        row = Item.objects.get(pk=item["id"])
        assert (row.name, row.price, row.tags) == ("big kite", 7.0, ["x", "y"])
        assert c.delete(url).status_code == 204
        assert not Item.objects.filter(pk=item["id"]).exists()
        for method in (c.get, c.delete):
            r = method(url)
            assert r.status_code == 404 and r.json() == {"detail": f"item {item['id']} not found"}
        assert c.put(url, json={"name": "a", "price": 1}).status_code == 404
        assert c.patch(url, json={"price": 1}).status_code == 404

    def test_validation_errors_are_422(self):
        c = client()
        assert detail_locs(c.post("/api/crud/items", json={"name": "x"})) == [["body", "price"]]
        assert detail_locs(c.post("/api/crud/items", json={"name": "x", "price": "cheap"})) == [["body", "price"]]
        assert detail_locs(c.post("/api/crud/items", json={"name": "x" * 101, "price": 1})) == [["body", "name"]]
        assert detail_locs(c.post("/api/crud/items", json={"name": "x", "price": 1, "colour": "red"})) == [["body"]]
        # The model's own validation (full_clean): a CharField may not be blank.
        r = c.post("/api/crud/items", json={"name": "", "price": 1})
        assert r.json()["detail"] == [
            {"loc": ["body", "name"], "msg": "This field cannot be blank.", "type": "value_error"}
        ]
        row = Item.objects.create(name="ok", price=1)
        assert detail_locs(c.patch(f"/api/crud/items/{row.id}", json={"name": ""})) == [["body", "name"]]
        assert detail_locs(c.patch(f"/api/crud/items/{row.id}", json={"id": 5})) == [["body"]]  # not writable
        assert Item.objects.get(pk=row.id).name == "ok"
        assert detail_locs(c.get("/api/crud/items/abc")) == [["path", "pk"]]
        assert c.post("/api/crud/items", data=b"{", headers={"Content-Type": "application/json"}).status_code == 400

    def test_list_filters_ordering_and_pages(self):
        for name, price in [("apple", 3), ("banana", 1), ("cherry", 5), ("date", 5), ("elder", 2), ("fig", 4)]:
            Item.objects.create(name=name, price=price)
        c = client()

        def names(query: str) -> list[str]:
            r = c.get("/api/crud/items" + query)
            assert r.status_code == 200, r.text
            return [i["name"] for i in r.json()["items"]]

        assert names("") == ["apple", "banana", "cherry", "date", "elder"]  # default order (id), page 1 of 5
        assert names("?page=2") == ["fig"]
        assert names("?page_size=50&ordering=price,-name") == ["banana", "elder", "apple", "fig", "date", "cherry"]
        assert names("?ordering=-price,name&page_size=3") == ["cherry", "date", "fig"]
        assert names("?price__gte=3&price__lte=4") == ["apple", "fig"]
        assert names("?name__icontains=ER") == ["cherry", "elder"]
        assert names("?name=date") == ["date"]
        assert names("?name=nothing") == []
        r = c.get("/api/crud/items?price__gte=2&ordering=name&page_size=2&page=2").json()
        assert r["count"] == 5 and [i["name"] for i in r["items"]] == ["date", "elder"]
        assert "price__gte=2" in r["next"] and "ordering=name" in r["next"]
        assert detail_locs(c.get("/api/crud/items?ordering=tags")) == [["query", "ordering"]]
        assert detail_locs(c.get("/api/crud/items?ordering=price,,name")) == [["query", "ordering"]]
        assert detail_locs(c.get("/api/crud/items?price__gte=abc")) == [["query", "price__gte"]]
        assert detail_locs(c.get("/api/crud/items?page_size=51")) == [["query", "page_size"]]

    def test_declared_schema_queryset_and_actions(self):
        cheap = Item.objects.create(name="cheap", price=2)
        dear = Item.objects.create(name="dear", price=20)
        c = client()
        assert c.get("/api/crud/cheap").json() == [{"id": cheap.id, "name": "cheap", "price": 2.0}]
        assert c.get(ergo.api.reverse("cheap-detail", pk=cheap.id)).json()["name"] == "cheap"
        assert c.get(f"/api/crud/cheap/{dear.id}").status_code == 404  # not in get_queryset()
        assert c.post("/api/crud/cheap", json={"name": "x", "price": 1}).status_code == 405
        assert c.delete(f"/api/crud/cheap/{cheap.id}").status_code == 405


class ViewSetLookupAndListFilters(EmptyTable):
    def test_lookup_field_and_in_filter(self):
        from meltemi.api import ModelViewSet

        class ByName(ModelViewSet):
            model = Item
            lookup = "name"
            filter_fields = ["price__in", "name__isnull"]

        api = API(prefix="")
        api.register("/byname", ByName, name="byname")
        for i in range(3):
            Item.objects.create(name=f"n{i}", price=i)
        with TestClient(api) as c:
            r = c.get("/byname", params={"price__in": [1, 2]})
            assert [i["name"] for i in r.json()] == ["n1", "n2"]
            assert c.get(api.reverse("byname-detail", name="n1")).json()["name"] == "n1"
            assert c.get("/byname/zz").status_code == 404
            assert detail_locs(c.get("/byname?price__in=x")) == [["query", "price__in", 0]]


def test_optional_list_query_with_a_description_reads_every_value():
    """Regression: Annotated[list[int] | None, Query(description=...)] took the
    constraints inside the Optional, and repeated values were not read as a list."""
    api = API(prefix="")

    @api.get("/ids")
    def ids(ids: Annotated[list[int] | None, Query(description="ids")] = None) -> dict:
        return {"ids": ids}

    with TestClient(api) as c:
        assert c.get("/ids?ids=1&ids=2").json() == {"ids": [1, 2]}
        assert c.get("/ids?ids=3").json() == {"ids": [3]}
        assert c.get("/ids").json() == {"ids": None}


def test_viewset_configuration_errors():
    from meltemi.api import CursorPagination, ModelViewSet

    class NoModel(ModelViewSet):
        pass

    class CursorAndOrdering(ModelViewSet):
        model = Item
        ordering_fields = ["price"]
        pagination = CursorPagination(ordering="price")

    class BadAction(ModelViewSet):
        model = Item
        actions = ["list", "explode"]

    api = API()
    with pytest.raises(TypeError, match="model"):
        api.register("/a", NoModel)
    with pytest.raises(TypeError, match="cursor"):
        api.register("/b", CursorAndOrdering)
    with pytest.raises(ValueError, match="explode"):
        api.register("/c", BadAction)


# ---- mount and reverse ----


@pytest.mark.parametrize(
    "name, params, path",
    [
        ("v2:hello", {"name": "plain"}, "/api/v2/hello/plain"),
        ("v2:hello", {"name": "a b/c?d#e%"}, "/api/v2/hello/a%20b%2Fc%3Fd%23e%25"),
        ("v2:hello", {"name": "κύμα"}, "/api/v2/hello/%CE%BA%CF%8D%CE%BC%CE%B1"),
        ("v2:file", {"path": "docs/a b/c.txt"}, "/api/v2/files/docs/a%20b/c.txt"),
        ("v2:flags", {"on": False, "n": -12, "ratio": 2.5}, "/api/v2/flags/false/-12/2.5"),
    ],
)
def test_reverse_round_trips_through_the_c_router(name, params, path):
    assert ergo.api.reverse(name, **params) == path
    r = client().get(path)
    assert r.status_code == 200, r.text
    got = r.json()
    expected = {"hello": params["name"]} if "name" in params else params
    assert got == expected


def test_reverse_names_and_errors():
    assert ergo.api.reverse("item-list") == "/api/crud/items"
    assert ergo.api.reverse("note", note_id=3) == "/api/notes/3"
    assert ergo.api.reverse("health") == "/api/health"
    assert ergo.api.reverse("readiness") == "/api/ready"
    assert ergo.v2.reverse("hello", name="x") == "/somewhere/hello/x"  # the API mounted keeps its own names
    with pytest.raises(NoReverseMatch, match="no route"):
        ergo.api.reverse("hello", name="x")  # mounted with a namespace
    with pytest.raises(NoReverseMatch, match="takes the parameters"):
        ergo.api.reverse("item-detail")
    with pytest.raises(NoReverseMatch, match="takes the parameters"):
        ergo.api.reverse("item-detail", pk=1, extra=2)
    for bad in ("", ".", ".."):
        with pytest.raises(NoReverseMatch):
            ergo.api.reverse("v2:hello", name=bad)
    with pytest.raises(NoReverseMatch):
        ergo.api.reverse("v2:file", path="a/../b")


def test_mounted_api_keeps_its_exception_handlers_and_tags():
    assert client().get("/api/v2/teapot").status_code == 418
    assert client().get("/api/v2/files/x").json() == {"path": "x"}
    doc = ergo.api.openapi()
    assert "/api/v2/files/{path}" in doc["paths"] and "/somewhere/hello/{name}" not in doc["paths"]
    assert doc["paths"]["/api/v2/files/{path}"]["get"]["tags"] == ["files"]


def test_mount_rules():
    parent, child = API(prefix="/p"), API(prefix="/c")
    child.get("/x")(lambda: 1)
    router = Router(prefix="/r")
    router.get("/y")(lambda: 2)
    parent.mount("/one", child)
    parent.mount("/two", router)
    parent.mount("", child, namespace="root")
    with TestClient(parent) as c:
        assert c.get("/p/one/x").json() == 1
        assert c.get("/p/two/y").json() == 2
        assert c.get("/p/x").json() == 1
        assert c.get("/p/c/x").status_code == 404
    assert parent.reverse("root:<lambda>") == "/p/x"
    fresh = API()
    with pytest.raises(ValueError, match="itself"):
        fresh.mount("/self", fresh)
    with pytest.raises(ValueError, match="compiled"):
        API().mount("/late", parent)
    with pytest.raises(ValueError, match="prefix"):
        API().mount("v2", child)


# ---- health and readiness ----


def test_health_is_answered_in_c_and_readiness_checks_the_database():
    r = client().get("/api/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r.headers["Content-Type"] == "application/json"
    route = next(r for r in ergo.api.routes if r.name == "health")
    assert route.constant is not None and route.func is None  # no Python to call
    r = client().get("/api/ready")
    assert r.status_code == 200 and r.json() == {"status": "ready", "checks": {"database:default": "ok"}}
    assert r.headers["Cache-Control"] == "no-store"
    r = client().get("/api/ready/extra")
    assert r.status_code == 503
    assert r.json() == {
        "status": "unavailable",
        "checks": {"database:default": "ok", "always": "ok", "never": "failed"},
    }


def test_readiness_reports_a_failing_check_by_its_exception_class():
    api = API(prefix="")

    def broken():
        raise ConnectionError("redis://secret@host is down")

    api.readiness("/ready", databases=[], checks={"cache": broken})
    with TestClient(api) as c:
        r = c.get("/ready")
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable", "checks": {"cache": "failed: ConnectionError"}}
    assert "secret" not in r.text


# ---- docs pages ----


def page_refs(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize(
    "page, script, marker",
    [("redoc", "redoc.standalone.js", "Redoc.init("), ("scalar", "scalar.standalone.js", "Scalar.createApiReference(")],
)
def test_redoc_and_scalar_pages_are_served_offline(page, script, marker):
    c = client()
    r = c.get(f"/api/{page}")
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert marker in r.text and '"openapi.json"' in r.text
    assert "http://" not in r.text and "https://" not in r.text  # nothing from a CDN
    refs = page_refs(r.text)
    assert len(refs) == 1 and refs[0].startswith(f"{page}/{script}?v=")
    asset = c.get(urljoin(f"/api/{page}", refs[0]))
    assert asset.status_code == 200 and asset.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert asset.headers["Cache-Control"] == "public, max-age=604800"
    found = {p.name: p for p in (docpages.REDOC, docpages.SCALAR)}[page].find()
    assert found is not None
    assert asset.content == open(found[0], "rb").read()
    assert c.get(urljoin(f"/api/{page}", "openapi.json")).json()["info"]["title"] == "Ergonomics"


def test_scalar_is_started_without_requests_elsewhere():
    html = docpages.render_scalar("t", "openapi.json", "s.js")
    config = json.loads(re.search(r"createApiReference\(\"#app\", (\{.*\})\);", html).group(1))
    assert config == {"url": "openapi.json", "withDefaultFonts": False, "telemetry": False, "agent": {"disabled": True}}


def test_docs_pages_turned_off_or_missing(monkeypatch):
    api = API(prefix="/api", redoc_url=None, scalar_url="/ref/")
    api.get("/x")(lambda: 1)
    monkeypatch.setattr(
        docpages,
        "SCALAR",
        docpages.DocsPage(
            "scalar", "Scalar", "s.js", (("no-such-dist", "meltemi_no_such_module", ()),), docpages.render_scalar
        ),
    )
    with TestClient(api) as c:
        assert c.get("/api/redoc").status_code == 404
        r = c.get("/api/ref/")
        assert r.status_code == 501 and "pip install --no-deps no-such-dist" in r.text
        assert c.get("/api/docs").status_code == 200  # Swagger UI is still there
    nothing = API(prefix="/api", openapi_url=None)
    nothing.get("/x")(lambda: 1)
    with TestClient(nothing) as c:
        for url in ("/api/redoc", "/api/scalar", "/api/docs"):
            assert c.get(url).status_code == 404


# ---- OpenAPI ----


def test_openapi_document_describes_all_of_it():
    doc = ergo.api.openapi()
    validate(doc, cls=OpenAPIV31SpecValidator)
    assert json.loads(msgspec.json.encode(doc)) == doc
    schemas = doc["components"]["schemas"]
    paths = doc["paths"]

    def ref(schema):
        return schemas[schema["$ref"].rsplit("/", 1)[1]]

    pages = paths["/api/rows/pages"]["get"]
    params = {p["name"]: p for p in pages["parameters"]}
    assert params["page"]["schema"]["minimum"] == 1 and params["page"]["schema"]["default"] == 1
    assert params["page_size"]["schema"]["maximum"] == 10 and params["page_size"]["schema"]["default"] == 5
    assert set(params) == {"prefix", "page", "page_size"}
    page_schema = ref(pages["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(page_schema["properties"]) == {"items", "count", "page", "page_size", "pages", "next", "previous"}
    assert page_schema["properties"]["items"]["items"] == {"$ref": "#/components/schemas/Row"}
    assert "422" in pages["responses"]
    cursor = paths["/api/rows/cursor"]["get"]
    assert {p["name"] for p in cursor["parameters"]} == {"cursor", "page_size"}
    assert set(ref(cursor["responses"]["200"]["content"]["application/json"]["schema"])["properties"]) == {
        "items",
        "next_cursor",
        "previous_cursor",
        "next",
        "previous",
    }
    slices = paths["/api/rows/slices"]["get"]
    assert {p["name"] for p in slices["parameters"]} == {"limit", "offset"}

    # The viewset: six operations, Structs made from the model.
    assert set(paths["/api/crud/items"]) == {"get", "post"}
    assert set(paths["/api/crud/items/{pk}"]) == {"get", "put", "patch", "delete"}
    ops = {op["operationId"] for item in paths.values() for op in item.values()}
    assert {"item_list", "item_create", "item_retrieve", "item_update", "item_partial_update", "item_destroy"} <= ops
    listing = paths["/api/crud/items"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {
        "name",
        "name__icontains",
        "price__gte",
        "price__lte",
        "ordering",
        "page",
        "page_size",
    }
    assert listing["tags"] == ["items"] and listing["summary"] == "List Items"
    create = paths["/api/crud/items"]["post"]
    item_in = ref(create["requestBody"]["content"]["application/json"]["schema"])
    assert set(item_in["properties"]) == {"name", "price", "tags"} and set(item_in["required"]) == {"name", "price"}
    assert item_in["properties"]["name"]["maxLength"] == 100
    assert "201" in create["responses"]
    patch = paths["/api/crud/items/{pk}"]["patch"]
    assert ref(patch["requestBody"]["content"]["application/json"]["schema"]).get("required", []) == []
    assert "404" in patch["responses"]
    assert paths["/api/crud/items/{pk}"]["delete"]["responses"]["204"] == {"description": "No Content"}

    # The class-based view: one operation per method.
    notes = paths["/api/notes/{note_id}"]
    assert set(notes) == {"get", "put", "delete"}
    assert notes["put"]["summary"] == "Write a note" and notes["get"]["summary"] == "Get NoteView"
    assert notes["get"]["description"] == "One note." and notes["get"]["tags"] == ["notes"]
    assert {op["operationId"] for op in notes.values()} == {"note_get", "note_put", "note_delete"}

    # Health, a constant route answered in C, documented with its answer.
    health = paths["/api/health"]["get"]
    assert health["operationId"] == "health" and health["tags"] == ["health"]
    assert health["responses"]["200"]["content"] == {"application/json": {"example": {"status": "ok"}}}
    # Readiness, with its 503.
    ready = paths["/api/ready"]["get"]
    assert set(ready["responses"]) == {"200", "503"}
    assert ready["responses"]["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Readiness"
    }


def test_paginate_refuses_a_parameter_of_its_own():
    def handler(page: int = 1) -> list[int]:
        return []

    with pytest.raises(TypeError, match="'page' is the paginator's"):
        paginate(PageNumberPagination)(handler)
    with pytest.raises(ValueError, match="between 1"):
        PageNumberPagination(page_size=200, max_page_size=100)


# ---- a real server ----


@pytest.fixture(scope="module")
def api_env(tmp_path_factory):
    import subprocess
    import sys

    db = tmp_path_factory.mktemp("ergonomics") / "db.sqlite3"
    env = {"DJANGO_SETTINGS_MODULE": "apiproject.settings", "APIPROJECT_DB": str(db)}
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v0"],
        env={
            **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            **env,
            "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]),
        },
        check=True,
        timeout=120,
    )
    return env


def test_served_by_a_real_server(start_server, api_env):
    server = start_server("apiproject.wsgi:application", "--api", "ergonomics_api:api", env=api_env)
    base = server.url
    assert requests.get(base + "/api/health", timeout=30).json() == {"status": "ok"}
    assert requests.get(base + "/api/ready", timeout=10).status_code == 200
    r = requests.post(base + "/api/crud/items", json={"name": "served", "price": 2}, timeout=10)
    assert r.status_code == 201
    url = base + f"/api/crud/items/{r.json()['id']}"
    assert requests.patch(url, json={"price": 3}, timeout=10).json()["price"] == 3.0
    listing = requests.get(base + "/api/crud/items?name=served", timeout=10).json()
    assert listing["count"] == 1 and listing["items"][0]["price"] == 3.0
    assert requests.delete(url, timeout=10).status_code == 204
    assert requests.get(url, timeout=10).status_code == 404
    assert requests.get(base + "/api/v2/hello/a%20b", timeout=10).json() == {"hello": "a b"}
    for page in ("redoc", "scalar"):
        html = requests.get(f"{base}/api/{page}", timeout=10).text
        script = requests.get(urljoin(f"{base}/api/{page}", page_refs(html)[0]), timeout=30)
        assert script.status_code == 200 and len(script.content) > 100_000


def test_readiness_is_503_when_the_database_is_unreachable(start_server, api_env, tmp_path):
    broken = {**api_env, "APIPROJECT_DB": str(tmp_path / "no" / "such" / "dir" / "db.sqlite3")}
    server = start_server("apiproject.wsgi:application", "--api", "ergonomics_api:api", env=broken)
    assert requests.get(server.url + "/api/health", timeout=30).status_code == 200  # alive, in C
    r = requests.get(server.url + "/api/ready", timeout=10)
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable", "checks": {"database:default": "failed: OperationalError"}}
    assert requests.get(server.url + "/api/ready", timeout=10).status_code == 503  # and again: not cached
