/**
 * Wave-MambaAD's Wavelet-Mamba block (WDSS, Eq. 4 and 8, docs/paper.md §3.3): the official `VSSBlock`.
 * Channels-last (B, H, W, C) → (B, H, W, C).
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { add, concat, permute, split } from "../../autodiff/ops/index.ts";
import { type Tensor, tidy } from "../../autodiff/tensor.ts";
import { Conv2d } from "../../nn/layers/conv.ts";
import { DropPath } from "../../nn/layers/dropout.ts";
import { LayerNorm } from "../../nn/layers/norm.ts";
import { Module } from "../../nn/module.ts";
import type { ChannelMambaOptions } from "../../nn/ssm/channel_mamba.ts";
import type { ScanOrder } from "../../nn/ssm/scan_order.ts";
import type { HfssDecode } from "../../nn/ssm/ss2d.ts";
import { dwt, iwt } from "../../nn/wavelet/haar.ts";
import { FeedForward } from "./dse.ts";
import { HFSS } from "./hfss.ts";
import { ChannelFreqAdapt } from "./lfss.ts";

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
  /** LayerNorm eps (default 1e-5: the model passes nn.LayerNorm). */
  eps?: number;
  /** Device of the parameters. */
  device?: Device;
}

/**
 * The Wavelet-Mamba block:
 * - Eq. 4: Y = LN_1(X) → DWT → [LL, HL, LH, HH]; LL′ = LFSS(LL) (Eq. 6-7); [HL′; LH′; HH′] = HFSS([HL; LH; HH])
 *   (Eq. 5, one module with shared weights); W = IWT([LL′; HL′; LH′; HH′]); Y1 = X + DropPath(W).
 * - Eq. 8: Y2 = DSE(LN_2(Y1)) + Y1.
 *
 * Official state-dict names: `ln_1`, `D_SSM` (HFSS), `CMamba` (LFSS), `ln_2`, `mlp` (DSE) and `conv`, a 1×1
 * 3C → C conv with bias that the official forward never uses; it is registered so that checkpoints load and the
 * parameter count matches the paper (106,868 for C = 64, h = w = 32, 2 heads, without scan tables).
 */
export class VSSBlock extends Module {
  /** Channels C. */
  readonly hiddenDim: number;
  /** LayerNorm before the wavelet branch. */
  ln_1: LayerNorm;
  /** LayerNorm before DSE. */
  ln_2: LayerNorm;
  /** HFSS on the high-frequency bands. */
  D_SSM: HFSS;
  /** LFSS on the LL band. */
  CMamba: ChannelFreqAdapt;
  /** Stochastic depth of the wavelet branch. */
  drop_path: DropPath;
  /** DSE. */
  mlp: FeedForward;
  /** Unused 1×1 conv 3C → C (official, never called). */
  conv: Conv2d;

  /** A Wavelet-Mamba block for `hiddenDim` channels. */
  constructor(hiddenDim: number, opts: VSSBlockOptions) {
    super();
    const device = opts.device, eps = opts.eps ?? 1e-5, w = opts.w ?? opts.h;
    this.hiddenDim = hiddenDim;
    this.ln_1 = new LayerNorm(hiddenDim, { eps, device });
    this.ln_2 = new LayerNorm(hiddenDim, { eps, device });
    this.D_SSM = new HFSS(hiddenDim, {
      dState: opts.dState ?? 16,
      size: opts.size === undefined ? opts.h : opts.size,
      decode: opts.decode,
      orders: opts.hfssOrders,
      sharedBands: opts.hfssSharedBands,
      device,
    });
    this.CMamba = new ChannelFreqAdapt(hiddenDim, opts.h, w, opts.numHeads, {
      mamba: opts.mamba,
      sharedHeads: opts.lfssSharedHeads,
      device,
    });
    this.drop_path = new DropPath(opts.dropPath ?? 0);
    this.mlp = new FeedForward(hiddenDim, { expansion: opts.expansion, device });
    this.conv = new Conv2d(3 * hiddenDim, hiddenDim, 1, { device });
  }

  /** x (B, H, W, C) → (B, H, W, C). */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const b = x.shape[0];
      const bands = dwt(permute(this.ln_1.forward(x), [0, 3, 1, 2])); // (4B, C, h, w) = [LL; HL; LH; HH]
      const [ll, high] = split(bands, [b, 3 * b], 0);
      const llOut = this.CMamba.forward(ll);
      const highOut = permute(this.D_SSM.forward(permute(high, [0, 2, 3, 1])), [0, 3, 1, 2]);
      const wav = permute(iwt(concat([llOut, highOut], 0)), [0, 2, 3, 1]);
      const y1 = add(x, this.drop_path.forward(wav));
      const dse = permute(this.mlp.forward(permute(this.ln_2.forward(y1), [0, 3, 1, 2])), [0, 2, 3, 1]);
      return add(dse, y1);
    });
  }
}
