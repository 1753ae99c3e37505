#!/usr/bin/env python3
"""Packs the conformance test files (tests/data/{pngsuite,png-invalid,jpeg}/, each with its
LICENSE) into tests/data/conformance.zip, stored (no compression: the files are PNG/JPEG),
with fixed timestamps so the archive is reproducible. Hundreds of files of 1-30 KB cost a
file-system block each; one archive costs their bytes. tests/common/vgtest.c extracts it once
per test program into a temp folder (vg_test_shared), through Vigil's own zip reader.

  python3 tools/pack_test_data.py SRC_DIR   # SRC_DIR holds pngsuite/ png-invalid/ jpeg/
                                            # (e.g. ../shared/testdata, or an unzipped copy)
To edit the set: unzip tests/data/conformance.zip -d /tmp/td, change /tmp/td, repack from it."""
import os, sys, zipfile

src = sys.argv[1] if len(sys.argv) > 1 else "../shared/testdata"
out = "tests/data/conformance.zip"
names = []
for top in ("pngsuite", "png-invalid", "jpeg"):
    for dp, dn, fn in os.walk(os.path.join(src, top)):
        dn.sort()
        for f in sorted(fn):
            names.append(os.path.relpath(os.path.join(dp, f), src))
with zipfile.ZipFile(out + ".tmp", "w", zipfile.ZIP_STORED) as z:
    for n in names:
        info = zipfile.ZipInfo(n, date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        z.writestr(info, open(os.path.join(src, n), "rb").read())
os.replace(out + ".tmp", out)
print(f"{out}: {len(names)} files, {os.path.getsize(out)} bytes")
