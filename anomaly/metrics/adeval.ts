/**
 * The ADEval path of docs/paper.md §4.2: P-AUROC, P-AP and AU-PRO as ADER gets them from
 * `EvalAccumulatorCuda(score_min, score_max, anomap_min, anomap_max, skip_pixel_aupro=False, nstrips=50)`.
 *
 * Followed from ADEval's source (github.com/winggan/adeval, v1.1.0: `adeval/cuda_mem_effic.py`
 * `_histogram_bins` / `_AccumulateStatCurve`, `adeval/iterative.py` `EvalAccumulator._auroc/_aupr/_aupro`,
 * `adeval/iterative_cuda.py` `add_anomap`, `adeval/mem_effic.py` `_pro_weight` / `_trapezoid_intep`):
 * - Range [lo, hi] = min and max of the class's maps. Each pixel goes into one of `nstrips` bins by
 *   `torch.histc`'s CUDA rule bin = trunc((x − lo) · nstrips / (hi − lo)), with bin nstrips folded into the
 *   last one; plus an underflow bin (x < lo) and an overflow bin (x ≥ hi). histc keeps x == hi in its last
 *   bin and the overflow bin counts it again, so every pixel equal to the max is counted twice. That is
 *   ADEval's behaviour and is kept (it moves the figures by about one pixel in millions).
 * - ADER passes float64 maps (`cal_anomaly_map` accumulates into float64 `np.zeros`), so histc runs in
 *   double: the float32 values here are read as doubles and the bin rule is evaluated in double.
 * - Cumulative sums over the 52 bins give, at each of the 51 edges k: FN = Σ bins[0..k], TN likewise,
 *   TP = P − FN, FP = N − TN (P and N are the totals including the double count).
 * - AUROC = np.trapz(TPR, FPR) over the 51 points; AP = np.trapz(precision, recall) with precision 1 where
 *   TP + FP = 0 (not sklearn's step AP).
 * - AU-PRO: each positive pixel weighs float32(1 / area of its 8-connected GT component) (cv2
 *   `connectedComponentsWithStats`, connectivity 8, per image; weights stored as float32 by `_pro_weight`),
 *   negatives weigh 1. The weighted TPR is the PRO curve, FPR is unweighted. Points with FPR ≤ 0.3 are
 *   integrated by trapezoid; the straddling segment's area is split by `_trapezoid_intep` into a rectangle
 *   and a triangle and taken up to FPR 0.3 exactly; the sum is divided by 0.3.
 * - The anomaly map is resized to the GT shape with bilinear align_corners=False first: the identity when
 *   the shapes agree, which `classMetrics` requires.
 *
 * ADEval asserts in a few degenerate cases (constant maps, an empty side of the 0.3 split, a zero-height
 * straddling segment); those give NaN here.
 *
 * @module
 */

import { hasForeground, labelComponents } from "./components.ts";
import { trapz } from "./aupro.ts";

/** The three pixel metrics of ADEval; see {@linkcode adevalPixelMetrics}. */
export interface AdevalPixelMetrics {
  /** ADEval `p_auroc`: trapezoid of TPR vs FPR over the histogram edges. */
  auroc: number;
  /** ADEval `p_aupr`: trapezoid of precision vs recall (precision 1 where nothing is predicted positive). */
  ap: number;
  /** ADEval `p_aupro`: area under the component-weighted TPR up to FPR 0.3, divided by 0.3. */
  aupro: number;
}

/** Options of {@linkcode adevalPixelMetrics}. */
export interface AdevalOptions {
  /** Number of histogram strips; ADER passes 50. Default 50. */
  nstrips?: number;
  /** Lower end of the histogram range; default the min of the maps (ADER's `anomap_min`). */
  min?: number;
  /** Upper end of the histogram range; default the max of the maps (ADER's `anomap_max`). */
  max?: number;
}

/** ADEval's `_trapezoid_intep`: the part of a trapezoid of `area` (heights y1 ≤ y2) left of fraction `t`. */
function trapezoidInterp(t: number, area: number, y1: number, y2: number): number {
  const rectRatio = y1 / (y1 + 0.5 * (y2 - y1));
  const rectArea = area * rectRatio;
  const triArea = area * (1 - rectRatio);
  return rectArea * t + triArea * t * t;
}

/** The per-edge curve values of ADEval's `_summary`, for k = 0..nstrips. */
interface Curve {
  tp: Float64Array;
  fp: Float64Array;
  tn: Float64Array;
  fn: Float64Array;
}

/** ADEval `_summary`: cumulative sums of the positive / negative histograms at each edge. */
function summary(posStat: Float64Array, negStat: Float64Array): Curve {
  const K = posStat.length - 1;
  const fn = new Float64Array(K), tn = new Float64Array(K);
  let cp = 0, cn = 0;
  for (let k = 0; k < K; k++) {
    cp += posStat[k];
    cn += negStat[k];
    fn[k] = cp;
    tn[k] = cn;
  }
  const p = cp + posStat[K], n = cn + negStat[K];
  const tp = new Float64Array(K), fp = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    tp[k] = p - fn[k];
    fp[k] = n - tn[k];
  }
  return { tp, fp, tn, fn };
}

/** Reverses an array into a new Float64Array (ADEval integrates `arr[::-1]`, FPR ascending). */
function reversed(a: ArrayLike<number>): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[a.length - 1 - i];
  return out;
}

/**
 * ADEval's P-AUROC, P-AP and AU-PRO over `n` row-major `height` x `width` maps and {0,1} masks of one class
 * (docs/paper.md §4.2). Non-zero mask values count as defect.
 */
export function adevalPixelMetrics(
  maps: Float32Array | Float64Array,
  masks: Uint8Array,
  n: number,
  height: number,
  width: number,
  options: AdevalOptions = {},
): AdevalPixelMetrics {
  const hw = height * width;
  if (maps.length !== n * hw || masks.length !== n * hw) {
    throw new Error(
      `adevalPixelMetrics: maps has ${maps.length} and masks ${masks.length} elements, expected n*height*width = ${
        n * hw
      }`,
    );
  }
  const nstrips = options.nstrips ?? 50;
  let lo = options.min ?? Infinity, hi = options.max ?? -Infinity;
  if (options.min === undefined || options.max === undefined) {
    let mn = Infinity, mx = -Infinity;
    for (let i = 0; i < maps.length; i++) {
      const v = maps[i];
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    if (options.min === undefined) lo = mn;
    if (options.max === undefined) hi = mx;
  }
  // ADEval asserts min < max
  if (!(lo < hi)) return { auroc: NaN, ap: NaN, aupro: NaN };
  const range = hi - lo;
  const bins = nstrips + 2;
  const posStat = new Float64Array(bins);
  const negStat = new Float64Array(bins);
  const wPosStat = new Float64Array(bins);
  // the bin of x: histc's CUDA getBin in double, shifted past the underflow bin; -1 when outside [lo, hi]
  const binOf = (x: number): number => {
    if (!(x >= lo && x <= hi)) return -1;
    let b = Math.trunc(((x - lo) * nstrips) / range);
    if (b === nstrips) b--;
    return b + 1;
  };
  for (let img = 0; img < n; img++) {
    const off = img * hw;
    const mask = masks.subarray(off, off + hw);
    const any = hasForeground(mask);
    const comp = any ? labelComponents(mask, height, width, 8) : null;
    // _pro_weight stores 1/area in a float32 array
    const weightOf = comp ? Float64Array.from(comp.areas, (a) => Math.fround(1 / a)) : null;
    for (let i = 0; i < hw; i++) {
      const x = maps[off + i];
      const b = binOf(x);
      const l = comp ? comp.labels[i] : 0;
      if (l !== 0) {
        const w = weightOf![l];
        if (b >= 0) {
          posStat[b]++;
          wPosStat[b] += w;
        }
        if (x < lo) {
          posStat[0]++;
          wPosStat[0] += w;
        }
        if (x >= hi) {
          posStat[bins - 1]++;
          wPosStat[bins - 1] += w;
        }
      } else {
        if (b >= 0) negStat[b]++;
        if (x < lo) negStat[0]++;
        if (x >= hi) negStat[bins - 1]++;
      }
    }
  }
  const c = summary(posStat, negStat);
  const K = nstrips + 1;
  const tpr = new Float64Array(K), fpr = new Float64Array(K), precision = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    tpr[k] = c.tp[k] / (c.tp[k] + c.fn[k]);
    fpr[k] = c.fp[k] / (c.fp[k] + c.tn[k]);
    // precision 1 where nothing is predicted positive (ADEval's `pr`)
    precision[k] = c.tp[k] + c.fp[k] > 0 ? c.tp[k] / (c.tp[k] + c.fp[k]) : 1;
  }
  const auroc = trapz(reversed(tpr), reversed(fpr));
  const ap = trapz(reversed(precision), reversed(tpr));
  // negatives weigh 1, so the weighted FPR is the plain FPR; the weighted TPR is the PRO curve
  const w = summary(wPosStat, negStat);
  const pro = new Float64Array(K), wFpr = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    pro[k] = w.tp[k] / (w.tp[k] + w.fn[k]);
    wFpr[k] = w.fp[k] / (w.fp[k] + w.tn[k]);
  }
  return { auroc, ap, aupro: limitedAupro(wFpr, pro, 0.3) };
}

/**
 * ADEval's `_aupro` on a curve given at the histogram edges (k ascending, FPR descending): trapezoid of PRO
 * vs FPR over the points with FPR ≤ limit, plus the straddling segment up to `limit` by `_trapezoid_intep`,
 * divided by `limit`. NaN where ADEval raises (no point on one side of the limit).
 */
export function limitedAupro(fpr: Float64Array, pro: Float64Array, limit = 0.3): number {
  const loF: number[] = [], loP: number[] = [], hiF: number[] = [], hiP: number[] = [];
  // reversed order (FPR ascending), split by fpr <= limit, as `pro[mask][::-1]` and `pro[~mask][::-1]`
  for (let k = fpr.length - 1; k >= 0; k--) {
    if (fpr[k] <= limit) {
      loF.push(fpr[k]);
      loP.push(pro[k]);
    } else {
      hiF.push(fpr[k]);
      hiP.push(pro[k]);
    }
  }
  if (loF.length === 0 || hiF.length === 0) return NaN;
  const lo = trapz(loP, loF);
  const hi = trapz(hiP, hiF);
  const tot = trapz(reversed(pro), reversed(fpr));
  const last = loF.length - 1;
  const t = (limit - loF[last]) / (hiF[0] - loF[last]);
  return (lo + trapezoidInterp(t, tot - (lo + hi), loP[last], hiP[0])) / limit;
}
