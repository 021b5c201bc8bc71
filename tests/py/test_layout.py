"""The architecture's one hard rule: src/core is pure C and never sees Python."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON_INCLUDE = re.compile(r'^\s*#\s*include\s*[<"](Python|structmember|glue)\.h[>"]', re.MULTILINE)
PYTHON_API = re.compile(r"\b(PyObject|Py_INCREF|Py_DECREF|PyGILState_\w+|Py_BEGIN_ALLOW_THREADS)\b")


def test_core_does_not_include_python():
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "src" / "core").glob("*.[ch]"))
        if PYTHON_INCLUDE.search(path.read_text()) or PYTHON_API.search(path.read_text())
    ]
    assert (ROOT / "src" / "core" / "server.c").exists(), "the layout moved: update this test"
    assert offenders == [], f"src/core must stay pure C (no Python.h, no Python API): {offenders}"


def test_only_the_glue_includes_python():
    glue = ROOT / "src" / "python"
    includers = {
        path.parent
        for path in (ROOT / "src").rglob("*.[ch]")
        if re.search(r'^\s*#\s*include\s*[<"]Python\.h[>"]', path.read_text(), re.MULTILINE)
    }
    assert includers == {glue}, f"Python.h is included outside src/python: {includers - {glue}}"
