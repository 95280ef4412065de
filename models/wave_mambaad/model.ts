/**
 * The full Wave-MambaAD model (docs/paper.md §3): frozen ResNet-34 encoder `net_t` (stem, layer1..3, always in eval
 * mode), the MFF_OCE bottleneck `mff_oce` (InstanceNorm, SiLU; docs/paper.md §3.1) and the decoder `net_s`
 * ({@linkcode WaveMambaADDecoder}). State-dict keys as the official `MAMBAAD` wrapper of ADer (`net_t.*`,
 * `mff_oce.*`, `net_s.*`), so official checkpoints load strictly.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import type { Module } from "../../nn/module.ts";
import { factoryOptions, type ModelFactoryOptions, paramCounts, ResNetADModel } from "../common/ad_model.ts";
import { MFFOCE, WAVE_MAMBAAD_MFF_OCE } from "../common/mff_oce.ts";
import { waveConfig, type WaveMambaADConfig, type WavePresetName } from "./config.ts";
import { WaveMambaADDecoder } from "./decoder.ts";

/** Parameter counts of a model in the terms of docs/paper.md §3.8, decision 2 (a view of `paramCounts`). */
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

/** The parameter counts of `m` ({@linkcode paramCounts} of models/common/ad_model.ts, named as §3.8 names them). */
export function countParams(m: Module): WaveParamCounts {
  const c = paramCounts(m);
  return { total: c.paperCount, withoutIndex: c.total, trainable: c.trainable, scanIndex: c.scanIndex };
}

/**
 * Wave-MambaAD (docs/paper.md §3), an {@linkcode ResNetADModel}: f1, f2, f3 = net_t(x) (frozen, eval, no gradient,
 * detached); e = mff_oce(f1, f2, f3); [g1, g2, g3] = net_s(e). Loss Σᵢ 5·MSE(fᵢ, gᵢ) (§1.9); anomaly map
 * Σᵢ (1 − cos(fᵢ, gᵢ)) upsampled and blurred (§1.10).
 */
export class WaveMambaAD extends ResNetADModel<WaveMambaADDecoder> {
  /** Registry name. */
  readonly modelName = "wave_mambaad";
  /** The full configuration. */
  readonly config: Readonly<WaveMambaADConfig>;

  /** Builds the model of `config` on `device`. */
  constructor(config: WaveMambaADConfig, device?: Device) {
    super(config.imageSize, device, () => ({
      bottleneck: new MFFOCE({ ...WAVE_MAMBAAD_MFF_OCE, device }),
      decoder: new WaveMambaADDecoder(config, device),
    }));
    this.config = Object.freeze({ ...config });
  }

  /** Parameter counts (total fvcore-style, without index tables, trainable). */
  paramCounts(): WaveParamCounts {
    return countParams(this);
  }
}

/** Options of {@linkcode createWaveMambaAD} (those of every model factory). */
export type CreateWaveMambaADOptions = ModelFactoryOptions<WaveMambaADConfig>;

/**
 * A Wave-MambaAD from a preset name of `WAVE_PRESETS` (default "official") or a (partial) config, with `overrides`
 * on top, on `device` (the factory signature of every model, {@linkcode ModelFactoryOptions}).
 */
export function createWaveMambaAD(
  config: WavePresetName | Partial<WaveMambaADConfig> = "official",
  opts: CreateWaveMambaADOptions | Device = {},
): WaveMambaAD {
  const { device, overrides } = factoryOptions(opts);
  return new WaveMambaAD(waveConfig(config, overrides), device);
}
