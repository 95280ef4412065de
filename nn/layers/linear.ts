/**
 * `Linear`: y = x Wᵀ + b, as `torch.nn.Linear`.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { linear } from "../../autodiff/ops/index.ts";
import type { Tensor } from "../../autodiff/tensor.ts";
import { kaimingUniform, uniform } from "../init.ts";
import { Module, Parameter } from "../module.ts";

/** Options of {@linkcode Linear}. */
export interface LinearOptions {
  /** Learn an additive bias (default true). */
  bias?: boolean;
  /** Device of the parameters (default: the default device). */
  device?: Device;
}

/**
 * Fully connected layer over the last dim: (..., inFeatures) → (..., outFeatures). Parameters `weight`
 * (outFeatures, inFeatures) and `bias` (outFeatures), initialised as PyTorch: weight kaiming_uniform(a=√5),
 * i.e. U(±1/√inFeatures), bias U(±1/√inFeatures).
 */
export class Linear extends Module {
  /** Input size. */
  readonly inFeatures: number;
  /** Output size. */
  readonly outFeatures: number;
  /** (outFeatures, inFeatures). */
  weight: Parameter;
  /** (outFeatures), or null without bias. */
  bias: Parameter | null;

  /** A layer mapping `inFeatures` to `outFeatures`. */
  constructor(inFeatures: number, outFeatures: number, opts: LinearOptions = {}) {
    super();
    if (!Number.isInteger(inFeatures) || !Number.isInteger(outFeatures) || inFeatures < 0 || outFeatures < 0) {
      throw new Error(`Linear: feature sizes must be non-negative integers, got ${inFeatures}→${outFeatures}`);
    }
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const device = opts.device;
    this.weight = new Parameter(kaimingUniform([outFeatures, inFeatures], { a: Math.sqrt(5), device }));
    const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
    this.bias = (opts.bias ?? true) ? new Parameter(uniform([outFeatures], -bound, bound, { device })) : null;
  }

  /** Applies the layer to x (..., inFeatures). */
  forward(x: Tensor): Tensor {
    if (x.ndim < 1 || x.shape[x.ndim - 1] !== this.inFeatures) {
      throw new Error(
        `Linear(${this.inFeatures}→${this.outFeatures}): input last dim is ${
          x.shape[x.ndim - 1]
        }, expected ${this.inFeatures}, input shape [${x.shape}]`,
      );
    }
    return linear(x, this.weight, this.bias);
  }
}
