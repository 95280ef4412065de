/**
 * Wave-MambaAD's channel Mamba (Bi-CSSM, Eq. 7, docs/paper.md §3.5): a bidirectional Mamba whose sequence runs
 * over the C′ channels of a head and whose features are the h pooled spatial positions. The official code's
 * quirks are kept by default and each is a switch (see {@linkcode ChannelMambaOptions}).
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { add, exp, flip, linear, mul, neg, permute, reshape, silu, split, tensor } from "../../autodiff/ops/index.ts";
import { type Tensor, tidy } from "../../autodiff/tensor.ts";
import { Conv2d } from "../layers/conv.ts";
import { Linear } from "../layers/linear.ts";
import { LayerNorm } from "../layers/norm.ts";
import { Module, Parameter } from "../module.ts";
import { aLogInit, ssmSizes } from "./init.ts";
import { selectiveScan } from "./selective_scan.ts";

/** Switches between the official code's behaviour (defaults) and the paper's reading. */
export interface ChannelMambaOptions {
  /** State size N (default 16). */
  dState?: number;
  /** dt rank (default ceil(dModel / 16)). */
  dtRank?: number;
  /** Apply SiLU after the conv as Mamba does (official: false). */
  siluAfterConv?: boolean;
  /** The backward branch's delta bias: "forward" reuses dt_proj.bias (official), "own" uses dt_proj_b.bias. */
  backwardDtBias?: "forward" | "own";
  /** Gate inside the scan (z passed to it) as well as after the norms (official: true, so SiLU(z) twice). */
  gateInsideScan?: boolean;
  /** Compute the backward branch's dt, B, C from the flipped sequence (official: false, from the unflipped x). */
  backwardFromFlipped?: boolean;
  /** Device of the parameters. */
  device?: Device;
}

/**
 * ChannelMamba(d_model = h, dim = C′): input (B, h, 1, C′) as ChannelFreqAdapt passes it; output the same shape.
 * Parameter names as the official module: in_proj, conv2d, x_proj, dt_proj, x_proj_b, dt_proj_b, A_log, D,
 * A_b_log, D_b, ln, ln1.
 */
export class ChannelMamba extends Module {
  /** Features per token (the pooled positions h). */
  readonly dModel: number;
  /** Sequence length (the channels C′). */
  readonly dim: number;
  /** State size N. */
  readonly dState: number;
  /** dt rank R. */
  readonly dtRank: number;
  readonly #opts: Required<Omit<ChannelMambaOptions, "device" | "dState" | "dtRank">>;
  /** (N) per feature: A = −exp(A_log). */
  A_log: Parameter;
  /** Skip term. */
  D: Parameter;
  /** Backward branch A. */
  A_b_log: Parameter;
  /** Backward branch skip term. */
  D_b: Parameter;
  /** h → 2h (x and z), no bias. */
  in_proj: Linear;
  /** LayerNorm over the sequence axis (forward branch). */
  ln: LayerNorm;
  /** LayerNorm over the sequence axis (backward branch). */
  ln1: LayerNorm;
  /** Depthwise 3×3 conv over the C′ sequence positions (acts as a 3-tap conv along h). */
  conv2d: Conv2d;
  /** h → R + 2N, no bias. */
  x_proj: Linear;
  /** R → h (its bias is the scan's delta bias). */
  dt_proj: Linear;
  /** Backward branch x_proj. */
  x_proj_b: Linear;
  /** Backward branch dt_proj (its bias is unused by the official code). */
  dt_proj_b: Linear;

  /** A channel Mamba over `dim` channels with `dModel` = h features. */
  constructor(dModel: number, dim: number, opts: ChannelMambaOptions = {}) {
    super();
    const device = opts.device;
    this.dModel = dModel;
    this.dim = dim;
    ({ dState: this.dState, dtRank: this.dtRank } = ssmSizes(dModel, opts));
    this.#opts = {
      siluAfterConv: opts.siluAfterConv ?? false,
      backwardDtBias: opts.backwardDtBias ?? "forward",
      gateInsideScan: opts.gateInsideScan ?? true,
      backwardFromFlipped: opts.backwardFromFlipped ?? false,
    };
    const h = dModel, n = this.dState, r = this.dtRank;
    const aLog = () => new Parameter(tensor(aLogInit(h, n), { shape: [h, n], device }));
    this.A_log = aLog();
    this.D = new Parameter(tensor(new Float32Array(h).fill(1), { device }));
    this.A_b_log = aLog();
    this.D_b = new Parameter(tensor(new Float32Array(h).fill(1), { device }));
    this.in_proj = new Linear(h, 2 * h, { bias: false, device });
    this.ln = new LayerNorm(dim, { device });
    this.ln1 = new LayerNorm(dim, { device });
    this.conv2d = new Conv2d(dim, dim, 3, { groups: dim, padding: 1, device });
    this.x_proj = new Linear(h, r + 2 * n, { bias: false, device });
    this.dt_proj = new Linear(r, h, { device });
    this.x_proj_b = new Linear(h, r + 2 * n, { bias: false, device });
    this.dt_proj_b = new Linear(r, h, { device });
  }

  /** dt (B, h, L), B and C (B, N, L) from tokens x (B, L, h). */
  #projections(x: Tensor, xProj: Linear, dtProj: Linear): [Tensor, Tensor, Tensor] {
    const [dtLow, b, c] = split(xProj.forward(x), [this.dtRank, this.dState, this.dState], 2);
    // dt_proj's weight only: its bias enters the scan as delta_bias
    const delta = permute(linear(dtLow, dtProj.weight), [0, 2, 1]);
    return [delta, permute(b, [0, 2, 1]), permute(c, [0, 2, 1])];
  }

  /** u (B, h, 1, C′) → (B, h, 1, C′). */
  forward(u: Tensor): Tensor {
    return tidy(() => {
      const [batch, h, one, l] = u.shape;
      if (h !== this.dModel || one !== 1 || l !== this.dim) {
        throw new Error(
          `ChannelMamba(${this.dModel}, ${this.dim}): expected input [B, ${this.dModel}, 1, ${this.dim}], got [${u.shape}]`,
        );
      }
      const tokens = permute(reshape(u, [batch, h, l]), [0, 2, 1]); // (B, L, h)
      const [xt, zt] = split(this.in_proj.forward(tokens), h, 2); // (B, L, h) each
      // the conv sees the L sequence positions as channels of a 1 × h map
      let xc = reshape(this.conv2d.forward(reshape(xt, [batch, l, 1, h])), [batch, l, h]);
      if (this.#opts.siluAfterConv) xc = silu(xc);
      const x = permute(xc, [0, 2, 1]); // (B, h, L)
      const z = permute(zt, [0, 2, 1]);
      const gate = this.#opts.gateInsideScan ? z : null;

      const [dtF, bF, cF] = this.#projections(xc, this.x_proj, this.dt_proj);
      const yF = selectiveScan(x, dtF, neg(exp(this.A_log)), bF, cF, {
        D: this.D,
        z: gate,
        deltaBias: this.dt_proj.bias,
        deltaSoftplus: true,
      });
      const xFlip = flip(x, [2]);
      const [dtB, bB, cB] = this.#projections(
        this.#opts.backwardFromFlipped ? permute(xFlip, [0, 2, 1]) : xc,
        this.x_proj_b,
        this.dt_proj_b,
      );
      const yB = selectiveScan(xFlip, dtB, neg(exp(this.A_b_log)), bB, cB, {
        D: this.D_b,
        z: gate,
        deltaBias: this.#opts.backwardDtBias === "forward" ? this.dt_proj.bias : this.dt_proj_b.bias,
        deltaSoftplus: true,
      });
      const g = silu(z);
      const out = add(mul(this.ln.forward(yF), g), flip(mul(this.ln1.forward(yB), g), [2]));
      return reshape(out, [batch, h, 1, l]);
    });
  }
}
