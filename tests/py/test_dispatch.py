"""The dispatch policy (--dispatch, --stall-ms, --sched-batch) reaches the C
server and changes what it does: which handler takes a request queued behind
a blocking view, and which threads run under SCHED_BATCH."""

from __future__ import annotations

import os
import threading
import time

import pytest
from test_process import get, pid_of

pytestmark = pytest.mark.timeout(60)

SLEEP = 1.5


def wait_for_handlers(server, handlers: int) -> int:
    """The worker's pid, once its main thread, I/O thread and handlers all run."""
    status, body = get(server)
    assert status == 200
    pid = pid_of(body)
    deadline = time.monotonic() + 10
    while len(os.listdir(f"/proc/{pid}/task")) < 2 + handlers and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)  # and wait for requests
    return pid


def wait_behind_a_blocking_view(server) -> float:
    """Seconds a request takes while another one sleeps SLEEP s in a view (two handler threads)."""
    wait_for_handlers(server, 2)
    slow: list = []
    thread = threading.Thread(target=lambda: slow.append(get(server, f"/sleep?s={SLEEP}")))
    thread.start()
    time.sleep(0.3)  # the sleeping request holds its handler thread
    started = time.monotonic()
    status, _ = get(server)
    elapsed = time.monotonic() - started
    thread.join(10)
    assert status == 200 and [status for status, _ in slow] == [200]
    return elapsed


# Lazy dispatch is named: free-threaded CPython defaults to eager (config.py).


def test_lazy_dispatch_wakes_a_second_handler_when_the_first_blocks(start_server):
    server = start_server("procapps:app", "--threads", "2", "--dispatch", "lazy")
    assert wait_behind_a_blocking_view(server) < 1.0


def test_without_the_stall_wake_up_a_request_waits_for_the_blocking_view(start_server):
    server = start_server("procapps:app", "--threads", "2", "--dispatch", "lazy", "--stall-ms", "0")
    # The other handler sleeps, and nothing wakes it: the running one is busy.
    assert wait_behind_a_blocking_view(server) > SLEEP - 0.3 - 0.2


def test_eager_dispatch_wakes_a_sleeping_handler_for_every_request(start_server):
    server = start_server("procapps:app", "--threads", "2", "--dispatch", "eager", "--stall-ms", "0")
    assert wait_behind_a_blocking_view(server) < 1.0


def batch_threads(pid: int) -> tuple[int, int]:
    """(threads under SCHED_BATCH, all threads) of a process."""
    tids = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    return sum(os.sched_getscheduler(tid) == os.SCHED_BATCH for tid in tids), len(tids)


@pytest.mark.parametrize(
    "args, expected",
    [
        (("--threads", "4", "--dispatch", "lazy"), 5),  # auto with lazy dispatch: the I/O thread and the four handlers
        (("--threads", "4", "--dispatch", "eager"), 0),  # auto with eager dispatch: wake-up preemption kept
        (("--threads", "1", "--dispatch", "lazy"), 2),  # auto: the I/O thread and the one handler
        (("--threads", "1", "--sched-batch", "off"), 0),
        (("--threads", "2", "--sched-batch", "on"), 3),
    ],
)
def test_sched_batch(start_server, args, expected):
    server = start_server("procapps:app", *args)
    # The main thread, the I/O thread and the handlers: the worker may still
    # be starting handlers when it answers its first request.
    threads = 2 + int(args[args.index("--threads") + 1])
    pid = wait_for_handlers(server, threads - 2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        batch, total = batch_threads(pid)
        if total == threads and batch == expected:
            break
        time.sleep(0.05)
    time.sleep(0.2)  # every handler has had the time to set its policy
    assert batch_threads(pid) == (expected, threads)
