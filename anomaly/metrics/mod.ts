/**
 * Anomaly-detection metrics (docs/paper.md §4): per-class I-AUROC, I-AP, I-F1max, P-AUROC, P-AP, P-F1max,
 * AU-PRO and mAD on two named paths, `"exact"` (sklearn-equivalent curves and ADER's 100-step AU-PRO) and
 * `"adeval"` (ADEval's 50-strip histograms), plus the building blocks: exact ROC/PR curves, 8-connected
 * component labelling, both AU-PRO variants and ADER's 21-threshold P-F1max.
 *
 * @module
 */

export { averagePrecision, binaryCurveMetrics, f1Max, radixSortFloat32, rocAuc, sortedCurveMetrics } from "./curves.ts";
export type { BinaryCurveMetrics, Scores } from "./curves.ts";
export { labelComponents } from "./components.ts";
export type { Components } from "./components.ts";
export { arangeThresholds, auproExact, proCurveExact, sklearnAuc, trapz } from "./aupro.ts";
export type { AuproExactOptions, ProCurve } from "./aupro.ts";
export { adevalPixelMetrics, limitedAupro } from "./adeval.ts";
export type { AdevalOptions, AdevalPixelMetrics } from "./adeval.ts";
export { F1_THRESHOLDS, pixelF1Max } from "./pixel_f1.ts";
export { classMetrics, meanMetrics, METRIC_KEYS } from "./evaluate.ts";
export type { ClassMetrics, ClassMetricsInput, MetricPath } from "./evaluate.ts";
