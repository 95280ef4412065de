/**
 * Gated activations as one op: the backend's fused kernel where it has one, else the composite of split, GELU,
 * multiply and add (whose backward is autodiff's).
 *
 * @module
 */

import { record, Tensor } from "../tensor.ts";
import { add, gelu, mul } from "./elementwise.ts";
import { split } from "./shape.ts";
import { fmt, normAxis, numel, requireFloat } from "./util.ts";

/**
 * The symmetric GELU gate of Wave-MambaAD's DSE (Eq. 8): x split into halves a, b along `axis`,
 * `gelu(a)·b + gelu(b)·a` (exact erf GELU). The output has half of x's `axis`.
 */
export function geluCrossGate(x: Tensor, axis: number): Tensor {
  requireFloat("geluCrossGate", x);
  const ax = normAxis("geluCrossGate", axis, x.ndim, x.shape);
  const c = x.shape[ax];
  if (c % 2 !== 0) throw new Error(`geluCrossGate: axis ${axis} of ${fmt(x.shape)} must have an even size`);
  const backend = x.backend;
  if (!backend.geluCrossGate || !backend.geluCrossGateBackward) {
    const [a, b] = split(x, c / 2, ax);
    return add(mul(gelu(a), b), mul(gelu(b), a));
  }
  const outer = numel(x.shape.slice(0, ax)), span = (c / 2) * numel(x.shape.slice(ax + 1));
  const shape = x.shape.map((d, i) => (i === ax ? c / 2 : d));
  const out = Tensor.fromBuffer(backend.geluCrossGate(x.buffer, outer, span), shape, "float32", x.device);
  return record("geluCrossGate", out, [x], [x], (g, [sx]) => [
    Tensor.fromBuffer(
      g.backend.geluCrossGateBackward!(g.buffer, sx.buffer, outer, span),
      sx.shape,
      "float32",
      g.device,
    ),
  ]);
}
