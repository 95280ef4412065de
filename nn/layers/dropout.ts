/**
 * `Dropout` (per element) and `DropPath` (stochastic depth, per sample). Both are the identity in eval
 * mode. Masks come from the seeded global generator, drawn on the host, so a seed gives the same mask on
 * every backend.
 *
 * @module
 */

import { mul } from "../../autodiff/ops/index.ts";
import { globalGenerator } from "../../autodiff/random.ts";
import { Tensor } from "../../autodiff/tensor.ts";
import { Module } from "../module.ts";

/** A float32 mask of `shape`: 1/keep with probability `keep`, else 0. */
function keepMask(shape: readonly number[], keep: number, like: Tensor): Tensor {
  let n = 1;
  for (const d of shape) n *= d;
  const data = new Float32Array(n);
  const scale = 1 / keep;
  for (let i = 0; i < n; i++) data[i] = globalGenerator.uniform() < keep ? scale : 0;
  return Tensor.fromHost(data, shape, "float32", like.device);
}

function checkP(tag: string, p: number): void {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`${tag}: drop probability must be in [0, 1], got ${p}`);
}

/**
 * Zeroes each element with probability `p` in training and scales the rest by 1/(1-p), as `torch.nn.Dropout`.
 */
export class Dropout extends Module {
  /** Drop probability. */
  readonly p: number;

  /** Dropout with drop probability `p` (default 0.5). */
  constructor(p = 0.5) {
    super();
    checkP("Dropout", p);
    this.p = p;
  }

  /** Applies dropout (identity in eval mode or with p = 0). */
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    if (this.p === 1) return mul(x, 0);
    const mask = keepMask(x.shape, 1 - this.p, x);
    const out = mul(x, mask);
    mask.dispose();
    return out;
  }
}

/**
 * Stochastic depth as timm's `DropPath`: in training each sample (dim 0) of a residual branch is zeroed with
 * probability `p` and the kept samples are scaled by 1/(1-p). Identity in eval mode or with p = 0.
 */
export class DropPath extends Module {
  /** Drop probability per sample. */
  readonly p: number;

  /** DropPath with drop probability `p` (default 0). */
  constructor(p = 0) {
    super();
    checkP("DropPath", p);
    this.p = p;
  }

  /** Applies stochastic depth to x (N, ...). */
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    if (x.ndim < 1) throw new Error(`DropPath(${this.p}): expected a batched input, got a scalar`);
    const keep = 1 - this.p;
    // timm: bernoulli(keep) per sample, divided by keep only when keep > 0
    const mask = keep > 0 ? keepMask([x.shape[0], ...new Array(x.ndim - 1).fill(1)], keep, x) : null;
    const out = mask ? mul(x, mask) : mul(x, 0);
    mask?.dispose();
    return out;
  }
}
