/**
 * The configuration of the full MambaAD model (docs/paper.md §1.1-1.3, §1.11): the decoder `MambaUPNet(dims=[512,
 * 256,128,64], depths=[3,4,6,3], d_state=16, drop_path_rate=0.2, scan_type='hilbert', num_direction=8)` of the
 * official `configs/mambaad/mambaad_mvtec.py`, at 256×256 images.
 *
 * @module
 */

import { mambaadDirections, type ScanOrder } from "../../nn/ssm/scan_order.ts";

/** Options of the full MambaAD model; every field has the official default. */
export interface MambaADConfig {
  /**
   * Square input size S (default 256, docs/paper.md §1.11). Must be a multiple of 32: the encoder features are
   * S/4, S/8, S/16 and the decoder's scan sizes S/32, S/16, S/8, S/4 (8, 16, 32, 64 at 256, docs/paper.md §1.3).
   */
  imageSize?: number;
  /** Decoder widths per stage, coarsest first (default [512, 256, 128, 64], docs/paper.md §1.3). */
  dims?: readonly number[];
  /**
   * HSS blocks per decoder stage (default [3, 4, 6, 3], §1.3). Each depth must be divisible by 3 (depth/3 LSS
   * modules of 3 HSS blocks) or by 2 (depth/2 modules of 2), the official `LSSLayer_up` rule.
   */
  depths?: readonly number[];
  /** SSM state size N (default 16, docs/paper.md §1.6). */
  dState?: number;
  /** Stochastic depth: linspace(0, rate, Σ depths) reversed, one rate per LSS module (default 0.2, §1.3). */
  dropPathRate?: number;
  /** Scan directions of every SS2D (default: MambaAD's 8 Hilbert directions, docs/paper.md §1.7). */
  directions?: readonly ScanOrder[];
}

/** A {@linkcode MambaADConfig} with every default filled in. */
export type ResolvedMambaADConfig = Required<MambaADConfig>;

/** The official decoder widths (docs/paper.md §1.3). */
export const MAMBAAD_DIMS: readonly number[] = [512, 256, 128, 64];
/** The official decoder depths (docs/paper.md §1.3). */
export const MAMBAAD_DEPTHS: readonly number[] = [3, 4, 6, 3];

/** Fills in the defaults and checks the fields. */
export function resolveMambaADConfig(config: MambaADConfig = {}): ResolvedMambaADConfig {
  const r: ResolvedMambaADConfig = {
    imageSize: config.imageSize ?? 256,
    dims: config.dims ?? MAMBAAD_DIMS,
    depths: config.depths ?? MAMBAAD_DEPTHS,
    dState: config.dState ?? 16,
    dropPathRate: config.dropPathRate ?? 0.2,
    directions: config.directions ?? mambaadDirections(),
  };
  if (!Number.isInteger(r.imageSize) || r.imageSize < 32 || r.imageSize % 32 !== 0) {
    throw new Error(`MambaADConfig: imageSize must be a positive multiple of 32, got ${r.imageSize}`);
  }
  if (r.dims.length !== 4 || r.depths.length !== 4) {
    throw new Error(`MambaADConfig: dims and depths need 4 stages, got [${r.dims}] and [${r.depths}]`);
  }
  // the bottleneck gives 512 channels and the decoder's outputs pair with the encoder's 64, 128, 256
  if (r.dims.join() !== MAMBAAD_DIMS.join()) {
    throw new Error(
      `MambaADConfig: dims must be [${MAMBAAD_DIMS}] (they pair with ResNet-34 features), got [${r.dims}]`,
    );
  }
  for (const d of r.depths) {
    if (!Number.isInteger(d) || d < 2 || (d % 3 !== 0 && d % 2 !== 0)) {
      throw new Error(`MambaADConfig: every depth must be a multiple of 3 or 2, got [${r.depths}]`);
    }
  }
  if (!(r.dropPathRate >= 0 && r.dropPathRate < 1)) {
    throw new Error(`MambaADConfig: dropPathRate must be in [0, 1), got ${r.dropPathRate}`);
  }
  return r;
}

/**
 * The resolved configuration of a preset name of {@linkcode MAMBAAD_PRESETS} (default "mambaad", the official one)
 * or of a config, with `overrides` on top.
 */
export function mambaADConfig(
  c: string | MambaADConfig = "mambaad",
  overrides: MambaADConfig = {},
): ResolvedMambaADConfig {
  if (typeof c === "string" && !Object.hasOwn(MAMBAAD_PRESETS, c)) {
    throw new Error(
      `mambaADConfig: unknown preset "${c}" (expected one of ${Object.keys(MAMBAAD_PRESETS).join(", ")})`,
    );
  }
  return resolveMambaADConfig({ ...(typeof c === "string" ? MAMBAAD_PRESETS[c] : c), ...overrides });
}

/** Named configurations: the official one, and a small-image variant for smoke tests and quick runs. */
export const MAMBAAD_PRESETS: Readonly<Record<string, MambaADConfig>> = {
  /** The official MVTec-AD / VisA configuration (docs/paper.md §1.3, §1.11). */
  mambaad: {},
  /** Same network at 128×128 (scan sizes 4, 8, 16, 32). */
  "mambaad-128": { imageSize: 128 },
};
