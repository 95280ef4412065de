/**
 * AU-PRO of the exact path (docs/paper.md §4.1): ADER's `cal_pro_score(masks, amaps, max_step, expect_fpr)`,
 * reproduced step for step but computed in one pass over the pixels instead of `max_step` passes.
 *
 * What ADER does, per class:
 * 1. `th = np.arange(min, max, (max - min) / max_step)` over the raw maps (max_step = 100 in the MAD configs).
 * 2. For each th: binary = map > th; per image, regions = `skimage.measure.label(mask)` (8-connected);
 *    PRO = mean over all regions of all images of (TP pixels in region / region area);
 *    FPR = FP pixels / all GT-negative pixels, pooled over the images.
 * 3. Keep the points with fpr < expect_fpr (strict), min-max rescale the kept fprs to [0, 1].
 * 4. `sklearn.metrics.auc(fprs, pros)` (trapezoid; x descending is allowed and flips the sign back).
 *
 * The one-pass form: thresholds ascend, so a pixel with value x is predicted positive at exactly the first
 * `k(x)` thresholds, k(x) = #{j : T_j < x}. One binary search per pixel gives k(x); a histogram over k per
 * region (and one for all negatives) then yields every threshold's TP and FP counts by suffix sums. No
 * value is binned by range, so the counts are exact.
 *
 * Numerics: ADER's anomaly maps are float64 (`cal_anomaly_map` accumulates into `np.zeros`, default
 * float64), so numpy builds the thresholds and compares in double. Here the float32 map values are read as
 * doubles and every threshold step is done in double the way numpy 1.x does it (see `arangeThresholds`).
 *
 * @module
 */

import { hasForeground, labelComponents } from "./components.ts";

/**
 * The thresholds of `np.arange(min, max, (max - min) / maxStep)` for float64 `min`/`max`, bit for bit:
 * numpy's length is ceil((max − min) / delta); element 0 is `min`, element 1 is `min + delta`, and
 * element i ≥ 2 is `min + i * (elem1 − elem0)` (numpy's DOUBLE_fill). Empty when max ≤ min.
 */
export function arangeThresholds(min: number, max: number, maxStep: number): Float64Array {
  const delta = (max - min) / maxStep;
  if (!(delta > 0)) return new Float64Array(0);
  const len = Math.ceil((max - min) / delta);
  const out = new Float64Array(Math.max(0, len));
  if (len > 0) out[0] = min;
  if (len > 1) out[1] = min + delta;
  const step = out.length > 1 ? out[1] - out[0] : 0;
  for (let i = 2; i < len; i++) out[i] = min + i * step;
  return out;
}

/**
 * Number of entries of the ascending `th` strictly below `x` (the thresholds at which `x > th`). `th` is
 * `arangeThresholds(min, …)` with spacing `step`, so (x − min) / step lands within one of the answer; the
 * comparisons against the actual thresholds then make it exact.
 */
function countBelow(th: Float64Array, min: number, step: number, x: number): number {
  const T = th.length;
  let k = Math.ceil((x - min) / step);
  if (!(k >= 0)) k = 0;
  else if (k > T) k = T;
  while (k > 0 && !(th[k - 1] < x)) k--;
  while (k < T && th[k] < x) k++;
  return k;
}

/** Options of {@linkcode auproExact}. */
export interface AuproExactOptions {
  /** ADER's `max_step`: 100 in the MAD configs (the function default there is 200). Default 100. */
  maxStep?: number;
  /** ADER's `expect_fpr`: keep points with fpr strictly below this. Default 0.3. */
  expectFpr?: number;
}

/** The PRO curve of {@linkcode proCurveExact}: one entry per threshold. */
export interface ProCurve {
  /** The thresholds, ascending (numpy arange, see {@linkcode arangeThresholds}). */
  thresholds: Float64Array;
  /** Mean region overlap per threshold (NaN when the class has no defect region). */
  pro: Float64Array;
  /** Pooled false-positive rate per threshold (NaN when there are no negative pixels). */
  fpr: Float64Array;
}

/**
 * The per-threshold PRO and FPR of ADER's `cal_pro_score` over `n` row-major `height` x `width` maps and
 * {0,1} masks of one class. Non-zero mask values count as defect.
 */
export function proCurveExact(
  maps: Float32Array | Float64Array,
  masks: Uint8Array,
  n: number,
  height: number,
  width: number,
  maxStep = 100,
): ProCurve {
  const hw = height * width;
  if (maps.length !== n * hw || masks.length !== n * hw) {
    throw new Error(
      `proCurveExact: maps has ${maps.length} and masks ${masks.length} elements, expected n*height*width = ${n * hw}`,
    );
  }
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < maps.length; i++) {
    const v = maps[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const th = arangeThresholds(min, max, maxStep);
  const T = th.length;
  const step = T > 1 ? th[1] - th[0] : 1;
  // histograms over k(x) in 0..T: negatives pooled, positives per region
  const negHist = new Float64Array(T + 1);
  let regionHist = new Int32Array(0);
  const regionArea: number[] = [];
  let nNeg = 0;
  for (let img = 0; img < n; img++) {
    const off = img * hw;
    const mask = masks.subarray(off, off + hw);
    const any = hasForeground(mask);
    if (!any) {
      for (let i = 0; i < hw; i++) negHist[countBelow(th, min, step, maps[off + i])]++;
      nNeg += hw;
      continue;
    }
    const comp = labelComponents(mask, height, width, 8);
    const base = regionArea.length;
    for (let r = 1; r <= comp.count; r++) regionArea.push(comp.areas[r]);
    if (regionHist.length < regionArea.length * (T + 1)) {
      const grown = new Int32Array(Math.max(regionArea.length * (T + 1), regionHist.length * 2));
      grown.set(regionHist);
      regionHist = grown;
    }
    for (let i = 0; i < hw; i++) {
      const k = countBelow(th, min, step, maps[off + i]);
      const l = comp.labels[i];
      if (l === 0) {
        negHist[k]++;
        nNeg++;
      } else {
        regionHist[(base + l - 1) * (T + 1) + k]++;
      }
    }
  }
  const R = regionArea.length;
  const pro = new Float64Array(T);
  const fpr = new Float64Array(T);
  // FP at threshold j = negatives with k > j: suffix sums from the top
  let fp = 0;
  for (let j = T - 1; j >= 0; j--) {
    fp += negHist[j + 1];
    fpr[j] = fp / nNeg;
  }
  const overlapSum = new Float64Array(T);
  for (let r = 0; r < R; r++) {
    const h = regionHist.subarray(r * (T + 1), (r + 1) * (T + 1));
    let tp = 0;
    for (let j = T - 1; j >= 0; j--) {
      tp += h[j + 1];
      overlapSum[j] += tp / regionArea[r];
    }
  }
  for (let j = 0; j < T; j++) pro[j] = overlapSum[j] / R;
  return { thresholds: th, pro, fpr };
}

/**
 * `sklearn.metrics.auc(x, y)`: the trapezoid area, for x monotonic in either direction; NaN where sklearn
 * raises (fewer than 2 points, or x not monotonic).
 */
export function sklearnAuc(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  if (n < 2 || y.length !== n) return NaN;
  let direction = 1;
  let anyNeg = false, allNonPos = true;
  for (let i = 1; i < n; i++) {
    const d = x[i] - x[i - 1];
    if (d < 0) anyNeg = true;
    if (d > 0) allNonPos = false;
  }
  if (anyNeg) {
    if (!allNonPos) return NaN;
    direction = -1;
  }
  return direction * trapz(y, x);
}

/** `np.trapz(y, x)`: Σ (x[i+1] − x[i]) · (y[i+1] + y[i]) / 2, in numpy's operation order. */
export function trapz(y: ArrayLike<number>, x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 1; i < x.length; i++) s += ((x[i] - x[i - 1]) * (y[i] + y[i - 1])) / 2;
  return s;
}

/**
 * The exact-path AU-PRO (docs/paper.md §4.1) of one class: ADER `cal_pro_score` with max_step 100 and
 * expect_fpr 0.3 by default. NaN where ADER would produce NaN or raise: no defect region, no negative
 * pixel, constant maps, or fewer than 2 points (or a single distinct fpr) below expect_fpr.
 */
export function auproExact(
  maps: Float32Array | Float64Array,
  masks: Uint8Array,
  n: number,
  height: number,
  width: number,
  options: AuproExactOptions = {},
): number {
  const maxStep = options.maxStep ?? 100;
  const expectFpr = options.expectFpr ?? 0.3;
  const { pro, fpr } = proCurveExact(maps, masks, n, height, width, maxStep);
  const keptFpr: number[] = [];
  const keptPro: number[] = [];
  for (let j = 0; j < fpr.length; j++) {
    if (fpr[j] < expectFpr) {
      keptFpr.push(fpr[j]);
      keptPro.push(pro[j]);
    }
  }
  if (keptFpr.length === 0) return NaN;
  let lo = Infinity, hi = -Infinity;
  for (const f of keptFpr) {
    if (f < lo) lo = f;
    if (f > hi) hi = f;
  }
  // min-max rescale, not fpr / expect_fpr (docs/paper.md §4.1 step 3)
  const scaled = keptFpr.map((f) => (f - lo) / (hi - lo));
  return sklearnAuc(scaled, keptPro);
}
