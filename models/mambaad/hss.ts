/**
 * MambaAD's HSS block (Hybrid State Space block, docs/paper.md §1.6): `x + DropPath(SS2D(LN(x)))` on a
 * channels-last map (B, H, W, C), with the official field names (`ln_1`, `self_attention`, `drop_path`) so the
 * official state-dict keys (`ln_1.weight`, `self_attention.x_proj_weight`, `self_attention.scans.index_flat`,
 * ...) load unchanged. The official class is `HSSBlock` in MambaAD's `model/mambaad.py` (ADer's copy calls
 * it `VSSBlock`).
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { add } from "../../autodiff/ops/index.ts";
import { type Tensor, tidy } from "../../autodiff/tensor.ts";
import { DropPath } from "../../nn/layers/dropout.ts";
import { LayerNorm } from "../../nn/layers/norm.ts";
import { Module } from "../../nn/module.ts";
import type { ScanOrder } from "../../nn/ssm/scan_order.ts";
import { SS2D } from "../../nn/ssm/ss2d.ts";

/** Options of {@linkcode HSSBlock}. */
export interface HSSBlockOptions {
  /** Stochastic-depth rate of the SS2D branch (default 0; §1.3 gives the per-module rates of the decoder). */
  dropPath?: number;
  /** SSM state size N (default 16). */
  dState?: number;
  /**
   * The H = W the block is built for: registers SS2D's official Hilbert scan tables
   * (`self_attention.scans.index_flat[_inv]`, §1.7) for checkpoint compatibility. null (default) skips them;
   * the scan itself works on any size either way.
   */
  size?: number | null;
  /** Scan directions (default: MambaAD's 8 Hilbert directions, docs/paper.md §1.7). */
  directions?: readonly ScanOrder[];
  /** LayerNorm eps (default 1e-5: the decoder passes `norm_layer=nn.LayerNorm`, docs/paper.md §1.3). */
  eps?: number;
  /** Device of the parameters. */
  device?: Device;
}

/**
 * HSS block (docs/paper.md §1.6): `x + DropPath(SS2D(LayerNorm(x)))`, channels-last (B, H, W, C) → same.
 * Parameters: LayerNorm(C) + SS2D(C) — 85,632 for C = 64 (§1.12, without the scan tables, which are buffers here).
 */
export class HSSBlock extends Module {
  /** Width C. */
  readonly hidden: number;
  /** LayerNorm(C), eps 1e-5. */
  ln_1: LayerNorm;
  /** SS2D(C) with d_state N, K = 8 Hilbert directions by default. */
  self_attention: SS2D;
  /** Stochastic depth on the SS2D branch. */
  drop_path: DropPath;

  /** An HSS block of width `hidden`. */
  constructor(hidden: number, opts: HSSBlockOptions = {}) {
    super();
    const device = opts.device;
    this.hidden = hidden;
    this.ln_1 = new LayerNorm(hidden, { eps: opts.eps ?? 1e-5, device });
    this.self_attention = new SS2D(hidden, {
      dState: opts.dState ?? 16,
      size: opts.size ?? null,
      directions: opts.directions,
      device,
    });
    this.drop_path = new DropPath(opts.dropPath ?? 0);
  }

  /** x (B, H, W, C) → x + DropPath(SS2D(LN(x))). */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      if (x.ndim !== 4 || x.shape[3] !== this.hidden) {
        throw new Error(
          `HSSBlock(${this.hidden}): expected a channels-last (B, H, W, ${this.hidden}) input, got [${x.shape}]`,
        );
      }
      return add(x, this.drop_path.forward(this.self_attention.forward(this.ln_1.forward(x))));
    });
  }
}
