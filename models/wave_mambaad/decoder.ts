/**
 * Wave-MambaAD's decoder `MambaUPNet` (docs/paper.md §3.1): four `VSSLayer_up` stages of `ConvBNSSMBlock`s, each a
 * chain of Wavelet-Mamba blocks (Eq. 4 and 8), with PatchExpand2D before stages 1..3. Module tree and state-dict
 * keys as the official code (`layers_up.3.blocks.0.smm_blocks.0.D_SSM.in_proj.weight`, `layers_up.1.upsample.*`).
 * The Table 3 ablations (docs/paper.md §3.9) are block variants selected by {@linkcode WaveMambaADConfig}.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { add, concat, gelu, permute, split } from "../../autodiff/ops/index.ts";
import { globalGenerator } from "../../autodiff/random.ts";
import { noGrad, type Tensor, tidy } from "../../autodiff/tensor.ts";
import { tensor } from "../../autodiff/ops/index.ts";
import { Conv2d } from "../../nn/layers/conv.ts";
import { Linear } from "../../nn/layers/linear.ts";
import { LayerNorm } from "../../nn/layers/norm.ts";
import { Module } from "../../nn/module.ts";
import { normal, ones, truncNormal, uniform, zeros } from "../../nn/init.ts";
import { ChannelMamba } from "../../nn/ssm/channel_mamba.ts";
import { vmambaDirections } from "../../nn/ssm/scan_order.ts";
import { SS2D } from "../../nn/ssm/ss2d.ts";
import { HSSBlock } from "../mambaad/hss.ts";
import { PatchExpand2D } from "../common/patch_expand.ts";
import type { WaveMambaADConfig } from "./config.ts";
import { hfssScanOrders } from "./hfss.ts";
import { scanOrderForType } from "../../nn/ssm/scan_order.ts";
import { VSSBlock } from "./wdss.ts";
import { dwt, iwt } from "../../nn/wavelet/haar.ts";

/** Ablation "DSE→MLP": channels-first (B, C, H, W) → fc1 (C → 4C) → GELU → fc2 (4C → C), per pixel, with biases. */
export class WaveMlp extends Module {
  /** C → 4C. */
  fc1: Linear;
  /** 4C → C. */
  fc2: Linear;

  /** An MLP of width `dim` and ratio 4 (the VMamba/ViT default; the paper does not give its MLP). */
  constructor(dim: number, device?: Device) {
    super();
    this.fc1 = new Linear(dim, 4 * dim, { device });
    this.fc2 = new Linear(4 * dim, dim, { device });
  }

  /** x (B, C, H, W) → (B, C, H, W). */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const y = this.fc2.forward(gelu(this.fc1.forward(permute(x, [0, 2, 3, 1]))));
      return permute(y, [0, 3, 1, 2]);
    });
  }
}

/** Ablation "LFSS spatial-wise": LL′ = LL + SS2D(LL) with VMamba's 4 spatial cross-scan directions. */
export class SpatialLFSS extends Module {
  /** The spatial selective scan (keys `ss2d.*`). */
  ss2d: SS2D;

  /** A spatial LFSS for `dim` channels. */
  constructor(dim: number, dState: number, device?: Device) {
    super();
    this.ss2d = new SS2D(dim, { dState, directions: vmambaDirections(), size: null, device });
  }

  /** LL (B, C, h, w) → (B, C, h, w). */
  forward(ll: Tensor): Tensor {
    return tidy(() => {
      return add(ll, permute(this.ss2d.forward(permute(ll, [0, 2, 3, 1])), [0, 3, 1, 2]));
    });
  }
}

/** Options of {@linkcode WaveBlock}. */
export interface WaveBlockOptions {
  /** Feature height = width H of the block (sub-band h = H/2). */
  size: number;
  /** LFSS heads. */
  numHeads: number;
  /** Stochastic depth of the wavelet branch. */
  dropPath: number;
  /** Device of the parameters. */
  device?: Device;
}

/** Options of {@linkcode ConvBNSSMBlock}: per-block drop-path rates instead of one. */
export interface ConvBNSSMBlockOptions extends Omit<WaveBlockOptions, "dropPath"> {
  /** Drop-path rate of each block (its length is the block count). */
  dropPaths: readonly number[];
}

/**
 * The official Wavelet-Mamba block ({@linkcode VSSBlock}, Eq. 4 and 8) with the config's switches: HFSS decoding
 * and scan directions, the ChannelMamba quirks, the dead conv, and the ablations w/o HFSS (bands pass through),
 * w/o LFSS (LL passes through), LFSS spatial-wise and DSE→MLP. With the official config it is exactly VSSBlock.
 */
export class WaveBlock extends VSSBlock {
  readonly #plain: boolean;

  /** A block of width `dim` under config `cfg`. */
  constructor(dim: number, cfg: WaveMambaADConfig, opts: WaveBlockOptions) {
    const h = opts.size / 2, device = opts.device;
    super(dim, {
      h,
      numHeads: opts.numHeads,
      dropPath: opts.dropPath,
      dState: cfg.dState,
      size: cfg.scanTables ? h : null,
      decode: cfg.hfssDecode,
      hfssOrders: typeof cfg.hfssScans === "string"
        ? hfssScanOrders[cfg.hfssScans]
        : cfg.hfssScans.map(scanOrderForType),
      mamba: {
        siluAfterConv: cfg.cmambaSiluAfterConv,
        backwardDtBias: cfg.cmambaBackwardDtBias,
        gateInsideScan: cfg.cmambaGateInsideScan,
        backwardFromFlipped: cfg.cmambaBackwardFromFlipped,
      },
      lfssSharedHeads: cfg.lfssSharedHeads,
      hfssSharedBands: cfg.hfssSharedBands,
      device,
    });
    // the ablations replace or drop sub-modules in place (keys keep the official order)
    const self = this as unknown as Record<string, Module | null>;
    if (!cfg.hfss) {
      this.D_SSM.dispose();
      self.D_SSM = null;
    }
    if (!cfg.lfss || cfg.lfssMode === "spatial") {
      this.CMamba.dispose();
      self.CMamba = cfg.lfss ? new SpatialLFSS(dim, cfg.dState, device) : null;
    }
    if (cfg.ffn === "mlp") {
      this.mlp.dispose();
      self.mlp = new WaveMlp(dim, device);
    }
    if (!cfg.unusedConv) {
      this.conv.dispose();
      self.conv = null;
    }
    this.#plain = cfg.hfss && cfg.lfss && cfg.lfssMode === "channel";
  }

  /** x (B, H, W, C) → (B, H, W, C) (Eq. 4 and 8). */
  override forward(x: Tensor): Tensor {
    return tidy(() => {
      if (this.#plain) return super.forward(x);
      const self = this as unknown as Record<string, { forward(t: Tensor): Tensor } | null>;
      const b = x.shape[0];
      const bands = dwt(permute(this.ln_1.forward(x), [0, 3, 1, 2])); // [LL; HL; LH; HH]
      const [ll, high] = split(bands, [b, 3 * b], 0);
      const lfss = self.CMamba, hfss = self.D_SSM;
      const llOut = lfss ? lfss.forward(ll) : ll;
      const highOut = hfss ? permute(hfss.forward(permute(high, [0, 2, 3, 1])), [0, 3, 1, 2]) : high;
      const wav = permute(iwt(concat([llOut, highOut], 0)), [0, 2, 3, 1]);
      const y1 = add(x, this.drop_path.forward(wav));
      const ffn = permute(this.mlp.forward(permute(this.ln_2.forward(y1), [0, 3, 1, 2])), [0, 2, 3, 1]);
      return add(ffn, y1);
    });
  }
}

/**
 * The official `ConvBNSSMBlock`: a plain chain of blocks (no conv branch, no extra residual, §3.1). Its init gives
 * every Conv2d inside N(0, √(2/fan_out)), fan_out = k·k·out/groups, and bias 0.
 */
export class ConvBNSSMBlock extends Module {
  /** The blocks (keys `smm_blocks.j.*`). */
  smm_blocks: (WaveBlock | HSSBlock)[];

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
        : new WaveBlock(dim, cfg, { ...opts, dropPath })
    );
    for (const m of this.modules()) {
      if (!(m instanceof Conv2d)) continue;
      const [out, , kh, kw] = m.weight.shape;
      normal(m.weight, 0, Math.sqrt(2 / ((kh * kw * out) / m.groups)));
      if (m.bias) zeros(m.bias);
    }
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

/** reversed(linspace(0, rate, n)) as plain numbers (torch.linspace then [::-1], docs/paper.md §3.1). */
export function dropPathSchedule(rate: number, n: number): number[] {
  const out = Array.from({ length: n }, (_, i) => (n === 1 ? 0 : (rate * i) / (n - 1)));
  return out.reverse();
}

/**
 * The Wave-MambaAD decoder (docs/paper.md §3.1). Input: the MFF_OCE embedding (B, 512, S/32, S/32); output: the stage
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
export class MambaUPNet extends Module {
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
    const skip = new Set<Module>();
    const mambas: ChannelMamba[] = [];
    for (const m of this.modules()) {
      if (!(m instanceof ChannelMamba)) continue;
      mambas.push(m);
      if (cfg.cmambaInit === "mamba") { for (const s of m.modules()) skip.add(s); }
    }
    for (const m of this.modules()) {
      if (skip.has(m)) continue;
      if (m instanceof Linear) {
        truncNormal(m.weight, { std: 0.02 });
        if (m.bias) zeros(m.bias);
      } else if (m instanceof LayerNorm) {
        if (m.weight) ones(m.weight);
        if (m.bias) zeros(m.bias);
      }
    }
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
      const v = new Float32Array(p.bias.size);
      for (let i = 0; i < v.length; i++) {
        const dt = Math.max(
          Math.exp(globalGenerator.uniform() * (Math.log(0.1) - Math.log(0.001)) + Math.log(0.001)),
          1e-4,
        );
        v[i] = dt + Math.log(-Math.expm1(-dt));
      }
      const t = tensor(v, { shape: p.bias.shape, device: p.bias.device });
      p.bias.assign(t);
      t.dispose();
    }
  });
}
