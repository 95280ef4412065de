/**
 * The anomaly-detection engine: the training recipe and loop, evaluation, results tables, `.npy` maps and the
 * progress bar (docs/architecture.md, "One training step").
 *
 * @module
 */

export * from "./recipe.ts";
export * from "./train.ts";
export * from "./evaluate.ts";
export * from "./report.ts";
export * from "./npy.ts";
export * from "./progress.ts";
