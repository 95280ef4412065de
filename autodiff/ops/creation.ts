/**
 * Tensor creation: from host data, constants, ranges and the seeded generator.
 *
 * @module
 */

import type { Device, DType, HostArray } from "../backend.ts";
import { getBackend, getDefaultDevice } from "../device.ts";
import { type Generator, globalGenerator } from "../random.ts";
import { Tensor } from "../tensor.ts";
import { fmt, numel } from "./util.ts";

/** Options shared by the creation functions. */
export interface CreateOptions {
  /** Element type (default float32, or inferred from a typed array). */
  dtype?: DType;
  /** Device (default: the default device). */
  device?: Device;
  /** Track gradients (float32 only). */
  requiresGrad?: boolean;
}

/** Nested arrays of numbers or booleans. */
export type NestedArray = number | boolean | NestedArray[];

function hostArray(length: number, dtype: DType): HostArray {
  return dtype === "float32"
    ? new Float32Array(length)
    : dtype === "int32"
    ? new Int32Array(length)
    : new Uint8Array(length);
}

function finish(data: HostArray, shape: readonly number[], opts: CreateOptions, dtype: DType): Tensor {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`tensor: invalid shape ${fmt(shape)}`);
  }
  const t = Tensor.fromHost(data, shape, dtype, opts.device ?? getDefaultDevice());
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

function firstLeaf(data: NestedArray): NestedArray | undefined {
  let cur: NestedArray | undefined = data;
  while (Array.isArray(cur)) cur = cur[0];
  return cur;
}

function inferShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let cur: NestedArray = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0];
    if (cur === undefined) break;
  }
  return shape;
}

/**
 * Creates a tensor from (nested) arrays or a typed array. `shape` reshapes flat data; the dtype is
 * taken from `opts.dtype`, else the typed array's type, else float32.
 */
export function tensor(
  data: NestedArray | HostArray | readonly number[],
  opts: CreateOptions & { shape?: readonly number[] } = {},
): Tensor {
  let dtype: DType = opts.dtype ??
    (data instanceof Int32Array ? "int32" : data instanceof Uint8Array ? "bool" : "float32");
  if (!opts.dtype && !ArrayBuffer.isView(data) && typeof firstLeaf(data as NestedArray) === "boolean") dtype = "bool";
  let flat: ArrayLike<number>;
  let shape: readonly number[];
  if (ArrayBuffer.isView(data)) {
    flat = data as HostArray;
    shape = opts.shape ?? [flat.length];
  } else {
    const inferred = inferShape(data as NestedArray);
    const out: number[] = [];
    const walk = (v: NestedArray, depth: number): void => {
      if (Array.isArray(v)) {
        if (v.length !== inferred[depth]) {
          throw new Error(
            `tensor: ragged nested array (at dim ${depth} expected ${
              inferred[depth] ?? "a number"
            }, got a list of ${v.length})`,
          );
        }
        for (const x of v) walk(x, depth + 1);
      } else {
        if (depth !== inferred.length) throw new Error(`tensor: ragged nested array at depth ${depth}`);
        out.push(typeof v === "boolean" ? +v : v);
      }
    };
    walk(data as NestedArray, 0);
    flat = out;
    shape = opts.shape ?? inferred;
  }
  if (numel(shape) !== flat.length) {
    throw new Error(`tensor: ${flat.length} values do not fill shape ${fmt(shape)} (${numel(shape)} elements)`);
  }
  const host = hostArray(flat.length, dtype);
  if (dtype === "bool") { for (let i = 0; i < flat.length; i++) host[i] = flat[i] ? 1 : 0; }
  else host.set(flat as ArrayLike<number>);
  return finish(host, shape, opts, dtype);
}

/** Alias of {@linkcode tensor}. */
export const fromArray: typeof tensor = tensor;

/** A tensor filled with `value`. */
export function full(shape: readonly number[], value: number, opts: CreateOptions = {}): Tensor {
  const dtype = opts.dtype ?? "float32";
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`full: invalid shape ${fmt(shape)}`);
  }
  const device = opts.device ?? getDefaultDevice();
  const t = Tensor.fromBuffer(getBackend(device).fill(numel(shape), value, dtype), shape, dtype, device);
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

/** A tensor of zeros. */
export function zeros(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return full(shape, 0, opts);
}

/** A tensor of ones. */
export function ones(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return full(shape, 1, opts);
}

/** Zeros with the shape, dtype and device of `t`. */
export function zerosLike(t: Tensor, opts: CreateOptions = {}): Tensor {
  return full(t.shape, 0, { dtype: t.dtype, device: t.device, ...opts });
}

/** Ones with the shape, dtype and device of `t`. */
export function onesLike(t: Tensor, opts: CreateOptions = {}): Tensor {
  return full(t.shape, 1, { dtype: t.dtype, device: t.device, ...opts });
}

/** Values `start, start+step, ...` below `end` (`arange(n)` counts 0..n-1). Integer arguments give int32 unless a dtype is given. */
export function arange(start: number, end?: number, step = 1, opts: CreateOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0) throw new RangeError("arange: step must be non-zero");
  const n = Math.max(0, Math.ceil((end - start) / step));
  const dtype = opts.dtype ?? ([start, end, step].every(Number.isInteger) ? "int32" : "float32");
  const host = hostArray(n, dtype);
  for (let i = 0; i < n; i++) host[i] = start + i * step;
  return finish(host, [n], opts, dtype);
}

/** `steps` evenly spaced values from `start` to `end` inclusive (float32). */
export function linspace(start: number, end: number, steps: number, opts: CreateOptions = {}): Tensor {
  if (!Number.isInteger(steps) || steps < 0) {
    throw new RangeError(`linspace: steps must be a non-negative integer, got ${steps}`);
  }
  const host = new Float32Array(steps);
  const step = steps > 1 ? (end - start) / (steps - 1) : 0;
  // as torch: the second half is computed from the end for symmetry
  for (let i = 0; i < steps; i++) host[i] = i < steps / 2 ? start + i * step : end - (steps - 1 - i) * step;
  return finish(host, [steps], opts, "float32");
}

/** Options of the random creation functions. */
export interface RandomOptions extends CreateOptions {
  /** Generator to draw from (default: the global one seeded by `manualSeed`). */
  generator?: Generator;
}

/** Uniform values in [0, 1). */
export function rand(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  const g = opts.generator ?? globalGenerator;
  const host = new Float32Array(numel(shape));
  for (let i = 0; i < host.length; i++) host[i] = g.uniform();
  return finish(host, shape, opts, "float32");
}

/** Standard normal values. */
export function randn(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  const g = opts.generator ?? globalGenerator;
  const host = new Float32Array(numel(shape));
  for (let i = 0; i < host.length; i++) host[i] = g.normal();
  return finish(host, shape, opts, "float32");
}

/** Uniform integers in [low, high) (int32). */
export function randint(low: number, high: number, shape: readonly number[], opts: RandomOptions = {}): Tensor {
  if (!(high > low)) throw new RangeError(`randint: need high > low, got low=${low} high=${high}`);
  const g = opts.generator ?? globalGenerator;
  const dtype = opts.dtype ?? "int32";
  const host = hostArray(numel(shape), dtype);
  for (let i = 0; i < host.length; i++) host[i] = g.int(low, high);
  return finish(host, shape, opts, dtype);
}
