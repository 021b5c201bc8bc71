"""The set-up of the Debian roots of `make bench` and `make test-wheel` (bench/debroot.py), on plain folders.

The steps that need root (debootstrap, chroot, mount) run in `make test-wheel`, which CI runs; here, the
copy of the host's trust settings into a fresh minbase root, which once failed with FileNotFoundError on a
machine with added certificate authorities, since a minbase root has no usr/local/share/ca-certificates.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import debroot  # noqa: E402


def host_with_certificates(tmp_path: Path, names: list[str]) -> tuple[Path, Path]:
    ca_dir = tmp_path / "host-ca"
    ca_dir.mkdir()
    for name in names:
        (ca_dir / name).write_text(f"-----BEGIN CERTIFICATE-----\n{name}\n-----END CERTIFICATE-----\n")
    (ca_dir / "README").write_text("not a certificate\n")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.53\n")
    return ca_dir, resolv


def test_certificates_copied_into_a_root_without_the_folder(tmp_path):
    """An empty folder stands for a minbase root: nothing of usr/local/share/ca-certificates exists yet."""
    root = tmp_path / "root"
    root.mkdir()
    ca_dir, resolv = host_with_certificates(tmp_path, ["proxy.crt", "corp-root.crt"])
    copied = debroot.copy_host_trust(root, host_ca_dir=ca_dir, resolv_conf=resolv)
    assert copied == ["corp-root.crt", "proxy.crt"]
    target = root / "usr/local/share/ca-certificates"
    assert sorted(p.name for p in target.iterdir()) == copied
    assert (target / "proxy.crt").read_text() == (ca_dir / "proxy.crt").read_text()
    assert (root / "etc/resolv.conf").read_text() == "nameserver 192.0.2.53\n"
    # Run again (every `make bench` does): the same result, no error on the existing folder.
    assert debroot.copy_host_trust(root, host_ca_dir=ca_dir, resolv_conf=resolv) == copied


def test_no_certificates_leaves_the_root_alone(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    ca_dir, resolv = host_with_certificates(tmp_path, [])
    assert debroot.copy_host_trust(root, host_ca_dir=ca_dir, resolv_conf=resolv) == []
    assert not (root / "usr").exists()
    missing_dir = debroot.copy_host_trust(root, host_ca_dir=tmp_path / "absent", resolv_conf=resolv)
    assert missing_dir == []


def test_a_finished_root_is_not_made_again(tmp_path):
    """A root whose packages were installed (by the code before bench/debroot.py too) is kept as it is."""
    for stamp in (debroot.PACKAGES_STAMP, *debroot.LEGACY_BASE_STAMPS):
        root = tmp_path / stamp.strip(".")
        (root / "usr/bin").mkdir(parents=True)
        (root / stamp).write_text("x\n")
        assert debroot.make_base(root, "bookworm") is False
        assert (root / "usr/bin").is_dir()
        assert (root / debroot.BASE_STAMP).exists()


def test_one_place_makes_the_roots():
    """bench/envs.py and tests/wheel/conftest.py use bench/debroot.py, and neither sets a root up itself."""
    chroot = debroot.chroot(Path("/r"), ["A=1"])
    assert chroot[-2:] == ["chroot", "/r"]  # bench/run.py runs `chroot --userspec=...` by replacing these two
    for user in ("bench/envs.py", "tests/wheel/conftest.py"):
        text = (ROOT / user).read_text()
        assert "debroot.make_base(" in text and "debroot.copy_host_trust(" in text, user
        # No debootstrap command line and no certificate copy of their own.
        assert not re.search(r'\["debootstrap"|glob\("\*\.crt"\)', text), user
