"""A Debian root made with `debootstrap --variant=minbase`, set up to install from the network as the host does.

Used by the benchmark (bench/envs.py: Debian 13 under build/bench-root) and by the wheel test
(tests/wheel/conftest.py: Debian 12 under build/wheel-root), so that the set-up CI exercises through
`make test-wheel` is the one `make bench` runs on a fresh machine. Everything here needs root
(debootstrap, chroot, mount), except `copy_host_trust`, which only copies files.

The lifecycle of a root: `make_base` once (kept between runs; a stamp file records that debootstrap
finished), then every run `copy_host_trust`, `mount`, `install` (apt-get, again only when the package
list changed), `trust_host_certificates`, and `unmount` at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

MIRROR = "http://deb.debian.org/debian"
# Certificate authorities the host's administrator added (a TLS-inspecting proxy may stand between this
# machine and PyPI); update-ca-certificates in the root adds them to its store, so pip there trusts them.
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
CA_DIR = Path("usr/local/share/ca-certificates")  # the same folder inside a root
BASE_STAMP = ".debroot-base"
PACKAGES_STAMP = ".debroot-packages"
# Stamps of finished roots made before this module (by the wheel test, and the benchmark's package list).
LEGACY_BASE_STAMPS = (".wheel-root-base", ".bench-packages")
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}


def log(message: str) -> None:
    print(f"debroot: {message}", file=sys.stderr, flush=True)


def ensure_debootstrap() -> None:
    """Installs Debian's debootstrap on the host if it is missing (refreshing stale package lists once)."""
    if shutil.which("debootstrap"):
        return
    log("installing debootstrap (Debian package) on the host")
    env = {**os.environ, **APT_ENV}
    install = ["apt-get", "install", "-y", "-qq", "debootstrap"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
        subprocess.run(install, env=env, check=True)


def make_base(root: Path, suite: str, mirror: str = MIRROR, timeout: float = 600) -> bool:
    """Makes the minbase root of `suite` at `root` unless a finished one is there; True if it made one.

    A folder without the stamp is a debootstrap that did not finish: it is removed first. The timeout
    fails a stalled mirror instead of hanging (debootstrap takes about a minute cold)."""
    if (root / BASE_STAMP).exists():
        return False
    if any((root / name).exists() for name in (PACKAGES_STAMP, *LEGACY_BASE_STAMPS)):
        # Packages were installed in it, or an older stamp says so: debootstrap finished.
        (root / BASE_STAMP).write_text(f"{suite} minbase\n")
        return False
    unmount(root)
    shutil.rmtree(root, ignore_errors=True)
    ensure_debootstrap()
    log(f"debootstrap --variant=minbase {suite} {root}")
    root.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["debootstrap", "--variant=minbase", suite, str(root), mirror],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=timeout,
    )
    (root / BASE_STAMP).write_text(f"{suite} minbase\n")
    return True


def copy_host_trust(
    root: Path, host_ca_dir: Path = HOST_CA_DIR, resolv_conf: Path = Path("/etc/resolv.conf")
) -> list[str]:
    """Copies the host's resolver configuration and its added certificate authorities (*.crt) into the root;
    returns the names of the certificates copied.

    Creates the folders it writes to: a minbase root has no usr/local/share/ca-certificates until its
    ca-certificates package is installed, which happens after this (apt needs the resolver first)."""
    (root / "etc").mkdir(parents=True, exist_ok=True)
    if resolv_conf.exists():
        shutil.copy(resolv_conf, root / "etc" / "resolv.conf")
    certs = sorted(host_ca_dir.glob("*.crt"))
    if certs:
        (root / CA_DIR).mkdir(parents=True, exist_ok=True)
    for cert in certs:
        shutil.copy(cert, root / CA_DIR / cert.name)
    return [cert.name for cert in certs]


def mount(root: Path) -> None:
    """/proc (ps, Python's os.cpu_count) and a tmpfs /dev/shm (POSIX semaphores, meltemi's metrics)."""
    for kind, target, options in (("proc", root / "proc", []), ("tmpfs", root / "dev" / "shm", ["-o", "mode=1777"])):
        target.mkdir(parents=True, exist_ok=True)
        if not os.path.ismount(target):
            subprocess.run(["mount", "-t", kind, *options, kind, str(target)], check=True)


def unmount(root: Path) -> None:
    for sub in ("dev/shm", "proc"):
        path = root / sub
        if os.path.ismount(path):
            subprocess.run(["umount", "-l", str(path)], check=False)


def chroot(root: Path, env: list[str]) -> list[str]:
    """The command prefix that runs a command in the root with exactly `env` (NAME=VALUE strings): the
    host's own settings (pip's local mirrors and constraints) name paths the root lacks."""
    return ["env", "-i", *env, "chroot", str(root)]


def install(root: Path, env: list[str], packages: list[str], timeout: float = 600) -> bool:
    """apt-get installs `packages` in the root unless that exact list was installed last; True if it ran."""
    stamp = root / PACKAGES_STAMP
    wanted = " ".join(packages) + "\n"
    if stamp.exists() and stamp.read_text() == wanted:
        return False
    log("installing in the root: " + " ".join(packages))
    script = (
        "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && "
        "apt-get install -y -qq --no-install-recommends " + " ".join(packages) + " >/dev/null"
    )
    subprocess.run([*chroot(root, env), "/bin/sh", "-c", script], check=True, timeout=timeout)
    stamp.write_text(wanted)
    return True


def trust_host_certificates(root: Path, env: list[str], copied: list[str]) -> None:
    """Adds the certificates copy_host_trust copied to the root's store (needs ca-certificates installed)."""
    if copied:
        subprocess.run([*chroot(root, env), "/bin/sh", "-c", "update-ca-certificates >/dev/null"], check=True)
