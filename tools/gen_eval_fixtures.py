#!/usr/bin/python3
"""Writes tests/fixtures/eval/eval.bin: reference values for tests/test_eval.c.

References:
  - binary metrics: sklearn.metrics roc_auc_score, average_precision_score,
    precision_recall_curve (F1-max = argmax of 2PR/(P+R) over the PR thresholds,
    first index in ascending-threshold order, as anomalib's F1AdaptiveThreshold);
  - AU-PRO: a reimplementation of MVTec AD's official evaluation
    (mvtec_ad_evaluation/pro_curve_util.compute_pro with its float32 FPRs, and
    generic_util.trapezoid with x_max), below as compute_pro / trapezoid;
  - AU-sPRO: MVTec LOCO's official definitions (src/image.py get_saturation_area and
    np.greater binarisation, src/metrics.py TP / FP areas per threshold, util.trapz),
    evaluated at every distinct threshold (the limit of its threshold refinement).

Binary-metric inputs are not stored: both sides generate them from a counter-based
hash (splitmix64), see hashed_case() here and hashed_case() in the test.

File format (little endian): b"VGEF", u32 version (1), u32 record count, then records
  u16 name length, name bytes, u8 dtype (0 f32, 1 f64, 2 u8, 3 i32, 4 i64), i64 count,
  count values.

Run: /usr/bin/python3 tools/gen_eval_fixtures.py  (numpy, scipy, sklearn)
"""
import os
import struct
from bisect import bisect

import numpy as np
from scipy.ndimage import label as nd_label
from scipy.ndimage import uniform_filter
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "eval", "eval.bin")
records = []
DT = {np.float32: 0, np.float64: 1, np.uint8: 2, np.int32: 3, np.int64: 4}


def put(name, arr, dtype):
    arr = np.ascontiguousarray(np.asarray(arr, dtype=dtype).ravel())
    records.append((name, DT[dtype], arr))


# ---------------------------------------------------------------- hashed inputs
M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x):
    x = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hashed_case(seed, n, qbits, pos_thr, off, base):
    """label_i = hash2 >> 32 < pos_thr; v_i = (hash1 >> (64 - qbits), or 0 if qbits == 0)
    + label_i * off - base;
    score_i = v_i * 2^-qbits (exact in float32 while |v| < 2^24)."""
    i = np.arange(n, dtype=np.uint64)
    s = np.uint64(seed) << np.uint64(32)
    h1 = splitmix64(s + np.uint64(2) * i)
    h2 = splitmix64(s + np.uint64(2) * i + np.uint64(1))
    lab = ((h2 >> np.uint64(32)) < np.uint64(pos_thr)).astype(np.uint8)
    u = (h1 >> np.uint64(64 - qbits)).astype(np.int64) if qbits else np.zeros(n, np.int64)
    v = u + lab.astype(np.int64) * off - base
    assert np.abs(v).max() < (1 << 24)
    score = (v.astype(np.float64) * 2.0 ** -qbits).astype(np.float32)
    return score, lab


def sk_binary(score, lab):
    s = score.astype(np.float64)
    if lab.sum() == 0:  # sklearn: AUROC raises, AP warns and gives 0; Vigil: all NaN
        return [np.nan] * 4 + [1]
    auroc = roc_auc_score(lab, s) if 0 < lab.sum() < len(lab) else np.nan
    ap = average_precision_score(lab, s) if lab.sum() > 0 else np.nan
    p, r, t = precision_recall_curve(lab, s)
    f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) != 0)
    f1 = f1[:-1]  # the appended (P=1, R=0) point has no threshold
    k = int(np.argmax(f1))
    unique = int(np.sum(np.abs(f1 - f1[k]) < 1e-12) == 1)
    return [auroc, ap, f1[k], t[k], unique]


def binary_cases():
    # explicit small cases: (scores, labels)
    explicit = [
        ([0.1, 0.9], [0, 1]), ([0.9, 0.1], [0, 1]), ([0.5, 0.5], [0, 1]),
        ([0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3], [0, 1, 0, 0, 1, 1, 0]),
        ([-1.0, 0.0, -0.0, 2.5, 1e30, -1e30], [1, 0, 1, 0, 1, 0]),
        ([1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 1, 1]), ([1, 2, 3, 4, 5, 6], [1, 1, 1, 0, 0, 0]),
        ([0.2, 0.2, 0.7, 0.7, 0.1], [1, 0, 1, 0, 1]),
    ]
    scores, labels, offs, ref = [], [], [0], []
    for s, l in explicit:
        s = np.array(s, np.float32)
        l = np.array(l, np.uint8)
        scores.append(s); labels.append(l); offs.append(offs[-1] + len(s))
        ref.append(sk_binary(s, l))
    put("bx_scores", np.concatenate(scores), np.float32)
    put("bx_labels", np.concatenate(labels), np.uint8)
    put("bx_offsets", offs, np.int64)
    put("bx_ref", ref, np.float64)

    # hashed cases: seed, n, qbits, pos_thr (of 2^32), off, base
    P = 1 << 32
    params = [
        (1, 2, 2, P // 2, 0, 0), (2, 3, 1, P // 2, 0, 0), (3, 10, 3, P // 3, 2, 0),
        (4, 100, 4, P // 5, 3, 8), (5, 1000, 16, P // 100, 20000, 0),
        (6, 5000, 8, int(0.3 * P), 40, 100), (7, 20000, 2, P // 10, 1, 0),
        (8, 20000, 20, P // 20, 1 << 17, 1 << 19), (9, 200000, 12, P // 50, 300, 0),
        (10, 1000000, 20, P // 40, 1 << 16, 0), (11, 300000, 23, P // 2, 1 << 20, 1 << 22),
        (12, 50000, 6, P - P // 50, 5, 0), (13, 100000, 3, P // 4, 1, 0),
        (14, 30000, 1, P // 3, 0, 0), (15, 40000, 0, P // 2, 0, 0),
    ]
    ref = []
    for prm in params:
        s, l = hashed_case(*prm)
        ref.append(sk_binary(s, l))
    put("bh_params", params, np.int64)
    put("bh_ref", ref, np.float64)


# ---------------------------------------------------------------- AU-PRO (official)
def trapezoid(x, y, x_max=None):
    """MVTec generic_util.trapezoid."""
    x = np.array(x)
    y = np.array(y)
    finite = np.logical_and(np.isfinite(x), np.isfinite(y))
    x, y = x[finite], y[finite]
    correction = 0.0
    if x_max is not None:
        if x_max not in x:
            ins = bisect(x, x_max)
            assert 0 < ins < len(x)
            y_interp = y[ins - 1] + ((y[ins] - y[ins - 1]) * (x_max - x[ins - 1]) / (x[ins] - x[ins - 1]))
            correction = 0.5 * (y_interp + y[ins - 1]) * (x_max - x[ins - 1])
        mask = x <= x_max
        x, y = x[mask], y[mask]
    return np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1])) + correction


def compute_pro(anomaly_maps, ground_truth_maps):
    """MVTec pro_curve_util.compute_pro (same arithmetic: uint32 cumsum, float32 FPRs)."""
    structure = np.ones((3, 3), dtype=int)
    num_ok_pixels = 0
    num_gt_regions = 0
    shape = (len(anomaly_maps), anomaly_maps[0].shape[0], anomaly_maps[0].shape[1])
    fp_changes = np.zeros(shape, dtype=np.uint32)
    pro_changes = np.zeros(shape, dtype=np.float64)
    for gt_ind, gt_map in enumerate(ground_truth_maps):
        labeled, n_components = nd_label(gt_map, structure)
        num_gt_regions += n_components
        ok_mask = labeled == 0
        num_ok_pixels += np.sum(ok_mask)
        fp_change = np.zeros_like(gt_map, dtype=fp_changes.dtype)
        fp_change[ok_mask] = 1
        pro_change = np.zeros_like(gt_map, dtype=np.float64)
        for k in range(n_components):
            region_mask = labeled == (k + 1)
            pro_change[region_mask] = 1.0 / np.sum(region_mask)
        fp_changes[gt_ind] = fp_change
        pro_changes[gt_ind] = pro_change
    scores = np.array(anomaly_maps).ravel()
    fpc = fp_changes.ravel()
    prc = pro_changes.ravel()
    idx = np.argsort(scores).astype(np.uint32)[::-1]
    scores = scores[idx]
    fpc = fpc[idx]
    prc = prc[idx]
    fprs = np.cumsum(fpc).astype(np.float32)
    fprs = np.divide(fprs, np.float32(num_ok_pixels), dtype=np.float32)
    pros = np.cumsum(prc) / num_gt_regions
    keep = np.append(np.diff(scores) != 0, np.True_)
    fprs = np.clip(fprs[keep], None, 1.0)
    pros = np.clip(pros[keep], None, 1.0)
    return np.concatenate(([0.0], fprs, [1.0])), np.concatenate(([0.0], pros, [1.0]))


def au_pro(maps, masks, limit):
    f, p = compute_pro(list(maps), list(masks))
    return trapezoid(f, p, x_max=limit) / limit


def blob_masks(rng, n, h, w, nblobs, touching):
    masks = np.zeros((n, h, w), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        if i == 0:
            continue  # a good image
        for _ in range(rng.integers(1, nblobs + 1)):
            cy, cx = rng.integers(0, h), rng.integers(0, w)
            ry, rx = rng.uniform(1, h / 5), rng.uniform(1, w / 5)
            masks[i][((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 1
        if touching and i % 2 == 1:  # two squares meeting only at a corner: one region
            y0, x0 = rng.integers(2, h - 12), rng.integers(2, w - 12)
            masks[i][y0:y0 + 4, x0:x0 + 4] = 255
            masks[i][y0 + 4:y0 + 8, x0 + 4:x0 + 8] = 7
            masks[i][y0 + 8, x0 + 8] = 1  # and a pixel touching its corner
    return masks


def pro_cases():
    rng = np.random.default_rng(1234)
    cases = []
    # (n, h, w, nblobs, touching, quant, signal, floor): floor clips the maps from below,
    # making one big tie group as saturated backgrounds do
    # (sizes about half of the first version's per side, to keep the fixture small: the
    # same blob / touching-corner / tie / floor structure on fewer pixels; h, w >= 15 for
    # the touching squares)
    cfg = [(6, 20, 24, 3, True, 0, 1.0, None), (5, 17, 16, 4, True, 16, 0.5, None),
           (8, 16, 16, 2, False, 0, 0.0, None), (4, 32, 25, 5, True, 4, 2.0, None),
           (3, 16, 15, 1, True, 0, 3.0, None), (5, 24, 24, 3, True, 0, 1.5, 0.3)]
    maps_all, masks_all, meta, ref = [], [], [], []
    for c, (n, h, w, nb, touch, quant, sig, floor) in enumerate(cfg):
        masks = blob_masks(rng, n, h, w, nb, touch)
        maps = rng.normal(size=(n, h, w)).astype(np.float32) + sig * (masks > 0)
        maps = uniform_filter(maps, size=(1, 3, 3)).astype(np.float32)
        if quant:
            maps = (np.round(maps * quant) / quant).astype(np.float32)
        if floor is not None:
            maps = np.maximum(maps, np.float32(floor))
        maps_all.append(maps.ravel()); masks_all.append(masks.ravel())
        meta.append([n, h, w])
        ref.append([au_pro(maps, masks, L) for L in (0.3, 0.05, 1.0, 0.123456)])
        if c == 0:
            lab = np.concatenate([nd_label(m, np.ones((3, 3), int))[0].ravel() for m in masks])
            put("pro0_labels", lab, np.int32)
    put("pro_maps", np.concatenate(maps_all), np.float32)
    put("pro_masks", np.concatenate(masks_all), np.uint8)
    put("pro_meta", meta, np.int64)
    put("pro_ref", ref, np.float64)
    # summary on case 0: image scores = max of maps, image labels = any mask
    maps = maps_all[0].reshape(cfg[0][0], cfg[0][1], cfg[0][2])
    masks = masks_all[0].reshape(maps.shape)
    img_s = maps.reshape(len(maps), -1).max(1)
    img_l = (masks.reshape(len(maps), -1) > 0).any(1).astype(np.uint8)
    pix = sk_binary(maps.ravel(), (masks.ravel() > 0).astype(np.uint8))
    put("sum0_ref", sk_binary(img_s, img_l)[:4] + pix[:4] + [au_pro(maps, masks, 0.3)], np.float64)


# ---------------------------------------------------------------- AU-sPRO (LOCO official)
def loco_saturation_area(area, thr, relative):
    if relative:
        return int(thr * area)
    return np.minimum(thr, area)


def trapz_loco(x, y, x_max):
    return trapezoid(x, y, x_max)


def au_spro_loco(maps, channels, limits):
    """channels: list of (image, bool mask, saturation_area). Thresholds: max+eps, every
    distinct score descending, min-eps; binary = map > t (np.greater)."""
    n = len(maps)
    uniq = np.unique(maps)
    thr = np.concatenate(([uniq[-1] + 1e-6], uniq[::-1], [uniq[0] - 1e-6]))
    gt_combined = [np.zeros(maps[0].shape, bool) for _ in range(n)]
    for img, m, _ in channels:
        gt_combined[img] |= m
    fp = np.zeros(len(thr), np.int64)
    tot = 0
    spros = []
    for i in range(n):
        ok = ~gt_combined[i]
        tot += ok.sum()
        s = np.sort(maps[i][ok])
        fp += len(s) - np.searchsorted(s, thr, side="right")  # #(score > t)
    for img, m, sat in channels:
        s = np.sort(maps[img][m])
        tp = len(s) - np.searchsorted(s, thr, side="right")
        spros.append(np.minimum(tp / sat, 1.0))
    mean_spro = np.mean(spros, axis=0)
    fpr = fp / tot
    assert fpr[0] == 0 and fpr[-1] == 1
    return [trapz_loco(fpr, mean_spro, L) / L for L in limits]


def spro_cases():
    rng = np.random.default_rng(99)
    limits = [0.01, 0.05, 0.1, 0.3, 1.0]
    cfg = [(5, 16, 20, 0, None), (4, 15, 15, 8, None), (6, 13, 10, 0, None), (6, 20, 20, 0, 0.0)]
    maps_all, reg_img, reg_sat, reg_masks, meta, ref = [], [], [], [], [], []
    yy, xx = np.mgrid[0:64, 0:64]
    for c, (n, h, w, quant, floor) in enumerate(cfg):
        maps = rng.normal(size=(n, h, w)).astype(np.float32)
        channels = []
        for i in range(1, n):  # image 0 is good
            for k in range(rng.integers(1, 4)):
                m = np.zeros((h, w), bool)
                for _ in range(rng.integers(1, 3)):  # a defect may have several blobs
                    cy, cx = rng.integers(0, h), rng.integers(0, w)
                    ry, rx = rng.uniform(1.5, h / 4), rng.uniform(1.5, w / 4)
                    m |= ((yy[:h, :w] - cy) / ry) ** 2 + ((xx[:h, :w] - cx) / rx) ** 2 <= 1
                if not m.any():
                    m[cy, cx] = True
                area = int(m.sum())
                relative = (k + i + c) % 2 == 0
                if relative:
                    sat = loco_saturation_area(area, float(rng.choice([0.3, 0.5, 1.0])), True)
                    sat = max(sat, 1)
                else:
                    sat = int(loco_saturation_area(area, int(rng.integers(1, 2 * area + 2)), False))
                channels.append((i, m, sat))
                maps[i][m] += rng.uniform(0, 2)  # overlapping defects are allowed
        if quant:
            maps = (np.round(maps * quant) / quant).astype(np.float32)
        if floor is not None:
            maps = np.maximum(maps, np.float32(floor))
        maps_all.append(maps.ravel())
        for img, m, sat in channels:
            reg_img.append(img)
            reg_sat.append(sat)
            reg_masks.append(m.astype(np.uint8).ravel())
        meta.append([n, h, w, len(channels)])
        ref.append(au_spro_loco(list(maps), channels, limits))
    put("spro_maps", np.concatenate(maps_all), np.float32)
    put("spro_reg_img", reg_img, np.int64)
    put("spro_reg_sat", reg_sat, np.int64)
    put("spro_reg_masks", np.concatenate(reg_masks), np.uint8)
    put("spro_meta", meta, np.int64)
    put("spro_ref", ref, np.float64)


def main():
    binary_cases()
    pro_cases()
    spro_cases()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tmp = OUT + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"VGEF" + struct.pack("<II", 1, len(records)))
        for name, dt, arr in records:
            nb = name.encode()
            f.write(struct.pack("<H", len(nb)) + nb + struct.pack("<Bq", dt, arr.size))
            f.write(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
    os.replace(tmp, OUT)
    print(f"wrote {OUT}: {os.path.getsize(OUT)} bytes, {len(records)} records")


if __name__ == "__main__":
    main()
