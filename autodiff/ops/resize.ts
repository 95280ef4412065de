/**
 * Separable resampling: bilinear / nearest interpolation and adaptive average pooling are each a
 * product with a small (out, in) weight matrix per spatial axis, `Y = R_h · X · R_wᵀ`. The matrices are
 * built on the host with PyTorch's coordinate rules, so the gradient is the transposed product and no
 * resampling kernel is needed.
 *
 * @module
 */

import { Tensor } from "../tensor.ts";
import { matmul } from "./linalg.ts";
import { transpose } from "./shape.ts";
import { fmt, pair, requireFloat } from "./util.ts";

function matrixTensor(data: Float32Array, rows: number, cols: number, like: Tensor): Tensor {
  return Tensor.fromHost(data, [rows, cols], "float32", like.device);
}

/** (out, in) weights of 1-D linear interpolation, as torch's upsample_bilinear2d. */
function linearWeights(inSize: number, outSize: number, alignCorners: boolean, scale?: number): Float32Array {
  const w = new Float32Array(outSize * inSize);
  const ratio = alignCorners
    ? (outSize > 1 ? (inSize - 1) / (outSize - 1) : 0)
    : (scale !== undefined ? 1 / scale : inSize / outSize);
  for (let o = 0; o < outSize; o++) {
    let src = alignCorners ? o * ratio : Math.max((o + 0.5) * ratio - 0.5, 0);
    if (src > inSize - 1) src = inSize - 1;
    const i0 = Math.floor(src);
    const i1 = Math.min(i0 + 1, inSize - 1);
    const l1 = src - i0;
    w[o * inSize + i0] += 1 - l1;
    w[o * inSize + i1] += l1;
  }
  return w;
}

/** (out, in) selection matrix of nearest interpolation: src = floor(dst · scale), as torch's "nearest". */
function nearestWeights(inSize: number, outSize: number, scale?: number): Float32Array {
  const w = new Float32Array(outSize * inSize);
  const ratio = scale !== undefined ? 1 / scale : inSize / outSize;
  for (let o = 0; o < outSize; o++) w[o * inSize + Math.min(Math.floor(o * ratio), inSize - 1)] = 1;
  return w;
}

/** (out, in) averaging matrix of adaptive pooling: window [floor(o·in/out), ceil((o+1)·in/out)). */
function adaptiveWeights(inSize: number, outSize: number): Float32Array {
  const w = new Float32Array(outSize * inSize);
  for (let o = 0; o < outSize; o++) {
    const s = Math.floor((o * inSize) / outSize), e = Math.ceil(((o + 1) * inSize) / outSize);
    for (let i = s; i < e; i++) w[o * inSize + i] = 1 / (e - s);
  }
  return w;
}

/** Applies row weights (OH, H) and column weights (OW, W) to x (..., H, W). */
function separable(x: Tensor, rows: Float32Array, oh: number, cols: Float32Array, ow: number): Tensor {
  const [h, w] = x.shape.slice(-2);
  const rh = matrixTensor(rows, oh, h, x);
  const rw = matrixTensor(cols, ow, w, x);
  const rwT = transpose(rw, 0, 1);
  rw.dispose();
  const tmp = matmul(x, rwT); // (..., H, OW)
  rwT.dispose();
  const out = matmul(rh, tmp); // (..., OH, OW)
  rh.dispose();
  return out;
}

/** Options of {@linkcode interpolate}. */
export interface InterpolateOptions {
  /** Output (H, W). */
  size?: number | [number, number];
  /** Multiplier of the input size (used for the coordinate mapping too, as PyTorch). */
  scaleFactor?: number | [number, number];
  /** "bilinear" or "nearest". */
  mode: "bilinear" | "nearest";
  /** Bilinear only: align the corner pixels' centres (default false). */
  alignCorners?: boolean;
}

/** Resizes (N, C, H, W) images as torch.nn.functional.interpolate. */
export function interpolate(x: Tensor, opts: InterpolateOptions): Tensor {
  requireFloat("interpolate", x);
  if (x.ndim !== 4) throw new Error(`interpolate: expected a 4-D (N, C, H, W) input, got ${fmt(x.shape)}`);
  const [h, w] = x.shape.slice(2);
  let oh: number, ow: number, sh: number | undefined, sw: number | undefined;
  if (opts.size !== undefined) {
    [oh, ow] = pair(opts.size);
  } else if (opts.scaleFactor !== undefined) {
    [sh, sw] = pair(opts.scaleFactor);
    oh = Math.floor(h * sh);
    ow = Math.floor(w * sw);
  } else {
    throw new Error("interpolate: give either size or scaleFactor");
  }
  if (oh < 1 || ow < 1) throw new Error(`interpolate: output size ${oh}x${ow} must be positive`);
  if (opts.mode === "bilinear") {
    const ac = opts.alignCorners ?? false;
    return separable(x, linearWeights(h, oh, ac, sh), oh, linearWeights(w, ow, ac, sw), ow);
  }
  if (opts.mode === "nearest") {
    if (opts.alignCorners) throw new Error("interpolate: alignCorners only applies to bilinear mode");
    return separable(x, nearestWeights(h, oh, sh), oh, nearestWeights(w, ow, sw), ow);
  }
  throw new Error(`interpolate: unknown mode "${opts.mode}"`);
}

/** Adaptive average pooling of (N, C, H, W) to `outputSize`, as torch.nn.functional.adaptive_avg_pool2d. */
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | [number, number]): Tensor {
  requireFloat("adaptiveAvgPool2d", x);
  if (x.ndim !== 4) throw new Error(`adaptiveAvgPool2d: expected a 4-D (N, C, H, W) input, got ${fmt(x.shape)}`);
  const [h, w] = x.shape.slice(2);
  const [oh, ow] = pair(outputSize);
  return separable(x, adaptiveWeights(h, oh), oh, adaptiveWeights(w, ow), ow);
}
