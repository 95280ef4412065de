/**
 * Max pooling on the CPU: direct window loops over NCHW planes (no unfolded columns); the forward of tensors in
 * the tensor heap runs as a threaded WebAssembly kernel with the same scan.
 *
 * - Forward: each output scans its window's in-image taps row-major and keeps the first maximum (a tap
 *   replaces the running maximum when it is greater, or NaN), writing the value and its flat index
 *   `h·W + w` in the plane.
 * - Backward: a scatter loop, `dx[plane + index] += gy`, over the output positions.
 *
 * @module
 */

import type { Im2colParams } from "../../backend.ts";
import { WasmLayout } from "./wasm/module.ts";
import { heapWasm } from "./heap_kernels.ts";
import { splitRows } from "./wasm/threads.ts";

/** Planes a thread's share of a WebAssembly max-pool call has at least. */
const PLANES_PER_THREAD = 4;

/**
 * The forward through WebAssembly (wasm/src/pool.ts, the same scan, 3×3 stride-2 windows 4 outputs at a time),
 * planes split over the kernel threads, for x and out in the tensor heap; the indices are written to the
 * scratch space and copied out. False (nothing written) otherwise.
 */
export function maxPool2dForwardWasm(
  x: Float32Array,
  out: Float32Array,
  indices: Int32Array,
  p: Im2colParams,
): boolean {
  const m = heapWasm(x, out);
  if (!m) return false;
  const lay = new WasmLayout(), at = lay.take(indices.length);
  const mem = m.reserve(lay.bytes);
  if (!mem) return false;
  const geometry = [p.height, p.width, p.outH, p.outW, p.kernelH, p.kernelW, p.strideH, p.strideW, p.padH, p.padW];
  splitRows(p.batch * p.channels, PLANES_PER_THREAD, (p0, p1) => ({
    kernel: "maxPoolForward",
    args: [x.byteOffset, out.byteOffset, at, ...geometry, p.dilationH, p.dilationW, p0, p1],
  }), (call) => m.run(call));
  indices.set(new Int32Array(mem.buffer, at, indices.length));
  return true;
}

/** Forward: x (N, C, H, W) → out and indices (N, C, OH, OW). */
export function maxPool2dForward(x: Float32Array, out: Float32Array, indices: Int32Array, p: Im2colParams): void {
  const { height: H, width: W, kernelH: KH, kernelW: KW, outH: OH, outW: OW } = p;
  const { strideH: SH, strideW: SW, padH: PH, padW: PW, dilationH: DH, dilationW: DW } = p;
  const planes = p.batch * p.channels, plane = H * W, L = OH * OW;
  // the kernel rows [kiLo, kiHi) of each output row that fall inside the image
  const kiLo = new Int32Array(OH), kiHi = new Int32Array(OH);
  for (let oh = 0; oh < OH; oh++) {
    const h0 = oh * SH - PH;
    kiLo[oh] = Math.max(0, Math.ceil(-h0 / DH));
    kiHi[oh] = Math.max(kiLo[oh], Math.min(KH, Math.floor((H - 1 - h0) / DH) + 1));
  }
  const kjLo = new Int32Array(OW), kjHi = new Int32Array(OW);
  for (let ow = 0; ow < OW; ow++) {
    const w0 = ow * SW - PW;
    kjLo[ow] = Math.max(0, Math.ceil(-w0 / DW));
    kjHi[ow] = Math.max(kjLo[ow], Math.min(KW, Math.floor((W - 1 - w0) / DW) + 1));
  }
  // a window wholly inside the image: its taps' offsets from the window's corner, row-major
  const taps = new Int32Array(KH * KW);
  for (let ki = 0; ki < KH; ki++) for (let kj = 0; kj < KW; kj++) taps[ki * KW + kj] = ki * DH * W + kj * DW;
  for (let bc = 0; bc < planes; bc++) {
    const xBase = bc * plane;
    let o = bc * L;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = oh * SH - PH, k0 = kiLo[oh], k1 = kiHi[oh];
      for (let ow = 0; ow < OW; ow++, o++) {
        const w0 = ow * SW - PW, j0 = kjLo[ow], j1 = kjHi[ow];
        if (k1 - k0 === KH && j1 - j0 === KW) {
          // the same scan over the precomputed taps, without the bounds (most outputs)
          const corner = h0 * W + w0;
          let best = x[xBase + corner], t = 0;
          for (let k = 1; k < taps.length; k++) {
            const v = x[xBase + corner + taps[k]];
            // selects instead of a branch: which tap wins is data-dependent and mispredicts
            const take = v > best || v !== v;
            best = take ? v : best;
            t = take ? k : t;
          }
          out[o] = best;
          indices[o] = corner + taps[t];
          continue;
        }
        let best = -Infinity, at = (h0 + k0 * DH) * W + w0 + j0 * DW;
        for (let ki = k0; ki < k1; ki++) {
          const row = (h0 + ki * DH) * W + w0;
          for (let kj = j0; kj < j1; kj++) {
            const i = row + kj * DW;
            const v = x[xBase + i];
            if (v > best || v !== v) {
              best = v;
              at = i;
            }
          }
        }
        out[o] = best;
        indices[o] = at;
      }
    }
  }
}

/** The common 2×2, stride 2, unpadded, undilated case: the same scan without per-tap bookkeeping. */
export function maxPool2dForward2x2(x: Float32Array, out: Float32Array, indices: Int32Array, p: Im2colParams): void {
  const { height: H, width: W, outH: OH, outW: OW } = p;
  const planes = p.batch * p.channels, plane = H * W;
  let o = 0;
  for (let bc = 0; bc < planes; bc++) {
    const xBase = bc * plane;
    for (let oh = 0; oh < OH; oh++) {
      const r0 = 2 * oh * W, r1 = r0 + W;
      for (let ow = 0; ow < OW; ow++, o++) {
        const i0 = r0 + 2 * ow, i2 = r1 + 2 * ow;
        let best = x[xBase + i0], at = i0;
        const v1 = x[xBase + i0 + 1];
        if (v1 > best || v1 !== v1) {
          best = v1;
          at = i0 + 1;
        }
        const v2 = x[xBase + i2];
        if (v2 > best || v2 !== v2) {
          best = v2;
          at = i2;
        }
        const v3 = x[xBase + i2 + 1];
        if (v3 > best || v3 !== v3) {
          best = v3;
          at = i2 + 1;
        }
        out[o] = best;
        indices[o] = at;
      }
    }
  }
}

/** Backward: gy and indices (N, C, OH, OW) → dx (N, C, H, W), which it overwrites. */
export function maxPool2dBackward(gy: Float32Array, indices: Int32Array, dx: Float32Array, p: Im2colParams): void {
  const planes = p.batch * p.channels, plane = p.height * p.width, L = p.outH * p.outW;
  dx.fill(0);
  for (let bc = 0; bc < planes; bc++) {
    const xBase = bc * plane;
    for (let o = bc * L, end = o + L; o < end; o++) {
      const i = indices[o];
      if (i < 0 || i >= plane) throw new RangeError(`maxPool2dBackward: index ${i} is outside a ${plane}-pixel plane`);
      dx[xBase + i] += gy[o];
    }
  }
}

/** Whether {@linkcode maxPool2dForward2x2} applies. */
export function isPlain2x2(p: Im2colParams): boolean {
  return p.kernelH === 2 && p.kernelW === 2 && p.strideH === 2 && p.strideW === 2 && p.padH === 0 &&
    p.padW === 0 && p.dilationH === 1 && p.dilationW === 1;
}
