/**
 * The full MambaAD model (docs/paper.md §1): frozen ResNet-34 encoder `net_t` (§1.1), MFF_OCE bottleneck `mff_oce`
 * (docs/paper.md §1.2, BatchNorm + ReLU), MambaUPNet decoder `net_s` (§1.3), with the official top-level names, so the
 * official state dict (588 entries: `net_t.*`, `mff_oce.*`, `net_s.*`) loads 1:1.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { factoryOptions, type ModelFactoryOptions, ResNetADModel } from "../common/ad_model.ts";
import { MAMBAAD_MFF_OCE, MFFOCE } from "../common/mff_oce.ts";
import { type MambaADConfig, mambaADConfig, type ResolvedMambaADConfig } from "./config.ts";
import { MambaADDecoder } from "./decoder.ts";

/**
 * MambaAD (docs/paper.md §1), an {@linkcode ResNetADModel}: the encoder runs in eval mode under noGrad (its features
 * carry no gradient), the bottleneck and the decoder with gradients. The encoder's parameters have `requiresGrad`
 * false and `train()` keeps the encoder in eval mode (the official `freeze_layer(net_t)`), so
 * `numParameters(true)` = 17,444,928 (MFF_OCE + decoder, §1.12) and `numParameters()` = 25,615,232; with the
 * 39,296 scan-table entries (int32 buffers here, int64 parameters in the official code) 25,654,528.
 */
export class MambaAD extends ResNetADModel<MambaADDecoder> {
  /** Registry name. */
  readonly modelName = "mambaad";
  /** The resolved configuration. */
  readonly config: ResolvedMambaADConfig;

  /**
   * Builds the three parts in the official order (encoder, bottleneck, decoder), each with its official
   * initialisation; the encoder keeps its random init until {@linkcode MambaAD.loadEncoderWeights}.
   */
  constructor(config: MambaADConfig = {}, device?: Device) {
    const c = mambaADConfig(config);
    super(c.imageSize, device, () => ({
      bottleneck: new MFFOCE({ ...MAMBAAD_MFF_OCE, device }),
      decoder: new MambaADDecoder({
        dims: c.dims,
        depths: c.depths,
        dState: c.dState,
        dropPathRate: c.dropPathRate,
        directions: c.directions,
        inputSize: c.imageSize / 32,
        device,
      }),
    }));
    this.config = c;
  }
}

/**
 * A MambaAD from a preset name of `MAMBAAD_PRESETS` (default "mambaad", the official configuration) or a config,
 * with `overrides` on top, on `device` (the factory signature of every model, {@linkcode ModelFactoryOptions}).
 */
export function createMambaAD(
  config: string | MambaADConfig = "mambaad",
  opts: ModelFactoryOptions<MambaADConfig> | Device = {},
): MambaAD {
  const { device, overrides } = factoryOptions(opts);
  return new MambaAD(mambaADConfig(config, overrides), device);
}
