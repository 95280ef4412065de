/**
 * Wave-MambaAD's decoder `MambaUPNet` (docs/paper.md §3.1): four `VSSLayer_up` stages of `ConvBNSSMBlock`s, each a
 * chain of Wavelet-Mamba blocks (Eq. 4 and 8), with PatchExpand2D before stages 1..3. Module tree and state-dict
 * keys as the official code (`layers_up.3.blocks.0.smm_blocks.0.D_SSM.in_proj.weight`, `layers_up.1.upsample.*`).
 * The Table 3 ablations (docs/paper.md §3.9) are block variants selected by {@linkcode WaveMambaADConfig}.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { permute } from "../../autodiff/ops/index.ts";
import { noGrad, type Tensor } from "../../autodiff/tensor.ts";
import { tensor } from "../../autodiff/ops/index.ts";
import { Module } from "../../nn/module.ts";
import { uniform } from "../../nn/init.ts";
import { ChannelMamba } from "../../nn/ssm/channel_mamba.ts";
import { convFanOutInit, dtBiasInit } from "../../nn/ssm/init.ts";
import { hfssScanOrders, scanOrderForType } from "../../nn/ssm/scan_order.ts";
import { HSSBlock } from "../mambaad/hss.ts";
import { dropPathSchedule, mambaUPNetInit } from "../common/decoder.ts";
import { PatchExpand2D } from "../common/patch_expand.ts";
import type { WaveMambaADConfig } from "./config.ts";
import { type AnyVSSBlock, VSSBlock, type VSSBlockOptions } from "./wdss.ts";

export { dropPathSchedule };

/** Options of {@linkcode ConvBNSSMBlock}. */
export interface ConvBNSSMBlockOptions {
  /** Feature height = width H of the blocks (sub-band h = H/2). */
  size: number;
  /** LFSS heads. */
  numHeads: number;
  /** Drop-path rate of each block (its length is the block count). */
  dropPaths: readonly number[];
  /** Device of the parameters. */
  device?: Device;
}

/**
 * The {@linkcode VSSBlock} options of config `cfg` for blocks of size `size` (sub-band h = size/2): the HFSS decoding
 * and scan directions, the ChannelMamba quirks, the dead conv, and the ablations w/o HFSS, w/o LFSS, LFSS
 * spatial-wise and DSE→MLP. With the official config this is the official block.
 */
export function waveBlockOptions(
  cfg: WaveMambaADConfig,
  size: number,
  numHeads: number,
  dropPath: number,
  device?: Device,
): VSSBlockOptions {
  const h = size / 2;
  return {
    h,
    numHeads,
    dropPath,
    dState: cfg.dState,
    size: cfg.scanTables ? h : null,
    decode: cfg.hfssDecode,
    hfssOrders: typeof cfg.hfssScans === "string" ? hfssScanOrders[cfg.hfssScans] : cfg.hfssScans.map(scanOrderForType),
    mamba: {
      siluAfterConv: cfg.cmambaSiluAfterConv,
      backwardDtBias: cfg.cmambaBackwardDtBias,
      gateInsideScan: cfg.cmambaGateInsideScan,
      backwardFromFlipped: cfg.cmambaBackwardFromFlipped,
    },
    lfssSharedHeads: cfg.lfssSharedHeads,
    hfssSharedBands: cfg.hfssSharedBands,
    hfss: cfg.hfss,
    lfss: cfg.lfss ? cfg.lfssMode : false,
    ffn: cfg.ffn,
    unusedConv: cfg.unusedConv,
    device,
  };
}

/**
 * The official `ConvBNSSMBlock`: a plain chain of blocks (no conv branch, no extra residual, §3.1). Its init gives
 * every Conv2d inside N(0, √(2/fan_out)), fan_out = k·k·out/groups, and bias 0.
 */
export class ConvBNSSMBlock extends Module {
  /** The blocks (keys `smm_blocks.j.*`). */
  smm_blocks: (AnyVSSBlock | HSSBlock)[];

  /** Blocks of width `dim`, one per entry of `opts.dropPaths`. */
  constructor(dim: number, cfg: WaveMambaADConfig, opts: ConvBNSSMBlockOptions) {
    super();
    this.smm_blocks = opts.dropPaths.map((dropPath) =>
      cfg.block === "hss"
        ? new HSSBlock(dim, {
          dropPath,
          dState: cfg.dState,
          size: cfg.scanTables ? opts.size : null,
          device: opts.device,
        })
        : new VSSBlock(dim, waveBlockOptions(cfg, opts.size, opts.numHeads, dropPath, opts.device))
    );
    convFanOutInit(this);
  }

  /** x (B, H, W, C) → (B, H, W, C). */
  forward(x: Tensor): Tensor {
    return this.smm_blocks.reduce((h, blk) => blk.forward(h), x);
  }
}

/** The official `VSSLayer_up`: optional PatchExpand2D, then the ConvBNSSMBlocks (keys `blocks.i.*`, `upsample.*`). */
export class VSSLayerUp extends Module {
  /** The ConvBNSSMBlocks. */
  blocks: ConvBNSSMBlock[];
  /** 2× upsampling before the blocks (null at stage 0). */
  upsample: PatchExpand2D | null;

  /** A stage from its ConvBNSSMBlocks and optional upsampler. */
  constructor(blocks: ConvBNSSMBlock[], upsample: PatchExpand2D | null) {
    super();
    this.blocks = blocks;
    this.upsample = upsample;
  }

  /** x (B, H, W, 2C) (or (B, H, W, C) at stage 0) → (B, H′, W′, C). */
  forward(x: Tensor): Tensor {
    const h = this.upsample ? this.upsample.forward(x) : x;
    return this.blocks.reduce((t, blk) => blk.forward(t), h);
  }
}

/**
 * The Wave-MambaAD decoder, the official `MambaUPNet` of Wave-MambaAD (docs/paper.md §3.1). Input: the MFF_OCE embedding (B, 512, S/32, S/32); output: the stage
 * 1, 2, 3 results channels-first, finest first ([64×S/4², 128×S/8², 256×S/16²]), paired with the encoder's f1..f3.
 *
 * Stage i (C = dims[i], H = S/32·2^i): depths[i] ConvBNSSMBlocks of depths[i] blocks each ("squared", official) or
 * one ConvBNSSMBlock of depths[i] blocks ("linear"). ConvBNSSMBlock j of stage i has drop-path rate
 * dpr[Σ depths[:i] + j], dpr = reversed(linspace(0, 0.2, Σ depths)) = 0.2 | 0.167, 0.133 | 0.1, 0.067 | 0.033, 0.
 *
 * Init: the ConvBNSSMBlock conv init, then `MambaUPNet._init_weights`: every Linear trunc_normal(0.02), bias 0 —
 * ChannelMamba's Linears included, which zeroes its dt biases (§3.5 caveat; `cmambaInit: "mamba"` keeps Mamba's
 * dt init instead) — and every LayerNorm weight 1, bias 0.
 */
export class WaveMambaADDecoder extends Module {
  /** The four stages (keys `layers_up.i.*`). */
  layers_up: VSSLayerUp[];

  /** The decoder of config `cfg`. */
  constructor(cfg: WaveMambaADConfig, device?: Device) {
    super();
    const total = cfg.depths.reduce((a, b) => a + b, 0);
    const dpr = dropPathSchedule(cfg.dropPathRate, total);
    let offset = 0;
    this.layers_up = cfg.dims.map((dim, i) => {
      const depth = cfg.depths[i], size = (cfg.imageSize / 32) * 2 ** i;
      const slice = dpr.slice(offset, offset + depth);
      const common = { size, numHeads: cfg.numHeads[i], device };
      // squared: ConvBNSSMBlock j holds `depth` blocks sharing rate slice[j]; linear: one chain, block j gets slice[j]
      const blocks = cfg.depthSemantics === "squared"
        ? slice.map((r) => new ConvBNSSMBlock(dim, cfg, { ...common, dropPaths: Array(depth).fill(r) }))
        : [new ConvBNSSMBlock(dim, cfg, { ...common, dropPaths: slice })];
      offset += depth;
      return new VSSLayerUp(blocks, i === 0 ? null : new PatchExpand2D(dim, { device }));
    });
    this.#initWeights(cfg);
  }

  #initWeights(cfg: WaveMambaADConfig): void {
    const mambas = this.modules().filter((m) => m instanceof ChannelMamba);
    const skip = new Set<Module>(cfg.cmambaInit === "mamba" ? mambas.flatMap((m) => m.modules()) : []);
    mambaUPNetInit(this, (m) => skip.has(m));
    if (cfg.cmambaInit === "mamba") { for (const m of mambas) mambaDtInit(m); }
  }

  /** The MFF_OCE embedding (B, C0, s, s) → [finest, middle, coarsest] channels-first. */
  forward(x: Tensor): Tensor[] {
    let h = permute(x, [0, 2, 3, 1]);
    const outs: Tensor[] = [];
    this.layers_up.forEach((layer, i) => {
      h = layer.forward(h);
      if (i > 0) outs.push(permute(h, [0, 3, 1, 2]));
    });
    return outs.reverse();
  }
}

/**
 * Mamba's own dt init for a ChannelMamba (`cmambaInit: "mamba"`): dt_proj(_b).weight ~ U(±R^-½); bias = dt +
 * ln(−expm1(−dt)) with dt = exp(U(0,1)·(ln 0.1 − ln 0.001) + ln 0.001) clamped to ≥ 1e-4 (docs/paper.md §1.8).
 */
function mambaDtInit(m: ChannelMamba): void {
  noGrad(() => {
    for (const p of [m.dt_proj, m.dt_proj_b]) {
      const r = m.dtRank ** -0.5;
      uniform(p.weight, -r, r);
      if (!p.bias) continue;
      const t = tensor(dtBiasInit(p.bias.size), { shape: p.bias.shape, device: p.bias.device });
      p.bias.assign(t);
      t.dispose();
    }
  });
}
