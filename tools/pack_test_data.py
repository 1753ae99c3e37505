#!/usr/bin/env python3
"""Packs the conformance test files (tests/data/{pngsuite,png-invalid,jpeg}/, each with its
LICENSE) into tests/data/conformance.zip, deflated (PNG/JPEG files still shrink by about 30 %:
the PngSuite's are tiny and uncompressed-heavy),
with fixed timestamps so the archive is reproducible. Hundreds of files of 1-30 KB cost a
file-system block each; one archive costs their bytes. tests/common/vgtest.c extracts it once
per test program into a temp folder (vg_test_shared), through Vigil's own zip reader.

  python3 tools/pack_test_data.py SRC_DIR   # SRC_DIR holds pngsuite/ png-invalid/ jpeg/
                                            # (e.g. ../shared/testdata, or an unzipped copy)
To edit the set: unzip tests/data/conformance.zip -d /tmp/td, change /tmp/td, repack from it.

  python3 tools/pack_test_data.py --fixtures [SRC_DIR]
packs every fixture (SRC_DIR, default tests/fixtures) into tests/fixtures-N.zip (parts under 1 MiB), which
vg_test_fixture() extracts the same way (a file present in tests/fixtures/ wins over the
archive's copy). To regenerate fixtures: unzip tests/fixtures-*.zip into tests/fixtures, run the
tools/gen_*.py generator, pack, delete tests/fixtures/."""
import os, sys, zipfile



def pack(out, src, tops):
    names = []
    for top in tops:
        if os.path.isfile(os.path.join(src, top)):
            names.append(top)
            continue
        for dp, dn, fn in os.walk(os.path.join(src, top)):
            dn.sort()
            for f in sorted(fn):
                names.append(os.path.relpath(os.path.join(dp, f), src))
    with zipfile.ZipFile(out + ".tmp", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for n in names:
            info = zipfile.ZipInfo(n, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, open(os.path.join(src, n), "rb").read())
    os.replace(out + ".tmp", out)
    print(f"{out}: {len(names)} files, {os.path.getsize(out)} bytes")


if len(sys.argv) > 1 and sys.argv[1] == "--fixtures":
    # after a generator wrote into tests/fixtures/ (e.g. tools/gen_jpeg_fixtures.py), pack the
    # whole folder (SRC_DIR, default tests/fixtures, holding every fixture: unzip the archive
    # into it first) and delete it: the tests read the archive
    # Written as tests/fixtures-1.zip, -2, ...: parts of at most ~900 KiB (no tracked file over
    # 1 MiB), files in sorted order; vg_test_fixture extracts every part.
    import glob, zlib
    src = sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures"
    files = []
    for dp, dn, fn in os.walk(src):
        dn.sort()
        files += sorted(os.path.relpath(os.path.join(dp, f), src) for f in fn)
    files.sort()
    for old in glob.glob("tests/fixtures-*.zip") + ["tests/fixtures.zip"]:
        if os.path.exists(old): os.remove(old)
    parts, cur, size = [], [], 0
    for f in files:
        c = len(zlib.compress(open(os.path.join(src, f), "rb").read(), 9)) + 200
        if cur and size + c > 900 * 1024:
            parts.append(cur); cur, size = [], 0
        cur.append(f); size += c
    if cur: parts.append(cur)
    for k, names in enumerate(parts, 1):
        pack(f"tests/fixtures-{k}.zip", src, names)
else:
    pack("tests/data/conformance.zip", sys.argv[1] if len(sys.argv) > 1 else "../shared/testdata",
         ("pngsuite", "png-invalid", "jpeg"))
