/**
 * Unary elementwise ops through WebAssembly SIMD (src/elementwise.ts) for the ops whose scalar forms call
 * `Math.exp` (exp, sigmoid, silu, gelu, softplus and the gradients of silu and gelu): 4 lanes at a time with
 * vector polynomials, 5–10× the scalar loop. The input goes through the module's memory in blocks that stay
 * in cache, spread over the kernel threads (wasm/threads.ts).
 *
 * @module
 */

import type { UnaryOp } from "../../backend.ts";
import { cpuWasm, WasmLayout } from "./wasm/module.ts";
import { cpuThreads, parallelCalls } from "./wasm/threads.ts";

/** The ops with a WebAssembly kernel, in the op-code order of src/elementwise.ts. */
const WASM_UNARY: readonly UnaryOp[] = ["exp", "sigmoid", "silu", "gelu", "softplus", "siluGrad", "geluGrad"];

/** Elements per block (256 KB each way). */
const BLOCK = 1 << 16;
/** Below this, the scalar loop is as fast (no copies). */
const MIN_LENGTH = 256;

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
  const blocks = Math.ceil(x.length / BLOCK);
  const lay = new WasmLayout();
  const regions = Array.from({ length: Math.min(blocks, cpuThreads()) }, () => ({
    src: lay.take(BLOCK),
    dst: lay.take(BLOCK),
  }));
  const mem = m.reserve(lay.bytes);
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
