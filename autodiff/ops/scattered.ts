/**
 * Joining slice gradients (see `markScattered` in ../tensor.ts): backward() calls {@linkcode joinScattered} once
 * per input whose gradient came in pieces. Not re-exported by index.ts: an engine detail, not an op.
 *
 * @module
 */

import type { ScatteredPiece } from "../tensor.ts";
import { Tensor } from "../tensor.ts";
import { contiguousStrides } from "../shape.ts";
import { add } from "./elementwise.ts";
import { concat } from "./shape.ts";
import { numel } from "./util.ts";

/** `p.g` written at `p`'s region of a zero tensor of `shape`. */
function scatter(g: Tensor, shape: readonly number[], strides: readonly number[], offset: number): Tensor {
  const b = g.backend;
  const out = b.fill(numel(shape), 0, g.dtype);
  b.stridedCopyInto(g.buffer, 0, contiguousStrides(g.shape), out, offset, strides, g.shape);
  return Tensor.fromBuffer(out, shape, g.dtype, g.device);
}

/**
 * The gradient of `shape` made of slice gradients (each zero outside its region): pieces along one axis with
 * unit step that do not overlap are copied into one buffer (a concat when they cover it, else into zeros);
 * anything else is added up piece by piece, each written into zeros. Disposes the pieces.
 */
export function joinScattered(shape: readonly number[], pieces: ScatteredPiece[]): Tensor {
  const st = contiguousStrides(shape);
  const axisOf = (p: ScatteredPiece) => {
    const diff = p.g.shape.map((d, i) => (d !== shape[i] ? i : -1)).filter((i) => i >= 0);
    return p.strides.every((v, i) => v === st[i]) && diff.length <= 1 ? (diff[0] ?? 0) : -1;
  };
  const axis = axisOf(pieces[0]);
  const starts = pieces.map((p) => p.offset / st[axis]);
  const order = pieces.map((_, i) => i).sort((i, j) => starts[i] - starts[j]);
  const simple = axis >= 0 && pieces.every((p) => axisOf(p) === axis && Number.isInteger(p.offset / st[axis])) &&
    order.every((k, i) => i === 0 || starts[order[i - 1]] + pieces[order[i - 1]].g.shape[axis] <= starts[k]);
  try {
    if (!simple) {
      let acc = scatter(pieces[0].g, shape, pieces[0].strides, pieces[0].offset);
      for (const p of pieces.slice(1)) {
        const part = scatter(p.g, shape, p.strides, p.offset), sum = add(acc, part);
        acc.dispose();
        part.dispose();
        acc = sum;
      }
      return acc;
    }
    const covered = pieces.reduce((a, p) => a + p.g.shape[axis], 0) === shape[axis];
    if (covered) return concat(order.map((k) => pieces[k].g), axis);
    const ref = pieces[0].g, b = ref.backend;
    const out = b.fill(numel(shape), 0, ref.dtype);
    for (const p of pieces) {
      b.stridedCopyInto(p.g.buffer, 0, contiguousStrides(p.g.shape), out, p.offset, st, p.g.shape);
    }
    return Tensor.fromBuffer(out, shape, ref.dtype, ref.device);
  } finally {
    for (const p of pieces) p.g.dispose();
  }
}
