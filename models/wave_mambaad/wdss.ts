/**
 * Wave-MambaAD's Wavelet-Mamba block (WDSS, Eq. 4 and 8, docs/paper.md §3.3): the official `VSSBlock`, and the
 * sub-modules the Table 3 ablations (docs/paper.md §3.9) put in or leave out of it. Channels-last (B, H, W, C) →
 * (B, H, W, C).
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { add, concat, gelu, permute, split } from "../../autodiff/ops/index.ts";
import { type Tensor, tidy } from "../../autodiff/tensor.ts";
import { Conv2d } from "../../nn/layers/conv.ts";
import { DropPath } from "../../nn/layers/dropout.ts";
import { Linear } from "../../nn/layers/linear.ts";
import { LayerNorm } from "../../nn/layers/norm.ts";
import { Module } from "../../nn/module.ts";
import type { ChannelMambaOptions } from "../../nn/ssm/channel_mamba.ts";
import { type ScanOrder, vmambaDirections } from "../../nn/ssm/scan_order.ts";
import { type HfssDecode, SS2D } from "../../nn/ssm/ss2d.ts";
import { dwt, iwt } from "../../nn/wavelet/haar.ts";
import { FeedForward } from "./dse.ts";
import { HFSS } from "./hfss.ts";
import { ChannelFreqAdapt } from "./lfss.ts";

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

/** Options of {@linkcode VSSBlock}. */
export interface VSSBlockOptions {
  /** Sub-band height h = H/2 (required by LFSS's channel Mambas). */
  h: number;
  /** Sub-band width w = W/2 (default h). */
  w?: number;
  /** LFSS heads (channel groups; the model uses 16/8/4/2 for C = 512/256/128/64). */
  numHeads: number;
  /** Stochastic-depth rate of the wavelet branch (default 0). */
  dropPath?: number;
  /** HFSS state size (default 16). */
  dState?: number;
  /** HFSS scan-table size (default h; null registers no tables). */
  size?: number | null;
  /** HFSS decoding: "official" (default) or "inverse" (see {@linkcode HFSS}). */
  decode?: HfssDecode;
  /** HFSS per-band scan orders [HL, LH, HH] (default: horizontal, vertical, diagonal). */
  hfssOrders?: readonly ScanOrder[];
  /** LFSS channel-Mamba options (official quirks by default). */
  mamba?: Omit<ChannelMambaOptions, "device">;
  /** LFSS weights shared by all heads (official true). */
  lfssSharedHeads?: boolean;
  /** HFSS scan parameters shared by the three bands (official true). */
  hfssSharedBands?: boolean;
  /** DSE hidden factor (default 2.66). */
  expansion?: number;
  /** HFSS on the high-frequency bands (official true); false: ablation "w/o HFSS", the bands pass through. */
  hfss?: boolean;
  /**
   * The LL branch: "channel" (official, LFSS's channel Mambas, Eq. 6-7), "spatial" (ablation "LFSS spatial-wise",
   * {@linkcode SpatialLFSS}) or false (ablation "w/o LFSS", LL passes through).
   */
  lfss?: "channel" | "spatial" | false;
  /** The feed-forward of Eq. 8: "dse" (official {@linkcode FeedForward}) or "mlp" (ablation "DSE→MLP", {@linkcode WaveMlp}). */
  ffn?: "dse" | "mlp";
  /** Register the official block's unused 1×1 3C → C conv (official true). */
  unusedConv?: boolean;
  /** LayerNorm eps (default 1e-5: the model passes nn.LayerNorm). */
  eps?: number;
  /** Device of the parameters. */
  device?: Device;
}

/**
 * The Wavelet-Mamba block, official by default; the ablation options swap or leave out its sub-modules (an absent
 * one is null and has no state-dict keys; the others keep the official keys and order):
 * - Eq. 4: Y = LN_1(X) → DWT → [LL, HL, LH, HH]; LL′ = LFSS(LL) (Eq. 6-7); [HL′; LH′; HH′] = HFSS([HL; LH; HH])
 *   (Eq. 5, one module with shared weights); W = IWT([LL′; HL′; LH′; HH′]); Y1 = X + DropPath(W).
 * - Eq. 8: Y2 = DSE(LN_2(Y1)) + Y1.
 *
 * Official state-dict names: `ln_1`, `D_SSM` (HFSS), `CMamba` (LFSS), `ln_2`, `mlp` (DSE) and `conv`, a 1×1
 * 3C → C conv with bias that the official forward never uses; it is registered so that checkpoints load and the
 * parameter count matches the paper (106,868 for C = 64, h = w = 32, 2 heads, without scan tables).
 *
 * The type parameters only type the swappable fields: `new VSSBlock(c, opts)` is typed as the official block, and
 * {@linkcode AnyVSSBlock} is a block built with any ablation options (what the decoder holds).
 *
 * @typeParam H HFSS, or null without it.
 * @typeParam L The LL branch: LFSS, its spatial ablation, or null.
 * @typeParam F DSE or the ablation's MLP.
 * @typeParam C The unused conv, or null when not registered.
 */
export class VSSBlock<
  H extends HFSS | null = HFSS,
  L extends ChannelFreqAdapt | SpatialLFSS | null = ChannelFreqAdapt,
  F extends FeedForward | WaveMlp = FeedForward,
  C extends Conv2d | null = Conv2d,
> extends Module {
  /** Channels C. */
  readonly hiddenDim: number;
  /** LayerNorm before the wavelet branch. */
  ln_1: LayerNorm;
  /** LayerNorm before DSE. */
  ln_2: LayerNorm;
  /** HFSS on the high-frequency bands (null: the bands pass through). */
  D_SSM: H;
  /** LFSS on the LL band, or its spatial ablation (null: LL passes through). */
  CMamba: L;
  /** Stochastic depth of the wavelet branch. */
  drop_path: DropPath;
  /** DSE, or the MLP of the ablation. */
  mlp: F;
  /** Unused 1×1 conv 3C → C (official, never called; null when not registered). */
  conv: C;

  /** A Wavelet-Mamba block for `hiddenDim` channels. */
  constructor(hiddenDim: number, opts: VSSBlockOptions) {
    super();
    const device = opts.device, eps = opts.eps ?? 1e-5, w = opts.w ?? opts.h;
    this.hiddenDim = hiddenDim;
    this.ln_1 = new LayerNorm(hiddenDim, { eps, device });
    this.ln_2 = new LayerNorm(hiddenDim, { eps, device });
    const dState = opts.dState ?? 16, lfss = opts.lfss ?? "channel";
    this.D_SSM = ((opts.hfss ?? true)
      ? new HFSS(hiddenDim, {
        dState,
        size: opts.size === undefined ? opts.h : opts.size,
        decode: opts.decode,
        orders: opts.hfssOrders,
        sharedBands: opts.hfssSharedBands,
        device,
      })
      : null) as H;
    this.CMamba = (lfss === "channel"
      ? new ChannelFreqAdapt(hiddenDim, opts.h, w, opts.numHeads, {
        mamba: opts.mamba,
        sharedHeads: opts.lfssSharedHeads,
        device,
      })
      : lfss === "spatial"
      ? new SpatialLFSS(hiddenDim, dState, device)
      : null) as L;
    this.drop_path = new DropPath(opts.dropPath ?? 0);
    this.mlp =
      (opts.ffn === "mlp"
        ? new WaveMlp(hiddenDim, device)
        : new FeedForward(hiddenDim, { expansion: opts.expansion, device })) as F;
    this.conv = ((opts.unusedConv ?? true) ? new Conv2d(3 * hiddenDim, hiddenDim, 1, { device }) : null) as C;
  }

  /** x (B, H, W, C) → (B, H, W, C). */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const b = x.shape[0];
      const bands = dwt(permute(this.ln_1.forward(x), [0, 3, 1, 2])); // (4B, C, h, w) = [LL; HL; LH; HH]
      const [ll, high] = split(bands, [b, 3 * b], 0);
      const llOut = this.CMamba ? this.CMamba.forward(ll) : ll;
      const highOut = this.D_SSM ? permute(this.D_SSM.forward(permute(high, [0, 2, 3, 1])), [0, 3, 1, 2]) : high;
      const wav = permute(iwt(concat([llOut, highOut], 0)), [0, 2, 3, 1]);
      const y1 = add(x, this.drop_path.forward(wav));
      const dse = permute(this.mlp.forward(permute(this.ln_2.forward(y1), [0, 3, 1, 2])), [0, 2, 3, 1]);
      return add(dse, y1);
    });
  }
}

/** A {@linkcode VSSBlock} built with any ablation options: each sub-module may be absent or swapped. */
export type AnyVSSBlock = VSSBlock<
  HFSS | null,
  ChannelFreqAdapt | SpatialLFSS | null,
  FeedForward | WaveMlp,
  Conv2d | null
>;
