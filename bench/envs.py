"""The environments the benchmark runs in, installed by the harness itself.

Headline mode ("root"): a Debian 13 root made with `debootstrap --variant=minbase
trixie` under build/bench-root (by bench/debroot.py, which the wheel test shares),
with CPython 3.13 and the C libraries meltemi builds against. Every server then
runs in that root (chroot), on the same interpreter, each from its own virtual
environment with pinned versions
(bench/requirements/<env>.txt); meltemi is built from a copy of this
repository. The host is left alone apart from the debootstrap package.

Host mode ("host", for development and CI): the same virtual environments made
with the host's python3 under build/bench-host; servers that need a newer
CPython (Django Bolt) are reported as unavailable there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import debroot

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build"
# The root can be one made elsewhere (BENCH_ROOT, e.g. another checkout's build/bench-root), and the harness's
# files inside it can live under another folder than /opt/bench (BENCH_PREFIX), so that two checkouts share one
# root without sharing their environments. A root given by BENCH_ROOT is left mounted as it was found.
ROOT_DIR = Path(os.environ.get("BENCH_ROOT") or BUILD / "bench-root")
PREFIX = Path(os.environ.get("BENCH_PREFIX") or "/opt/bench")
REQUIREMENTS = REPO / "bench" / "requirements"

# Debian packages inside the root: the interpreter, what meltemi builds
# against, and the PostgreSQL server of the ORM scenario.
ROOT_PACKAGES = [
    "python3.13",
    "python3.13-venv",
    "python3.13-dev",
    "build-essential",
    "pkg-config",
    "libllhttp-dev",
    "libbrotli-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "libpcre2-dev",  # CORS origin regexes
    "libssl-dev",  # libcrypto: JWT verification
    "nginx",
    "ca-certificates",
    "postgresql",
    "procps",
]

CLEAN_ENV = [
    "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
    "HOME=/root",
    "LANG=C.UTF-8",
    "PIP_DEFAULT_TIMEOUT=180",
]

# What meltemi's build depends on: a change here rebuilds the meltemi environment.
BUILD_INPUTS = ("src", "meltemi", "meson.build", "meson.options", "pyproject.toml")

# The virtual environments; each server names the one it runs from.
VENVS = ("meltemi", "bolt", "granian", "gunicorn", "fastapi", "uvicorn")


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kwargs)


@dataclass
class Env:
    """Where the servers run: `prefix` turns a command into one that runs there."""

    mode: str  # "root" or "host"
    base: Path  # the directory seen by the servers as "/" (the root) or the host's "/"
    venv_dir: Path  # where the venvs live, as seen inside
    work: Path  # scratch space (database, static files), as seen inside

    def prefix(self) -> list[str]:
        if self.mode == "root":
            return debroot.chroot(self.base, CLEAN_ENV)
        return []

    def outside(self, inside: Path | str) -> Path:
        """A path seen by the servers, as the harness (on the host) sees it."""
        inside = Path(inside)
        if self.mode == "root":
            return self.base / inside.relative_to("/")
        return inside

    def python(self, venv: str) -> Path:
        return self.venv_dir / venv / "bin" / "python"

    def has_venv(self, venv: str) -> bool:
        return self.outside(self.venv_dir / venv / ".bench-ready").exists()

    def sh(self, script: str, **kwargs) -> subprocess.CompletedProcess:
        """Runs a shell script where the servers run."""
        return run([*self.prefix(), "/bin/sh", "-c", script], **kwargs)

    def interpreter(self) -> str:
        """The Python version the servers run on (every venv is made from the same interpreter)."""
        for venv in VENVS:
            if self.has_venv(venv):
                out = subprocess.run(
                    [*self.prefix(), str(self.python(venv)), "-c", "import sys; print(sys.version.split()[0])"],
                    capture_output=True,
                    text=True,
                )
                return out.stdout.strip() or "?"
        return "?"


# --- the Debian 13 root -----------------------------------------------------------


def unmount_all() -> None:
    if os.environ.get("BENCH_ROOT"):
        return  # another checkout's root: its other users may need /proc
    debroot.unmount(ROOT_DIR)


def ensure_root() -> Env:
    if os.geteuid() != 0:
        raise SystemExit("bench: the Debian 13 root needs root (chroot, mount); run as root or use --env host")
    debroot.make_base(ROOT_DIR, "trixie")
    copied = debroot.copy_host_trust(ROOT_DIR)
    debroot.mount(ROOT_DIR)
    env = Env("root", ROOT_DIR, PREFIX / "venvs", PREFIX / "work")
    debroot.install(ROOT_DIR, CLEAN_ENV, ROOT_PACKAGES)
    debroot.trust_host_certificates(ROOT_DIR, CLEAN_ENV, copied)
    return env


def host_env() -> Env:
    base = BUILD / "bench-host"
    return Env("host", Path("/"), base / "venvs", base / "work")


# --- the virtual environments ------------------------------------------------------


def copy_repo(env: Env) -> Path:
    """A copy of the repository's tracked files (and the working tree's changes) for building meltemi."""
    inside = env.work.parent / "src" / "meltemi"
    dest = env.outside(inside)
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    if dest.exists():
        shutil.rmtree(dest)
    for name in files:
        if not name:
            continue
        rel = name.decode()
        src = REPO / rel
        if not src.is_file():
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    return inside


def source_stamp() -> str:
    """What the meltemi venv was built from: a hash of the files that make the package."""
    import hashlib

    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *BUILD_INPUTS],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    digest = hashlib.sha256()
    for name in sorted(f for f in files if f):
        path = REPO / name.decode()
        if path.is_file():
            digest.update(name + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_venv(env: Env, name: str, interpreter: str) -> None:
    req = REQUIREMENTS / f"{name}.txt"
    venv = env.venv_dir / name
    ready = env.outside(venv / ".bench-ready")
    wanted = req.read_text()
    if name == "meltemi":
        wanted += "\n# source " + source_stamp()
    if ready.exists() and ready.read_text() == wanted:
        return
    log(f"creating the {name} environment ({req.relative_to(REPO)})")
    env.outside(venv).parent.mkdir(parents=True, exist_ok=True)
    pip = f"{venv}/bin/pip"
    quiet = "-q --disable-pip-version-check"
    env.sh(f"rm -rf {venv} && {interpreter} -m venv {venv}")
    req_inside = env.work.parent / "requirements" / f"{name}.txt"
    env.outside(req_inside).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(req, env.outside(req_inside))
    env.sh(f"{pip} install {quiet} -r {req_inside}")
    if name == "meltemi":
        src = copy_repo(env)
        log("building meltemi from this repository in its environment")
        env.sh(f"{pip} install {quiet} {src}")
    ready.write_text(wanted)


def venv_usable(env: Env, name: str) -> str | None:
    """Why a venv cannot be made here, or None."""
    if name == "bolt" and env.mode == "host" and sys.version_info < (3, 12):
        return "Django Bolt needs CPython >= 3.12 (run in the Debian 13 root: --env root)"
    return None


def prepare(mode: str, venvs: list[str]) -> tuple[Env, dict[str, str]]:
    """Makes the environment and the venvs; returns it and the venvs that could not be made, with why."""
    env = ensure_root() if mode == "root" else host_env()
    interpreter = "/usr/bin/python3.13" if mode == "root" else sys.executable
    if mode == "host":
        # The host's interpreter, not a venv's (a venv made from a venv keeps nothing of it).
        interpreter = getattr(sys, "_base_executable", sys.executable)
    env.outside(env.work).mkdir(parents=True, exist_ok=True)
    missing: dict[str, str] = {}
    for name in venvs:
        if name == "system":
            if not shutil.which("nginx") and env.mode == "host":
                missing[name] = "nginx is not installed on the host (apt-get install nginx-light)"
            continue
        why = venv_usable(env, name)
        if why:
            missing[name] = why
            continue
        try:
            ensure_venv(env, name, interpreter)
        except subprocess.CalledProcessError as error:
            missing[name] = f"could not install its environment ({error})"
            log(missing[name])
    return env, missing
