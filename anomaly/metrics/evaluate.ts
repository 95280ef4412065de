/**
 * Per-class evaluation as ADER's `Evaluator.run` (docs/paper.md §4), on one of the two named metric paths
 * (docs/paper.md, decision 5 and §5.8):
 * - `"exact"` (4.1): pixel AUROC / AP by the sklearn-equivalent curves over all pixels, AU-PRO by
 *   `cal_pro_score` with 100 steps.
 * - `"adeval"` (4.2): pixel AUROC / AP / AU-PRO from ADEval's 50-strip histograms.
 *
 * On both paths the image metrics are sklearn's on (gt_sp = max of each mask, the given image scores), and
 * P-F1max is ADER's 21-threshold approximation. mAD is the mean of the seven. Results are fractions in
 * [0, 1]; the tables multiply by 100.
 *
 * @module
 */

import { binaryCurveMetrics } from "./curves.ts";
import { auproExact } from "./aupro.ts";
import { adevalPixelMetrics } from "./adeval.ts";
import { pixelF1Max } from "./pixel_f1.ts";

/** Which pixel-metric implementation to use: sklearn-exact (docs/paper.md §4.1) or ADEval histograms (4.2). */
export type MetricPath = "exact" | "adeval";

/** The seven metrics of one class and their mean, as fractions in [0, 1] (NaN where undefined). */
export interface ClassMetrics {
  /** I-AUROC: sklearn roc_auc_score(gt_sp, image scores). */
  image_auroc: number;
  /** I-AP: sklearn average_precision_score(gt_sp, image scores). */
  image_ap: number;
  /** I-F1max: max F1 over precision_recall_curve(gt_sp, image scores). */
  image_f1max: number;
  /** P-AUROC over all pixels of the class (path-dependent). */
  pixel_auroc: number;
  /** P-AP over all pixels of the class (path-dependent). */
  pixel_ap: number;
  /** P-F1max: ADER's 21-threshold approximation on min-max normalised maps (both paths). */
  pixel_f1max: number;
  /** AU-PRO up to FPR 0.3 (path-dependent). */
  pixel_aupro: number;
  /** mAD: the mean of the seven metrics above. */
  mad: number;
}

/** The inputs of {@linkcode classMetrics}: one class's test set. */
export interface ClassMetricsInput {
  /** N image scores (e.g. max of each smoothed map, docs/paper.md §1.10 step 5). */
  scores: Float32Array;
  /** N·H·W anomaly-map values, row-major per image. */
  maps: Float32Array;
  /** N·H·W ground-truth mask values in {0, 1}. */
  masks: Uint8Array;
  /** Number of images N. */
  n: number;
  /** Map height H. */
  height: number;
  /** Map width W. */
  width: number;
}

/** The seven metric keys in table order (mAD excluded). */
export const METRIC_KEYS = [
  "image_auroc",
  "image_ap",
  "image_f1max",
  "pixel_auroc",
  "pixel_ap",
  "pixel_f1max",
  "pixel_aupro",
] as const;

function madOf(m: Omit<ClassMetrics, "mad">): number {
  let s = 0;
  for (const k of METRIC_KEYS) s += m[k];
  return s / METRIC_KEYS.length;
}

/**
 * The seven metrics and mAD of one class on metric path `path`. Image labels are gt_sp = max of each
 * image's mask (docs/paper.md §1.10 step 6). Throws on mismatched sizes or mask values other than 0 and 1.
 */
export function classMetrics(input: ClassMetricsInput, path: MetricPath): ClassMetrics {
  const { scores, maps, masks, n, height, width } = input;
  for (const [name, v] of [["n", n], ["height", height], ["width", width]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`classMetrics: ${name} must be a positive integer, got ${v}`);
  }
  if (path !== "exact" && path !== "adeval") {
    throw new Error(`classMetrics: path must be "exact" or "adeval", got ${JSON.stringify(path)}`);
  }
  const size = n * height * width;
  if (scores.length !== n) {
    throw new Error(`classMetrics: scores has ${scores.length} elements, expected n = ${n}`);
  }
  if (maps.length !== size) {
    throw new Error(
      `classMetrics: maps has ${maps.length} elements, expected n*height*width = ${n}*${height}*${width} = ${size}`,
    );
  }
  if (masks.length !== size) {
    throw new Error(
      `classMetrics: masks has ${masks.length} elements, expected n*height*width = ${n}*${height}*${width} = ${size}`,
    );
  }
  const hw = height * width;
  const gtSp = new Uint8Array(n);
  for (let img = 0; img < n; img++) {
    let m = 0;
    for (let i = img * hw, end = i + hw; i < end; i++) {
      const v = masks[i];
      if (v > 1) throw new Error(`classMetrics: masks[${i}] is ${v}; masks must hold 0 or 1`);
      m |= v;
    }
    gtSp[img] = m;
  }
  const image = binaryCurveMetrics(gtSp, scores);
  let pixel_auroc: number, pixel_ap: number, pixel_aupro: number;
  if (path === "exact") {
    const px = binaryCurveMetrics(masks, maps);
    pixel_auroc = px.auroc;
    pixel_ap = px.ap;
    pixel_aupro = auproExact(maps, masks, n, height, width, { maxStep: 100, expectFpr: 0.3 });
  } else {
    const px = adevalPixelMetrics(maps, masks, n, height, width, { nstrips: 50 });
    pixel_auroc = px.auroc;
    pixel_ap = px.ap;
    pixel_aupro = px.aupro;
  }
  const m = {
    image_auroc: image.auroc,
    image_ap: image.ap,
    image_f1max: image.f1max,
    pixel_auroc,
    pixel_ap,
    pixel_f1max: pixelF1Max(maps, masks),
    pixel_aupro,
  };
  return { ...m, mad: madOf(m) };
}

/**
 * The class average reported in the tables: each metric averaged over the classes, mAD the mean of those
 * seven averages (equal to the average of the per-class mADs). Throws on an empty record.
 */
export function meanMetrics(perClass: Record<string, ClassMetrics>): ClassMetrics {
  const names = Object.keys(perClass);
  if (names.length === 0) throw new Error("meanMetrics: perClass is empty; need at least one class");
  const m = {
    image_auroc: 0,
    image_ap: 0,
    image_f1max: 0,
    pixel_auroc: 0,
    pixel_ap: 0,
    pixel_f1max: 0,
    pixel_aupro: 0,
  };
  for (const name of names) for (const k of METRIC_KEYS) m[k] += perClass[name][k];
  for (const k of METRIC_KEYS) m[k] /= names.length;
  return { ...m, mad: madOf(m) };
}
