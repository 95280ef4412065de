/**
 * The contract every anomaly-detection model of the zoo fulfils, so the training and evaluation engine does
 * not know which model it runs (docs/architecture.md, "Adding a model").
 *
 * @module
 */

import type { Tensor } from "../../autodiff/tensor.ts";
import type { Module } from "../../nn/module.ts";

/** Paired multi-scale features, channels-first, finest first: [64×64×64, 128×32×32, 256×16×16] at 256². */
export interface ADFeatures {
  /** The frozen encoder's features f1, f2, f3 (computed in eval mode under noGrad; no gradient). */
  encoder: Tensor[];
  /** The decoder's reconstructions g1, g2, g3, same shapes. */
  decoder: Tensor[];
}

/** An anomaly map per image and the image score. */
export interface AnomalyMapResult {
  /** (B, H, W), after the Gaussian blur. */
  map: Tensor;
  /** (B): max of the map (after the optional average pool). */
  score: Tensor;
}

/** Options of {@linkcode AnomalyModel.anomalyMap}. */
export interface AnomalyMapOptions {
  /** Output size (default: the model's image size). */
  size?: number;
  /** Gaussian sigma (default 4: 33 taps, reflect padding, as scipy.ndimage.gaussian_filter). */
  sigma?: number;
  /** Average-pool kernel before the max for the image score (default none, as the official configs). */
  poolingKs?: number | null;
}

/** A reconstruction-based anomaly detector: frozen encoder, trainable bottleneck + decoder. */
export interface AnomalyModel extends Module {
  /** Registry name ("mambaad", "wave_mambaad"). */
  readonly modelName: string;
  /** Input image size (square). */
  readonly imageSize: number;
  /** Loads torchvision/timm-layout ResNet-34 weights (`.pth` or `.safetensors`) into the frozen encoder. */
  loadEncoderWeights(path: string): Promise<void>;
  /** Encoder and decoder features of normalised images (B, 3, S, S). */
  forward(images: Tensor): ADFeatures;
  /** The training loss (docs/paper.md §1.9: Σ over the 3 scales of 5 · mean squared error). */
  loss(features: ADFeatures): Tensor;
  /** Anomaly maps and image scores (docs/paper.md §1.10). */
  anomalyMap(features: ADFeatures, opts?: AnomalyMapOptions): AnomalyMapResult;
}
