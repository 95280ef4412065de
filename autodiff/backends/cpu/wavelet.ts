/**
 * The Haar wavelet transform of Wave-MambaAD on the CPU: the MWCNN-style `dwt_init` / `iwt_init`, one loop
 * iteration per 2×2 quad of an NCHW plane.
 *
 * With a = x[2i, 2j], b = x[2i+1, 2j] (row below), c = x[2i, 2j+1] (column right), d = x[2i+1, 2j+1]:
 *
 * - DWT: LL = (a+b+c+d)/2, HL = (−a−b+c+d)/2, LH = (−a+b−c+d)/2, HH = (a−b−c+d)/2, stacked on the batch
 *   axis in the order [LL, HL, LH, HH]: (B, C, H, W) → (4B, C, H/2, W/2).
 * - IWT (the exact inverse, and the transpose, of the orthonormal DWT): a = (LL−HL−LH+HH)/2,
 *   b = (LL−HL+LH−HH)/2, c = (LL+HL−LH−HH)/2, d = (LL+HL+LH+HH)/2: (4B, C, h, w) → (B, C, 2h, 2w).
 *
 * Arithmetic follows the official PyTorch code step by step in float32 (each tap halved first, then summed
 * left to right, every intermediate rounded with `Math.fround`), so the results are bitwise PyTorch's. Arrays in
 * the tensor heap go through the same operations as WebAssembly kernels (wasm/src/haar.ts), 4 quads a vector,
 * planes split over the kernel threads.
 *
 * @module
 */

import { heapWasm } from "./heap_kernels.ts";
import { splitRows } from "./wasm/threads.ts";

const fr = Math.fround;

/** Elements a thread's share of a WebAssembly Haar call has at least. */
const PER_THREAD = 1 << 15;

/** The transform through WebAssembly (src/haar.ts, bitwise the loops below) for arrays in the heap; false otherwise. */
function haarWasm(
  kernel: "haarDwt" | "haarIwt",
  src: Float32Array,
  out: Float32Array,
  args: number[],
  planes: number,
): boolean {
  const m = heapWasm(src, out);
  if (!m) return false;
  const perPlane = src.length / planes;
  splitRows(
    planes,
    Math.ceil(PER_THREAD / perPlane),
    (p0, p1) => ({ kernel, args: [src.byteOffset, out.byteOffset, planes, ...args, p0, p1] }),
    (call) => m.run(call),
  );
  return true;
}

/**
 * DWT: `x` holds `planes` (= batch·channels) planes of height × width (both even); `out` receives the four
 * sub-bands, band k at offset k·planes·(height/2)·(width/2).
 */
export function haarDwtForward(
  x: Float32Array,
  out: Float32Array,
  planes: number,
  height: number,
  width: number,
): void {
  if (haarWasm("haarDwt", x, out, [height, width], planes)) return;
  const h = height >> 1, w = width >> 1, band = planes * h * w;
  let q = 0;
  for (let p = 0; p < planes; p++) {
    const base = p * height * width;
    for (let i = 0; i < h; i++) {
      const r0 = base + 2 * i * width, r1 = r0 + width;
      for (let j = 0; j < w; j++, q++) {
        const x1 = fr(x[r0 + 2 * j] * 0.5); // a
        const x2 = fr(x[r1 + 2 * j] * 0.5); // b
        const x3 = fr(x[r0 + 2 * j + 1] * 0.5); // c
        const x4 = fr(x[r1 + 2 * j + 1] * 0.5); // d
        out[q] = fr(fr(fr(x1 + x2) + x3) + x4);
        out[band + q] = fr(fr(fr(-x1 - x2) + x3) + x4);
        out[2 * band + q] = fr(fr(fr(-x1 + x2) - x3) + x4);
        out[3 * band + q] = fr(fr(fr(x1 - x2) - x3) + x4);
      }
    }
  }
}

/**
 * IWT: `y` holds the four sub-bands of `planes` planes of h × w, band k at offset k·planes·h·w; `out`
 * receives `planes` planes of 2h × 2w.
 */
export function haarIwtForward(y: Float32Array, out: Float32Array, planes: number, h: number, w: number): void {
  if (haarWasm("haarIwt", y, out, [h, w], planes)) return;
  const band = planes * h * w, width = 2 * w;
  let q = 0;
  for (let p = 0; p < planes; p++) {
    const base = p * 4 * h * w;
    for (let i = 0; i < h; i++) {
      const r0 = base + 2 * i * width, r1 = r0 + width;
      for (let j = 0; j < w; j++, q++) {
        const x1 = fr(y[q] * 0.5); // LL
        const x2 = fr(y[band + q] * 0.5); // HL
        const x3 = fr(y[2 * band + q] * 0.5); // LH
        const x4 = fr(y[3 * band + q] * 0.5); // HH
        out[r0 + 2 * j] = fr(fr(fr(x1 - x2) - x3) + x4);
        out[r1 + 2 * j] = fr(fr(fr(x1 - x2) + x3) - x4);
        out[r0 + 2 * j + 1] = fr(fr(fr(x1 + x2) - x3) - x4);
        out[r1 + 2 * j + 1] = fr(fr(fr(x1 + x2) + x3) + x4);
      }
    }
  }
}
