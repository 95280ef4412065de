/**
 * Exact, sklearn-equivalent binary ranking metrics (docs/paper.md §4.1): `roc_auc_score`,
 * `average_precision_score` (the step-wise sum, not a trapezoid) and F1-max over `precision_recall_curve`,
 * as ADER computes I-AUROC / I-AP / I-F1max and, on the exact path, P-AUROC / P-AP over all pixels of a
 * class. Thresholds sit at the distinct score values, so tied scores form one step, as in sklearn's
 * `_binary_clf_curve`.
 *
 * One pass serves all three: positives and negatives are copied apart and sorted with the native
 * typed-array sort (no comparator, so V8 sorts in C++), then merged from the top score down; each distinct
 * value adds its positive count `cp` and negative count `cn` to the running `tps` / `fps`.
 *
 * @module
 */

/** The three exact metrics of one labelled score set; see {@linkcode binaryCurveMetrics}. */
export interface BinaryCurveMetrics {
  /** Area under the ROC curve, as `sklearn.metrics.roc_auc_score`. */
  auroc: number;
  /** Step-wise average precision Σ (R_k − R_{k−1}) · P_k, as `sklearn.metrics.average_precision_score`. */
  ap: number;
  /** Max of 2PR/(P+R) over the finite points of `precision_recall_curve`, as ADER's F1-max. */
  f1max: number;
}

/** Scores the metrics accept: float32 (the model's maps) or float64. */
export type Scores = Float32Array | Float64Array;

/** Throws unless `labels` and `scores` pair up; `fn` names the caller in the message. */
function checkPair(fn: string, labels: Uint8Array, scores: Scores): void {
  if (labels.length !== scores.length) {
    throw new Error(`${fn}: labels has ${labels.length} elements but scores has ${scores.length}`);
  }
}

/**
 * AUROC, AP and F1-max of `scores` against binary `labels` (0 = normal, 1 = anomalous; any non-zero label
 * counts as 1), computed together from one sort.
 *
 * Degenerate input (no positives or no negatives) gives NaN for all three. sklearn differs per metric:
 * `roc_auc_score` raises ValueError ("Only one class present"); `average_precision_score` warns and returns
 * 0 (no positives) or 1 (no negatives); the F1-max over `precision_recall_curve` would be 0 or 1. None of
 * them is a meaningful figure for a class, hence NaN. Non-finite scores throw, as sklearn's input check does.
 */
export function binaryCurveMetrics(labels: Uint8Array, scores: Scores): BinaryCurveMetrics {
  checkPair("binaryCurveMetrics", labels, scores);
  const n = labels.length;
  let nPos = 0;
  for (let i = 0; i < n; i++) {
    if (labels[i] !== 0) nPos++;
    const s = scores[i];
    // NaN and ±Infinity both fail this test (sklearn's check_array rejects them too)
    if (!(s - s === 0)) throw new Error(`binaryCurveMetrics: scores[${i}] is ${s}; scores must be finite`);
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return { auroc: NaN, ap: NaN, f1max: NaN };
  const f32 = scores instanceof Float32Array;
  const pos = f32 ? new Float32Array(nPos) : new Float64Array(nPos);
  const neg = f32 ? new Float32Array(nNeg) : new Float64Array(nNeg);
  for (let i = 0, p = 0, q = 0; i < n; i++) {
    if (labels[i] !== 0) pos[p++] = scores[i];
    else neg[q++] = scores[i];
  }
  if (pos instanceof Float32Array && neg instanceof Float32Array) {
    radixSortFloat32(pos);
    radixSortFloat32(neg);
  } else {
    pos.sort();
    neg.sort();
  }
  return sortedCurveMetrics(pos, neg);
}

/**
 * Sorts a Float32Array ascending in place (no NaNs) by an LSD radix sort on order-preserving 32-bit keys:
 * 3 passes of 11/11/10 bits, a few times faster than the native sort on millions of pixels. −0 lands before
 * +0, which the merge treats as one value.
 */
export function radixSortFloat32(a: Float32Array): void {
  const n = a.length;
  if (n < 2048) {
    a.sort();
    return;
  }
  const u = new Uint32Array(a.buffer, a.byteOffset, n);
  // order-preserving map: negative floats flip all bits, non-negative ones flip the sign bit
  for (let i = 0; i < n; i++) {
    const v = u[i];
    u[i] = v & 0x80000000 ? ~v >>> 0 : (v | 0x80000000) >>> 0;
  }
  const c0 = new Uint32Array(2048), c1 = new Uint32Array(2048), c2 = new Uint32Array(1024);
  for (let i = 0; i < n; i++) {
    const v = u[i];
    c0[v & 0x7ff]++;
    c1[(v >>> 11) & 0x7ff]++;
    c2[v >>> 22]++;
  }
  const prefix = (c: Uint32Array) => {
    let sum = 0;
    for (let i = 0; i < c.length; i++) {
      const t = c[i];
      c[i] = sum;
      sum += t;
    }
  };
  prefix(c0);
  prefix(c1);
  prefix(c2);
  const tmp = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const v = u[i];
    tmp[c0[v & 0x7ff]++] = v;
  }
  for (let i = 0; i < n; i++) {
    const v = tmp[i];
    u[c1[(v >>> 11) & 0x7ff]++] = v;
  }
  for (let i = 0; i < n; i++) {
    const v = u[i];
    tmp[c2[v >>> 22]++] = v;
  }
  for (let i = 0; i < n; i++) {
    const v = tmp[i];
    u[i] = v & 0x80000000 ? (v & 0x7fffffff) >>> 0 : ~v >>> 0;
  }
}

/**
 * The merge step of {@linkcode binaryCurveMetrics} on already ascending-sorted positive and negative
 * scores (both non-empty). Exposed for callers that keep the sorted arrays.
 */
export function sortedCurveMetrics(pos: Scores, neg: Scores): BinaryCurveMetrics {
  const P = pos.length, N = neg.length;
  if (P === 0 || N === 0) return { auroc: NaN, ap: NaN, f1max: NaN };
  let i = P - 1, j = N - 1;
  let tps = 0, fps = 0;
  // Mann-Whitney sum with half credit for ties: the ROC trapezoid's area, times P·N
  let rocArea = 0;
  let ap = 0;
  // sklearn appends the point (precision 1, recall 0), whose F1 is 0
  let f1max = 0;
  while (i >= 0 || j >= 0) {
    const v = i < 0 ? neg[j] : j < 0 ? pos[i] : Math.max(pos[i], neg[j]);
    let cp = 0, cn = 0;
    while (i >= 0 && pos[i] === v) {
      cp++;
      i--;
    }
    while (j >= 0 && neg[j] === v) {
      cn++;
      j--;
    }
    rocArea += cn * (tps + cp / 2);
    tps += cp;
    fps += cn;
    // one threshold of precision_recall_curve: precision = tps/(tps+fps), recall = tps/tps[-1]
    const precision = tps / (tps + fps);
    const recall = tps / P;
    ap += (cp / P) * precision;
    const f1 = (2 * precision * recall) / (precision + recall);
    // NaN (precision = recall = 0) is skipped: ADER takes the max over np.isfinite values
    if (f1 > f1max) f1max = f1;
  }
  return { auroc: rocArea / (P * N), ap, f1max };
}

/** sklearn `roc_auc_score(labels, scores)`; NaN where sklearn raises (a single class). */
export function rocAuc(labels: Uint8Array, scores: Scores): number {
  checkPair("rocAuc", labels, scores);
  return binaryCurveMetrics(labels, scores).auroc;
}

/** sklearn `average_precision_score(labels, scores)` (step-wise); NaN for a single class. */
export function averagePrecision(labels: Uint8Array, scores: Scores): number {
  checkPair("averagePrecision", labels, scores);
  return binaryCurveMetrics(labels, scores).ap;
}

/** Max F1 over the finite points of sklearn `precision_recall_curve(labels, scores)`; NaN for a single class. */
export function f1Max(labels: Uint8Array, scores: Scores): number {
  checkPair("f1Max", labels, scores);
  return binaryCurveMetrics(labels, scores).f1max;
}
