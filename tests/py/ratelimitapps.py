"""The API of the rate-limit tests (test_ratelimit.py). Routes answer with
the worker's pid, so a test sees which workers served it. Periods are long
(an hour) wherever a test counts exact numbers, so a slow run (sanitizers, a
busy machine) does not see the budget refill meanwhile."""

import os

from meltemi import API
from meltemi.api.ratelimit import RateLimit

api = API(
    prefix="/api",
    docs_url=None,
    openapi_url=None,
    rate_limit=[RateLimit("4/hour", key="header:X-Tenant", name="tenant")],
)


@api.get("/limited", rate_limit=[RateLimit("50/hour")])
def limited():
    return {"pid": os.getpid()}


@api.get("/keyed", rate_limit=RateLimit("3/hour", key="header:X-API-Key"))
def keyed():
    return {"pid": os.getpid()}


@api.get("/fast", rate_limit=RateLimit("2/4s", name="fast"))
def fast():
    return {"pid": os.getpid()}


@api.get("/free")
def free():
    return {"pid": os.getpid()}


api.constant("/const", b'{"ok":true}', content_type="application/json", rate_limit=RateLimit("5/hour"))


def app(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
    return [b""]


def tenant_of(request):
    """The key function of /api/by-function: the tenant in the query string, or None (not counted)."""
    if request.query.startswith("tenant="):
        return request.query[len("tenant=") :]
    if request.query == "boom":
        raise RuntimeError("the key function failed")
    return None


@api.get("/by-function", rate_limit=RateLimit("2/hour", key=tenant_of, name="tenant-fn"))
def by_function():
    return {"pid": os.getpid()}


@api.get("/by-subject", rate_limit=RateLimit("1/minute", key="sub"))
def by_subject():
    return {"pid": os.getpid()}
