/**
 * Shared checks and shape arithmetic for the ops.
 *
 * @module
 */

import type { Device, DType } from "../backend.ts";
import type { Tensor } from "../tensor.ts";
import { contiguousStrides } from "../shape.ts";

export { numel } from "../shape.ts";

/** Formats a shape for messages. */
export function fmt(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** Normalises a possibly negative axis; throws naming the op if out of range. */
export function normAxis(op: string, axis: number, ndim: number, shape?: readonly number[]): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= Math.max(ndim, 1)) {
    throw new RangeError(`${op}: dim ${axis} is out of range for a tensor of shape ${fmt(shape ?? [])} (${ndim} dims)`);
  }
  return a;
}

/** Normalises a list of axes (undefined = all), sorted and deduplicated. */
export function normAxes(op: string, axes: number | readonly number[] | undefined, shape: readonly number[]): number[] {
  if (axes === undefined) return shape.map((_, i) => i);
  const list = typeof axes === "number" ? [axes] : axes;
  const out = [...new Set(list.map((a) => normAxis(op, a, shape.length, shape)))].sort((x, y) => x - y);
  if (out.length !== list.length) throw new Error(`${op}: repeated dim in [${list}]`);
  return out;
}

/** The broadcast shape of two shapes (NumPy rules), or a clear error naming the op. */
export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) {
      throw new Error(`${op}: shapes ${fmt(a)} and ${fmt(b)} cannot be broadcast together (dim ${i}: ${x} vs ${y})`);
    }
    out[i] = x === 1 ? y : x;
  }
  return out;
}

/** Element strides for reading a contiguous `shape` as if broadcast to `target` (0 on broadcast dims). */
export function broadcastStrides(shape: readonly number[], target: readonly number[]): number[] {
  const s = contiguousStrides(shape);
  const off = target.length - shape.length;
  return target.map((_, i) => (i < off || shape[i - off] === 1 ? 0 : s[i - off]));
}

/** Throws unless every tensor lives on the same device; returns that device. */
export function sameDevice(op: string, ...ts: Tensor[]): Device {
  const d = ts[0].device;
  for (const t of ts) {
    if (t.device !== d) {
      throw new Error(`${op}: tensors are on different devices (${ts.map((x) => x.device).join(" vs ")})`);
    }
  }
  return d;
}

/** Throws unless the tensor is float32. */
export function requireFloat(op: string, t: Tensor, name = "input"): void {
  if (t.dtype !== "float32") throw new TypeError(`${op}: ${name} must be float32, got ${t.dtype} ${fmt(t.shape)}`);
}

/** Throws unless the dtype matches. */
export function requireDType(op: string, t: Tensor, dtype: DType, name = "input"): void {
  if (t.dtype !== dtype) throw new TypeError(`${op}: ${name} must be ${dtype}, got ${t.dtype} ${fmt(t.shape)}`);
}

/** Normalises an int or pair argument. */
export function pair(v: number | readonly [number, number]): [number, number] {
  return typeof v === "number" ? [v, v] : [v[0], v[1]];
}
