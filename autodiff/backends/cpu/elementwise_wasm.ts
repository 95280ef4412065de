/**
 * Unary elementwise ops through WebAssembly SIMD (src/elementwise.ts) for the ops whose scalar forms call
 * `Math.exp` (exp, sigmoid, silu, gelu, softplus and the gradients of silu and gelu): 4 lanes at a time with
 * vector polynomials, 5–10× the scalar loop. The input goes through the module's memory in blocks that stay
 * in cache.
 *
 * @module
 */

import type { UnaryOp } from "../../backend.ts";
import { cpuWasm, WasmLayout } from "./wasm/module.ts";

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
  const lay = new WasmLayout();
  const src = lay.take(BLOCK), dst = lay.take(BLOCK);
  const mem = m.reserve(lay.bytes);
  for (let i = 0; i < x.length; i += BLOCK) {
    const n = Math.min(BLOCK, x.length - i);
    mem.set(x.subarray(i, i + n), src >> 2);
    m.exports.unary(code, src, dst, (n + 7) & ~7);
    o.set(mem.subarray(dst >> 2, (dst >> 2) + n), i);
  }
  return true;
}
