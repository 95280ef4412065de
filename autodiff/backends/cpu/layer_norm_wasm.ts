/**
 * Layer normalisation through WebAssembly (wasm/src/layer_norm.ts) for tensors in the tensor heap, split over
 * the kernel threads: rows (inner = 1) or outer indices (the channels-first LayerNorm2d) per call. The kernels
 * do the reference loops' float64 arithmetic in the same order (layer_norm.ts), so y, mean, rstd and dx are
 * identical to them; the weight and bias gradients are summed in float64 per fixed chunk of rows, then chunk by
 * chunk in order, so they do not depend on the thread count either.
 *
 * @module
 */

import { cpuWasm } from "./wasm/module.ts";
import { KernelOperands, onHeap } from "./wasm/heap.ts";
import { cpuThreads, type KernelCall, parallelCalls, runCalls } from "./wasm/threads.ts";

/** Below this many elements the reference loops are as fast. */
const MIN_ELEMENTS = 1 << 14;
/** Row chunks of the backward's weight-gradient partial sums (inner = 1), a fixed count so sums do not depend on threads. */
const CHUNKS = 64;

/** eps (a float64) as the two little-endian words a kernel argument takes. */
function words(v: number): [number, number] {
  const w = new Int32Array(new Float64Array([v]).buffer);
  return [w[0], w[1]];
}

/** Outer ranges of `count` items: fixed chunks of rows for inner = 1, one outer index each otherwise. */
function ranges(outer: number, inner: number): [number, number][] {
  const k = inner === 1 ? Math.min(outer, CHUNKS) : outer;
  return Array.from({ length: k }, (_, i) => [Math.floor(outer * i / k), Math.floor(outer * (i + 1) / k)]);
}

/**
 * Runs the `count` calls over the threads: rows (inner = 1) need no scratch, so the calls go out as one share per
 * thread (runCalls); outer indices use their slot's scratch, one round of calls at a time.
 */
function spread(
  count: number,
  threads: number,
  inner: number,
  call: (slot: number, i: number) => KernelCall,
  run: (c: KernelCall) => void,
): void {
  if (inner === 1) runCalls(Array.from({ length: count }, (_, i) => call(0, i)), run);
  else parallelCalls(count, threads, call, () => {}, run);
}

/** {@linkcode layerNormForward} in place; false (nothing written) when the operands are not in the heap. */
export function layerNormForwardWasm(
  x: Float32Array,
  w: Float32Array | null,
  b: Float32Array | null,
  y: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  outer: number,
  size: number,
  inner: number,
  eps: number,
): boolean {
  const m = cpuWasm();
  if (!m || x.length < MIN_ELEMENTS || !onHeap(x) || !onHeap(y)) return false;
  const ops = new KernelOperands();
  const args = [x, w, b].map((a) => ops.input(a)).concat([y, mean, rstd].map((a) => ops.output(a)));
  const parts = ranges(outer, inner), threads = Math.min(parts.length, cpuThreads());
  const scratch = Array.from({ length: threads }, () => (inner > 1 ? ops.scratch(4 * inner) : 0));
  const mem = ops.stage(m);
  if (!mem) return false;
  const [lo, hi] = words(eps);
  const call = (slot: number, i: number): KernelCall => ({
    kernel: "lnForward",
    args: [...args, size, inner, lo, hi, ...parts[i], scratch[slot]],
  });
  spread(parts.length, threads, inner, call, (c) => m.run(c));
  ops.collect(mem);
  return true;
}

/** {@linkcode layerNormBackward} in place; false (nothing written) when the operands are not in the heap. */
export function layerNormBackwardWasm(
  gy: Float32Array,
  x: Float32Array,
  w: Float32Array | null,
  mean: Float32Array,
  rstd: Float32Array,
  dx: Float32Array | null,
  dw: Float32Array | null,
  db: Float32Array | null,
  outer: number,
  size: number,
  inner: number,
): boolean {
  const m = cpuWasm();
  if (!m || x.length < MIN_ELEMENTS || !onHeap(x) || !onHeap(gy) || (dx && !onHeap(dx))) return false;
  const ops = new KernelOperands();
  const args = [gy, x, w, mean, rstd].map((a) => ops.input(a)).concat(ops.output(dx));
  const parts = ranges(outer, inner), threads = Math.min(parts.length, cpuThreads());
  // each chunk's float64 partial sums of dw and db (2 floats a value)
  const sums = parts.map(() => [dw ? ops.scratch(2 * size) : 0, db ? ops.scratch(2 * size) : 0]);
  const scratch = Array.from({ length: threads }, () => (inner > 1 ? ops.scratch(4 * inner) : 0));
  const mem = ops.stage(m);
  if (!mem) return false;
  const call = (slot: number, i: number): KernelCall => ({
    kernel: "lnBackward",
    args: [...args, ...sums[i], size, inner, ...parts[i], scratch[slot]],
  });
  spread(parts.length, threads, inner, call, (c) => m.run(c));
  ops.collect(mem);
  [dw, db].forEach((out, k) => {
    if (!out) return;
    const total = new Float64Array(size);
    for (const s of sums) {
      const part = new Float64Array(mem.buffer, s[k], size);
      for (let i = 0; i < size; i++) total[i] += part[i];
    }
    out.set(total);
  });
  return true;
}
