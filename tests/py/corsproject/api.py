"""The typed API of tests/py/test_cors.py: a Python route, a constant route,
and a count of the calls that reached Python. With CORS_TEST_API_POLICY set
(JSON of django-cors-headers' settings), the API has that policy of its own."""

import json
import os
import threading

from meltemi.api import API, CORS

_policy = os.environ.get("CORS_TEST_API_POLICY")
api = API(prefix="/api", cors=CORS.from_mapping(json.loads(_policy)) if _policy else None)
_lock = threading.Lock()
calls = 0


@api.route("/py", methods=["GET", "POST", "PUT", "DELETE"])
def py(request) -> dict:
    global calls
    with _lock:
        calls += 1
    return {"ok": True}


@api.get("/calls")
def get_calls(request) -> dict:
    return {"calls": calls}


api.constant("/const", b'{"constant":true}', "application/json")
