/**
 * Kernels that run on tensors in the tensor heap (wasm/heap.ts) in place, split over the kernel threads: the
 * float32 arithmetic ops with broadcasting (src/binary.ts), strided copies, permutes included (src/copy.ts), and
 * indexSelect with its gradient (src/gather.ts).
 * Each returns false (nothing written) when an operand is not in the heap, the shape has more than four
 * coalesced dims, or the work is too small to be worth a call; the caller then runs its TypeScript loop.
 *
 * @module
 */

import type { BinaryOp, HostArray } from "../../backend.ts";
import { coalesce } from "../../shape.ts";
import { type CpuWasm, cpuWasm, WasmLayout } from "./wasm/module.ts";
import { KernelOperands, onHeap } from "./wasm/heap.ts";
import { type KernelCall, runCalls, splitRows } from "./wasm/threads.ts";

/** The ops of src/binary.ts, in its op-code order. */
const HEAP_BINARY: readonly BinaryOp[] = ["add", "sub", "mul", "div"];
/** Below this many elements the TypeScript loops are as fast (no call, no thread hand-off). */
const MIN_ELEMENTS = 1 << 14;
/** Elements a thread's share should have at least. */
const PER_THREAD = 1 << 15;
/** Side of the square tiles of a transposing copy (src/copy.ts, and backend.ts's loop): two 32² float tiles stay in L1. */
export const TILE = 32;

/**
 * For a copy coalesced to dims `cs` with source and destination strides `ss`, `ds`: the dim j that walks the
 * source contiguously while the innermost destination dim walks it with a stride (a permute that moves the
 * source's innermost dim), when both are at least a tile long; −1 when the copy is not such a transpose. Row by
 * row such a copy misses the cache on every source read, so it goes in tiles over j and the innermost dim.
 */
export function transposeAxis(cs: readonly number[], ss: readonly number[], ds: readonly number[]): number {
  const last = cs.length - 1;
  if (last < 1 || ds[last] !== 1 || ss[last] === 1 || cs[last] < TILE) return -1;
  const j = ss.indexOf(1);
  return j < 0 || j === last || cs[j] < TILE ? -1 : j;
}

const isHeapF32 = (a: HostArray): boolean => a instanceof Float32Array && onHeap(a);

/**
 * The kernels, when they can work on every one of `arrays` in place (float32 arrays in the tensor heap) and the
 * runtime has them; null otherwise (the caller runs its TypeScript loop).
 */
export function heapWasm(...arrays: HostArray[]): CpuWasm | null {
  return arrays.every(isHeapF32) ? cpuWasm() : null;
}

/** Pads a coalesced shape and its strides to 4 dims at the front; null when there are more. */
function four(shape: number[], strides: number[][]): [number[], number[][]] | null {
  if (shape.length > 4) return null;
  const pad = 4 - shape.length;
  return [[...Array(pad).fill(1), ...shape], strides.map((s) => [...Array(pad).fill(0), ...s])];
}

/** o = x op y over `shape` (x, y read with their strides, 0 where they broadcast; o contiguous). */
export function binaryOnHeap(
  op: BinaryOp,
  o: HostArray,
  x: HostArray,
  y: HostArray,
  shape: readonly number[],
  stridesA: readonly number[],
  stridesB: readonly number[],
): boolean {
  const code = HEAP_BINARY.indexOf(op);
  if (code < 0 || o.length < MIN_ELEMENTS || !isHeapF32(o)) return false;
  if (!(x instanceof Float32Array && y instanceof Float32Array)) return false;
  const m = cpuWasm();
  const dims = four(...coalesce(shape, [stridesA, stridesB]));
  if (!m || !dims) return false;
  // an operand outside the heap (a bias, a scale: small) goes through the scratch space
  const ops = new KernelOperands(), px = ops.input(x), py = ops.input(y);
  if (!ops.stage(m)) return false;
  const [[, n1, n2, len], [sa, sb]] = dims, rows = o.length / len;
  splitRows(
    rows,
    Math.ceil(PER_THREAD / len),
    (r0, r1) => ({
      kernel: "binary",
      args: [code, px, py, o.byteOffset, n1, n2, len, ...sa, ...sb, r0, r1],
    }),
    (call) => m.run(call),
  );
  return true;
}

/** d[dstOffset + Σ i·dstStrides] = s[srcOffset + Σ i·srcStrides] over `shape`. */
export function copyOnHeap(
  s: HostArray,
  srcOffset: number,
  srcStrides: readonly number[],
  d: HostArray,
  dstOffset: number,
  dstStrides: readonly number[],
  shape: readonly number[],
): boolean {
  const count = shape.reduce((a, b) => a * b, 1);
  const m = count < MIN_ELEMENTS ? null : heapWasm(s, d);
  if (!m) return false;
  const [cs, [ss, ds]] = coalesce(shape, [srcStrides, dstStrides]);
  const src0 = s.byteOffset + 4 * srcOffset, dst0 = d.byteOffset + 4 * dstOffset;
  const j = transposeAxis(cs, ss, ds);
  if (j >= 0) {
    transposeCalls(m.run, cs, ss, ds, j, src0, dst0);
    return true;
  }
  const dims = four(cs, [ss, ds]);
  if (!dims) return false;
  const [[, n1, n2, len], [sv, dv]] = dims;
  splitRows(
    count / len,
    Math.ceil(PER_THREAD / len),
    (r0, r1) => ({ kernel: "copy", args: [src0, dst0, n1, n2, len, ...sv, ...dv, r0, r1] }),
    (call) => m.run(call),
  );
  return true;
}

/**
 * The permute whose innermost destination dim `last` walks the source with a stride while dim `j` walks it
 * contiguously: one transpose call per index of the other dims and share of j's range.
 */
function transposeCalls(
  run: (call: KernelCall) => void,
  cs: number[],
  ss: number[],
  ds: number[],
  j: number,
  src0: number,
  dst0: number,
): void {
  const last = cs.length - 1, nj = cs[j];
  const outer = cs.map((_, k) => k).filter((k) => k !== j && k !== last);
  const starts: [number, number][] = [[src0, dst0]];
  for (const k of outer) {
    const next: [number, number][] = [];
    for (const [a, b] of starts) for (let i = 0; i < cs[k]; i++) next.push([a + 4 * i * ss[k], b + 4 * i * ds[k]]);
    starts.splice(0, starts.length, ...next);
  }
  const parts = Math.max(1, Math.min(Math.ceil(nj / TILE), Math.floor(nj * cs[last] / PER_THREAD), 64));
  const list: KernelCall[] = [];
  for (const [a, b] of starts) {
    for (let p = 0; p < parts; p++) {
      const a0 = Math.floor(nj * p / parts), a1 = Math.floor(nj * (p + 1) / parts);
      list.push({ kernel: "transpose", args: [a, b, cs[last], ss[last], ds[j], a0, a1] });
    }
  }
  runCalls(list, run);
}

/** Rows a thread's share of a gather or scatter-add call has at least (in elements: rows × count × inner). */
const GATHER_PER_THREAD = 1 << 15;

/**
 * indexSelect (kernel "gather") or its gradient ("scatterAdd", which zeroes `o` first) on x and o in the heap, over
 * (outer, ·, inner) rows split over the threads; `index` (checked by the caller) goes through the scratch space.
 * False (nothing written) when the operands are not in the heap.
 */
export function indexOnHeap(
  kernel: "gather" | "scatterAdd",
  x: HostArray,
  index: Int32Array,
  o: HostArray,
  outer: number,
  size: number,
  count: number,
  inner: number,
): boolean {
  const m = heapWasm(x, o);
  if (!m) return false;
  const lay = new WasmLayout(), at = lay.take(index.length);
  const mem = m.reserve(lay.bytes);
  if (!mem) return false;
  new Int32Array(mem.buffer, at, index.length).set(index);
  splitRows(
    outer,
    Math.ceil(GATHER_PER_THREAD / (count * inner)),
    (r0, r1) => ({ kernel, args: [x.byteOffset, at, o.byteOffset, size, count, inner, r0, r1] }),
    (call) => m.run(call),
  );
  return true;
}
