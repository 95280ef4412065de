/**
 * PatchExpand2D, the 2× upsampling between the decoder stages of MambaAD and Wave-MambaAD (the class is
 * textually the same in both official files). Channels-last in and out; keys `expand.weight`, `norm.weight`,
 * `norm.bias` as the official module.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { permute, reshape } from "../../autodiff/ops/index.ts";
import type { Tensor } from "../../autodiff/tensor.ts";
import { Linear } from "../../nn/layers/linear.ts";
import { LayerNorm } from "../../nn/layers/norm.ts";
import { Module } from "../../nn/module.ts";
import { truncNormal } from "../../nn/init.ts";

/** Options of {@linkcode PatchExpand2D}. */
export interface PatchExpand2DOptions {
  /** LayerNorm eps (default 1e-5: the models pass `norm_layer=nn.LayerNorm`, docs/paper.md §1.3). */
  eps?: number;
  /** Device of the parameters. */
  device?: Device;
}

/**
 * PatchExpand2D(dim = C) (docs/paper.md §1.4): x (B, H, W, 2C) → (B, 2H, 2W, C).
 *
 * 1. `expand`: Linear(2C → 4C, no bias);
 * 2. the 4C vector of input pixel (h, w) splits as (p1, p2, c), p1, p2 ∈ {0, 1}, c < C (einops
 *    `b h w (p1 p2 c) -> b (h p1) (w p2) c`): output pixel (2h + p1, 2w + p2) gets channels
 *    [(2·p1 + p2)·C, (2·p1 + p2 + 1)·C);
 * 3. `norm`: LayerNorm(C), eps 1e-5.
 *
 * `dim` is the OUTPUT width. Parameters: 8C² + 2C.
 */
export class PatchExpand2D extends Module {
  /** Output channels C. */
  readonly dim: number;
  /** Linear(2C → 4C), no bias. */
  expand: Linear;
  /** LayerNorm(C). */
  norm: LayerNorm;

  /**
   * Builds the block with the initialisation it gets inside the models (`MambaUPNet._init_weights`, docs/paper.md
   * §1.8): `expand.weight` ~ trunc_normal(std 0.02) on [-2, 2], LayerNorm weight 1, bias 0.
   */
  constructor(dim: number, opts: PatchExpand2DOptions = {}) {
    super();
    if (!Number.isInteger(dim) || dim < 1) throw new Error(`PatchExpand2D: dim must be a positive integer, got ${dim}`);
    this.dim = dim;
    const device = opts.device;
    this.expand = new Linear(2 * dim, 4 * dim, { bias: false, device });
    truncNormal(this.expand.weight, { std: 0.02 });
    this.norm = new LayerNorm(dim, { eps: opts.eps ?? 1e-5, device });
  }

  /** Upsamples x (B, H, W, 2C) to (B, 2H, 2W, C). */
  forward(x: Tensor): Tensor {
    const c = this.dim;
    if (x.ndim !== 4 || x.shape[3] !== 2 * c) {
      throw new Error(`PatchExpand2D(${c}): expected a (B, H, W, ${2 * c}) input, input shape [${x.shape}]`);
    }
    const [b, h, w] = x.shape;
    const e = reshape(this.expand.forward(x), [b, h, w, 2, 2, c]);
    const y = reshape(permute(e, [0, 1, 3, 2, 4, 5]), [b, 2 * h, 2 * w, c]);
    return this.norm.forward(y);
  }
}
