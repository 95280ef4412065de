/**
 * Unary elementwise ops through WebAssembly SIMD (src/elementwise.ts) for the ops whose scalar forms call
 * `Math.exp` (exp, sigmoid, silu, gelu, softplus and the gradients of silu and gelu), and relu (the backend uses
 * it for tensors in the heap only): 4 lanes at a time with vector polynomials, 5–10× the scalar loop. The input goes through the module's memory in blocks that stay
 * in cache, spread over the kernel threads (wasm/threads.ts).
 *
 * @module
 */

import type { UnaryOp } from "../../backend.ts";
import { cpuWasm, WasmLayout } from "./wasm/module.ts";
import { onHeap } from "./wasm/heap.ts";
import { cpuThreads, type KernelCall, parallelCalls, runCalls, splitRows } from "./wasm/threads.ts";

/** The ops with a WebAssembly kernel, in the op-code order of src/elementwise.ts. */
const WASM_UNARY: readonly UnaryOp[] = ["exp", "sigmoid", "silu", "gelu", "softplus", "siluGrad", "geluGrad", "relu"];

/** Elements per block (256 KB each way). */
const BLOCK = 1 << 16;
/** Below this, the scalar loop is as fast (no copies). */
const MIN_LENGTH = 256;
/** Elements a thread's share of an in-place call should have at least. */
const PER_THREAD = 1 << 14;

/** The op code of `op`, or −1 when it has no WebAssembly kernel. */
export function wasmUnaryCode(op: UnaryOp): number {
  return WASM_UNARY.indexOf(op);
}

/** `o[i] = op(x[i])` through WebAssembly; false (nothing written) when unavailable or not worth it. */
export function unaryWasm(op: UnaryOp, o: Float32Array, x: Float32Array): boolean {
  const code = wasmUnaryCode(op);
  if (code < 0 || x.length < MIN_LENGTH) return false;
  const m = cpuWasm();
  if (!m) return false;
  if (onHeap(x) && onHeap(o)) {
    // in place: heap blocks are whole 64-byte lines, so rounding the length up to 8 stays inside them
    const groups = Math.ceil(x.length / 8);
    splitRows(groups, PER_THREAD / 8, (g0, g1) => ({
      kernel: "unary",
      args: [code, x.byteOffset + 32 * g0, o.byteOffset + 32 * g0, 8 * (g1 - g0)],
    }), (call) => m.run(call));
    return true;
  }
  const blocks = Math.ceil(x.length / BLOCK);
  const lay = new WasmLayout();
  const regions = Array.from({ length: Math.min(blocks, cpuThreads()) }, () => ({
    src: lay.take(BLOCK),
    dst: lay.take(BLOCK),
  }));
  const mem = m.reserve(lay.bytes);
  if (!mem) return false;
  const span = (i: number) => [i * BLOCK, Math.min(x.length, (i + 1) * BLOCK)];
  parallelCalls(
    blocks,
    regions.length,
    (slot, i) => {
      const [a, b] = span(i), r = regions[slot];
      mem.set(x.subarray(a, b), r.src >> 2);
      return { kernel: "unary", args: [code, r.src, r.dst, (b - a + 7) & ~7] };
    },
    (slot, i) => {
      const [a, b] = span(i), r = regions[slot];
      o.set(mem.subarray(r.dst >> 2, (r.dst >> 2) + b - a), a);
    },
    (call) => m.run(call),
  );
  return true;
}

/**
 * Runs a two-input block kernel over x viewed as (outer, 2, span): for every row, the halves a = x[·, 0] and
 * b = x[·, 1] go through the module's memory a block at a time with the extra operands `more` (each (outer,
 * span)); `outs` ((outer, 2·span) or (outer, span) arrays, `outSpan` apart) get what the kernel writes.
 */
function pairBlocks(
  kernel: "geluCross" | "geluCrossGrad",
  x: Float32Array,
  more: Float32Array[],
  outs: { data: Float32Array; rowStride: number; shift: number }[],
  outer: number,
  span: number,
): boolean {
  const m = cpuWasm();
  if (!m || outer * span < MIN_LENGTH) return false;
  if (span % 4 === 0 && span >= 1024 && [x, ...more, ...outs.map((o) => o.data)].every(onHeap)) {
    // in place, in row chunks of a multiple of 4 (the kernels' vector width) spread over the threads
    const per = Math.ceil(span / PER_THREAD), step = Math.ceil(span / per / 4) * 4, calls: KernelCall[] = [];
    for (let row = 0; row < outer; row++) {
      for (let start = 0; start < span; start += step) {
        const len = Math.min(step, span - start), a = x.byteOffset + 4 * (row * 2 * span + start);
        calls.push({
          kernel,
          args: [
            a,
            a + 4 * span,
            ...more.map((t) => t.byteOffset + 4 * (row * span + start)),
            ...outs.map((o) => o.data.byteOffset + 4 * (row * o.rowStride + o.shift + start)),
            len,
          ],
        });
      }
    }
    runCalls(calls, (call) => m.run(call));
    return true;
  }
  const per = Math.ceil(span / BLOCK), items = outer * per;
  const lay = new WasmLayout();
  const regions = Array.from({ length: Math.min(items, cpuThreads()) }, () => ({
    ins: Array.from({ length: 2 + more.length }, () => lay.take(BLOCK)),
    outs: outs.map(() => lay.take(BLOCK)),
  }));
  const mem = m.reserve(lay.bytes);
  if (!mem) return false;
  const at = (i: number) => {
    const row = Math.floor(i / per), start = (i % per) * BLOCK;
    return { row, start, len: Math.min(BLOCK, span - start) };
  };
  parallelCalls(
    items,
    regions.length,
    (slot, i) => {
      const { row, start, len } = at(i), r = regions[slot];
      const a = row * 2 * span + start;
      mem.set(x.subarray(a, a + len), r.ins[0] >> 2);
      mem.set(x.subarray(a + span, a + span + len), r.ins[1] >> 2);
      more.forEach((t, k) => mem.set(t.subarray(row * span + start, row * span + start + len), r.ins[2 + k] >> 2));
      return { kernel, args: [...r.ins, ...r.outs, (len + 3) & ~3] };
    },
    (slot, i) => {
      const { row, start, len } = at(i), r = regions[slot];
      outs.forEach((o, k) => {
        const src = r.outs[k] >> 2;
        o.data.set(mem.subarray(src, src + len), row * o.rowStride + o.shift + start);
      });
    },
    (call) => m.run(call),
  );
  return true;
}

/** o (outer, span) = gelu(a)·b + gelu(b)·a for x (outer, 2, span) = [a, b]; false when unavailable. */
export function geluCrossWasm(o: Float32Array, x: Float32Array, outer: number, span: number): boolean {
  return pairBlocks("geluCross", x, [], [{ data: o, rowStride: span, shift: 0 }], outer, span);
}

/** dx (outer, 2, span) of {@linkcode geluCrossWasm} given g (outer, span); false when unavailable. */
export function geluCrossGradWasm(
  dx: Float32Array,
  x: Float32Array,
  g: Float32Array,
  outer: number,
  span: number,
): boolean {
  const halves = [0, span].map((shift) => ({ data: dx, rowStride: 2 * span, shift }));
  return pairBlocks("geluCrossGrad", x, [g], halves, outer, span);
}
