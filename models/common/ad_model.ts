/**
 * The one implementation of the {@linkcode AnomalyModel} contract that the zoo's encoder–bottleneck–decoder models
 * share (docs/architecture.md, "Adding a model"): the frozen ResNet-34 encoder `net_t`, a bottleneck `mff_oce` and
 * a decoder `net_s` (the official top-level names), the frozen-encoder rules, the loss, the anomaly map, the
 * parameter counts, and the options every model factory takes.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { noGrad, type Tensor, tidy } from "../../autodiff/tensor.ts";
import { Module } from "../../nn/module.ts";
import { loadResNetWeights, type ResNet, resnet34 } from "../backbones/resnet.ts";
import { adLoss, anomalyMapOf } from "./anomaly_map.ts";
import type { ADFeatures, AnomalyMapOptions, AnomalyMapResult, AnomalyModel } from "./anomaly_model.ts";
import type { MFFOCE } from "./mff_oce.ts";

/** A decoder: the bottleneck's embedding (B, C, s, s) → the reconstructions [g1, g2, g3], channels-first. */
export interface ADDecoder extends Module {
  /** Embedding → reconstructions, finest first. */
  forward(x: Tensor): Tensor[];
}

/**
 * The options of every model factory (`createMambaAD`, `createWaveMambaAD`, and the `create` of each entry of
 * `MODELS` in models/registry.ts): `factory(presetOrConfig, options)`, where a plain {@linkcode Device} stands for
 * `{ device }`.
 */
export interface ModelFactoryOptions<C> {
  /** Device of the parameters (default: the current default device). */
  device?: Device;
  /** Config fields applied on top of the preset. */
  overrides?: Partial<C>;
}

/** The `{ device, overrides }` of a factory's second argument (a device alone, options, or nothing). */
export function factoryOptions<C>(opts: ModelFactoryOptions<C> | Device | undefined): ModelFactoryOptions<C> {
  return typeof opts === "string" ? { device: opts } : opts ?? {};
}

/** Parameter counts of a model. */
export interface ParamCounts {
  /** Every parameter (the frozen encoder included). */
  total: number;
  /** Parameters with requiresGrad. */
  trainable: number;
  /** The scan-index tables (`index_flat`, `index_flat_inv`), which the official code registers as parameters. */
  scanIndex: number;
  /**
   * The paper's / fvcore's count (docs/paper.md, decision 2): all parameters, frozen encoder and unused conv
   * included, plus the scan-index tables; BatchNorm running statistics excluded.
   */
  paperCount: number;
}

/** Counts the parameters of `model` as {@linkcode ParamCounts} describes. */
export function paramCounts(model: Module): ParamCounts {
  let total = 0, trainable = 0, scanIndex = 0;
  for (const [, p] of model.namedParameters()) {
    total += p.size;
    if (p.requiresGrad) trainable += p.size;
  }
  for (const [k, b] of model.namedBuffers()) {
    if (/(^|\.)index_flat(_inv)?$/.test(k)) scanIndex += b.size;
  }
  return { total, trainable, scanIndex, paperCount: total + scanIndex };
}

/** The parts a model adds to the shared encoder, built in this order after it. */
export interface ADParts<D extends ADDecoder> {
  /** The bottleneck (`mff_oce.*`). */
  bottleneck: MFFOCE;
  /** The decoder (`net_s.*`). */
  decoder: D;
}

/**
 * An encoder–bottleneck–decoder anomaly detector. The constructor builds, in the official order (which fixes the
 * random init and the state-dict key order `net_t.*`, `mff_oce.*`, `net_s.*`): the ResNet-34 encoder (stem +
 * layer1..3, `requiresGrad` false, always in eval mode: the official `freeze_layer(net_t)`), then the model's own
 * bottleneck and decoder from `build`.
 *
 * `forward` checks for (B, 3, S, S) images, runs the encoder under noGrad in its own tidy scope and detaches its
 * features (no tape, no gradient), then bottleneck and decoder with gradients. `loss` is Σ over the 3 scales of
 * 5 · MSE (docs/paper.md §1.9), `anomalyMap` 1 − cosine per scale, upsampled and blurred (§1.10).
 */
export abstract class ResNetADModel<D extends ADDecoder> extends Module implements AnomalyModel {
  /** Registry name. */
  abstract readonly modelName: string;
  /** Input image size S. */
  readonly imageSize: number;
  /** Frozen ResNet-34 stem + layer1..3 (`net_t.*`). */
  net_t: ResNet;
  /** The bottleneck (`mff_oce.*`). */
  mff_oce: MFFOCE;
  /** The decoder (`net_s.*`). */
  net_s: D;

  /** Builds the encoder for `imageSize`, then `build()`'s bottleneck and decoder, all on `device`. */
  constructor(imageSize: number, device: Device | undefined, build: () => ADParts<D>) {
    super();
    this.imageSize = imageSize;
    this.net_t = resnet34({ features: ["layer1", "layer2", "layer3"], device });
    this.net_t.requiresGrad_(false).eval();
    const parts = build();
    this.mff_oce = parts.bottleneck;
    this.net_s = parts.decoder;
    this.train();
  }

  /** Training mode for the bottleneck and decoder; the encoder always stays in eval mode (docs/paper.md §1.1). */
  override train(on = true): this {
    super.train(on);
    this.net_t.train(false);
    return this;
  }

  /** Loads torchvision/timm-layout ResNet-34 weights (`.pth` or `.safetensors`) into the encoder (docs/paper.md, decision 6). */
  async loadEncoderWeights(path: string): Promise<void> {
    await loadResNetWeights(this.net_t, path);
    this.net_t.requiresGrad_(false).eval();
  }

  /** The frozen encoder's features [f1, f2, f3] of normalised images (B, 3, S, S), detached, no tape. */
  encode(images: Tensor): Tensor[] {
    const s = this.imageSize;
    if (images.ndim !== 4 || images.shape[1] !== 3 || images.shape[2] !== s || images.shape[3] !== s) {
      throw new Error(`${this.constructor.name}: expected (B, 3, ${s}, ${s}) images, got [${images.shape}]`);
    }
    return noGrad(() =>
      tidy(() => {
        const f = this.net_t.forward(images);
        return [f.layer1!, f.layer2!, f.layer3!].map((t) => t.detach());
      })
    );
  }

  /** {encoder: [f1, f2, f3], decoder: [g1, g2, g3]}, channels-first, finest first. */
  forward(images: Tensor): ADFeatures {
    const encoder = this.encode(images);
    const decoder = this.net_s.forward(this.mff_oce.forward(encoder[0], encoder[1], encoder[2]));
    return { encoder, decoder };
  }

  /** Σ over the 3 scales of 5 · MSE (docs/paper.md §1.9, decision 3). */
  loss(features: ADFeatures): Tensor {
    return adLoss(features, 5);
  }

  /** Anomaly maps and image scores (docs/paper.md §1.10), at the model's image size by default. */
  anomalyMap(features: ADFeatures, opts: AnomalyMapOptions = {}): AnomalyMapResult {
    return anomalyMapOf(features, { size: opts.size ?? this.imageSize, sigma: opts.sigma, poolingKs: opts.poolingKs });
  }
}
