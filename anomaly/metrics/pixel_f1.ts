/**
 * P-F1max as ADER reports it on both metric paths (docs/paper.md §4.1, `mF1_max_px`): an approximation on 21
 * thresholds t = `np.arange(0.0, 1.0 + 1e-3, 0.05)` of the class-wise min-max normalised maps
 * norm = (map − min) / (max − min), prediction = norm > t, counts pooled over all pixels of the class:
 * precision = TP / (TP + FP + 1e-8), recall = TP / (P + 1e-8), F1 = 2PR / (P + R + 1e-8); the max over t.
 *
 * ADER's maps are float64, so the normalisation and the comparisons are done in double on the float32 values.
 * numpy's arange gives t_i = 0 + i · 0.05 (so 0.15000000000000002 and so on), reproduced here.
 *
 * @module
 */

/** The 21 thresholds of `np.arange(0.0, 1.001, 0.05)`, bit for bit. */
export const F1_THRESHOLDS: Float64Array = Float64Array.from({ length: 21 }, (_, i) => i * 0.05);

const EPS = 1e-8;

/**
 * ADER's P-F1max of `n·h·w` map values against {0,1} masks (any non-zero mask value is a defect). Constant
 * maps make the normalised map NaN, nothing is predicted and the result is 0, as in ADER.
 */
export function pixelF1Max(maps: Float32Array | Float64Array, masks: Uint8Array): number {
  if (maps.length !== masks.length) {
    throw new Error(`pixelF1Max: maps has ${maps.length} elements but masks has ${masks.length}`);
  }
  let mn = Infinity, mx = -Infinity;
  for (let i = 0; i < maps.length; i++) {
    const v = maps[i];
    if (v < mn) mn = v;
    if (v > mx) mx = v;
  }
  const range = mx - mn;
  const T = F1_THRESHOLDS.length;
  // histogram over k = number of thresholds the normalised value exceeds (0..T)
  const all = new Float64Array(T + 1);
  const pos = new Float64Array(T + 1);
  let label = 0;
  for (let i = 0; i < maps.length; i++) {
    const norm = (maps[i] - mn) / range;
    // ceil(norm / 0.05) is within one of the count of thresholds below norm; the comparisons make it exact.
    // NaN (constant maps) compares false everywhere: k = 0, predicted negative at every t
    let lo = Math.ceil(norm / 0.05);
    if (!(lo >= 0)) lo = 0;
    else if (lo > T) lo = T;
    while (lo > 0 && !(norm > F1_THRESHOLDS[lo - 1])) lo--;
    while (lo < T && norm > F1_THRESHOLDS[lo]) lo++;
    all[lo]++;
    if (masks[i] !== 0) {
      pos[lo]++;
      label++;
    }
  }
  let best = -Infinity;
  let pred = 0, inter = 0;
  const f1s = new Float64Array(T);
  for (let j = T - 1; j >= 0; j--) {
    pred += all[j + 1];
    inter += pos[j + 1];
    const precision = inter / (pred + EPS);
    const recall = inter / (label + EPS);
    f1s[j] = ((1 + 1) * precision * recall) / (1 * precision + recall + EPS);
  }
  for (let j = 0; j < T; j++) if (f1s[j] > best) best = f1s[j];
  return best;
}
