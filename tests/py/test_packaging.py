"""Packaging: what a build from the sdist says when the C libraries are missing, and the sdist's metadata.

The wheels themselves (auditwheel, and an install into a Debian root without the
libraries) are checked by `make test-wheel` (tests/wheel/), which needs root.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MESON = Path(sys.executable).parent / "meson"
NOT_FOUND_RE = re.compile(r"Run-time dependency (\S+) found: NO")
PACKAGES = {
    "libllhttp": ("libllhttp-dev", "llhttp-devel"),
    "zlib": ("zlib1g-dev", "zlib-devel"),
    "libbrotlienc": ("libbrotli-dev", "brotli-devel"),
    "libzstd": ("libzstd-dev", "libzstd-devel"),
    "libpcre2-8": ("libpcre2-dev", "pcre2-devel"),
    "libcrypto": ("libssl-dev", "openssl-devel"),
}


def test_missing_c_libraries_stop_the_build_with_one_message_naming_them(tmp_path):
    """pkg-config pointed at an empty directory: meson setup fails once, naming every missing library and the
    Debian and Fedora packages to install, instead of stopping at the first with meson's own message."""
    empty = tmp_path / "pkgconfig"
    empty.mkdir()
    env = dict(os.environ, PKG_CONFIG_LIBDIR=str(empty), PKG_CONFIG_PATH="")
    proc = subprocess.run(
        [str(MESON), "setup", str(tmp_path / "build"), str(ROOT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    missing = NOT_FOUND_RE.findall(output)
    # zlib may still be found through CMake; the others have no CMake package of that name.
    assert {"libllhttp", "libbrotlienc", "libzstd", "libpcre2-8"} <= set(missing), output
    assert output.count("ERROR:") == 1, output
    message = output[output.index("ERROR:") :]
    assert "meltemi needs these C libraries" in message and "meltemi wheel" in message, message
    for name in missing:
        debian, fedora = PACKAGES[name]
        line = next((x for x in message.splitlines() if x.strip().startswith(name + " ")), None)
        assert line is not None, f"{name} is not named in:\n{message}"
        assert f"Debian: {debian}" in line and f"Fedora: {fedora}" in line, line


def test_pyproject_metadata_is_fit_for_pypi():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "BSD-3-Clause" and (ROOT / "LICENSE").is_file()
    assert project["requires-python"] == ">=3.11"
    classifiers = project["classifiers"]
    assert not [c for c in classifiers if c.startswith("License ::")], "PEP 639: the license expression replaces these"
    assert "Framework :: Django" in classifiers and "Operating System :: POSIX :: Linux" in classifiers
    meson_version = re.search(r"version: '([^']+)'", (ROOT / "meson.build").read_text()).group(1)
    assert project["version"] == meson_version, "pyproject.toml and meson.build must agree on the version"
