"""Django's per-request work in the typed API (meltemi.django.cycle): the same
effects as Django's request_started/request_finished receivers, done only where
they change something.

In-process tests check the plan against the live receiver lists; server tests
check the effects a user relies on, through a real meltemi serving apiproject
with one handler thread (so consecutive requests share the thread's database
connection)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests
from apiclient import django_ready
from conftest import API_NOT_APPLICABLE, ROOT, TESTS

APP = "apiproject.wsgi:application"


# ---- in process: the plan follows the receivers ----


@pytest.fixture
def cycle():
    django_ready()
    from meltemi.django.cycle import RequestCycle

    return RequestCycle()


def test_lazy_with_the_pinned_asgiref(cycle):
    """The thread-local storage is read directly: if asgiref changed its layout this fails, instead of the
    server silently falling back to sending the signals."""
    assert cycle.lazy


def test_only_defaults_are_done_directly_and_a_third_party_receiver_gets_the_real_signal(cycle):
    from django.core import signals

    seen = []

    def receiver(sender, **kwargs):
        seen.append(sender)

    cycle.started("x")
    assert cycle.plans[0].steps is not None and len(cycle.plans[0].steps) == 2
    signals.request_started.connect(receiver)
    try:
        cycle.started("a")
        cycle.started("b")
        assert cycle.plans[0].steps is None
        assert seen == ["a", "b"]
    finally:
        signals.request_started.disconnect(receiver)
    cycle.started("c")
    assert seen == ["a", "b"] and cycle.plans[0].steps is not None


def test_a_default_connected_for_one_sender_only_goes_through_the_signal(cycle):
    from django.core import signals
    from django.core.handlers.base import reset_urlconf

    signals.request_finished.disconnect(reset_urlconf)
    signals.request_finished.connect(reset_urlconf, sender=str)
    try:
        cycle.finished("x")
        assert cycle.plans[1].steps is None
    finally:
        signals.request_finished.disconnect(reset_urlconf, sender=str)
        signals.request_finished.connect(reset_urlconf)


def test_queries_are_reset_only_while_reset_queries_is_connected(cycle):
    """assertNumQueries disconnects reset_queries while it counts: the cycle must not reset behind its back."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        connection.cursor().execute("SELECT 1")
        cycle.started(None)  # reset_queries is disconnected here
        connection.cursor().execute("SELECT 2")
    assert len(captured) == 2
    connection.force_debug_cursor = True
    try:
        connection.cursor().execute("SELECT 3")
        assert connection.queries_log
        cycle.started(None)
        assert not connection.queries_log, "the logged query was not reset"
    finally:
        connection.force_debug_cursor = False
        reset_queries()


def test_a_urlconf_set_for_the_thread_is_reset(cycle):
    from django.urls import get_urlconf, set_urlconf

    set_urlconf("apiproject.urls")
    assert get_urlconf() == "apiproject.urls"
    cycle.finished(None)
    assert get_urlconf() is None


def test_on_the_api_loop_a_urlconf_set_in_the_request_is_reset(cycle):
    """On the API's loop (LoopCycle) the receivers run only where they would change something, as on a
    handler thread: a URLconf the request set in its task's context is reset; the loop's own is untouched."""
    import asyncio

    from django.urls import get_urlconf, set_urlconf

    from meltemi.django.cycle import LoopCycle

    loop_cycle = cycle.on_loop()
    assert isinstance(loop_cycle, LoopCycle)
    calls = []

    async def request():
        loop_cycle.started(None)
        set_urlconf("apiproject.urls")
        loop_cycle.finished(None)
        calls.append(get_urlconf())

    async def main():
        await asyncio.get_running_loop().create_task(request())
        return get_urlconf()

    assert asyncio.run(main()) is None
    assert calls == [None]


# ---- a real server ----


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("cycle") / "db.sqlite3"
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v0"],
        env={
            **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            "DJANGO_SETTINGS_MODULE": "apiproject.settings",
            "APIPROJECT_DB": str(path),
            "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]),
        },
        check=True,
        timeout=120,
    )
    return path


@pytest.fixture
def serve(start_server, db):
    if API_NOT_APPLICABLE:
        pytest.skip(API_NOT_APPLICABLE)  # the cycle is served through apiproject's typed API

    def start(conn_max_age: int = 0, debug: bool = False):
        env = {
            "DJANGO_SETTINGS_MODULE": "apiproject.settings",
            "APIPROJECT_DB": str(db),
            "APIPROJECT_CONN_MAX_AGE": str(conn_max_age),
            "APIPROJECT_DEBUG": "1" if debug else "0",
        }
        server = start_server(APP, "--threads", "1", "--api", "apiproject.cycleapi:api", env=env)
        server.get = lambda path: requests.get(server.url + path, timeout=10).json()
        return server

    return start


def test_connection_closed_after_each_request_without_conn_max_age(serve):
    server = serve(conn_max_age=0)
    assert server.get("/cycle/conn")["open_at_start"] is False
    assert server.get("/cycle/conn")["open_at_start"] is False


def test_persistent_connection_kept_then_closed_when_older_than_conn_max_age(serve):
    server = serve(conn_max_age=1)
    first = server.get("/cycle/conn")
    second = server.get("/cycle/conn")
    assert second["open_at_start"] is True and second["id"] == first["id"]
    time.sleep(1.2)
    third = server.get("/cycle/conn")
    assert third["open_at_start"] is False, "a connection older than CONN_MAX_AGE was used again"


def test_broken_connection_replaced(serve):
    server = serve(conn_max_age=60)
    server.get("/cycle/conn")
    broken = server.get("/cycle/break")
    after = server.get("/cycle/conn")
    assert after["open_at_start"] is False, "the unusable connection was not closed after its request"
    assert server.get("/cycle/conn")["open_at_start"] is True
    assert broken["id"] != 0


def test_queries_logged_per_request_under_debug(serve):
    server = serve(debug=True, conn_max_age=60)
    assert [server.get("/cycle/conn")["queries"] for _ in range(3)] == [2, 2, 2]


def test_queries_not_logged_without_debug(serve):
    server = serve(conn_max_age=60)
    assert [server.get("/cycle/conn")["queries"] for _ in range(2)] == [0, 0]


def test_third_party_receiver_fires_exactly_once_per_request(serve):
    server = serve()
    assert requests.post(server.url + "/cycle/receivers", timeout=10).json() == {"started": 0, "finished": 0}
    seen = [server.get("/cycle/calls") for _ in range(5)]
    # Each handler sees its own request's request_started and the request_finished of every request before it,
    # the connecting POST included (its receivers were connected before it finished).
    assert seen == [{"started": k, "finished": k} for k in range(1, 6)]
