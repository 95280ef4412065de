/**
 * Wave-MambaAD's configuration (docs/paper.md §3): sizes, the official code's quirks as named switches (docs/paper.md §5.6;
 * every default reproduces the official `model/Wave-MambaAD.py`), the paper-text variant and the Table 3 ablations
 * (docs/paper.md §3.9) as presets.
 *
 * @module
 */

import { hfssScanOrders, type HfssScanSet } from "../../nn/ssm/scan_order.ts";
import type { HfssDecode } from "../../nn/ssm/ss2d.ts";

/** HFSS per-band scan directions (Eq. 5): official = [horizontal, vertical, diagonal] for [HL, LH, HH]. */
export type WaveHfssScans = HfssScanSet;

/** The configuration of {@linkcode WaveMambaAD}. */
export interface WaveMambaADConfig {
  /** Input image size S (default 256). The LL sub-band widths of the 4 stages are h = S/64 · 2^i (4, 8, 16, 32). */
  imageSize: number;
  /** Decoder widths per stage (default [512, 256, 128, 64]). */
  dims: readonly number[];
  /** Decoder depths (default [1, 2, 2, 2]); see `depthSemantics`. */
  depths: readonly number[];
  /** LFSS heads per stage (default [16, 8, 4, 2]: 32 channels per head; the paper's groups [2, 4, 8, 16] reversed). */
  numHeads: readonly number[];
  /** SSM state size N (default 16). */
  dState: number;
  /** Stochastic depth: linspace(0, rate, Σ depths) reversed, one rate per ConvBNSSMBlock (default 0.2, §3.1). */
  dropPathRate: number;
  /**
   * "squared" (official; docs/paper.md, decision 2): stage i holds depths[i] ConvBNSSMBlocks of depths[i] blocks each (1, 4, 4, 4
   * → 22.3 M parameters); "linear": one ConvBNSSMBlock of depths[i] blocks (the paper figure's ×1, ×2, ×2, ×2).
   */
  depthSemantics: "squared" | "linear";
  /** HFSS decoding (§3.4): "official" leaves LH′/HH′ in scan order; "inverse" folds every band back (paper text). */
  hfssDecode: HfssDecode;
  /** ChannelMamba: SiLU after its conv as Mamba does (official false, docs/paper.md §3.5 step 2). */
  cmambaSiluAfterConv: boolean;
  /** ChannelMamba backward branch delta bias: "forward" reuses dt_proj.bias (official), "own" uses dt_proj_b.bias. */
  cmambaBackwardDtBias: "forward" | "own";
  /** LFSS: one set of channel-Mamba weights for all heads (official true, §5.6); false: per-head weights. */
  lfssSharedHeads: boolean;
  /** HFSS: one set of scan parameters for HL, LH and HH (official true, §5.6); false: one per band (K = 6). */
  hfssSharedBands: boolean;
  /** ChannelMamba: gate SiLU(z) inside the scans as well as after the norms (official true: double gating). */
  cmambaGateInsideScan: boolean;
  /** ChannelMamba: backward dt, B, C from the flipped sequence (official false: from the unflipped x). */
  cmambaBackwardFromFlipped: boolean;
  /**
   * ChannelMamba Linear init (docs/paper.md §3.5 step 6): "official" = MambaUPNet's trunc_normal(0.02) and zero biases
   * overwrite everything (softplus(dt bias) = 0.693); "mamba" = Mamba's own init (dt_proj U(±R^-½), inverse-softplus
   * log-uniform dt bias in [1e-3, 0.1], PyTorch defaults for in_proj/x_proj).
   */
  cmambaInit: "official" | "mamba";
  /** Register the dead 1×1 3C → C conv of every block (official true: counted in the 22.3 M, never called). */
  unusedConv: boolean;
  /** Register the official scan-index tables (`scans_h/v/d.index_flat[_inv]`, counted by fvcore; default true). */
  scanTables: boolean;
  /** Ablation "WM→HSS": MambaAD's HSS block (8 Hilbert directions) instead of the Wavelet-Mamba block. */
  block: "wavelet" | "hss";
  /** Ablation "w/o HFSS": false passes HL, LH, HH through unchanged. */
  hfss: boolean;
  /** Ablation "w/o LFSS": false passes LL through unchanged. */
  lfss: boolean;
  /** Ablation "LFSS spatial-wise": "channel" (official Bi-CSSM over channels) or "spatial" (a spatial SS2D on LL). */
  lfssMode: "channel" | "spatial";
  /** Ablation "DSE→MLP": "dse" (official FeedForward, Eq. 8) or "mlp" (Linear C→4C, GELU, Linear 4C→C). */
  ffn: "dse" | "mlp";
  /**
   * HFSS scan directions per band [HL, LH, HH]: a Table 3 preset name, or three official `scan_type` strings
   * ("horizontal", "vertical", "diagonal", "hilbert", "scan", "zigzag", "sweep") to explore new variants, e.g.
   * `["horizontal", "vertical", "hilbert"]` (JSON-friendly, so `train --model-config` can set it).
   */
  hfssScans: WaveHfssScans | readonly [string, string, string];
}

/** The official configuration (every quirk of the official code kept). */
export const WAVE_DEFAULT_CONFIG: Readonly<WaveMambaADConfig> = Object.freeze({
  imageSize: 256,
  dims: [512, 256, 128, 64],
  depths: [1, 2, 2, 2],
  numHeads: [16, 8, 4, 2],
  dState: 16,
  dropPathRate: 0.2,
  depthSemantics: "squared",
  hfssDecode: "official",
  cmambaSiluAfterConv: false,
  cmambaBackwardDtBias: "forward",
  cmambaGateInsideScan: true,
  cmambaBackwardFromFlipped: false,
  cmambaInit: "official",
  unusedConv: true,
  scanTables: true,
  block: "wavelet",
  hfss: true,
  lfss: true,
  lfssMode: "channel",
  ffn: "dse",
  hfssScans: "official",
  lfssSharedHeads: true,
  hfssSharedBands: true,
} as WaveMambaADConfig);

/** Names of {@linkcode WAVE_PRESETS}. */
export type WavePresetName =
  | "official"
  | "paper"
  | "wm_to_hss"
  | "no_hfss"
  | "no_lfss"
  | "dse_to_mlp"
  | "hfss_horizontal"
  | "hfss_vertical"
  | "hfss_no_diagonal"
  | "lfss_spatial";

/** Presets: overrides of {@linkcode WAVE_DEFAULT_CONFIG}. */
export const WAVE_PRESETS: Readonly<Record<WavePresetName, Readonly<Partial<WaveMambaADConfig>>>> = {
  /** The official code, quirks included (the published numbers; 22,293,250 parameters fvcore-style). */
  official: {},
  /**
   * The paper's text where it differs from the code: HFSS bands folded back, Mamba-style channel Mamba (SiLU after
   * the conv, own backward dt bias, single gating, backward projections from the flipped sequence, Mamba init), no
   * dead conv. Depth stays squared: the paper's own 22.3 M count needs it (docs/paper.md §3.8).
   */
  paper: {
    hfssDecode: "inverse",
    cmambaSiluAfterConv: true,
    cmambaBackwardDtBias: "own",
    cmambaGateInsideScan: false,
    cmambaBackwardFromFlipped: true,
    cmambaInit: "mamba",
    unusedConv: false,
  },
  /** Table 3 "WM→HSS" (mAD 84.2): MambaAD's HSS block replaces the Wavelet-Mamba block. */
  wm_to_hss: { block: "hss" },
  /** Table 3 "w/o HFSS" (84.2): the high-frequency bands skip HFSS. */
  no_hfss: { hfss: false },
  /** Table 3 "w/o LFSS" (84.6): the LL band skips LFSS. */
  no_lfss: { lfss: false },
  /** Table 3 "DSE→MLP" (84.9): a plain MLP (ratio 4, GELU) replaces DSE. */
  dse_to_mlp: { ffn: "mlp" },
  /** Table 3 "HFSS horizontal-only" (85.0): every band scanned row-major. */
  hfss_horizontal: { hfssScans: "horizontal" },
  /** Table 3 "HFSS vertical-only" (85.3): every band scanned column-major. */
  hfss_vertical: { hfssScans: "vertical" },
  /** Table 3 "HFSS without the diagonal scan" (85.5): HH scanned row-major. */
  hfss_no_diagonal: { hfssScans: "noDiagonal" },
  /** Table 3 "LFSS spatial-wise" (84.9): a spatial selective scan on LL instead of the channel Mamba. */
  lfss_spatial: { lfssMode: "spatial" },
};

/** The full configuration of a preset name or of overrides of the official one; checks the stage lists. */
export function waveConfig(
  c: WavePresetName | Partial<WaveMambaADConfig> = "official",
  overrides: Partial<WaveMambaADConfig> = {},
): WaveMambaADConfig {
  let base: Partial<WaveMambaADConfig>;
  if (typeof c === "string") {
    if (!(c in WAVE_PRESETS)) {
      throw new Error(`waveConfig: unknown preset "${c}" (expected one of ${Object.keys(WAVE_PRESETS).join(", ")})`);
    }
    base = WAVE_PRESETS[c];
  } else base = c;
  const cfg = { ...WAVE_DEFAULT_CONFIG, ...base, ...overrides } as WaveMambaADConfig;
  const n = cfg.dims.length;
  if (cfg.depths.length !== n || cfg.numHeads.length !== n) {
    throw new Error(`waveConfig: dims, depths and numHeads must have one entry per stage, got ${n}`);
  }
  if (!Number.isInteger(cfg.imageSize) || cfg.imageSize % 64 !== 0 || cfg.imageSize < 64) {
    throw new Error(
      `waveConfig: imageSize must be a multiple of 64 (the LL band is S/64 at stage 0), got ${cfg.imageSize}`,
    );
  }
  if (typeof cfg.hfssScans === "string") {
    if (!Object.hasOwn(hfssScanOrders, cfg.hfssScans)) {
      throw new Error(
        `waveConfig: hfssScans must be ${
          Object.keys(hfssScanOrders).join(", ")
        } or 3 scan types, got "${cfg.hfssScans}"`,
      );
    }
  } else if (!Array.isArray(cfg.hfssScans) || cfg.hfssScans.length !== 3) {
    throw new Error(
      `waveConfig: hfssScans needs one scan type per band [HL, LH, HH], got ${JSON.stringify(cfg.hfssScans)}`,
    );
  }
  return cfg;
}
