"""A Debian 12 root without meltemi's C libraries, and the wheel of dist/ installed in a clean venv inside it.

The root is made by the benchmark's own code (bench/debroot.py, which bench/envs.py uses
for its Debian 13 root), so CI exercises the set-up `make bench` runs on a fresh machine,
the copy of the host's certificate authorities included: `debootstrap --variant=minbase
bookworm` under build/wheel-root, plus only python3, python3-venv and
ca-certificates, so none of libllhttp, libbrotli or the -dev packages is there
(libzstd1 is: apt itself needs it, which makes the check that the extension uses
its bundled copy a real one). It is kept between runs; the venv is made afresh
each run from the wheel `make wheel` put in dist/. Needs root (debootstrap,
chroot, mount). Timings of each step are printed and written to
build/wheel-test-timings.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from bench import debroot  # noqa: E402

BUILD = REPO / "build"
ROOT_DIR = BUILD / "wheel-root"
DIST = REPO / "dist"
SUITE = "bookworm"
PACKAGES = ["python3", "python3-venv", "ca-certificates"]
# Inside the root.
WORK = Path("/opt/meltemi-wheel")
VENV = WORK / "venv"
CLEAN_ENV = [
    "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
    "HOME=/root",
    "LANG=C.UTF-8",
    "PIP_DEFAULT_TIMEOUT=180",
    "PIP_DISABLE_PIP_VERSION_CHECK=1",
    # The system store, which holds the host's own authorities (copied in below).
    "PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
]
TIMINGS: dict[str, float] = {}


def log(message: str) -> None:
    print(f"test-wheel: {message}", file=sys.stderr, flush=True)


class Root:
    """The root as the tests see it: `run` runs a command inside, `outside` maps a path inside to the host's."""

    def __init__(self, base: Path, env: list[str]):
        self.base = base
        self.env = env

    def prefix(self) -> list[str]:
        return debroot.chroot(self.base, self.env)

    def run(self, *cmd: str | Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        proc = subprocess.run([*self.prefix(), *map(str, cmd)], **kwargs)
        if check and proc.returncode != 0:
            pytest.fail(
                f"{' '.join(map(str, cmd))} failed in the root ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def sh(self, script: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run("/bin/sh", "-c", script, **kwargs)

    def outside(self, inside: Path | str) -> Path:
        return self.base / Path(inside).relative_to("/")


def host_index_env() -> list[str]:
    """The host's package index for pip in the root, when it is one the root can reach (http or https).

    file:// indexes and find-links of the host (local mirrors) are paths the root lacks; without an
    http(s) index configured on the host, pip in the root uses PyPI, as the host's pip does.
    """
    env = []
    for key, name in (("global.index-url", "PIP_INDEX_URL"), ("global.extra-index-url", "PIP_EXTRA_INDEX_URL")):
        value = os.environ.get(name)
        if value is None:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "config", "get", key], capture_output=True, text=True, check=False
            )
            value = proc.stdout.strip() if proc.returncode == 0 else ""
        urls = [u for u in value.split() if u.startswith(("http://", "https://"))]
        if urls:
            env.append(f"{name}={' '.join(urls)}")
    return env


def timed(name: str):
    """Records how long a step took, under `name`."""

    class Timer:
        def __enter__(self):
            self.start = time.monotonic()

        def __exit__(self, *exc):
            TIMINGS[name] = round(time.monotonic() - self.start, 1)
            if exc[0] is None:
                log(f"{name}: {TIMINGS[name]} s")

    return Timer()


@pytest.fixture(scope="session")
def root() -> Root:
    if os.geteuid() != 0:
        pytest.exit("the wheel test needs root (debootstrap, chroot, mount); CI runs it as root", returncode=2)
    # Each step is timed when it did something (a root is kept between runs).
    with timed("debootstrap"):
        made = debroot.make_base(ROOT_DIR, SUITE)
    if not made:
        TIMINGS.pop("debootstrap")
    copied = debroot.copy_host_trust(ROOT_DIR)
    debroot.mount(ROOT_DIR)
    env = Root(ROOT_DIR, CLEAN_ENV + host_index_env())
    try:
        with timed("root packages"):
            installed = debroot.install(ROOT_DIR, env.env, PACKAGES)
        if not installed:
            TIMINGS.pop("root packages")
        debroot.trust_host_certificates(ROOT_DIR, env.env, copied)
        # What the certificate step was for: the root's store holds every authority the host added.
        store = env.run("cat", "/etc/ssl/certs/ca-certificates.crt").stdout
        for name in copied:
            pem = (debroot.HOST_CA_DIR / name).read_text()
            body = "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
            assert body[:64] in store.replace("\n", ""), f"{name} is not in the root's certificate store"
        yield env
    finally:
        debroot.unmount(ROOT_DIR)
        (BUILD / "wheel-test-timings.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")
        log("timings (s): " + ", ".join(f"{k} {v}" for k, v in TIMINGS.items()))


@pytest.fixture(scope="session")
def wheel() -> Path:
    wheels = sorted(DIST.glob("meltemi-*-manylinux_*.whl"))
    if len(wheels) != 1:
        pytest.fail(f"expected one manylinux wheel in {DIST} (make wheel), found {[w.name for w in wheels]}")
    return wheels[0]


@pytest.fixture(scope="session")
def venv(root: Root, wheel: Path) -> Path:
    """A clean venv in the root with the wheel and its extras (Django, msgspec, ...) from the package index."""
    interpreter = root.run("python3", "-c", "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
    tag = interpreter.stdout.strip()
    if f"-{tag}-" not in wheel.name:
        pytest.fail(f"{wheel.name} is not for the root's Python ({tag}, Debian {SUITE}): build it with CPython 3.11")
    root.run("rm", "-rf", VENV)
    root.outside(WORK).mkdir(parents=True, exist_ok=True)
    for old in root.outside(WORK).glob("meltemi-*.whl"):
        old.unlink()
    shutil.copy(wheel, root.outside(WORK / wheel.name))
    with timed("venv and pip install"):
        root.run("python3", "-m", "venv", VENV)
        root.run(VENV / "bin" / "pip", "install", "-q", f"{WORK / wheel.name}[django,api]", timeout=900)
    return VENV
