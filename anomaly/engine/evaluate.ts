/**
 * The evaluation engine: per class of the test split, the forward pass without gradient, anomaly maps and image
 * scores (docs/paper.md, decision 4, §1.10), masks binarised as §1.10 step 6, then the metrics of decision 5 on the
 * chosen path, and their mean over classes. Maps are kept per class only (≤ a few hundred 256² maps), so memory
 * stays bounded on datasets of any size.
 *
 * @module
 */

import { join } from "node:path";
import type { AnomalyModel } from "../../models/common/anomaly_model.ts";
import type { AnomalyDataset, Sample } from "../data/datasets.ts";
import { DataLoader } from "../data/loader.ts";
import { type ClassMetrics, classMetrics, meanMetrics, type MetricPath } from "../metrics/evaluate.ts";
import { encodeNpy } from "./npy.ts";
import { predictBatch } from "./predict.ts";
import { ProgressBar } from "./progress.ts";

export { predictBatch };

/** Options of {@linkcode evaluate}. */
export interface EvaluateOptions {
  /** Metric path (docs/paper.md §4.1 "exact" or §4.2 "adeval"). */
  metricPath: MetricPath;
  /** Further paths computed from the same maps (one forward pass), returned in `alsoOn`. */
  alsoPaths?: MetricPath[];
  /** Images per forward pass (default 16, as the official test batch). */
  batchSize?: number;
  /** Classes to evaluate (default: all of the dataset). */
  classes?: string[];
  /** Average-pool kernel before the max of the image score (default none, as the official configs). */
  poolingKs?: number | null;
  /** Gaussian sigma of the map (default 4). */
  sigma?: number;
  /** Write each map as float32 `.npy` (S×S) under `DIR/<class>/<defect>/<stem>.npy`, plus `DIR/scores.json`. */
  saveMapsDir?: string;
  /** Skip unreadable images with a warning. */
  skipBad?: boolean;
  /** Batches decoded ahead. */
  prefetch?: number;
  /** No progress bar. */
  quiet?: boolean;
}

/** One image's result, as written to `scores.json`. */
export interface ImageScore {
  /** Image file. */
  path: string;
  /** Class. */
  cls: string;
  /** Defect type ("good" for normal). */
  defect: string;
  /** Image label used by the metrics: max of the binarised mask (gt_sp, docs/paper.md §1.10 step 6). */
  label: number;
  /** Image score (max of the smoothed map). */
  score: number;
  /** The map's `.npy` file relative to the maps folder (when saved). */
  map?: string;
}

/** What {@linkcode evaluate} returns. */
export interface EvaluationResult {
  /** The path the pixel metrics were computed on. */
  metricPath: MetricPath;
  /** Metrics per class (fractions in [0, 1]). */
  perClass: Record<string, ClassMetrics>;
  /** Their mean over classes (mAD = mean of the seven, per class, then averaged). */
  mean: ClassMetrics;
  /** Test images per class (normal, anomalous). */
  counts: Record<string, { normal: number; anomalous: number }>;
  /** Every image's score and label. */
  scores: ImageScore[];
  /** Images skipped as unreadable (with `skipBad`). */
  skipped: string[];
  /** Evaluation throughput (forward + maps), images per second. */
  imagesPerS: number;
  /** The JSON summary (means as top-level keys, `metric_path`, `per_class`). */
  summary: Record<string, unknown>;
  /** The same evaluation on each of `alsoPaths`. */
  alsoOn: Partial<Record<MetricPath, EvaluationResult>>;
}

function stemOf(path: string): string {
  const base = path.split(/[\\/]/).pop() ?? path;
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(0, dot) : base;
}

/** Evaluates `model` (put in eval mode) on the test split of `dataset`. */
export async function evaluate(
  model: AnomalyModel,
  dataset: AnomalyDataset,
  opts: EvaluateOptions,
): Promise<EvaluationResult> {
  const classes = opts.classes ?? dataset.classes;
  for (const c of classes) {
    if (!dataset.classes.includes(c)) {
      throw new Error(`evaluate: unknown class "${c}" (the dataset has: ${dataset.classes.join(", ")})`);
    }
  }
  const wasTraining = model.training;
  model.eval();
  const s = model.imageSize, pix = s * s;
  const perClass: Record<string, ClassMetrics> = {};
  const alsoPaths = (opts.alsoPaths ?? []).filter((p) => p !== opts.metricPath);
  const alsoPerClass: Record<string, Record<string, ClassMetrics>> = Object.fromEntries(alsoPaths.map((p) => [p, {}]));
  const counts: EvaluationResult["counts"] = {};
  const scores: ImageScore[] = [];
  const skipped: string[] = [];
  const t0 = performance.now();
  let seen = 0;
  try {
    for (const cls of classes) {
      const samples = dataset.test.filter((x) => x.cls === cls);
      if (samples.length === 0) throw new Error(`evaluate: class "${cls}" has no test images in ${dataset.root}`);
      const loader = new DataLoader(samples, {
        batchSize: opts.batchSize ?? 16,
        imageSize: s,
        shuffle: false,
        dropLast: false,
        seed: 0,
        prefetch: opts.prefetch ?? 2,
        withMasks: true,
        skipBad: opts.skipBad ?? false,
      });
      const maps = new Float32Array(samples.length * pix);
      const masks = new Uint8Array(samples.length * pix);
      const imgScores = new Float32Array(samples.length);
      const kept: Sample[] = [];
      const bar = new ProgressBar(loader.length, { label: `eval ${cls}`, unit: "img", quiet: opts.quiet });
      for await (const batch of loader.epoch(0)) {
        const n = batch.samples.length;
        const r = await predictBatch(model, batch.images, n, { poolingKs: opts.poolingKs, sigma: opts.sigma });
        maps.set(r.maps, kept.length * pix);
        masks.set(batch.masks.subarray(0, n * pix), kept.length * pix);
        imgScores.set(r.scores, kept.length);
        for (let i = 0; i < n; i++) {
          const sample = batch.samples[i];
          let label = 0;
          const m = batch.masks.subarray(i * pix, (i + 1) * pix);
          for (let j = 0; j < pix; j++) {
            if (m[j]) {
              label = 1;
              break;
            }
          }
          const rec: ImageScore = { path: sample.path, cls, defect: sample.defect, label, score: r.scores[i] };
          if (opts.saveMapsDir) {
            const rel = join(cls, sample.defect, `${stemOf(sample.path)}.npy`);
            await Deno.mkdir(join(opts.saveMapsDir, cls, sample.defect), { recursive: true });
            await Deno.writeFile(
              join(opts.saveMapsDir, rel),
              encodeNpy(r.maps.subarray(i * pix, (i + 1) * pix), [s, s]),
            );
            rec.map = rel;
          }
          scores.push(rec);
          kept.push(sample);
        }
        seen += n;
        bar.tick();
      }
      skipped.push(...loader.skipped);
      const n = kept.length;
      const labels = scores.slice(-n).map((r) => r.label);
      counts[cls] = { normal: labels.filter((l) => l === 0).length, anomalous: labels.filter((l) => l === 1).length };
      const input = {
        scores: imgScores.subarray(0, n),
        maps: maps.subarray(0, n * pix),
        masks: masks.subarray(0, n * pix),
        n,
        height: s,
        width: s,
      };
      perClass[cls] = classMetrics(input, opts.metricPath);
      for (const p of alsoPaths) alsoPerClass[p][cls] = classMetrics(input, p);
    }
  } finally {
    if (wasTraining) model.train();
  }
  if (opts.saveMapsDir) {
    await Deno.writeTextFile(
      join(opts.saveMapsDir, "scores.json"),
      JSON.stringify({ image_size: s, metric_path: opts.metricPath, images: scores }, null, 1),
    );
  }
  const imagesPerS = seen / ((performance.now() - t0) / 1000);
  const resultOn = (metricPath: MetricPath, perClass: Record<string, ClassMetrics>): EvaluationResult => {
    const mean = meanMetrics(perClass);
    return {
      metricPath,
      perClass,
      mean,
      counts,
      scores,
      skipped,
      imagesPerS,
      summary: { ...mean, metric_path: metricPath, per_class: perClass },
      alsoOn: {},
    };
  };
  const result = resultOn(opts.metricPath, perClass);
  for (const p of alsoPaths) result.alsoOn[p] = resultOn(p, alsoPerClass[p]);
  return result;
}
