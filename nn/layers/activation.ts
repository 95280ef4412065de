/**
 * Activation modules: thin wrappers over the elementwise ops, for use in `Sequential`.
 *
 * @module
 */

import { add, affine, gelu, mul, relu, sigmoid, silu, tanh } from "../../autodiff/ops/index.ts";
import type { Tensor } from "../../autodiff/tensor.ts";
import { Module } from "../module.ts";

/** max(x, 0). */
export class ReLU extends Module {
  /** Applies ReLU. */
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/** x·σ(x) (Swish). */
export class SiLU extends Module {
  /** Applies SiLU. */
  forward(x: Tensor): Tensor {
    return silu(x);
  }
}

/** σ(x) = 1 / (1 + e^-x). */
export class Sigmoid extends Module {
  /** Applies the logistic sigmoid. */
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

/** tanh(x). */
export class Tanh extends Module {
  /** Applies tanh. */
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

/** Options of {@linkcode GELU}. */
export interface GELUOptions {
  /** "none" (exact, erf form; default) or "tanh" (the tanh approximation), as PyTorch. */
  approximate?: "none" | "tanh";
}

/** x·Φ(x), exact (erf) by default, as `torch.nn.GELU`. */
export class GELU extends Module {
  /** "none" or "tanh". */
  readonly approximate: "none" | "tanh";

  /** A GELU with the given approximation. */
  constructor(opts: GELUOptions = {}) {
    super();
    this.approximate = opts.approximate ?? "none";
  }

  /** Applies GELU. */
  forward(x: Tensor): Tensor {
    if (this.approximate === "none") return gelu(x);
    // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
    const inner = affine(add(x, affine(mul(mul(x, x), x), 0.044715, 0)), Math.sqrt(2 / Math.PI), 0);
    return mul(affine(x, 0.5, 0), affine(tanh(inner), 1, 1));
  }
}
