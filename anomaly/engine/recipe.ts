/**
 * The training recipe of docs/paper.md, decision 3 (ADER `configs/benchmark/mambaad/mambaad_256_100e.py`, §1.11) as
 * one plain config object. Every field is a CLI flag of `deno task train`.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import type { DatasetKind } from "../data/datasets.ts";
import type { MetricPath } from "../metrics/evaluate.ts";

/** Everything a training run needs; {@linkcode DEFAULT_RECIPE} holds the paper's values. */
export interface TrainConfig {
  /** Registry name of the model ("wave_mambaad" or "mambaad"). */
  model: string;
  /** Preset of the model (default: its official configuration). */
  variant?: string;
  /** Model config fields applied on top of the preset (e.g. `{ depths: [1, 1, 1, 1] }`; JSON). */
  modelOverrides?: Record<string, unknown>;
  /** Dataset layout. */
  dataset: DatasetKind;
  /** Dataset root folder. */
  dataRoot: string;
  /** Classes to train on (default: all of the dataset; one model for all of them, multi-class). */
  classes?: string[];
  /** Epochs (docs/paper.md, decision 3: 100). */
  epochs: number;
  /** Batch size (16; the last incomplete batch is dropped, as ADER's drop_last=True). */
  batchSize: number;
  /** AdamW learning rate (0.005). */
  lr: number;
  /** AdamW weight decay (1e-4) for parameters that are not 1-D and not biases. */
  weightDecay: number;
  /** AdamW betas (0.9, 0.999). */
  betas: [number, number];
  /** Global L2 gradient-norm clip (5). */
  clipGrad: number;
  /** The LR is multiplied by `lrDecayRate` once `lrDecayAt` of all iterations are done (timm StepLR; 0.8). */
  lrDecayAt: number;
  /** LR decay factor (0.1). */
  lrDecayRate: number;
  /** Input image size (256). */
  imageSize: number;
  /** Seed of initialisation and data order (42). */
  seed: number;
  /** Compute device. */
  device: Device;
  /** ResNet-34 weights for the frozen encoder (torchvision/timm layout, .pth or .safetensors); random if absent. */
  encoderWeights?: string;
  /** Folder for checkpoints and logs. */
  outDir: string;
  /** Evaluate on the test split every N epochs (0: never during training). */
  evalEvery: number;
  /** Metric path of those evaluations. */
  metricPath: MetricPath;
  /** Skip unreadable images with a warning instead of stopping. */
  skipBad: boolean;
  /** Batches decoded ahead of compute. */
  prefetch: number;
  /** Stop each epoch after this many iterations (0: the whole epoch); for demos and smoke runs. */
  maxItersPerEpoch: number;
}

/** docs/paper.md, decision 3: the recipe both papers trained with (ADER benchmark config, 100 epochs). */
export const DEFAULT_RECIPE: Omit<TrainConfig, "dataset" | "dataRoot" | "device" | "outDir"> = {
  model: "wave_mambaad",
  epochs: 100,
  batchSize: 16,
  lr: 0.005,
  weightDecay: 1e-4,
  betas: [0.9, 0.999],
  clipGrad: 5,
  lrDecayAt: 0.8,
  lrDecayRate: 0.1,
  imageSize: 256,
  seed: 42,
  evalEvery: 0,
  metricPath: "adeval",
  skipBad: false,
  prefetch: 2,
  maxItersPerEpoch: 0,
};

/** Checks a config's numbers, naming the offending field. */
export function validateConfig(c: TrainConfig): void {
  const posInt = (k: keyof TrainConfig) => {
    const v = c[k] as number;
    if (!Number.isInteger(v) || v < 1) throw new Error(`train: ${k} must be a positive integer, got ${v}`);
  };
  const nonNegInt = (k: keyof TrainConfig) => {
    const v = c[k] as number;
    if (!Number.isInteger(v) || v < 0) throw new Error(`train: ${k} must be a non-negative integer, got ${v}`);
  };
  posInt("epochs");
  posInt("batchSize");
  posInt("imageSize");
  nonNegInt("evalEvery");
  nonNegInt("prefetch");
  nonNegInt("maxItersPerEpoch");
  nonNegInt("seed");
  for (const k of ["lr", "weightDecay", "clipGrad", "lrDecayRate"] as const) {
    if (!(Number.isFinite(c[k]) && c[k] >= 0)) throw new Error(`train: ${k} must be a finite number ≥ 0, got ${c[k]}`);
  }
  if (!(c.lrDecayAt > 0 && c.lrDecayAt <= 1)) throw new Error(`train: lrDecayAt must be in (0, 1], got ${c.lrDecayAt}`);
  if (c.metricPath !== "exact" && c.metricPath !== "adeval") {
    throw new Error(`train: metricPath must be "exact" or "adeval", got "${c.metricPath}"`);
  }
}
