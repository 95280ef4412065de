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

const scratchBuffers = new Map<string, Float32Array>();

/** A reused scratch array of at least `length` elements (contents unspecified). */
function scratch(name: string, length: number): Float32Array {
  let buf = scratchBuffers.get(name);
  if (!buf || buf.length < length) {
    buf = new Float32Array(length);
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

/** Copies image `b` of x into the zeroed padded planes. */
function padImage(x: Float32Array, b: number, p: Im2colParams, g: Padded, xpad: Float32Array): void {
  const { channels: C, height: H, width: W } = p;
  xpad.fill(0, 0, C * g.plane + g.slack);
  for (let c = 0; c < C; c++) {
    for (let h = 0; h < H; h++) {
      const src = ((b * C + c) * H + h) * W, dst = c * g.plane + (h + p.padH) * g.wp + p.padW;
      for (let w = 0; w < W; w++) xpad[dst + w] = x[src + w];
    }
  }
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
    const cols = scratch("cols", C * taps * L);
    for (let b = 0; b < N; b++) {
      im2colInto(x, b, 1, p, 0, cols);
      sgemm(false, false, o, L, C * taps, 1, w, 0, C * taps, cols, 0, L, 0, out, b * o * L, L);
    }
    return;
  }
  const g = padded(p);
  const xpad = scratch("xpad", C * g.plane + g.slack);
  const yp = scratch("yp", o * g.cols);
  const wt = weightsByTap(w, o, C, taps);
  for (let b = 0; b < N; b++) {
    padImage(x, b, p, g, xpad);
    for (let t = 0; t < taps; t++) {
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
        g.offsets[t],
        g.plane,
        t === 0 ? 0 : 1,
        yp,
        0,
        g.cols,
      );
    }
    // drop the garbage columns
    for (let r = 0; r < o * OH; r++) {
      const src = r * g.wp, dst = b * o * L + r * OW;
      for (let c = 0; c < OW; c++) out[dst + c] = yp[src + c];
    }
  }
}

/** dy (N, O, OH, OW) of image b → (O, OH, Wp) with zeroed garbage columns. */
function padGrad(gy: Float32Array, b: number, o: number, p: Im2colParams, g: Padded): Float32Array {
  const { outH: OH, outW: OW } = p;
  const gp = scratch("gp", o * g.cols);
  for (let r = 0; r < o * OH; r++) {
    const src = b * o * OH * OW + r * OW, dst = r * g.wp;
    for (let c = 0; c < OW; c++) gp[dst + c] = gy[src + c];
    for (let c = OW; c < g.wp; c++) gp[dst + c] = 0;
  }
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
  const dxpad = scratch("dxpad", C * g.plane + g.slack);
  for (let b = 0; b < N; b++) {
    const gp = padGrad(gy, b, o, p, g);
    dxpad.fill(0, 0, C * g.plane + g.slack);
    // each tap adds Wtᵀ·gp into its shifted window (windows overlap across taps, never within one GEMM)
    for (let t = 0; t < taps; t++) {
      sgemm(true, false, C, g.cols, o, 1, wt, t * o * C, C, gp, 0, g.cols, 1, dxpad, g.offsets[t], g.plane);
    }
    for (let c = 0; c < C; c++) {
      for (let h = 0; h < H; h++) {
        const src = c * g.plane + (h + p.padH) * g.wp + p.padW, dst = ((b * C + c) * H + h) * W;
        for (let x = 0; x < W; x++) dx[dst + x] = dxpad[src + x];
      }
    }
  }
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
    const cols = scratch("cols", C * taps * L);
    for (let b = 0; b < N; b++) {
      im2colInto(x, b, 1, p, 0, cols);
      sgemm(false, true, o, C * taps, L, 1, gy, b * o * L, L, cols, 0, L, b === 0 ? 0 : 1, dw, 0, C * taps);
    }
    return;
  }
  const g = padded(p);
  const xpad = scratch("xpad", C * g.plane + g.slack);
  const dwt = scratch("dwt", taps * o * C);
  for (let b = 0; b < N; b++) {
    padImage(x, b, p, g, xpad);
    const gp = padGrad(gy, b, o, p, g);
    for (let t = 0; t < taps; t++) {
      sgemm(
        false,
        true,
        o,
        C,
        g.cols,
        1,
        gp,
        0,
        g.cols,
        xpad,
        g.offsets[t],
        g.plane,
        b === 0 ? 0 : 1,
        dwt,
        t * o * C,
        C,
      );
    }
  }
  for (let oc = 0; oc < o * C; oc++) for (let t = 0; t < taps; t++) dw[oc * taps + t] = dwt[t * o * C + oc];
}
