"""The architecture's one hard rule: src/core is pure C and never sees Python."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON_INCLUDE = re.compile(r'^\s*#\s*include\s*[<"](Python|structmember|glue)\.h[>"]', re.MULTILINE)
PYTHON_API = re.compile(r"\b(PyObject|Py_INCREF|Py_DECREF|PyGILState_\w+|Py_BEGIN_ALLOW_THREADS)\b")


def test_core_does_not_include_python():
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "src" / "core").rglob("*.[ch]"))
        if PYTHON_INCLUDE.search(path.read_text()) or PYTHON_API.search(path.read_text())
    ]
    assert (ROOT / "src" / "core" / "loop" / "server.c").exists(), "the layout moved: update this test"
    assert offenders == [], f"src/core must stay pure C (no Python.h, no Python API): {offenders}"


def test_only_the_glue_includes_python():
    glue = ROOT / "src" / "python"
    includers = {
        path.parent
        for path in (ROOT / "src").rglob("*.[ch]")
        if re.search(r'^\s*#\s*include\s*[<"]Python\.h[>"]', path.read_text(), re.MULTILINE)
    }
    assert includers == {glue}, f"Python.h is included outside src/python: {includers - {glue}}"


def test_every_core_file_has_its_unit_test():
    """tests/c/test_X.c for each src/core/<subsystem>/X.c, and meson builds it."""
    core = sorted(path.stem for path in (ROOT / "src" / "core").rglob("*.c"))
    missing = [name for name in core if not (ROOT / "tests" / "c" / f"test_{name}.c").exists()]
    assert missing == [], f"core files without a unit test: {missing}"
    meson = (ROOT / "meson.build").read_text()
    unbuilt = [name for name in core if f"'{name}'" not in meson]
    assert unbuilt == [], f"unit tests meson does not build: {unbuilt}"
