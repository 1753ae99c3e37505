#!/usr/bin/python3
"""Writes tests/fixtures/eval/pauroc.bin: references for the EfficientAD paper's 5 % FPR metrics
(tests/test_eval.c: vg_eval_partial_auroc, vg_eval_summary's pixel_auroc_5 and au_pro_5).

pixel AU-ROC up to 5 % FPR (EfficientAD paper, Table 14: "AU-ROC up to a FPR of 5 %") is the
ROC curve integrated up to FPR 0.05 and divided by 0.05 (plain normalisation). The reference
takes sklearn.metrics.roc_auc_score(max_fpr=L), which returns McClish's standardisation
0.5 * (1 + (A - L^2/2) / (L - L^2/2)) of that partial area A, and undoes it:
A = L^2/2 + (2 s - 1) (L - L^2/2), then A / L. AU-PRO@0.05: the official MVTec code
(compute_pro + trapezoid, from tools/gen_eval_fixtures.py) with x_max 0.05.

Inputs are read from eval.bin (tests/fixtures/eval/eval.bin on disk, else tests/fixtures-*.zip):
the explicit binary cases (bx_*), the hashed cases (bh_params, regenerated with
gen_eval_fixtures.hashed_case) and AU-PRO case 0 (pro_maps / pro_masks / pro_meta).
Records (same VGEF format): pa_limits (f64), pa_bx_ref (f64, per bx case x limit),
pa_bh_ref (f64, per bh case x limit), pa_sum0_ref (f64: pixel_auroc_5, au_pro_5).

Run: /work/venv/bin/python tools/gen_pauroc_fixtures.py  (numpy, scipy, sklearn)
"""
import io
import os
import struct
import sys
import zipfile

import numpy as np
from sklearn.metrics import roc_auc_score

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_eval_fixtures as G  # noqa: E402

FIX = os.path.join(HERE, "..", "tests", "fixtures")
OUT = os.path.join(FIX, "eval", "pauroc.bin")
LIMITS = [0.05, 0.3, 0.01, 1.0]
DTN = {0: np.float32, 1: np.float64, 2: np.uint8, 3: np.int32, 4: np.int64}


def read_vgef(buf):
    assert buf[:4] == b"VGEF"
    ver, cnt = struct.unpack_from("<II", buf, 4)
    off, out = 12, {}
    for _ in range(cnt):
        (ln,) = struct.unpack_from("<H", buf, off); off += 2
        name = buf[off:off + ln].decode(); off += ln
        dt = buf[off]; off += 1
        (n,) = struct.unpack_from("<q", buf, off); off += 8
        a = np.frombuffer(buf, DTN[dt], n, off); off += a.nbytes
        out[name] = a
    return out


def load_eval_bin():
    p = os.path.join(FIX, "eval", "eval.bin")
    if os.path.exists(p):
        return read_vgef(open(p, "rb").read())
    import glob
    for part in sorted(glob.glob(os.path.join(HERE, "..", "tests", "fixtures-*.zip"))):
        with zipfile.ZipFile(part) as z:
            if "eval/eval.bin" in z.namelist():
                return read_vgef(z.read("eval/eval.bin"))
    raise SystemExit("eval/eval.bin: in neither tests/fixtures/ nor tests/fixtures-*.zip")


def pauroc(score, lab, L):
    lab = np.asarray(lab) != 0
    if lab.all() or not lab.any():
        return np.nan
    s = score.astype(np.float64)
    if L >= 1.0:
        return roc_auc_score(lab, s)
    mc = roc_auc_score(lab, s, max_fpr=L)
    lo, hi = 0.5 * L * L, L
    return (lo + (2 * mc - 1) * (hi - lo)) / L


def main():
    E = load_eval_bin()
    recs = []
    recs.append(("pa_limits", 1, np.array(LIMITS, np.float64)))
    bs, bl, bo = E["bx_scores"], E["bx_labels"], E["bx_offsets"]
    ref = [pauroc(bs[bo[i]:bo[i + 1]], bl[bo[i]:bo[i + 1]], L) for i in range(len(bo) - 1) for L in LIMITS]
    recs.append(("pa_bx_ref", 1, np.array(ref, np.float64)))
    prm = E["bh_params"].reshape(-1, 6)
    ref = []
    for p in prm:
        s, l = G.hashed_case(*[int(v) for v in p])
        ref += [pauroc(s, l, L) for L in LIMITS]
    recs.append(("pa_bh_ref", 1, np.array(ref, np.float64)))
    n, h, w = (int(v) for v in E["pro_meta"][:3])
    maps = E["pro_maps"][:n * h * w].reshape(n, h, w)
    masks = E["pro_masks"][:n * h * w].reshape(n, h, w)
    recs.append(("pa_sum0_ref", 1, np.array([pauroc(maps.ravel(), masks.ravel(), 0.05),
                                              G.au_pro(maps, masks, 0.05)], np.float64)))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    b = io.BytesIO()
    b.write(b"VGEF" + struct.pack("<II", 1, len(recs)))
    for name, dt, a in recs:
        nb = name.encode()
        b.write(struct.pack("<H", len(nb)) + nb + bytes([dt]) + struct.pack("<q", a.size) + a.tobytes())
    tmp = OUT + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b.getvalue())
    os.replace(tmp, OUT)
    print(f"wrote {OUT}: {os.path.getsize(OUT)} bytes; sum0 pixel_auroc_5 {recs[-1][2][0]:.9f} au_pro_5 {recs[-1][2][1]:.9f}")


if __name__ == "__main__":
    main()
