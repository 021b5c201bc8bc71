"""`make soak` stays runnable: its driver, at a small scale, passes against meltemi (tests/soak/soak.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def test_soak_driver_small_run(tmp_path):
    report = tmp_path / "soak.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "soak" / "soak.py"), "--requests", "5000", "--json", str(report)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(report.read_text())
    assert figures["requests"] >= 5000 and figures["failures"] == []
    assert set(figures["mix"]) == {"keepalive", "pipelined", "uploads", "downloads", "malformed", "disconnects"}
    assert figures["before"] and figures["before"].keys() == figures["after"].keys()
