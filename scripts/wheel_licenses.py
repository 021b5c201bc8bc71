"""Adds the licence terms of the libraries auditwheel bundled to a repaired wheel: `make wheel` runs it.

The MIT and BSD licences of llhttp, brotli and zstd ask that binary copies carry
their notices. auditwheel's SBOM (dist-info/sboms/auditwheel.cdx.json) names the
Debian package each bundled library came from; this copies that package's
/usr/share/doc/<package>/copyright into dist-info/licenses/bundled/, lists it as
a License-File in METADATA and rewrites RECORD. Fails if a package's copyright
file is missing, rather than ship a wheel without it.

Usage: python scripts/wheel_licenses.py dist/meltemi-*.whl
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path

DEB_PURL = re.compile(r"^pkg:deb/debian/([^@]+)@")


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def add_licenses(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zin:
        entries = [(info, zin.read(info)) for info in zin.infolist()]
    names = [info.filename for info, _ in entries]
    distinfo = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
    sbom = json.loads(dict((i.filename, d) for i, d in entries)[f"{distinfo}/sboms/auditwheel.cdx.json"])
    packages = sorted({m.group(1) for c in sbom.get("components", []) if (m := DEB_PURL.match(c.get("purl", "")))})
    added = {}
    for package in packages:
        source = Path("/usr/share/doc") / package / "copyright"
        if not source.is_file():
            raise SystemExit(f"wheel_licenses: {source} is missing: cannot ship {package}'s licence")
        added[f"{distinfo}/licenses/bundled/{package}.copyright"] = source.read_bytes()

    out = []
    for info, data in entries:
        if info.filename == f"{distinfo}/RECORD" or info.filename in added:
            continue
        if info.filename == f"{distinfo}/METADATA":
            head, sep, body = data.decode().partition("\n\n")
            lines = [line for line in head.splitlines() if not line.startswith("License-File: bundled/")]
            at = max((i for i, line in enumerate(lines) if line.startswith("License-File:")), default=len(lines) - 1)
            lines[at + 1 : at + 1] = [f"License-File: bundled/{p}.copyright" for p in packages]
            data = ("\n".join(lines) + (sep + body if sep else "\n")).encode()
        out.append((info, data))
    for name, data in added.items():
        info = zipfile.ZipInfo(name, date_time=out[0][0].date_time)
        info.external_attr = 0o644 << 16
        out.append((info, data))
    record_name = f"{distinfo}/RECORD"
    record = "\n".join([*(record_line(i.filename, d) for i, d in out if not i.is_dir()), f"{record_name},,"]) + "\n"
    record_info = zipfile.ZipInfo(record_name, date_time=out[0][0].date_time)
    record_info.external_attr = 0o644 << 16
    out.append((record_info, record.encode()))

    fd, tmp = tempfile.mkstemp(dir=wheel.parent, suffix=".whl")
    os.close(fd)
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for info, data in out:
            info.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(info, data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, wheel)
    return packages


def main() -> None:
    for arg in sys.argv[1:]:
        packages = add_licenses(Path(arg))
        print(f"wheel_licenses: {Path(arg).name}: added the copyright files of {', '.join(packages) or 'nothing'}")


if __name__ == "__main__":
    main()
