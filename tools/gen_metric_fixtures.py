"""Generate tests/fixtures/metrics.json: reference values for anomaly/metrics (docs/paper.md §4).

Run with the project's Python (numpy 1.24, scikit-learn 1.2.1, scikit-image 0.19.3, torch):
    /usr/bin/python3 tools/gen_metric_fixtures.py

References, each computed independently of the TypeScript code:
- curves: sklearn roc_auc_score, average_precision_score and precision_recall_curve -> F1-max the way ADER
  takes it (max over the finite values of 2PR/(P+R)).
- components: skimage.measure.label with connectivity 2 (8-connected, the default) and 1 (4-connected).
- exact AU-PRO: a numpy re-statement of ADER's cal_pro_score (docs/paper.md §4.1): thresholds
  np.arange(min, max, (max-min)/max_step) on float64 maps, binary = map > th, per-region overlap from
  skimage.measure.label / regionprops, FPR pooled, fpr < 0.3 kept, min-max rescaled, sklearn auc.
- P-F1max: ADER's 21 thresholds np.arange(0, 1.001, 0.05) on the min-max normalised float64 maps.
- ADEval path (docs/paper.md §4.2): a numpy statement of ADEval's histogram accumulator (50 strips, torch.histc's
  bin rule trunc((x-lo)*nstrips/(hi-lo)) with the top bin folded, an underflow bin x < lo and an overflow bin
  x >= hi, 1/area float32 weights from 8-connected components), cross-checked here against torch.histc.

Values are multiples of 2**-16 (exact in float32, short in JSON); ADER's maps are float64, so every
reference runs on float64 copies of those values.
"""

import json
import os

import numpy as np
import torch
from skimage import measure
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "metrics.json")
Q = 2.0**16


def q(x):
    """Round to multiples of 2**-16 (exactly representable in float32 for |x| < 256)."""
    return np.round(np.asarray(x, dtype=np.float64) * Q) / Q


# ----------------------------------------------------------------------------------------------- curves
def f1max_ader(labels, scores):
    p, r, _ = precision_recall_curve(labels, scores)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = (2 * p * r) / (p + r)
    return float(np.max(f1[np.isfinite(f1)]))


def curve_case(name, labels, scores):
    labels = np.asarray(labels, dtype=np.uint8)
    scores = np.asarray(scores, dtype=np.float64)
    assert np.all(scores.astype(np.float32).astype(np.float64) == scores)
    return {
        "name": name,
        "labels": labels.tolist(),
        "scores": scores.tolist(),
        "auroc": float(roc_auc_score(labels, scores)),
        "ap": float(average_precision_score(labels, scores)),
        "f1max": f1max_ader(labels, scores),
    }


# ------------------------------------------------------------------------------------------- components
def component_case(name, mask):
    mask = np.asarray(mask, dtype=np.uint8)
    l8 = measure.label(mask, connectivity=2)
    l4 = measure.label(mask, connectivity=1)
    return {
        "name": name,
        "height": int(mask.shape[0]),
        "width": int(mask.shape[1]),
        "mask": mask.ravel().tolist(),
        "labels8": l8.ravel().tolist(),
        "count8": int(l8.max()),
        "labels4": l4.ravel().tolist(),
        "count4": int(l4.max()),
    }


# ------------------------------------------------------------------------------------- exact AU-PRO
def aupro_exact_ref(masks, amaps, max_step=100, expect_fpr=0.3):
    amaps = amaps.astype(np.float64)
    lo, hi = amaps.min(), amaps.max()
    regions = []  # (image index, flat pixel indices)
    for i, m in enumerate(masks):
        lab = measure.label(m)  # default connectivity: full (8-connected)
        for reg in measure.regionprops(lab):
            regions.append((i, reg.coords[:, 0] * m.shape[1] + reg.coords[:, 1]))
    neg = masks == 0
    n_neg = neg.sum()
    pros, fprs = [], []
    for th in np.arange(lo, hi, (hi - lo) / max_step):
        pred = amaps > th
        overl = [pred[i].ravel()[idx].sum() / len(idx) for i, idx in regions]
        pros.append(np.mean(overl))
        fprs.append(np.logical_and(pred, neg).sum() / n_neg)
    pros, fprs = np.array(pros), np.array(fprs)
    keep = fprs < expect_fpr
    f = fprs[keep]
    f = (f - f.min()) / (f.max() - f.min())
    return float(auc(f, pros[keep])), len(pros)


def pixel_f1_ref(masks, amaps):
    amaps = amaps.astype(np.float64)
    norm = (amaps - amaps.min()) / (amaps.max() - amaps.min())
    gt = masks.astype(bool)
    best = []
    for t in np.arange(0.0, 1.0 + 1e-3, 0.05):
        pr = norm > t
        inter = np.logical_and(gt, pr).sum()
        prec = inter / (pr.sum() + 1e-8)
        rec = inter / (gt.sum() + 1e-8)
        best.append(2.0 * prec * rec / (1.0 * prec + rec + 1e-8))
    return float(np.max(best))


# ----------------------------------------------------------------------------------------------- ADEval
def adeval_bins(x, lo, hi, nstrips):
    """Per-value bin index in 0..nstrips+1 (0 underflow) plus an overflow flag (ADEval counts x == hi twice)."""
    inside = (x >= lo) & (x <= hi)
    b = np.zeros(x.shape, dtype=np.int64)
    bb = np.trunc(((x[inside] - lo) * nstrips) / (hi - lo)).astype(np.int64)
    bb[bb == nstrips] = nstrips - 1
    b[inside] = bb + 1
    b[x < lo] = 0
    return b, inside, x >= hi


def adeval_ref(masks, amaps, nstrips=50, limit=0.3):
    amaps = amaps.astype(np.float64)
    lo, hi = float(amaps.min()), float(amaps.max())
    K = nstrips + 2
    pos, neg, wpos = np.zeros(K), np.zeros(K), np.zeros(K)
    for m, a in zip(masks, amaps):
        lab = measure.label(m, connectivity=2)
        areas = np.bincount(lab.ravel())
        w = np.ones(m.shape, dtype=np.float32)
        w[lab > 0] = (1.0 / areas[lab[lab > 0]]).astype(np.float32)
        x = a.ravel()
        b, inside, over = adeval_bins(x, lo, hi, nstrips)
        # cross-check the bin rule against torch.histc (same formula on CPU and CUDA)
        th = torch.histc(torch.from_numpy(x), bins=nstrips, min=lo, max=hi).numpy()
        assert np.array_equal(th, np.bincount(b[inside] - 1, minlength=nstrips)), "histc rule mismatch"
        p = lab.ravel() > 0
        wf = w.ravel().astype(np.float64)
        for sel, stat, wt in ((p, pos, None), (~p, neg, None), (p, wpos, wf)):
            weights = None if wt is None else wt[sel & inside]
            stat += np.bincount(b[sel & inside], weights=weights, minlength=K)
            stat[0] += (sel & (x < lo)).sum() if wt is None else wt[sel & (x < lo)].sum()
            stat[-1] += (sel & over).sum() if wt is None else wt[sel & over].sum()

    def curve(ps, ns):
        cp, cn = np.cumsum(ps), np.cumsum(ns)
        fn, tn = cp[:-1], cn[:-1]
        tp, fp = cp[-1] - fn, cn[-1] - tn
        return tp, fp, tn, fn

    tp, fp, tn, fn = curve(pos, neg)
    tpr, fpr = tp / (tp + fn), fp / (fp + tn)
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
    p_auroc = float(np.trapz(tpr[::-1], fpr[::-1]))
    p_ap = float(np.trapz(prec[::-1], tpr[::-1]))
    wtp, wfp, wtn, wfn = curve(wpos, neg)
    pro, wfpr = wtp / (wtp + wfn), wfp / (wfp + wtn)
    # integrate PRO over FPR ascending up to `limit`, the straddling segment cut at `limit` exactly
    xs, ys = wfpr[::-1], pro[::-1]
    assert np.all(np.diff(xs) >= 0)
    below = xs <= limit
    xl, yl = xs[below], ys[below]
    xh, yh = xs[~below], ys[~below]
    area_lo = np.trapz(yl, xl)
    seg_area = (xh[0] - xl[-1]) * (yl[-1] + yh[0]) / 2
    t = (limit - xl[-1]) / (xh[0] - xl[-1])
    # the segment's area split into a rectangle (height y1) and a triangle; take fraction t of the width
    rect = seg_area * yl[-1] / (yl[-1] + 0.5 * (yh[0] - yl[-1]))
    tri = seg_area - rect
    p_aupro = float((area_lo + rect * t + tri * t * t) / limit)
    return {"auroc": p_auroc, "ap": p_ap, "aupro": p_aupro}


# ------------------------------------------------------------------------------------------ class cases
def blob_masks(rng, n, h, w, defect_frac=0.6):
    masks = np.zeros((n, h, w), dtype=np.uint8)
    for i in range(n):
        if rng.random() > defect_frac:
            continue
        for _ in range(rng.integers(1, 4)):
            y0, x0 = rng.integers(0, h - 3), rng.integers(0, w - 3)
            hh, ww = rng.integers(2, max(3, h // 4)), rng.integers(2, max(3, w // 4))
            masks[i, y0 : y0 + hh, x0 : x0 + ww] = 1
    return masks


def make_maps(rng, masks, ties=None):
    from scipy.ndimage import gaussian_filter

    n = masks.shape[0]
    maps = np.empty(masks.shape, dtype=np.float64)
    for i in range(n):
        noise = gaussian_filter(rng.standard_normal(masks.shape[1:]), 1.5)
        sig = gaussian_filter(masks[i].astype(np.float64), 1.0) * rng.uniform(0.2, 1.5)
        maps[i] = 0.5 + 0.6 * noise + sig
    maps = q(maps) if ties is None else np.round(maps * ties) / ties
    return maps


def class_case(name, masks, maps, scores=None):
    masks = masks.astype(np.uint8)
    maps = np.asarray(maps, dtype=np.float64)
    assert np.all(maps.astype(np.float32).astype(np.float64) == maps)
    n, h, w = masks.shape
    if scores is None:
        scores = maps.reshape(n, -1).max(axis=1)
    gt_sp = masks.reshape(n, -1).max(axis=1)
    aupro, n_th = aupro_exact_ref(masks, maps)
    return {
        "name": name,
        "n": n,
        "height": h,
        "width": w,
        "scores": np.asarray(scores, dtype=np.float64).tolist(),
        "maps": maps.ravel().tolist(),
        "masks": masks.ravel().tolist(),
        "num_aupro_thresholds": n_th,
        "exact": {
            "image_auroc": float(roc_auc_score(gt_sp, scores)),
            "image_ap": float(average_precision_score(gt_sp, scores)),
            "image_f1max": f1max_ader(gt_sp, scores),
            "pixel_auroc": float(roc_auc_score(masks.ravel(), maps.ravel())),
            "pixel_ap": float(average_precision_score(masks.ravel(), maps.ravel())),
            "pixel_f1max": pixel_f1_ref(masks, maps),
            "pixel_aupro": aupro,
        },
        "adeval": adeval_ref(masks, maps),
    }


def main():
    rng = np.random.default_rng(20240417)
    curves = []
    curves.append(curve_case("tiny_2", [0, 1], [0.25, 0.75]))
    curves.append(curve_case("tiny_tie_3", [0, 1, 1], [0.5, 0.5, 0.25]))
    curves.append(curve_case("tiny_inverted_4", [1, 1, 0, 0], [0.125, 0.25, 0.375, 0.5]))
    lab = (rng.random(400) < 0.3).astype(np.uint8)
    curves.append(curve_case("distinct_400", lab, q(rng.random(400) + 0.4 * lab)))
    lab = (rng.random(600) < 0.2).astype(np.uint8)
    curves.append(curve_case("heavy_ties_600", lab, np.round((rng.random(600) + 0.5 * lab) * 4) / 4))
    lab = (rng.random(300) < 0.5).astype(np.uint8)
    curves.append(curve_case("ties_8_levels_300", lab, np.round((rng.random(300) * 0.7 + 0.3 * lab) * 8) / 8))
    lab = (rng.random(200) < 0.1).astype(np.uint8)
    curves.append(curve_case("negative_scores_200", lab, q(-3 + rng.standard_normal(200) + lab)))

    comps = []
    m = np.zeros((8, 10), dtype=np.uint8)
    m[0:2, 0:2] = 1
    m[2:4, 2:4] = 1  # touches the first square at one corner only: 1 region (8-conn), 2 (4-conn)
    m[5, 7] = 1
    m[6, 6] = 1  # anti-diagonal pair
    m[4:8, 0] = 1
    m[7, 1:4] = 1  # an L
    m[0:3, 8] = 1
    m[1, 9] = 1
    comps.append(component_case("diagonal_touching", m))
    comps.append(component_case("random_20x17", (rng.random((20, 17)) < 0.35).astype(np.uint8)))
    # a U shape whose arms merge late (tests union of two provisional labels)
    u = np.zeros((6, 7), dtype=np.uint8)
    u[0:5, 0] = 1
    u[0:5, 6] = 1
    u[4, 0:7] = 1
    u[0, 3] = 1
    u[1, 2] = 1
    comps.append(component_case("u_and_staircase", u))
    comps.append(component_case("empty_4x5", np.zeros((4, 5), dtype=np.uint8)))
    comps.append(component_case("full_3x3", np.ones((3, 3), dtype=np.uint8)))

    classes = []
    # several images of 32x32, multi-region masks, some images defect-free; values on a 2**-16 grid
    masks = blob_masks(rng, 6, 32, 32)
    masks[0] = 0
    masks[1, 3:6, 3:6] = 1
    masks[1, 6:9, 6:9] = 1  # two squares touching at a corner: one 8-connected region
    masks[1, 20, 20] = 1
    maps = make_maps(rng, masks)
    classes.append(class_case("multi_32x32", masks, maps))
    # heavy ties: maps rounded to 1/8, so many pixels sit exactly on the ADEval edges and AU-PRO thresholds
    masks = blob_masks(rng, 5, 24, 24, 0.8)
    masks[4] = 0
    maps = make_maps(rng, masks, ties=8)
    classes.append(class_case("ties_24x24", masks, maps))
    # the map maximum inside a defect (ADEval's double count hits a positive pixel)
    masks = blob_masks(rng, 4, 16, 16, 1.0)
    masks[3] = 0
    maps = make_maps(rng, masks)
    idx = np.argwhere(masks[0] > 0)[0]
    maps[0, idx[0], idx[1]] = maps.max() + 1.0
    classes.append(class_case("max_in_defect_16x16", masks, maps))
    # tiny: 3 images of 8x8 with pooled image scores (scores given separately from the maps)
    masks = np.zeros((3, 8, 8), dtype=np.uint8)
    masks[0, 1:3, 1:3] = 1
    masks[0, 3, 3] = 1
    masks[1, 5:8, 0:2] = 1
    maps = make_maps(rng, masks)
    classes.append(class_case("tiny_8x8", masks, maps, scores=q(rng.random(3))))

    # numpy arange's length can be max_step + 1: (max - min) / ((max - min) / 100) rounds above 100
    lo32, hi32 = 0.04097352549433708, 0.09055643528699875
    masks = blob_masks(rng, 3, 16, 16, 1.0)
    masks[1] = 0
    maps = np.clip(lo32 + (make_maps(rng, masks) - 0.2) * 0.02, lo32, hi32)
    maps = np.clip(q(maps), lo32, hi32)
    maps[0, 0, 0], maps[2, 15, 15] = lo32, hi32
    case = class_case("arange_101_16x16", masks, maps)
    assert case["num_aupro_thresholds"] == 101
    classes.append(case)

    aranges = []
    for lo, hi in ((lo32, hi32), (0.8574042916297913, 0.9581609964370728), (0.25, 1.75), (-2.5, 0.125)):
        th = np.arange(np.float64(lo), np.float64(hi), (np.float64(hi) - np.float64(lo)) / 100)
        aranges.append({"min": lo, "max": hi, "max_step": 100, "values": th.tolist()})

    out = {
        "aranges": aranges,
        "versions": {
            "numpy": np.__version__,
            "sklearn": __import__("sklearn").__version__,
            "skimage": __import__("skimage").__version__,
        },
        "curves": curves,
        "components": comps,
        "classes": classes,
    }
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")
    for c in classes:
        print(c["name"], c["num_aupro_thresholds"], c["exact"], c["adeval"])


if __name__ == "__main__":
    main()
