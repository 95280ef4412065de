/**
 * The 1-D Mamba block (mamba_ssm `Mamba`, "mamba_simple"): in_proj → causal depthwise conv1d + SiLU →
 * x_proj (dt, B, C) → dt_proj → selective scan gated by SiLU(z) → out_proj. Parameter names and shapes as
 * mamba_ssm (`conv1d.weight` is (D, 1, d_conv)), initialisation as docs/paper.md §1.8.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { conv2d, exp, linear, neg, permute, reshape, silu, slice, split, tensor } from "../../autodiff/ops/index.ts";
import { type Tensor, tidy } from "../../autodiff/tensor.ts";
import { uniform } from "../init.ts";
import { Linear } from "../layers/linear.ts";
import { Module, Parameter } from "../module.ts";
import { aLogInit, dtBiasInit, ssmSizes } from "./init.ts";
import { selectiveScan } from "./selective_scan.ts";

/** Options of {@linkcode Mamba}. */
export interface MambaOptions {
  /** State size N (default 16). */
  dState?: number;
  /** Causal conv width (default 4). */
  dConv?: number;
  /** Inner width D = expand·C (default 2). */
  expand?: number;
  /** dt rank R (default ceil(C/16)). */
  dtRank?: number;
  /** Range of the initial dt, log-uniform (default [0.001, 0.1]). */
  dtMin?: number;
  /** Upper end of the initial dt range. */
  dtMax?: number;
  /** Bias on in_proj and out_proj (default false). */
  bias?: boolean;
  /** Bias on the conv (default true). */
  convBias?: boolean;
  /** Device of the parameters. */
  device?: Device;
}

/** Depthwise causal 1-D convolution with mamba_ssm's parameter layout (weight (D, 1, k), bias (D)). */
export class CausalConv1d extends Module {
  /** (channels, 1, k). */
  weight: Parameter;
  /** (channels), or null. */
  bias: Parameter | null;

  /** A depthwise causal conv over `channels` with `kernel` taps (PyTorch Conv1d default init). */
  constructor(channels: number, kernel: number, bias = true, device?: Device) {
    super();
    const bound = 1 / Math.sqrt(kernel);
    this.weight = new Parameter(uniform([channels, 1, kernel], -bound, bound, { device }));
    this.bias = bias ? new Parameter(uniform([channels], -bound, bound, { device })) : null;
  }

  /** x (B, D, L) → (B, D, L): output l sees inputs l−k+1..l (left zero padding, as Conv1d(padding=k−1)[..., :L]). */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const [b, d, l] = x.shape;
      const k = this.weight.shape[2];
      const y = conv2d(reshape(x, [b, d, 1, l]), reshape(this.weight, [d, 1, 1, k]), this.bias, {
        padding: [0, k - 1],
        groups: d,
      });
      return slice(reshape(y, [b, d, l + k - 1]), 2, 0, l);
    });
  }
}

/** The Mamba block: (B, L, C) → (B, L, C). */
export class Mamba extends Module {
  /** Model width C. */
  readonly dModel: number;
  /** Inner width D. */
  readonly dInner: number;
  /** State size N. */
  readonly dState: number;
  /** dt rank R. */
  readonly dtRank: number;
  /** C → 2D. */
  in_proj: Linear;
  /** Causal depthwise conv. */
  conv1d: CausalConv1d;
  /** D → R + 2N, no bias. */
  x_proj: Linear;
  /** R → D; its bias is the scan's delta bias (inverse softplus of the initial dt). */
  dt_proj: Linear;
  /** (D, N): A = −exp(A_log). */
  A_log: Parameter;
  /** (D) skip term. */
  D: Parameter;
  /** D → C. */
  out_proj: Linear;

  /** A Mamba block of width `dModel`. */
  constructor(dModel: number, opts: MambaOptions = {}) {
    super();
    const device = opts.device;
    this.dModel = dModel;
    ({ dState: this.dState, dInner: this.dInner, dtRank: this.dtRank } = ssmSizes(dModel, opts));
    const d = this.dInner, n = this.dState, r = this.dtRank;
    this.in_proj = new Linear(dModel, 2 * d, { bias: opts.bias ?? false, device });
    this.conv1d = new CausalConv1d(d, opts.dConv ?? 4, opts.convBias ?? true, device);
    this.x_proj = new Linear(d, r + 2 * n, { bias: false, device });
    this.dt_proj = new Linear(r, d, { device });
    this.dt_proj.weight.assign(uniform([d, r], -(r ** -0.5), r ** -0.5, { device }));
    this.dt_proj.bias!.assign(tensor(dtBiasInit(d, { dtMin: opts.dtMin, dtMax: opts.dtMax }), { device }));
    this.A_log = new Parameter(tensor(aLogInit(d, n), { shape: [d, n], device }));
    this.D = new Parameter(tensor(new Float32Array(d).fill(1), { device }));
    this.out_proj = new Linear(d, dModel, { bias: opts.bias ?? false, device });
  }

  /** x (B, L, C) → (B, L, C). */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      if (x.ndim !== 3 || x.shape[2] !== this.dModel) {
        throw new Error(`Mamba(${this.dModel}): expected input [B, L, ${this.dModel}], got [${x.shape}]`);
      }
      const [xs, z] = split(this.in_proj.forward(x), this.dInner, 2); // (B, L, D) each
      const u = silu(this.conv1d.forward(permute(xs, [0, 2, 1]))); // (B, D, L)
      const [dtLow, b, c] = split(
        this.x_proj.forward(permute(u, [0, 2, 1])),
        [this.dtRank, this.dState, this.dState],
        2,
      );
      const delta = permute(linear(dtLow, this.dt_proj.weight), [0, 2, 1]); // (B, D, L), bias added in the scan
      const y = selectiveScan(u, delta, neg(exp(this.A_log)), permute(b, [0, 2, 1]), permute(c, [0, 2, 1]), {
        D: this.D,
        z: permute(z, [0, 2, 1]),
        deltaBias: this.dt_proj.bias,
        deltaSoftplus: true,
      });
      return this.out_proj.forward(permute(y, [0, 2, 1]));
    });
  }
}
