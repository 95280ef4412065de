/**
 * Dense convolution on the CPU as GEMMs (OpenBLAS through {@linkcode sgemm} when present).
 *
 * A 1×1 conv at stride 1 without padding is one GEMM per image on the planes as they are. Other stride-1 convs
 * need no unfolded copy either: with the input zero-padded to (C, Hp, Wp) and the output
 * computed on the padded width (O, OH, Wp), every kernel tap (i, j) is one GEMM
 * `Yp += W[:, :, i, j] · Xpad[:, off .. off + OH·Wp]` whose right operand is the padded input read at
 * the offset `off = i·dilationH·Wp + j·dilationW` with row stride Hp·Wp. The Wp − OW extra columns per
 * row are garbage and are dropped (and zeroed in the backward passes, so they contribute nothing).
 * Other strides unfold one image at a time into a reused scratch buffer (im2col) and run one GEMM.
 *
 * @module
 */

import type { Im2colParams } from "../../backend.ts";
import { sgemm } from "./gemm.ts";
import { copyOnHeap } from "./heap_kernels.ts";
import { heapArray, heapFree, onHeap } from "./wasm/heap.ts";

const scratchBuffers = new Map<string, Float32Array>();

/**
 * A reused scratch array of at least `length` elements (contents unspecified), in the tensor heap when it has
 * room, so the padding and unfolding copies run as threaded heap kernels.
 */
function scratch(name: string, length: number): Float32Array {
  let buf = scratchBuffers.get(name);
  if (!buf || buf.length < length) {
    if (buf && onHeap(buf)) heapFree(buf);
    buf = heapArray(length) ?? new Float32Array(length);
    scratchBuffers.set(name, buf);
  }
  return buf;
}

/** The output columns [lo, hi) whose input column `ow * stride + shift` lies inside [0, width). */
export function validRange(outW: number, stride: number, shift: number, width: number): [number, number] {
  const lo = Math.min(outW, Math.max(0, Math.ceil(-shift / stride)));
  const hi = Math.max(lo, Math.min(outW, Math.floor((width - 1 - shift) / stride) + 1));
  return [lo, hi];
}

/** Unfolds `images` consecutive images of x (from image `first`) into columns at `o[0..]`. */
export function im2colInto(
  s: ArrayLike<number>,
  first: number,
  images: number,
  p: Im2colParams,
  padValue: number,
  o: { [i: number]: number },
): void {
  const { channels, height: H, width: W, kernelH: KH, kernelW: KW, outH: OH, outW: OW } = p;
  let dst = 0;
  for (let bc = first * channels; bc < (first + images) * channels; bc++) {
    const src = bc * H * W;
    for (let ki = 0; ki < KH; ki++) {
      for (let kj = 0; kj < KW; kj++) {
        const [lo, hi] = validRange(OW, p.strideW, kj * p.dilationW - p.padW, W);
        for (let oh = 0; oh < OH; oh++, dst += OW) {
          const ih = oh * p.strideH - p.padH + ki * p.dilationH;
          if (ih < 0 || ih >= H) {
            for (let ow = 0; ow < OW; ow++) o[dst + ow] = padValue;
            continue;
          }
          for (let ow = 0; ow < lo; ow++) o[dst + ow] = padValue;
          for (let ow = hi; ow < OW; ow++) o[dst + ow] = padValue;
          const row = src + ih * W + kj * p.dilationW - p.padW;
          const sw = p.strideW;
          for (let ow = lo; ow < hi; ow++) o[dst + ow] = s[row + ow * sw];
        }
      }
    }
  }
}

/** Sums columns of `images` images back into `o` (which it zeroes first) from image `first` on. */
export function col2imInto(
  s: ArrayLike<number>,
  first: number,
  images: number,
  p: Im2colParams,
  o: Float32Array,
): void {
  const { channels, height: H, width: W, kernelH: KH, kernelW: KW, outH: OH, outW: OW } = p;
  o.fill(0, first * channels * H * W, (first + images) * channels * H * W);
  let src = 0;
  for (let bc = first * channels; bc < (first + images) * channels; bc++) {
    const dstBase = bc * H * W;
    for (let ki = 0; ki < KH; ki++) {
      for (let kj = 0; kj < KW; kj++) {
        const [lo, hi] = validRange(OW, p.strideW, kj * p.dilationW - p.padW, W);
        for (let oh = 0; oh < OH; oh++, src += OW) {
          const ih = oh * p.strideH - p.padH + ki * p.dilationH;
          if (ih < 0 || ih >= H) continue;
          const row = dstBase + ih * W + kj * p.dilationW - p.padW;
          const sw = p.strideW;
          for (let ow = lo; ow < hi; ow++) o[row + ow * sw] += s[src + ow];
        }
      }
    }
  }
}

/** Geometry of the padded-grid (stride 1) formulation. */
interface Padded {
  hp: number;
  wp: number;
  /** Elements per padded channel plane. */
  plane: number;
  /** Extra elements after the last plane: the last tap's window runs this far past it. */
  slack: number;
  /** Output columns per image on the padded width: OH·Wp. */
  cols: number;
  /** Offset of each tap's window in a plane. */
  offsets: number[];
}

function padded(p: Im2colParams): Padded {
  const hp = p.height + 2 * p.padH, wp = p.width + 2 * p.padW;
  const offsets: number[] = [];
  for (let i = 0; i < p.kernelH; i++) {
    for (let j = 0; j < p.kernelW; j++) offsets.push(i * p.dilationH * wp + j * p.dilationW);
  }
  return { hp, wp, plane: hp * wp, slack: (p.kernelW - 1) * p.dilationW, cols: p.outH * wp, offsets };
}

const isStride1 = (p: Im2colParams) => p.strideH === 1 && p.strideW === 1;
/** A 1×1 conv at stride 1 without padding: per image one GEMM straight on the (C, H·W) planes, no copies. */
const isPointwise = (p: Im2colParams) =>
  isStride1(p) && p.kernelH === 1 && p.kernelW === 1 && p.padH === 0 && p.padW === 0;

/** Where image b's padded planes start in a batch of them. */
const imageAt = (b: number, p: Im2colParams, g: Padded) => b * p.channels * g.plane;

/** x (N, C, H, W) → zero-padded planes (N, C, Hp, Wp) with `slack` zeros after them, in a reused scratch array. */
function padBatch(x: Float32Array, p: Im2colParams, g: Padded): Float32Array {
  const { batch: N, channels: C, height: H, width: W } = p;
  const size = N * C * g.plane + g.slack, at = p.padH * g.wp + p.padW;
  const xpad = scratch("xpad", size);
  xpad.fill(0, 0, size);
  copyBlock(x, 0, [H * W, W], xpad, at, [g.plane, g.wp], { planes: N * C, rows: H, width: W });
  return xpad;
}

/** A (planes, rows, width) block between two arrays, each with its own plane and row strides. */
interface Block {
  planes: number;
  rows: number;
  width: number;
}

/** d[dAt + i·dPlane + r·dRow + c] = s[sAt + i·sPlane + r·sRow + c] over the block. */
function copyBlock(
  s: Float32Array,
  sAt: number,
  [sPlane, sRow]: [number, number],
  d: Float32Array,
  dAt: number,
  [dPlane, dRow]: [number, number],
  { planes, rows, width }: Block,
): void {
  if (copyOnHeap(s, sAt, [sPlane, sRow, 1], d, dAt, [dPlane, dRow, 1], [planes, rows, width])) return;
  for (let i = 0; i < planes; i++) {
    for (let r = 0; r < rows; r++) {
      const a = sAt + i * sPlane + r * sRow, b = dAt + i * dPlane + r * dRow;
      for (let c = 0; c < width; c++) d[b + c] = s[a + c];
    }
  }
}

/**
 * Unfolds image b into cols (C·KH·KW, OH·OW) from `src`, x or its zero-padded planes (when p pads) with
 * plane and row strides `plane`, `row`: one strided heap copy per kernel row, or im2colInto's loops.
 */
function unfold(
  x: Float32Array,
  src: { data: Float32Array; plane: number; row: number },
  b: number,
  p: Im2colParams,
  cols: Float32Array,
): void {
  const { channels: C, kernelH: KH, kernelW: KW, outH: OH, outW: OW } = p;
  const L = OH * OW, base = b * C * src.plane;
  const srcStrides = [src.plane, p.dilationW, p.strideH * src.row, p.strideW], dstStrides = [KH * KW * L, L, OW, 1];
  // every kernel row's copy has the same size and arrays: the first says whether the heap kernel takes them
  for (let ki = 0; ki < KH; ki++) {
    const at = base + ki * p.dilationH * src.row;
    if (!copyOnHeap(src.data, at, srcStrides, cols, ki * KW * L, dstStrides, [C, KW, OH, OW])) {
      im2colInto(x, b, 1, p, 0, cols);
      return;
    }
  }
}

/** What {@linkcode unfold} reads: x itself when p does not pad, else its zero-padded planes. */
function unfoldSource(
  x: Float32Array,
  p: Im2colParams,
): { data: Float32Array; plane: number; row: number } {
  if (p.padH === 0 && p.padW === 0) return { data: x, plane: p.height * p.width, row: p.width };
  const g = padded(p);
  return { data: padBatch(x, p, g), plane: g.plane, row: g.wp };
}

/** Weights (O, C, KH, KW) → one contiguous (O, C) matrix per tap. */
function weightsByTap(w: Float32Array, o: number, c: number, taps: number): Float32Array {
  const wt = scratch("wt", taps * o * c);
  for (let oc = 0; oc < o * c; oc++) for (let t = 0; t < taps; t++) wt[t * o * c + oc] = w[oc * taps + t];
  return wt;
}

/** Forward: x (N, C, H, W), w (O, C, KH, KW) → out (N, O, OH, OW). */
export function conv2dForward(x: Float32Array, w: Float32Array, out: Float32Array, p: Im2colParams, o: number): void {
  const { batch: N, channels: C, kernelH: KH, kernelW: KW, outH: OH, outW: OW } = p;
  const L = OH * OW, taps = KH * KW;
  if (isPointwise(p)) {
    for (let b = 0; b < N; b++) sgemm(false, false, o, L, C, 1, w, 0, C, x, b * C * L, L, 0, out, b * o * L, L);
    return;
  }
  if (!isStride1(p)) {
    const cols = scratch("cols", C * taps * L), src = unfoldSource(x, p);
    for (let b = 0; b < N; b++) {
      unfold(x, src, b, p, cols);
      sgemm(false, false, o, L, C * taps, 1, w, 0, C * taps, cols, 0, L, 0, out, b * o * L, L);
    }
    return;
  }
  const g = padded(p);
  const xpad = padBatch(x, p, g);
  const yp = scratch("yp", N * o * g.cols);
  const wt = weightsByTap(w, o, C, taps);
  for (let b = 0; b < N; b++) {
    for (let t = 0; t < taps; t++) {
      const beta = t === 0 ? 0 : 1;
      sgemm(
        false,
        false,
        o,
        g.cols,
        C,
        1,
        wt,
        t * o * C,
        C,
        xpad,
        imageAt(b, p, g) + g.offsets[t],
        g.plane,
        beta,
        yp,
        b * o * g.cols,
        g.cols,
      );
    }
  }
  // drop the garbage columns
  copyBlock(yp, 0, [g.cols, g.wp], out, 0, [L, OW], { planes: N * o, rows: OH, width: OW });
}

/** dy (N, O, OH, OW) → (N, O, OH, Wp) with zeroed garbage columns, in a reused scratch array. */
function padGrad(gy: Float32Array, o: number, p: Im2colParams, g: Padded): Float32Array {
  const { batch: N, outH: OH, outW: OW } = p;
  const gp = scratch("gp", N * o * g.cols);
  gp.fill(0, 0, N * o * g.cols);
  copyBlock(gy, 0, [OH * OW, OW], gp, 0, [g.cols, g.wp], { planes: N * o, rows: OH, width: OW });
  return gp;
}

/** Gradient with respect to x: gy (N, O, OH, OW), w (O, C, KH, KW) → dx (N, C, H, W). */
export function conv2dBackwardInput(
  gy: Float32Array,
  w: Float32Array,
  dx: Float32Array,
  p: Im2colParams,
  o: number,
): void {
  const { batch: N, channels: C, height: H, width: W, kernelH: KH, kernelW: KW, outH: OH, outW: OW } = p;
  const L = OH * OW, taps = KH * KW;
  if (isPointwise(p)) {
    for (let b = 0; b < N; b++) sgemm(true, false, C, L, o, 1, w, 0, C, gy, b * o * L, L, 0, dx, b * C * L, L);
    return;
  }
  if (!isStride1(p)) {
    const cols = scratch("cols", C * taps * L);
    for (let b = 0; b < N; b++) {
      sgemm(true, false, C * taps, L, o, 1, w, 0, C * taps, gy, b * o * L, L, 0, cols, 0, L);
      col2imInto(cols, b, 1, p, dx);
    }
    return;
  }
  const g = padded(p);
  const wt = weightsByTap(w, o, C, taps);
  const gp = padGrad(gy, o, p, g);
  const size = N * C * g.plane + g.slack;
  const dxpad = scratch("dxpad", size);
  dxpad.fill(0, 0, size);
  for (let b = 0; b < N; b++) {
    // each tap adds Wtᵀ·gp into its shifted window (windows overlap across taps, never within one GEMM)
    for (let t = 0; t < taps; t++) {
      const at = imageAt(b, p, g) + g.offsets[t];
      sgemm(true, false, C, g.cols, o, 1, wt, t * o * C, C, gp, b * o * g.cols, g.cols, 1, dxpad, at, g.plane);
    }
  }
  const at = p.padH * g.wp + p.padW;
  copyBlock(dxpad, at, [g.plane, g.wp], dx, 0, [H * W, W], { planes: N * C, rows: H, width: W });
}

/** Gradient with respect to w: x (N, C, H, W), gy (N, O, OH, OW) → dw (O, C, KH, KW). */
export function conv2dBackwardWeight(
  x: Float32Array,
  gy: Float32Array,
  dw: Float32Array,
  p: Im2colParams,
  o: number,
): void {
  const { batch: N, channels: C, kernelH: KH, kernelW: KW, outH: OH, outW: OW } = p;
  const L = OH * OW, taps = KH * KW;
  if (N === 0) {
    dw.fill(0);
    return;
  }
  if (isPointwise(p)) {
    for (let b = 0; b < N; b++) sgemm(false, true, o, C, L, 1, gy, b * o * L, L, x, b * C * L, L, b ? 1 : 0, dw, 0, C);
    return;
  }
  if (!isStride1(p)) {
    const cols = scratch("cols", C * taps * L), src = unfoldSource(x, p);
    for (let b = 0; b < N; b++) {
      unfold(x, src, b, p, cols);
      sgemm(false, true, o, C * taps, L, 1, gy, b * o * L, L, cols, 0, L, b === 0 ? 0 : 1, dw, 0, C * taps);
    }
    return;
  }
  const g = padded(p);
  const xpad = padBatch(x, p, g), gp = padGrad(gy, o, p, g);
  const dwt = scratch("dwt", taps * o * C);
  for (let b = 0; b < N; b++) {
    for (let t = 0; t < taps; t++) {
      const at = imageAt(b, p, g) + g.offsets[t], beta = b === 0 ? 0 : 1;
      sgemm(false, true, o, C, g.cols, 1, gp, b * o * g.cols, g.cols, xpad, at, g.plane, beta, dwt, t * o * C, C);
    }
  }
  for (let oc = 0; oc < o * C; oc++) for (let t = 0; t < taps; t++) dw[oc * taps + t] = dwt[t * o * C + oc];
}
