/**
 * The full MambaAD model (docs/paper.md §1): frozen ResNet-34 encoder `net_t` (§1.1), MFF_OCE bottleneck `mff_oce`
 * (docs/paper.md §1.2, BatchNorm + ReLU), MambaUPNet decoder `net_s` (§1.3), with the official top-level names, so the
 * official state dict (588 entries: `net_t.*`, `mff_oce.*`, `net_s.*`) loads 1:1.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { noGrad, type Tensor, tidy } from "../../autodiff/tensor.ts";
import { Module } from "../../nn/module.ts";
import { loadResNetWeights, type ResNet, resnet34 } from "../backbones/resnet.ts";
import { adLoss, anomalyMapOf } from "../common/anomaly_map.ts";
import type { ADFeatures, AnomalyMapOptions, AnomalyMapResult, AnomalyModel } from "../common/anomaly_model.ts";
import { MAMBAAD_MFF_OCE, MFFOCE } from "../common/mff_oce.ts";
import { type MambaADConfig, type ResolvedMambaADConfig, resolveMambaADConfig } from "./config.ts";
import { MambaUPNet } from "./decoder.ts";

/**
 * MambaAD (docs/paper.md §1). `forward` runs the encoder in eval mode under noGrad (its features carry no gradient),
 * the bottleneck and the decoder with gradients. The encoder's parameters have `requiresGrad` false and
 * `train()` keeps the encoder in eval mode (the official `freeze_layer(net_t)`), so
 * `numParameters(true)` = 17,444,928 (MFF_OCE + decoder, §1.12) and `numParameters()` = 25,615,232; with the
 * 39,296 scan-table entries (int32 buffers here, int64 parameters in the official code) 25,654,528.
 */
export class MambaAD extends Module implements AnomalyModel {
  /** Registry name. */
  readonly modelName = "mambaad";
  /** Input image size S. */
  readonly imageSize: number;
  /** The resolved configuration. */
  readonly config: ResolvedMambaADConfig;
  /** Frozen ResNet-34 stem + layer1..3 (`net_t.*`). */
  net_t: ResNet;
  /** MFF_OCE with BatchNorm2d and ReLU (`mff_oce.*`). */
  mff_oce: MFFOCE;
  /** The decoder (`net_s.*`). */
  net_s: MambaUPNet;

  /**
   * Builds the three parts in the official order (encoder, bottleneck, decoder), each with its official
   * initialisation; the encoder keeps its random init until {@linkcode MambaAD.loadEncoderWeights}.
   */
  constructor(config: MambaADConfig = {}, device?: Device) {
    super();
    this.config = resolveMambaADConfig(config);
    this.imageSize = this.config.imageSize;
    this.net_t = resnet34({ features: ["layer1", "layer2", "layer3"], device });
    this.net_t.requiresGrad_(false).eval();
    this.mff_oce = new MFFOCE({ ...MAMBAAD_MFF_OCE, device });
    this.net_s = new MambaUPNet({
      dims: this.config.dims,
      depths: this.config.depths,
      dState: this.config.dState,
      dropPathRate: this.config.dropPathRate,
      directions: this.config.directions,
      inputSize: this.imageSize / 32,
      device,
    });
  }

  /** Training mode for the bottleneck and decoder; the encoder always stays in eval mode (docs/paper.md §1.1). */
  override train(on = true): this {
    super.train(on);
    this.net_t.train(false);
    return this;
  }

  /** Loads torchvision-format ResNet-34 weights (`.pth` or `.safetensors`) into the encoder (docs/paper.md, decision 6). */
  async loadEncoderWeights(path: string): Promise<void> {
    await loadResNetWeights(this.net_t, path);
    this.net_t.requiresGrad_(false).eval();
  }

  /** The frozen encoder's features [f1, f2, f3] of normalised images (B, 3, S, S), detached, no tape. */
  encode(images: Tensor): Tensor[] {
    const s = this.imageSize;
    if (images.ndim !== 4 || images.shape[1] !== 3 || images.shape[2] !== s || images.shape[3] !== s) {
      throw new Error(`MambaAD: expected (B, 3, ${s}, ${s}) images, got [${images.shape}]`);
    }
    return noGrad(() =>
      tidy(() => {
        const o = this.net_t.forward(images);
        return [o.layer1!, o.layer2!, o.layer3!];
      })
    );
  }

  /** {encoder: [f1, f2, f3], decoder: [g1, g2, g3]}, channels-first, finest first (docs/paper.md §1.1-1.3). */
  forward(images: Tensor): ADFeatures {
    const encoder = this.encode(images);
    const decoder = this.net_s.forward(this.mff_oce.forward(encoder[0], encoder[1], encoder[2]));
    return { encoder, decoder };
  }

  /** Σ over the 3 scales of 5 · MSE (docs/paper.md §1.9). */
  loss(features: ADFeatures): Tensor {
    return adLoss(features, 5);
  }

  /** Anomaly maps and image scores (docs/paper.md §1.10), at the model's image size by default. */
  anomalyMap(features: ADFeatures, opts: AnomalyMapOptions = {}): AnomalyMapResult {
    return anomalyMapOf(features, { size: opts.size ?? this.imageSize, sigma: opts.sigma, poolingKs: opts.poolingKs });
  }
}

/**
 * Builds a MambaAD from `config` on `device` and, when `config.encoderWeights` names a file, loads the
 * ResNet-34 encoder weights from it (docs/paper.md, decision 6).
 */
export async function createMambaAD(config: MambaADConfig = {}, device?: Device): Promise<MambaAD> {
  const model = new MambaAD(config, device);
  if (config.encoderWeights) {
    try {
      await model.loadEncoderWeights(config.encoderWeights);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  return model;
}
