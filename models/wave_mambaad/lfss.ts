/**
 * Wave-MambaAD's Low-Frequency State Space module, LFSS (Eq. 6-7, docs/paper.md §3.5): the official
 * `ChannelFreqAdapt`, which runs the bidirectional channel Mamba (Bi-CSSM, Eq. 7) on pooled rows and columns of
 * the LL sub-band. Channels-first (B, C, h, w) → (B, C, h, w).
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { add, concat, mean, mul, permute, reshape, split } from "../../autodiff/ops/index.ts";
import { type Tensor, tidy } from "../../autodiff/tensor.ts";
import { Conv2d } from "../../nn/layers/conv.ts";
import { Module } from "../../nn/module.ts";
import { ChannelMamba, type ChannelMambaOptions } from "../../nn/ssm/channel_mamba.ts";

/** Options of {@linkcode ChannelFreqAdapt}. */
export interface ChannelFreqAdaptOptions {
  /**
   * Options of both channel Mambas (CMamba_h, CMamba_w): state size, dt rank and the official-quirk switches
   * (`siluAfterConv`, `backwardDtBias`, `gateInsideScan`, `backwardFromFlipped`); the defaults are official.
   */
  mamba?: Omit<ChannelMambaOptions, "device">;
  /**
   * One CMamba_h, CMamba_w and conv1 for all heads (official true, docs/paper.md §5.6); false gives every head its own
   * (`heads.<i>.CMamba_h`, …: the reading of "grouped" channel scans where the groups are independent).
   */
  sharedHeads?: boolean;
  /** Device of the parameters. */
  device?: Device;
}

/** One head's own channel Mambas and 1×1 conv (LFSS with `sharedHeads: false`). */
export class LfssHead extends Module {
  /** Channel Mamba over the W-pooled column (d_model = h). */
  CMamba_h: ChannelMamba;
  /** Channel Mamba over the H-pooled row (d_model = w). */
  CMamba_w: ChannelMamba;
  /** 1×1, C′ → C′, no bias. */
  conv1: Conv2d;

  /** A head of `c` channels on an h × w sub-band. */
  constructor(c: number, h: number, w: number, mamba: Omit<ChannelMambaOptions, "device"> = {}, device?: Device) {
    super();
    this.CMamba_h = new ChannelMamba(h, c, { ...mamba, device });
    this.CMamba_w = new ChannelMamba(w, c, { ...mamba, device });
    this.conv1 = new Conv2d(c, c, 1, { bias: false, device });
  }
}

/**
 * LFSS (Eq. 6): res = LL; x = dwconv3(LL) (depthwise 3×3, no bias); x is split into `numHeads` heads of
 * C′ = C / numHeads channels and every head goes through the same `channelmamba` (one CMamba_h, CMamba_w and
 * conv1 shared by all heads, as the official code); the heads are concatenated, project_out (1×1, no bias) and
 * the residual added.
 *
 * Per head (Eq. 7): p = mean over W → CMamba_h (d_model = h, sequence over C′); F′ = p′·x; q = mean over H of
 * F′ → CMamba_w (d_model = w); out = q′·x (the original x, as the official code and Eq. 7); then conv1 (1×1).
 * Parameters as the official module: `CMamba_h`, `CMamba_w`, `dwconv3`, `conv1`, `project_out`
 * (17,600 for C = 64, h = w = 32, 2 heads).
 */
export class ChannelFreqAdapt extends Module {
  /** Channels C. */
  readonly dim: number;
  /** Sub-band height h. */
  readonly h: number;
  /** Sub-band width w. */
  readonly w: number;
  /** Heads (channel groups). */
  readonly numHeads: number;
  /** Channel Mamba over the W-pooled column (d_model = h); null with per-head weights. */
  CMamba_h: ChannelMamba | null;
  /** Channel Mamba over the H-pooled row (d_model = w); null with per-head weights. */
  CMamba_w: ChannelMamba | null;
  /** Depthwise 3×3, no bias. */
  dwconv3: Conv2d;
  /** Per-head 1×1, C′ → C′, no bias (shared by the heads); null with per-head weights. */
  conv1: Conv2d | null;
  /** 1×1, C → C, no bias. */
  project_out: Conv2d;
  /** Every head's own weights (`sharedHeads: false`), else null. */
  heads: LfssHead[] | null;

  /** An LFSS block for `dim` channels on an h × w sub-band with `numHeads` heads. */
  constructor(dim: number, h: number, w: number, numHeads: number, opts: ChannelFreqAdaptOptions = {}) {
    super();
    if (dim % numHeads !== 0) throw new Error(`ChannelFreqAdapt: dim ${dim} is not divisible by ${numHeads} heads`);
    const device = opts.device, c = dim / numHeads;
    this.dim = dim;
    this.h = h;
    this.w = w;
    this.numHeads = numHeads;
    const shared = opts.sharedHeads ?? true;
    this.CMamba_h = shared ? new ChannelMamba(h, c, { ...opts.mamba, device }) : null;
    this.CMamba_w = shared ? new ChannelMamba(w, c, { ...opts.mamba, device }) : null;
    this.dwconv3 = new Conv2d(dim, dim, 3, { padding: 1, groups: dim, bias: false, device });
    this.conv1 = shared ? new Conv2d(c, c, 1, { bias: false, device }) : null;
    this.project_out = new Conv2d(dim, dim, 1, { bias: false, device });
    this.heads = shared ? null : Array.from({ length: numHeads }, () => new LfssHead(c, h, w, opts.mamba, device));
  }

  /** Head `i`: x (B, C′, h, w) → (B, C′, h, w) (Eq. 7), with the shared weights or the head's own. */
  channelMamba(x: Tensor, i = 0): Tensor {
    const own = this.heads?.[i];
    const cmH = own ? own.CMamba_h : this.CMamba_h!, cmW = own ? own.CMamba_w : this.CMamba_w!;
    const conv1 = own ? own.conv1 : this.conv1!;
    // (B, C′, h, 1) → (B, h, 1, C′) → CMamba_h → (B, C′, h, 1)
    const p = mean(x, 3, true);
    const ph = permute(cmH.forward(permute(p, [0, 2, 3, 1])), [0, 3, 1, 2]);
    const f = mul(ph, x);
    // (B, C′, 1, w) → (B, w, 1, C′) → CMamba_w → (B, C′, 1, w)
    const q = mean(f, 2, true);
    const qw = permute(cmW.forward(permute(q, [0, 3, 2, 1])), [0, 3, 2, 1]);
    return conv1.forward(mul(qw, x));
  }

  /** LL (B, C, h, w) → (B, C, h, w). */
  forward(ll: Tensor): Tensor {
    return tidy(() => {
      const [, c, h, w] = ll.shape;
      if (c !== this.dim || h !== this.h || w !== this.w) {
        throw new Error(
          `ChannelFreqAdapt(${this.dim}, ${this.h}, ${this.w}): expected [B, ${this.dim}, ${this.h}, ${this.w}], got [${ll.shape}]`,
        );
      }
      const x = this.dwconv3.forward(ll);
      const [b] = ll.shape, c1 = this.dim / this.numHeads;
      // Shared weights, and every op of channelMamba is per sample: the heads ride along the batch,
      // (B, C, h, w) = (B·heads, C′, h, w), so all heads take one pass (one scan each way) instead of one per head.
      const y = this.heads
        ? concat(split(x, c1, 1).map((xi, i) => this.channelMamba(xi, i)), 1)
        : reshape(this.channelMamba(reshape(x, [b * this.numHeads, c1, h, w])), [b, c, h, w]);
      return add(this.project_out.forward(y), ll);
    });
  }
}
