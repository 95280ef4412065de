/**
 * Convolution and pooling, lowered to unfold (im2col) + matrix products and reductions, so their
 * gradients follow from the rules of those ops: dW = dY·colsᵀ, dcols = Wᵀ·dY, dx = fold(dcols).
 * Depthwise convolutions (groups = input channels = output channels) instead use the backends' direct
 * depthwise kernels, whose columns would otherwise be k² times the input, and max pooling uses the backends'
 * direct pooling kernels (values + argmax indices forward, an index-routed sum backward).
 *
 * @module
 */

import type { Im2colParams } from "../backend.ts";
import { record, Tensor } from "../tensor.ts";
import { add, mul } from "./elementwise.ts";
import { bmm } from "./linalg.ts";
import { mean, sum } from "./reduce.ts";
import { concat, pad, permute, reshape, split } from "./shape.ts";
import { fmt, pair, requireFloat, sameDevice } from "./util.ts";

/** Geometry arguments shared by unfold, conv and pooling. */
export interface WindowOptions {
  /** Step between windows (default 1). */
  stride?: number | [number, number];
  /** Zero padding on each side (default 0). */
  padding?: number | [number, number];
  /** Spacing between kernel taps (default 1). */
  dilation?: number | [number, number];
}

function geometry(
  op: string,
  x: Tensor,
  kernel: [number, number],
  stride: [number, number],
  padding: [number, number],
  dilation: [number, number],
): Im2colParams {
  if (x.ndim !== 4) throw new Error(`${op}: expected a 4-D (N, C, H, W) input, got ${fmt(x.shape)}`);
  const [batch, channels, height, width] = x.shape;
  for (const v of [...kernel, ...stride, ...dilation]) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${op}: kernel, stride and dilation must be positive integers`);
    }
  }
  const outH = Math.floor((height + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) / stride[0]) + 1;
  const outW = Math.floor((width + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) / stride[1]) + 1;
  if (outH < 1 || outW < 1) {
    throw new Error(
      `${op}: input ${fmt(x.shape)} is too small for kernel ${kernel.join("x")} with padding ${padding.join(",")}`,
    );
  }
  return {
    batch,
    channels,
    height,
    width,
    kernelH: kernel[0],
    kernelW: kernel[1],
    strideH: stride[0],
    strideW: stride[1],
    padH: padding[0],
    padW: padding[1],
    dilationH: dilation[0],
    dilationW: dilation[1],
    outH,
    outW,
  };
}

/**
 * Unfolded columns are k² times the input; past this many elements (64 MiB, half of WebGPU's usual
 * 128 MiB binding limit) the batch is processed in chunks.
 */
const MAX_COLUMN_ELEMENTS = 1 << 24;

/** Runs `fn` on batch chunks whose columns fit {@linkcode MAX_COLUMN_ELEMENTS}; null when one chunk suffices. */
function inBatchChunks(x: Tensor, columnsPerSample: number, fn: (chunk: Tensor) => Tensor): Tensor | null {
  const n = x.shape[0];
  const per = Math.max(1, Math.floor(MAX_COLUMN_ELEMENTS / columnsPerSample));
  if (per >= n) return null;
  return concat(split(x, per, 0).map(fn), 0);
}

function unfoldRaw(x: Tensor, p: Im2colParams, padValue: number): Tensor {
  const buf = x.backend.im2col(x.buffer, p, padValue);
  return Tensor.fromBuffer(buf, [p.batch, p.channels * p.kernelH * p.kernelW, p.outH * p.outW], x.dtype, x.device);
}

function foldRaw(cols: Tensor, p: Im2colParams): Tensor {
  const buf = cols.backend.col2im(cols.buffer, p);
  return Tensor.fromBuffer(buf, [p.batch, p.channels, p.height, p.width], "float32", cols.device);
}

/** torch.nn.functional.unfold (im2col): (N, C, H, W) → (N, C·kh·kw, L). Taps outside the image read `padValue`. */
export function unfold(
  x: Tensor,
  kernelSize: number | [number, number],
  opts: WindowOptions & { padValue?: number } = {},
): Tensor {
  const p = geometry(
    "unfold",
    x,
    pair(kernelSize),
    pair(opts.stride ?? 1),
    pair(opts.padding ?? 0),
    pair(opts.dilation ?? 1),
  );
  const out = unfoldRaw(x, p, opts.padValue ?? 0);
  return record("unfold", out, [x], [], (g) => [fold(g, p)]);
}

/** The adjoint of {@linkcode unfold}: sums (N, C·kh·kw, L) columns back into images. */
export function fold(cols: Tensor, p: Im2colParams): Tensor {
  const out = foldRaw(cols, p);
  return record("fold", out, [cols], [], (g) => [unfoldRaw(g, p, 0)]);
}

/**
 * Depthwise convolution x (N, C, H, W) ⊛ weight (C, 1, kh, kw) → (N, C, outH, outW) with the backend's
 * direct kernels; the gradient rule calls their two backward kernels (it is not itself differentiable).
 * Only the operands a gradient needs are saved: the weight for dx, the input for dW.
 */
function depthwiseConv2d(x: Tensor, weight: Tensor, p: Im2colParams): Tensor {
  const buf = x.backend.depthwiseConv2d(x.buffer, weight.buffer, p);
  const out = Tensor.fromBuffer(buf, [p.batch, p.channels, p.outH, p.outW], "float32", x.device);
  const needX = x.requiresGrad, needW = weight.requiresGrad;
  const save = [...(needX ? [weight] : []), ...(needW ? [x] : [])];
  return record("depthwiseConv2d", out, [x, weight], save, (g, saved) => {
    const sw = needX ? saved[0] : null, sx = needW ? saved[saved.length - 1] : null;
    const gx = sw
      ? Tensor.fromBuffer(g.backend.depthwiseConv2dBackwardInput(g.buffer, sw.buffer, p), x.shape, "float32", g.device)
      : null;
    const gw = sx
      ? Tensor.fromBuffer(
        g.backend.depthwiseConv2dBackwardWeight(sx.buffer, g.buffer, p),
        weight.shape,
        "float32",
        g.device,
      )
      : null;
    return [gx, gw];
  });
}

/**
 * Dense convolution with the backend's fused kernels (where it has them); the gradient rule calls its
 * two backward kernels.
 */
function fusedConv2d(x: Tensor, weight: Tensor, p: Im2colParams): Tensor {
  const b = x.backend;
  const o = weight.shape[0];
  const out = Tensor.fromBuffer(
    b.conv2d!(x.buffer, weight.buffer, p, o),
    [p.batch, o, p.outH, p.outW],
    "float32",
    x.device,
  );
  const needX = x.requiresGrad, needW = weight.requiresGrad;
  return record("conv2d", out, [x, weight], [x, weight], (g, [sx, sw]) => [
    needX ? Tensor.fromBuffer(b.conv2dBackwardInput!(g.buffer, sw.buffer, p, o), x.shape, "float32", g.device) : null,
    needW
      ? Tensor.fromBuffer(b.conv2dBackwardWeight!(sx.buffer, g.buffer, p, o), weight.shape, "float32", g.device)
      : null,
  ]);
}

/** Options of {@linkcode conv2d}. */
export interface Conv2dOptions {
  /** Step between windows (default 1). */
  stride?: number | [number, number];
  /** Zero padding per side, or "same" / "valid" (default 0). */
  padding?: number | [number, number] | "same" | "valid";
  /** Spacing between kernel taps (default 1). */
  dilation?: number | [number, number];
  /** Channel groups (default 1; groups = C gives a depthwise conv). */
  groups?: number;
}

/**
 * 2-D cross-correlation as torch.nn.functional.conv2d: x (N, C, H, W), weight (O, C/groups, kh, kw),
 * optional bias (O).
 */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  requireFloat("conv2d", x, "input");
  requireFloat("conv2d", weight, "weight");
  sameDevice("conv2d", x, weight, ...(bias ? [bias] : []));
  if (x.ndim !== 4 || weight.ndim !== 4) {
    throw new Error(`conv2d: expected 4-D input and weight, got ${fmt(x.shape)} and ${fmt(weight.shape)}`);
  }
  const groups = opts.groups ?? 1;
  const [n, c] = x.shape;
  const [o, cg, kh, kw] = weight.shape;
  if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0 || o % groups !== 0) {
    throw new Error(`conv2d: groups=${groups} must divide input channels ${c} and output channels ${o}`);
  }
  if (cg !== c / groups) {
    throw new Error(
      `conv2d: weight ${fmt(weight.shape)} expects ${cg * groups} input channels, input ${fmt(x.shape)} has ${c}`,
    );
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== o)) {
    throw new Error(`conv2d: bias ${fmt(bias.shape)} must have shape [${o}]`);
  }
  const stride = pair(opts.stride ?? 1), dilation = pair(opts.dilation ?? 1);
  let padding: [number, number];
  if (opts.padding === "same") {
    if (stride[0] !== 1 || stride[1] !== 1) throw new Error(`conv2d: padding "same" requires stride 1`);
    const th = dilation[0] * (kh - 1), tw = dilation[1] * (kw - 1);
    if (th % 2 !== 0 || tw % 2 !== 0) {
      // asymmetric: PyTorch pads the extra row/column at the end
      const padded = pad(x, [Math.floor(tw / 2), tw - Math.floor(tw / 2), Math.floor(th / 2), th - Math.floor(th / 2)]);
      return conv2d(padded, weight, bias, { ...opts, padding: 0 });
    }
    padding = [th / 2, tw / 2];
  } else if (opts.padding === "valid" || opts.padding === undefined) {
    padding = [0, 0];
  } else {
    padding = pair(opts.padding);
  }
  const p = geometry("conv2d", x, [kh, kw], stride, padding, dilation);
  if (groups === c && o === c) {
    // depthwise (one filter per channel): direct kernels, no unfolded columns
    const out = depthwiseConv2d(x, weight, p);
    return bias ? add(out, reshape(bias, [1, o, 1, 1])) : out;
  }
  if (groups === 1 && x.backend.conv2d) {
    const out = fusedConv2d(x, weight, p);
    return bias ? add(out, reshape(bias, [1, o, 1, 1])) : out;
  }
  const chunked = inBatchChunks(
    x,
    c * kh * kw * p.outH * p.outW,
    (xs) => conv2d(xs, weight, bias, { ...opts, padding }),
  );
  if (chunked) return chunked;
  const cols = unfold(x, [kh, kw], { stride, padding, dilation }); // (N, C·kh·kw, L)
  const L = p.outH * p.outW;
  let y: Tensor;
  if (groups === 1) {
    y = bmm(reshape(weight, [1, o, c * kh * kw]), cols); // (N, O, L)
  } else {
    // (G, Cg·k², N·L) so that one batched product runs every group
    const og = o / groups, kk = cg * kh * kw;
    const colsG = reshape(permute(reshape(cols, [n, groups, kk, L]), [1, 2, 0, 3]), [groups, kk, n * L]);
    const yg = bmm(reshape(weight, [groups, og, kk]), colsG); // (G, Og, N·L)
    y = permute(reshape(yg, [groups, og, n, L]), [2, 0, 1, 3]);
  }
  const out = reshape(y, [n, o, p.outH, p.outW]);
  return bias ? add(out, reshape(bias, [1, o, 1, 1])) : out;
}

/** Options of {@linkcode maxPool2d}. */
export interface MaxPool2dOptions extends WindowOptions {}

/**
 * Max pooling with the backend's direct kernels: the values (recorded for autograd) and the int32 indices
 * of each window's maximum. The gradient rule saves the indices and calls the backward kernel.
 */
function maxPool2dRaw(
  op: string,
  x: Tensor,
  kernelSize: number | [number, number],
  opts: MaxPool2dOptions,
): { values: Tensor; indices: Tensor } {
  requireFloat(op, x);
  const k = pair(kernelSize);
  const stride = pair(opts.stride ?? k), padding = pair(opts.padding ?? 0), dilation = pair(opts.dilation ?? 1);
  if (padding[0] > k[0] / 2 || padding[1] > k[1] / 2) {
    throw new Error(`${op}: padding ${padding} must be at most half the kernel ${k}`);
  }
  const p = geometry(op, x, k, stride, padding, dilation);
  const shape = [p.batch, p.channels, p.outH, p.outW];
  const { out, indices: ibuf } = x.backend.maxPool2d(x.buffer, p);
  const indices = Tensor.fromBuffer(ibuf, shape, "int32", x.device);
  indices.storage.valueRange = [0, p.height * p.width - 1];
  const values = record(
    "maxPool2d",
    Tensor.fromBuffer(out, shape, "float32", x.device),
    [x],
    [indices],
    (g, [ix]) => [Tensor.fromBuffer(g.backend.maxPool2dBackward(g.buffer, ix.buffer, p), x.shape, "float32", g.device)],
  );
  return { values, indices };
}

/**
 * Max pooling as torch.nn.functional.max_pool2d: x (N, C, H, W) → (N, C, outH, outW). The stride defaults
 * to the kernel size; padding (at most half the kernel) reads -inf. On ties the first maximum of the window
 * (row-major over the kernel taps) wins and receives the gradient; a NaN in a window propagates, as PyTorch.
 */
export function maxPool2d(x: Tensor, kernelSize: number | [number, number], opts: MaxPool2dOptions = {}): Tensor {
  const { values, indices } = maxPool2dRaw("maxPool2d", x, kernelSize, opts);
  indices.dispose(); // the gradient rule, if one was recorded, holds its own reference
  return values;
}

/**
 * {@linkcode maxPool2d} that also returns, as torch's `return_indices=True`, the int32 indices (N, C, outH, outW)
 * of each window's maximum as flat positions `h·W + w` within its (H, W) input plane.
 */
export function maxPool2dWithIndices(
  x: Tensor,
  kernelSize: number | [number, number],
  opts: MaxPool2dOptions = {},
): { values: Tensor; indices: Tensor } {
  return maxPool2dRaw("maxPool2dWithIndices", x, kernelSize, opts);
}

/** Options of {@linkcode avgPool2d}. */
export interface AvgPool2dOptions {
  /** Step between windows (default: the kernel size). */
  stride?: number | [number, number];
  /** Zero padding per side (default 0). */
  padding?: number | [number, number];
  /** Count padded zeros in the divisor (default true, as PyTorch). */
  countIncludePad?: boolean;
}

/** Average pooling. */
export function avgPool2d(x: Tensor, kernelSize: number | [number, number], opts: AvgPool2dOptions = {}): Tensor {
  requireFloat("avgPool2d", x);
  const k = pair(kernelSize);
  const stride = pair(opts.stride ?? k), padding = pair(opts.padding ?? 0);
  const p = geometry("avgPool2d", x, k, stride, padding, [1, 1]);
  const [n, c] = x.shape;
  const chunked = inBatchChunks(x, c * k[0] * k[1] * p.outH * p.outW, (xs) => avgPool2d(xs, k, opts));
  if (chunked) return chunked;
  const kk = k[0] * k[1], L = p.outH * p.outW;
  const windows = reshape(unfold(x, k, { stride, padding }), [n, c, kk, L]);
  if (opts.countIncludePad ?? true) return reshape(mean(windows, 2), [n, c, p.outH, p.outW]);
  // divide by the number of in-image taps of each window
  const onesImg = Tensor.fromBuffer(
    x.backend.fill(p.height * p.width, 1, "float32"),
    [1, 1, p.height, p.width],
    "float32",
    x.device,
  );
  const count = sum(unfoldRaw(onesImg, { ...p, batch: 1, channels: 1 }, 0), 1); // (1, L)
  onesImg.dispose();
  const total = sum(windows, 2); // (N, C, L)
  const inv = Tensor.fromBuffer(count.backend.unary("reciprocal", count.buffer), [1, 1, L], "float32", x.device);
  count.dispose();
  return reshape(mul(total, inv), [n, c, p.outH, p.outW]);
}
