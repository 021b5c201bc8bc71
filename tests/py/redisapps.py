"""The API of the Redis rate-limit tests (test_ratelimit_redis.py): its
limits are counted in the Redis that RL_REDIS_URL names, with the policy
RL_ON_ERROR ("allow" or "refuse")."""

import os

from meltemi import API
from meltemi.api.ratelimit import RateLimit, RedisStore

api = API(
    prefix="/api",
    docs_url=None,
    openapi_url=None,
    rate_limit_store=RedisStore(os.environ["RL_REDIS_URL"], on_error=os.environ["RL_ON_ERROR"], timeout=0.2),
)


@api.get("/shared", rate_limit=[RateLimit("20/hour", key="header:X-Client"), RateLimit("1000/hour")])
def shared():
    return {"pid": os.getpid()}


api.constant("/const", b"{}", content_type="application/json", rate_limit=RateLimit("3/hour", key="header:X-Client"))


def app(environ, start_response):
    start_response("404 Not Found", [("Content-Length", "0")])
    return [b""]
