/**
 * The full Wave-MambaAD model (docs/paper.md §3): frozen ResNet-34 encoder `net_t` (stem, layer1..3, always in eval
 * mode), the MFF_OCE bottleneck `mff_oce` (InstanceNorm, SiLU; docs/paper.md §3.1) and the decoder `net_s`
 * ({@linkcode MambaUPNet}). State-dict keys as the official `MAMBAAD` wrapper of ADer (`net_t.*`, `mff_oce.*`,
 * `net_s.*`), so official checkpoints load strictly.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { noGrad, type Tensor, tidy } from "../../autodiff/tensor.ts";
import { Module } from "../../nn/module.ts";
import { loadResNetWeights, type ResNet, resnet34 } from "../backbones/resnet.ts";
import { adLoss, anomalyMapOf } from "../common/anomaly_map.ts";
import type { ADFeatures, AnomalyMapOptions, AnomalyMapResult, AnomalyModel } from "../common/anomaly_model.ts";
import { MFFOCE, WAVE_MAMBAAD_MFF_OCE } from "../common/mff_oce.ts";
import { waveConfig, type WaveMambaADConfig, type WavePresetName } from "./config.ts";
import { MambaUPNet } from "./decoder.ts";

/** Parameter counts of a model (docs/paper.md §3.8, decision 2). */
export interface WaveParamCounts {
  /** Every parameter plus the scan-index tables, as fvcore counts (22,293,250 official). */
  total: number;
  /** Every parameter, frozen encoder included, without the index tables (22,260,898). */
  withoutIndex: number;
  /** Trainable parameters: MFF_OCE + decoder (14,090,594). */
  trainable: number;
  /** Elements of the scan-index tables (32,352). */
  scanIndex: number;
}

/** The parameter counts of `m`; scan tables are the buffers whose key ends in `index_flat[_inv]`. */
export function countParams(m: Module): WaveParamCounts {
  let scanIndex = 0;
  for (const [k, t] of m.namedBuffers()) if (/\.index_flat(_inv)?$/.test(k)) scanIndex += t.size;
  const withoutIndex = m.numParameters();
  return { total: withoutIndex + scanIndex, withoutIndex, trainable: m.numParameters(true), scanIndex };
}

/**
 * Wave-MambaAD (docs/paper.md §3): f1, f2, f3 = net_t(x) (frozen, eval, no gradient, detached); e = mff_oce(f1, f2, f3);
 * [g1, g2, g3] = net_s(e). Loss Σᵢ 5·MSE(fᵢ, gᵢ) (§1.9); anomaly map Σᵢ (1 − cos(fᵢ, gᵢ)) upsampled and blurred (§1.10).
 */
export class WaveMambaAD extends Module implements AnomalyModel {
  /** Registry name. */
  readonly modelName = "wave_mambaad";
  /** Input image size S. */
  readonly imageSize: number;
  /** The full configuration. */
  readonly config: Readonly<WaveMambaADConfig>;
  /** Frozen ResNet-34 stem + layer1..3. */
  net_t: ResNet;
  /** MFF_OCE with InstanceNorm2d(affine=False) and SiLU (docs/paper.md §3.1). */
  mff_oce: MFFOCE;
  /** The decoder. */
  net_s: MambaUPNet;

  /** Builds the model of `config` on `device`. */
  constructor(config: WaveMambaADConfig, device?: Device) {
    super();
    this.config = Object.freeze({ ...config });
    this.imageSize = config.imageSize;
    this.net_t = resnet34({ features: ["layer1", "layer2", "layer3"], device });
    this.net_t.requiresGrad_(false);
    this.mff_oce = new MFFOCE({ ...WAVE_MAMBAAD_MFF_OCE, device });
    this.net_s = new MambaUPNet(config, device);
    this.train();
  }

  /** Training mode for mff_oce and net_s; net_t stays in eval mode (the official `freeze_layer`). */
  override train(on = true): this {
    super.train(on);
    this.net_t.eval();
    return this;
  }

  /** Loads torchvision/timm-layout ResNet-34 weights (`.pth` or `.safetensors`) into the encoder (docs/paper.md, decision 6). */
  async loadEncoderWeights(path: string): Promise<void> {
    await loadResNetWeights(this.net_t, path);
    this.net_t.requiresGrad_(false).eval();
  }

  /** Normalised images (B, 3, S, S) → encoder and decoder features, finest first. */
  forward(images: Tensor): ADFeatures {
    if (images.ndim !== 4 || images.shape[1] !== 3 || images.shape[2] !== this.imageSize) {
      throw new Error(
        `WaveMambaAD: expected (B, 3, ${this.imageSize}, ${this.imageSize}) images, got [${images.shape}]`,
      );
    }
    const encoder = noGrad(() =>
      tidy(() => {
        const f = this.net_t.forward(images);
        return [f.layer1!, f.layer2!, f.layer3!].map((t) => t.detach());
      })
    );
    const decoder = this.net_s.forward(this.mff_oce.forward(encoder[0], encoder[1], encoder[2]));
    return { encoder, decoder };
  }

  /** Σ over the 3 scales of 5 · MSE (docs/paper.md §1.9, decision 3). */
  loss(features: ADFeatures): Tensor {
    return adLoss(features, 5);
  }

  /** Anomaly maps and image scores (docs/paper.md §1.10). */
  anomalyMap(features: ADFeatures, opts: AnomalyMapOptions = {}): AnomalyMapResult {
    return anomalyMapOf(features, {
      size: opts.size ?? this.imageSize,
      sigma: opts.sigma,
      poolingKs: opts.poolingKs,
    });
  }

  /** Parameter counts (total fvcore-style, without index tables, trainable). */
  paramCounts(): WaveParamCounts {
    return countParams(this);
  }
}

/** Options of {@linkcode createWaveMambaAD}. */
export interface CreateWaveMambaADOptions {
  /** Device of the parameters. */
  device?: Device;
  /** Overrides applied on top of the preset. */
  overrides?: Partial<WaveMambaADConfig>;
}

/** A Wave-MambaAD from a preset name (default "official") or a (partial) config. */
export function createWaveMambaAD(
  config: WavePresetName | Partial<WaveMambaADConfig> = "official",
  opts: CreateWaveMambaADOptions = {},
): WaveMambaAD {
  return new WaveMambaAD(waveConfig(config, opts.overrides), opts.device);
}
