/**
 * Depthwise convolution on the CPU through WebAssembly SIMD (src/depthwise.ts), at stride 1 (what the SSM
 * blocks use): each image's planes go through the module's memory, and every tap is a vectorised row update; images are
 * spread over the kernel threads (wasm/threads.ts).
 * Other strides, and runtimes without WebAssembly SIMD, use the scalar loops of backend.ts.
 *
 * @module
 */

import type { Im2colParams } from "../../backend.ts";
import { cpuWasm, reserveRegions, WasmLayout } from "./wasm/module.ts";
import { onHeap } from "./wasm/heap.ts";
import { cpuThreads, parallelCalls } from "./wasm/threads.ts";

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

/** One image's regions: its input planes, output planes and (weight gradient) partial sums, and 9 vectors of scratch. */
interface ImageRegion {
  a: number;
  b: number;
  c: number;
  acc: number;
}

/**
 * Runs `kernel` once per image, over the kernel threads: `a` gets image b's slice of `first` (`firstSize`
 * floats), `b` its slice of `second` when given, and `collect(region, image)` reads the results. Where the
 * images and `out` (the forward's and input gradient's result, null for the weight gradient) are in the
 * tensor heap, the kernel reads and writes them in place and `collect` is not called for them.
 */
function perImage(
  p: Im2colParams,
  w: Float32Array,
  kernel: "dwForward" | "dwBackwardInput" | "dwBackwardWeight",
  sizes: [number, number, number],
  first: Float32Array,
  second: Float32Array | null,
  out: Float32Array | null,
  collect: (mem: Float32Array, r: ImageRegion, image: number) => void,
): boolean {
  const m = cpuWasm()!;
  const inPlace = onHeap(first) && (!second || onHeap(second)) && (!out || onHeap(out));
  // one region per thread, fewer when they do not fit the scratch space
  const planned = reserveRegions(m, Math.min(p.batch, cpuThreads()), (k) => {
    const lay = new WasmLayout();
    const pw = kernel === "dwBackwardWeight" ? 0 : lay.take(w.length);
    const regions: ImageRegion[] = Array.from({ length: k }, () => ({
      a: inPlace ? 0 : lay.take(sizes[0]),
      b: inPlace ? 0 : lay.take(sizes[1]),
      c: inPlace && out ? 0 : lay.take(sizes[2]),
      acc: lay.take(36),
    }));
    return { lay, pw, regions };
  });
  if (!planned) return false;
  const { mem, pw, regions } = planned;
  if (pw) mem.set(w, pw >> 2);
  const at = (t: Float32Array, b: number, size: number) => t.byteOffset + 4 * b * size;
  parallelCalls(
    p.batch,
    regions.length,
    (slot, b) => {
      const r = regions[slot];
      let ra = r.a, rb = r.b, rc = r.c;
      if (inPlace) {
        ra = at(first, b, sizes[0]);
        if (second) rb = at(second, b, sizes[1]);
        if (out) rc = at(out, b, sizes[2]);
      } else {
        mem.set(first.subarray(b * sizes[0], (b + 1) * sizes[0]), r.a >> 2);
        if (second) mem.set(second.subarray(b * sizes[1], (b + 1) * sizes[1]), r.b >> 2);
        else mem.fill(0, r.b >> 2, (r.b >> 2) + sizes[1]);
      }
      // forward and input gradient: (input, weights, output); weight gradient: (x, gy, dw)
      if (kernel !== "dwBackwardWeight") return { kernel, args: [ra, pw, rc, ...geometry(p)] };
      mem.fill(0, r.c >> 2, (r.c >> 2) + sizes[2]);
      return { kernel, args: [ra, rb, rc, ...geometry(p), r.acc] };
    },
    (slot, b) => {
      if (!(inPlace && out)) collect(mem, regions[slot], b);
    },
    (call) => m.run(call),
  );
  return true;
}

/** out = depthwise conv of x; false (nothing written) when `p` is not handled. */
export function depthwiseForwardWasm(out: Float32Array, x: Float32Array, w: Float32Array, p: Im2colParams): boolean {
  if (!handles(p)) return false;
  const inSize = p.channels * p.height * p.width, outSize = p.channels * p.outH * p.outW;
  return perImage(p, w, "dwForward", [inSize, 0, outSize], x, null, out, (mem, r, b) => {
    out.set(mem.subarray(r.c >> 2, (r.c >> 2) + outSize), b * outSize);
  });
}

/** gx = the input gradient; false (nothing written) when `p` is not handled. */
export function depthwiseBackwardInputWasm(
  gx: Float32Array,
  gy: Float32Array,
  w: Float32Array,
  p: Im2colParams,
): boolean {
  if (!handles(p)) return false;
  const inSize = p.channels * p.height * p.width, outSize = p.channels * p.outH * p.outW;
  return perImage(p, w, "dwBackwardInput", [outSize, 0, inSize], gy, null, gx, (mem, r, b) => {
    gx.set(mem.subarray(r.c >> 2, (r.c >> 2) + inSize), b * inSize);
  });
}

/** dw = the weight gradient (per-image sums added in float64, image by image); false when `p` is not handled. */
export function depthwiseBackwardWeightWasm(
  dw: Float32Array,
  x: Float32Array,
  gy: Float32Array,
  p: Im2colParams,
): boolean {
  if (!handles(p)) return false;
  const inSize = p.channels * p.height * p.width, outSize = p.channels * p.outH * p.outW;
  const total = new Float64Array(dw.length);
  const ran = perImage(p, dw, "dwBackwardWeight", [inSize, outSize, dw.length], x, gy, null, (mem, r) => {
    for (let i = 0; i < dw.length; i++) total[i] += mem[(r.c >> 2) + i];
  });
  if (ran) dw.set(total);
  return ran;
}
