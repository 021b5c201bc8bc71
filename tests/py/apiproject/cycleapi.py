"""Routes that show Django's per-request work as the typed API does it
(meltemi.django.cycle): database connections opened, closed and replaced,
queries logged under DEBUG, a third-party signal receiver's calls."""

from django.core import signals
from django.db import connection

from meltemi import API

api = API(prefix="/cycle")

calls = {"started": 0, "finished": 0}


def on_started(sender, **kwargs):
    calls["started"] += 1


def on_finished(sender, **kwargs):
    calls["finished"] += 1


@api.get("/conn")
def conn(request) -> dict:
    """Whether the database connection was open when the handler began, which one it is, and how many queries
    Django logged for it (connection.queries is filled under DEBUG only)."""
    open_at_start = connection.connection is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.execute("SELECT 2")
    return {"open_at_start": open_at_start, "id": id(connection.connection), "queries": len(connection.queries)}


@api.get("/break")
def break_connection(request) -> dict:
    """Leaves the connection as a failed query on a dead server would: errors occurred and it is not usable."""
    connection.ensure_connection()
    connection.errors_occurred = True
    connection.is_usable = lambda: False
    return {"id": id(connection.connection)}


@api.post("/receivers")
def connect_receivers(request) -> dict:
    """Connects a third-party receiver to both request signals, from the next request on."""
    signals.request_started.connect(on_started)
    signals.request_finished.connect(on_finished)
    return calls


@api.get("/calls")
def get_calls(request) -> dict:
    return calls
