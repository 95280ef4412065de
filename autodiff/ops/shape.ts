/**
 * Shape ops. `reshape` shares storage; every other view-like op writes a new buffer with the one
 * strided-copy kernel (`stridedCopyInto`), so kernels only ever see contiguous inputs.
 *
 * @module
 */

import { markScattered, record, Tensor } from "../tensor.ts";
import { full } from "./creation.ts";
import { sumTo } from "./reduce.ts";
import { fmt, normAxes, normAxis, numel } from "./util.ts";
import { contiguousStrides } from "../shape.ts";

/** A contiguous tensor of `shape` read from `x` at `offset` with element `strides`. */
function gatherView(x: Tensor, shape: readonly number[], strides: readonly number[], offset: number): Tensor {
  const b = x.backend;
  const out = b.alloc(numel(shape), x.dtype);
  b.stridedCopyInto(x.buffer, offset, strides, out, 0, contiguousStrides(shape), shape);
  const t = Tensor.fromBuffer(out, shape, x.dtype, x.device);
  t.storage.valueRange = x.storage.valueRange; // a subset of the same values
  return t;
}

/** Writes `src` into a region of a new tensor filled with `fill` (the adjoint of a strided view). */
function scatterView(
  src: Tensor,
  outShape: readonly number[],
  dstStrides: readonly number[],
  dstOffset: number,
  fill = 0,
): Tensor {
  const b = src.backend;
  const out = b.fill(numel(outShape), fill, src.dtype);
  b.stridedCopyInto(src.buffer, 0, contiguousStrides(src.shape), out, dstOffset, dstStrides, src.shape);
  return Tensor.fromBuffer(out, outShape, src.dtype, src.device);
}

/** Same data, new shape (one dim may be -1). Shares storage. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((d) => d !== -1);
  const infer = shape.length - known.length;
  if (infer > 1) throw new Error(`reshape: only one dim can be -1, got ${fmt(shape)}`);
  let target = shape.slice();
  if (infer === 1) {
    const k = numel(known);
    if (k === 0 || x.size % k !== 0) throw new Error(`reshape: cannot reshape ${fmt(x.shape)} into ${fmt(shape)}`);
    target = shape.map((d) => (d === -1 ? x.size / k : d));
  }
  if (numel(target) !== x.size || target.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot reshape ${fmt(x.shape)} (${x.size} elements) into ${fmt(shape)}`);
  }
  const out = x.shareWithShape(target);
  const inShape = x.shape;
  return record("reshape", out, [x], [], (g) => [reshape(g, inShape)]);
}

/** Flattens dims startDim..endDim into one. */
export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normAxis("flatten", startDim, x.ndim, x.shape), e = normAxis("flatten", endDim, x.ndim, x.shape);
  if (s > e) throw new Error(`flatten: startDim ${startDim} is after endDim ${endDim}`);
  return reshape(x, [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
}

/** Inserts a size-1 dim at `dim`. */
export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normAxis("unsqueeze", dim, x.ndim + 1, x.shape);
  return reshape(x, [...x.shape.slice(0, d), 1, ...x.shape.slice(d)]);
}

/** Removes size-1 dims (all of them, or the listed ones). */
export function squeeze(x: Tensor, dim?: number | number[]): Tensor {
  const axes = dim === undefined ? x.shape.map((_, i) => i) : normAxes("squeeze", dim, x.shape);
  return reshape(x, x.shape.filter((d, i) => !(d === 1 && axes.includes(i))));
}

/** Reorders dims. */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== x.ndim) {
    throw new Error(`permute: ${dims.length} dims given for a tensor of shape ${fmt(x.shape)}`);
  }
  const p = dims.map((d) => normAxis("permute", d, x.ndim, x.shape));
  if (new Set(p).size !== p.length) throw new Error(`permute: repeated dim in [${dims}]`);
  if (p.every((d, i) => d === i)) return reshape(x, x.shape);
  const st = contiguousStrides(x.shape);
  const out = gatherView(x, p.map((d) => x.shape[d]), p.map((d) => st[d]), 0);
  const inv = new Array<number>(p.length);
  p.forEach((d, i) => (inv[d] = i));
  return record("permute", out, [x], [], (g) => [permute(g, inv)]);
}

/** Swaps two dims. */
export function transpose(x: Tensor, d0: number, d1: number): Tensor {
  const a = normAxis("transpose", d0, x.ndim, x.shape), b = normAxis("transpose", d1, x.ndim, x.shape);
  const p = x.shape.map((_, i) => i);
  [p[a], p[b]] = [p[b], p[a]];
  return permute(x, p);
}

/** Broadcasts to `shape` (-1 keeps a dim), materialising the result. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const off = shape.length - x.ndim;
  if (off < 0) throw new Error(`expand: cannot expand ${fmt(x.shape)} to fewer dims ${fmt(shape)}`);
  const target = shape.map((d, i) => (d === -1 ? (i < off ? NaN : x.shape[i - off]) : d));
  const st = contiguousStrides(x.shape);
  const strides = target.map((d, i) => {
    if (i < off) {
      if (!(d >= 0)) throw new Error(`expand: -1 is not allowed for new leading dims in ${fmt(shape)}`);
      return 0;
    }
    const s = x.shape[i - off];
    if (s === d) return st[i - off];
    if (s === 1) return 0;
    throw new Error(`expand: cannot expand ${fmt(x.shape)} to ${fmt(shape)} (dim ${i}: ${s} vs ${d})`);
  });
  if (target.length === x.ndim && target.every((d, i) => d === x.shape[i])) return reshape(x, x.shape);
  const out = gatherView(x, target, strides, 0);
  const inShape = x.shape;
  return record("expand", out, [x], [], (g) => [sumTo(g, inShape)]);
}

/** Alias of {@linkcode expand}. */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  return expand(x, shape);
}

/** A contiguous copy (differentiable). */
export function clone(x: Tensor): Tensor {
  const out = gatherView(x, x.shape, contiguousStrides(x.shape), 0);
  return record("clone", out, [x], [], (g) => [g]);
}

/** `x[..., start:end:step, ...]` along `dim`, with Python semantics for negative and out-of-range bounds. */
export function slice(x: Tensor, dim: number, start?: number, end?: number, step = 1): Tensor {
  const axis = normAxis("slice", dim, x.ndim, x.shape);
  if (!Number.isInteger(step) || step <= 0) throw new RangeError(`slice: step must be a positive integer, got ${step}`);
  const n = x.shape[axis];
  const clampIdx = (v: number | undefined, dflt: number) => {
    if (v === undefined) return dflt;
    const w = v < 0 ? v + n : v;
    return Math.min(Math.max(w, 0), n);
  };
  const s = clampIdx(start, 0), e = clampIdx(end, n);
  const len = Math.max(0, Math.ceil((e - s) / step));
  const st = contiguousStrides(x.shape);
  const shape = x.shape.slice();
  shape[axis] = len;
  const strides = st.slice();
  strides[axis] = st[axis] * step;
  const out = gatherView(x, shape, strides, s * st[axis]);
  // the gradient stays a slice-shaped piece: backward() joins the pieces of one input (split's chunks: a concat)
  return record("slice", out, [x], [], (g) => [markScattered(g.shareWithShape(g.shape), strides, s * st[axis])]);
}

/** Joins tensors along an existing dim. */
export function concat(xs: readonly Tensor[], dim: number): Tensor {
  if (xs.length === 0) throw new Error("concat: expected at least one tensor");
  const ref = xs[0];
  const axis = normAxis("concat", dim, ref.ndim, ref.shape);
  for (const t of xs) {
    if (t.device !== ref.device) throw new Error(`concat: tensors on different devices (${ref.device} vs ${t.device})`);
    if (t.dtype !== ref.dtype) throw new TypeError(`concat: dtypes differ (${ref.dtype} vs ${t.dtype})`);
    if (t.ndim !== ref.ndim || t.shape.some((d, i) => i !== axis && d !== ref.shape[i])) {
      throw new Error(`concat: shapes ${fmt(ref.shape)} and ${fmt(t.shape)} differ outside dim ${axis}`);
    }
  }
  const shape = ref.shape.slice();
  shape[axis] = xs.reduce((a, t) => a + t.shape[axis], 0);
  const b = ref.backend;
  const buf = b.alloc(numel(shape), ref.dtype);
  const st = contiguousStrides(shape);
  let off = 0;
  const offsets: number[] = [];
  for (const t of xs) {
    offsets.push(off);
    if (t.size > 0) b.stridedCopyInto(t.buffer, 0, contiguousStrides(t.shape), buf, off * st[axis], st, t.shape);
    off += t.shape[axis];
  }
  const out = Tensor.fromBuffer(buf, shape, ref.dtype, ref.device);
  return record("concat", out, xs, [], (g) => xs.map((t, i) => slice(g, axis, offsets[i], offsets[i] + t.shape[axis])));
}

/** Alias of {@linkcode concat}. */
export const cat: typeof concat = concat;

/** Joins tensors along a new dim. */
export function stack(xs: readonly Tensor[], dim: number): Tensor {
  if (xs.length === 0) throw new Error("stack: expected at least one tensor");
  const d = normAxis("stack", dim, xs[0].ndim + 1, xs[0].shape);
  for (const t of xs) {
    if (t.shape.join() !== xs[0].shape.join()) {
      throw new Error(`stack: all shapes must match, got ${fmt(xs[0].shape)} and ${fmt(t.shape)}`);
    }
  }
  return concat(xs.map((t) => unsqueeze(t, d)), d);
}

/** Splits along `dim` into pieces of `size` (last may be smaller) or of the given section sizes. */
export function split(x: Tensor, sizeOrSections: number | readonly number[], dim = 0): Tensor[] {
  const axis = normAxis("split", dim, x.ndim, x.shape);
  const n = x.shape[axis];
  let sizes: number[];
  if (typeof sizeOrSections === "number") {
    if (!(sizeOrSections > 0)) throw new RangeError(`split: size must be positive, got ${sizeOrSections}`);
    sizes = [];
    for (let s = 0; s < n; s += sizeOrSections) sizes.push(Math.min(sizeOrSections, n - s));
  } else {
    sizes = sizeOrSections.slice();
    if (sizes.reduce((a, b) => a + b, 0) !== n) {
      throw new Error(`split: sections [${sizes}] do not add up to dim ${axis} of ${fmt(x.shape)}`);
    }
  }
  const out: Tensor[] = [];
  let s = 0;
  for (const len of sizes) {
    out.push(slice(x, axis, s, s + len));
    s += len;
  }
  return out;
}

/** Splits into `chunks` nearly equal pieces along `dim` (as torch.chunk). */
export function chunk(x: Tensor, chunks: number, dim = 0): Tensor[] {
  const axis = normAxis("chunk", dim, x.ndim, x.shape);
  return split(x, Math.ceil(x.shape[axis] / chunks), axis);
}

/** Reverses the order along `dims`. */
export function flip(x: Tensor, dims: readonly number[]): Tensor {
  const axes = normAxes("flip", dims, x.shape);
  const st = contiguousStrides(x.shape);
  let offset = 0;
  const strides = st.map((s, i) => {
    if (!axes.includes(i)) return s;
    offset += (x.shape[i] - 1) * s;
    return -s;
  });
  const out = gatherView(x, x.shape, strides, x.size === 0 ? 0 : offset);
  return record("flip", out, [x], [], (g) => [flip(g, axes)]);
}

/** Rotates by 90° k times in the plane of `dims`, as torch.rot90. */
export function rot90(x: Tensor, k = 1, dims: readonly [number, number] = [0, 1]): Tensor {
  if (dims.length !== 2) throw new Error(`rot90: dims must have two entries, got [${dims}]`);
  const [a, b] = dims.map((d) => normAxis("rot90", d, x.ndim, x.shape));
  if (a === b) throw new Error(`rot90: dims must differ, got [${dims}]`);
  const r = ((k % 4) + 4) % 4;
  if (r === 0) return reshape(x, x.shape);
  if (r === 1) return transpose(flip(x, [b]), a, b);
  if (r === 2) return flip(x, [a, b]);
  return flip(transpose(x, a, b), [b]);
}

/** Padding options. */
export interface PadOptions {
  /** "constant" (default) or "reflect" (mirror without repeating the edge). */
  mode?: "constant" | "reflect";
  /** Fill value for constant padding. */
  value?: number;
}

/**
 * Pads with torch.nn.functional.pad's argument order: `pads` lists (before, after) pairs starting from
 * the last dim. Negative constant padding crops.
 */
export function pad(x: Tensor, pads: readonly number[], opts: PadOptions = {}): Tensor {
  if (pads.length % 2 !== 0 || pads.length / 2 > x.ndim) {
    throw new Error(`pad: pads must hold (before, after) pairs for at most ${x.ndim} dims, got [${pads}]`);
  }
  const mode = opts.mode ?? "constant";
  const perDim: [number, number][] = x.shape.map(() => [0, 0]);
  for (let i = 0; i < pads.length / 2; i++) perDim[x.ndim - 1 - i] = [pads[2 * i], pads[2 * i + 1]];
  if (mode === "reflect") {
    // a composition of slice, flip and concat per dim, so the gradient comes for free
    let cur = x;
    perDim.forEach(([l, r], d) => {
      if (l === 0 && r === 0) return;
      const n = cur.shape[d];
      if (l >= n || r >= n || l < 0 || r < 0) {
        throw new Error(`pad: reflect padding (${l}, ${r}) must be in [0, ${n}) for dim ${d} of ${fmt(x.shape)}`);
      }
      const parts: Tensor[] = [];
      if (l > 0) parts.push(flip(slice(cur, d, 1, l + 1), [d]));
      parts.push(cur);
      if (r > 0) parts.push(flip(slice(cur, d, n - 1 - r, n - 1), [d]));
      cur = concat(parts, d);
    });
    return cur === x ? reshape(x, x.shape) : cur;
  }
  if (mode !== "constant") throw new Error(`pad: unknown mode "${mode}"`);
  // crop first for negative pads, then pad
  let src = x;
  perDim.forEach(([l, r], d) => {
    if (l < 0 || r < 0) src = slice(src, d, Math.max(0, -l), src.shape[d] - Math.max(0, -r));
  });
  const pos = perDim.map(([l, r]) => [Math.max(l, 0), Math.max(r, 0)]);
  const shape = src.shape.map((n, d) => n + pos[d][0] + pos[d][1]);
  const st = contiguousStrides(shape);
  const offset = pos.reduce((acc, [l], d) => acc + l * st[d], 0);
  const out = src.size === 0
    ? full(shape, opts.value ?? 0, { dtype: x.dtype, device: x.device })
    : scatterView(src, shape, st, offset, opts.value ?? 0);
  const inner = src.shape;
  return record("pad", out, [src], [], (g) => [gatherView(g, inner, st, offset)]);
}
