/**
 * Depthwise convolution on the CPU through WebAssembly SIMD (src/depthwise.ts), at stride 1 (what the SSM
 * blocks use): each image's planes go through the module's memory, and every tap is a vectorised row update.
 * Other strides, and runtimes without WebAssembly SIMD, use the scalar loops of backend.ts.
 *
 * @module
 */

import type { Im2colParams } from "../../backend.ts";
import { cpuWasm, WasmLayout } from "./wasm/module.ts";

const geometry = (p: Im2colParams): number[] => [
  p.channels,
  p.height,
  p.width,
  p.kernelH,
  p.kernelW,
  p.outH,
  p.outW,
  p.padH,
  p.padW,
  p.dilationH,
  p.dilationW,
];

/** Whether the WebAssembly kernels handle `p`. */
function handles(p: Im2colParams): boolean {
  return p.strideH === 1 && p.strideW === 1 && cpuWasm() !== null;
}

/** out = depthwise conv of x; false (nothing written) when `p` is not handled. */
export function depthwiseForwardWasm(out: Float32Array, x: Float32Array, w: Float32Array, p: Im2colParams): boolean {
  if (!handles(p)) return false;
  const m = cpuWasm()!;
  const inSize = p.channels * p.height * p.width, outSize = p.channels * p.outH * p.outW;
  const lay = new WasmLayout();
  const px = lay.take(inSize), pw = lay.take(w.length), po = lay.take(outSize);
  const mem = m.reserve(lay.bytes);
  mem.set(w, pw >> 2);
  for (let b = 0; b < p.batch; b++) {
    mem.set(x.subarray(b * inSize, (b + 1) * inSize), px >> 2);
    m.exports.dwForward(px, pw, po, ...geometry(p));
    out.set(mem.subarray(po >> 2, (po >> 2) + outSize), b * outSize);
  }
  return true;
}

/** gx = the input gradient; false (nothing written) when `p` is not handled. */
export function depthwiseBackwardInputWasm(
  gx: Float32Array,
  gy: Float32Array,
  w: Float32Array,
  p: Im2colParams,
): boolean {
  if (!handles(p)) return false;
  const m = cpuWasm()!;
  const inSize = p.channels * p.height * p.width, outSize = p.channels * p.outH * p.outW;
  const lay = new WasmLayout();
  const pg = lay.take(outSize), pw = lay.take(w.length), px = lay.take(inSize);
  const mem = m.reserve(lay.bytes);
  mem.set(w, pw >> 2);
  for (let b = 0; b < p.batch; b++) {
    mem.set(gy.subarray(b * outSize, (b + 1) * outSize), pg >> 2);
    m.exports.dwBackwardInput(pg, pw, px, ...geometry(p));
    gx.set(mem.subarray(px >> 2, (px >> 2) + inSize), b * inSize);
  }
  return true;
}

/** dw = the weight gradient (per-image sums added in float64); false when `p` is not handled. */
export function depthwiseBackwardWeightWasm(
  dw: Float32Array,
  x: Float32Array,
  gy: Float32Array,
  p: Im2colParams,
): boolean {
  if (!handles(p)) return false;
  const m = cpuWasm()!;
  const inSize = p.channels * p.height * p.width, outSize = p.channels * p.outH * p.outW;
  const lay = new WasmLayout();
  const px = lay.take(inSize), pg = lay.take(outSize), pd = lay.take(dw.length);
  const mem = m.reserve(lay.bytes);
  const total = new Float64Array(dw.length);
  for (let b = 0; b < p.batch; b++) {
    mem.set(x.subarray(b * inSize, (b + 1) * inSize), px >> 2);
    mem.set(gy.subarray(b * outSize, (b + 1) * outSize), pg >> 2);
    mem.fill(0, pd >> 2, (pd >> 2) + dw.length);
    m.exports.dwBackwardWeight(px, pg, pd, ...geometry(p));
    for (let i = 0; i < dw.length; i++) total[i] += mem[(pd >> 2) + i];
  }
  dw.set(total);
  return true;
}
