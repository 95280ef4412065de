/**
 * Reductions over any set of axes, softmax, cumsum, and `sumTo` (the adjoint of broadcasting).
 *
 * @module
 */

import type { ReduceOp } from "../backend.ts";
import { record, Tensor } from "../tensor.ts";
import { add, affine, cast, eq, exp, log, mul, sqrt, sub } from "./elementwise.ts";
import { expand, flip, permute, reshape } from "./shape.ts";
import { fmt, normAxes, normAxis, numel } from "./util.ts";

/** Shape after reducing `axes` (kept as 1 with keepdim). */
function reducedShape(shape: readonly number[], axes: number[], keepdim: boolean): number[] {
  return keepdim ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

/** Runs a reduce kernel over sorted `axes`: contiguous blocks directly, split or transposed otherwise. */
function reduceKernel(op: ReduceOp, x: Tensor, axes: number[]): Tensor {
  const shape = x.shape;
  const outShape = shape.filter((_, i) => !axes.includes(i));
  const contiguousBlock = axes.length > 0 && axes[axes.length - 1] - axes[0] === axes.length - 1;
  let src = x;
  let outer: number, size: number, inner: number;
  if (axes.length === 0) {
    outer = numel(shape);
    size = 1;
    inner = 1;
  } else if (contiguousBlock) {
    outer = numel(shape.slice(0, axes[0]));
    size = numel(axes.map((a) => shape[a]));
    inner = numel(shape.slice(axes[axes.length - 1] + 1));
  } else if (op === "sum" || op === "max" || op === "min") {
    // associative: reduce one contiguous block of axes at a time, last first (no transposed copy)
    let blockStart = axes.length - 1;
    while (blockStart > 0 && axes[blockStart - 1] === axes[blockStart] - 1) blockStart--;
    const last = axes.slice(blockStart);
    const partial = reduceKernel(op, x, last);
    const rest = axes.slice(0, blockStart); // still valid axis numbers: they precede the removed block
    const out = reduceKernel(op, partial, rest);
    partial.dispose();
    return out;
  } else {
    const keepAxes = shape.map((_, i) => i).filter((i) => !axes.includes(i));
    src = permute(x, [...keepAxes, ...axes]);
    outer = numel(outShape);
    size = numel(axes.map((a) => shape[a]));
    inner = 1;
  }
  const buf = x.backend.reduce(op, src.buffer, outer, size, inner);
  if (src !== x) src.dispose();
  const dtype = op === "argmax" || op === "argmin" ? "int32" : x.dtype;
  return Tensor.fromBuffer(buf, outShape, dtype, x.device);
}

/** Sum over `dims` (all when undefined). */
export function sum(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  const axes = normAxes("sum", dims, x.shape);
  const src = x.dtype === "bool" ? cast(x, "int32") : x;
  const raw = reduceKernel("sum", src, axes);
  if (src !== x) src.dispose();
  const out = keepdim ? reshapeOwned(raw, reducedShape(x.shape, axes, true)) : raw;
  const inShape = x.shape, kept = reducedShape(x.shape, axes, true);
  return record("sum", out, [x], [], (g) => [expand(reshape(g, kept), inShape)]);
}

function reshapeOwned(t: Tensor, shape: number[]): Tensor {
  const r = t.shareWithShape(shape);
  t.dispose();
  return r;
}

/** Mean over `dims`. */
export function mean(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  const axes = normAxes("mean", dims, x.shape);
  const n = numel(axes.map((a) => x.shape[a]));
  const s = sum(x, axes, keepdim);
  const out = affine(s, 1 / n, 0);
  s.dispose();
  return out;
}

function extremum(
  op: "max" | "min",
  x: Tensor,
  dims: number | readonly number[] | undefined,
  keepdim: boolean,
): Tensor {
  const axes = normAxes(op, dims, x.shape);
  if (axes.some((a) => x.shape[a] === 0)) throw new Error(`${op}: cannot reduce over an empty dim of ${fmt(x.shape)}`);
  const raw = reduceKernel(op, x, axes);
  const kept = reducedShape(x.shape, axes, true);
  const out = keepdim ? reshapeOwned(raw, kept) : raw;
  // like torch.amax: the gradient is shared evenly between tied maxima
  return record(op, out, [x], [x, out], (g, [xs, o]) => {
    const mask = cast(eq(xs, reshape(o, kept)), "float32");
    const count = sum(mask, axes, true);
    return [mul(expand(reshape(g, kept), xs.shape), mul(mask, recip(count)))];
  });
}

/** 1/b elementwise, with no gradient rule (for use inside rules). */
function recip(b: Tensor): Tensor {
  return Tensor.fromBuffer(b.backend.unary("reciprocal", b.buffer), b.shape, b.dtype, b.device);
}

/** Maximum over `dims` (values only, like `torch.amax`). */
export function max(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  return extremum("max", x, dims, keepdim);
}

/** Minimum over `dims` (values only, like `torch.amin`). */
export function min(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  return extremum("min", x, dims, keepdim);
}

function argExtremum(op: "argmax" | "argmin", x: Tensor, dim: number | undefined, keepdim: boolean): Tensor {
  if (dim === undefined) {
    const flat = reshape(x, [x.size]);
    const out = reduceKernel(op, flat, [0]);
    out.storage.valueRange = [0, x.size - 1];
    flat.dispose();
    return keepdim ? reshapeOwned(out, x.shape.map(() => 1)) : out;
  }
  const axis = normAxis(op, dim, x.ndim, x.shape);
  if (x.shape[axis] === 0) throw new Error(`${op}: cannot reduce over an empty dim of ${fmt(x.shape)}`);
  const out = reduceKernel(op, x, [axis]);
  out.storage.valueRange = [0, x.shape[axis] - 1];
  return keepdim ? reshapeOwned(out, reducedShape(x.shape, [axis], true)) : out;
}

/** Index of the maximum along `dim` (of the flattened tensor when undefined); int32, first on ties. */
export function argmax(x: Tensor, dim?: number, keepdim = false): Tensor {
  return argExtremum("argmax", x, dim, keepdim);
}

/** Index of the minimum along `dim`; int32, first on ties. */
export function argmin(x: Tensor, dim?: number, keepdim = false): Tensor {
  return argExtremum("argmin", x, dim, keepdim);
}

/** Options of {@linkcode variance} and {@linkcode std}. */
export interface VarianceOptions {
  /** Divide by n - 1 (Bessel's correction, the default) instead of n. */
  unbiased?: boolean;
  /** Keep reduced dims as size 1. */
  keepdim?: boolean;
}

/** Variance over `dims`. */
export function variance(x: Tensor, dims?: number | readonly number[], opts: VarianceOptions = {}): Tensor {
  const axes = normAxes("variance", dims, x.shape);
  const n = numel(axes.map((a) => x.shape[a]));
  const unbiased = opts.unbiased ?? true;
  const m = mean(x, axes, true);
  const d = sub(x, m);
  const ss = sum(mul(d, d), axes, opts.keepdim ?? false);
  return affine(ss, 1 / (unbiased ? n - 1 : n), 0);
}

/** Standard deviation over `dims`. */
export function std(x: Tensor, dims?: number | readonly number[], opts: VarianceOptions = {}): Tensor {
  return sqrt(variance(x, dims, opts));
}

/** log Σ exp(x) over `dims`, stabilised by the (detached) maximum. */
export function logsumexp(x: Tensor, dims: number | readonly number[], keepdim = false): Tensor {
  const axes = normAxes("logsumexp", dims, x.shape);
  const m = reduceKernel("max", x, axes);
  const mk = reshapeOwned(m, reducedShape(x.shape, axes, true));
  // an all -inf slice would give -inf - -inf = NaN: shift by 0 there instead
  const finite = Tensor.fromBuffer(x.backend.clamp(mk.buffer, -3.4e38, 3.4e38), mk.shape, mk.dtype, mk.device);
  mk.dispose();
  const s = log(sum(exp(sub(x, finite)), axes, true));
  const out = add(s, finite);
  finite.dispose();
  return keepdim ? out : reshape(out, reducedShape(x.shape, axes, false));
}

/** Softmax along `dim`. */
export function softmax(x: Tensor, dim: number): Tensor {
  const axis = normAxis("softmax", dim, x.ndim, x.shape);
  const m = reshapeOwned(reduceKernel("max", x, [axis]), reducedShape(x.shape, [axis], true));
  const e = exp(sub(x, m));
  m.dispose();
  return mul(e, recipDiff(sum(e, axis, true)));
}

function recipDiff(x: Tensor): Tensor {
  const out = recip(x);
  return record("reciprocal", out, [x], [out], (g, [y]) => [mul(g, mul(mul(y, y), -1))]);
}

/** log(softmax(x)) along `dim`, computed stably. */
export function logSoftmax(x: Tensor, dim: number): Tensor {
  return sub(x, logsumexp(x, normAxis("logSoftmax", dim, x.ndim, x.shape), true));
}

/** Inclusive cumulative sum along `dim`. */
export function cumsum(x: Tensor, dim: number): Tensor {
  const axis = normAxis("cumsum", dim, x.ndim, x.shape);
  const outer = numel(x.shape.slice(0, axis)), size = x.shape[axis] ?? 1, inner = numel(x.shape.slice(axis + 1));
  const out = Tensor.fromBuffer(x.backend.cumsum(x.buffer, outer, size, inner), x.shape, x.dtype, x.device);
  return record("cumsum", out, [x], [], (g) => [flip(cumsum(flip(g, [axis]), axis), [axis])]);
}

/** Sums `g` down to `shape` (the adjoint of broadcasting `shape` up to `g.shape`). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.ndim - shape.length;
  if (lead < 0) throw new Error(`sumTo: cannot reduce ${fmt(g.shape)} to ${fmt(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return reshape(sum(g, axes, true), shape);
}
