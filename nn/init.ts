/**
 * Parameter initialisation as `torch.nn.init`: the same bounds and standard deviations (so the same
 * distributions), drawn from this framework's seeded generator (so not PyTorch's random stream).
 *
 * Every function takes a target: a shape (it returns a new float32 tensor on `opts.device`, default the
 * default device) or an existing float32 leaf tensor such as a {@linkcode Parameter} (it fills it in place
 * with `assign`, keeping the object, and returns it). Values are drawn on the host and uploaded, so a seed
 * gives identical values on every backend.
 *
 * @module
 */

import type { Device } from "../autodiff/backend.ts";
import { getDefaultDevice } from "../autodiff/device.ts";
import { erf } from "../autodiff/op_table.ts";
import { type Generator, globalGenerator } from "../autodiff/random.ts";
import { Tensor } from "../autodiff/tensor.ts";

/** A shape to create, or a tensor to fill in place. */
export type InitTarget = Tensor | readonly number[];

/** Options shared by every initialiser. */
export interface InitOptions {
  /** Device of a newly created tensor (ignored when filling a tensor). */
  device?: Device;
  /** Generator to draw from (default: the global one, seeded by `manualSeed`). */
  generator?: Generator;
}

/** Nonlinearity names of `torch.nn.init.calculate_gain`. */
export type Nonlinearity =
  | "linear"
  | "conv1d"
  | "conv2d"
  | "conv3d"
  | "conv_transpose1d"
  | "conv_transpose2d"
  | "conv_transpose3d"
  | "sigmoid"
  | "tanh"
  | "relu"
  | "leaky_relu"
  | "selu";

/** Which fan Kaiming init preserves: the forward pass's variance ("fanIn") or the backward pass's ("fanOut"). */
export type FanMode = "fanIn" | "fanOut";

/** Options of the Kaiming initialisers. */
export interface KaimingOptions extends InitOptions {
  /** Negative slope of the rectifier after this layer (leaky_relu only; default 0). */
  a?: number;
  /** "fanIn" (default) or "fanOut". */
  mode?: FanMode;
  /** The nonlinearity after this layer (default "leaky_relu", as PyTorch). */
  nonlinearity?: Nonlinearity;
}

/** Options of the Xavier initialisers. */
export interface XavierOptions extends InitOptions {
  /** Scaling factor (default 1). */
  gain?: number;
}

/** Options of {@linkcode truncNormal}. */
export interface TruncNormalOptions extends InitOptions {
  /** Mean of the normal (default 0). */
  mean?: number;
  /** Standard deviation of the normal before truncation (default 1). */
  std?: number;
  /** Lower cut-off, in absolute units as PyTorch (default -2). */
  a?: number;
  /** Upper cut-off, in absolute units (default 2). */
  b?: number;
}

/** The recommended gain for a nonlinearity, as `torch.nn.init.calculate_gain` (`param`: leaky_relu's slope). */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case "linear":
    case "conv1d":
    case "conv2d":
    case "conv3d":
    case "conv_transpose1d":
    case "conv_transpose2d":
    case "conv_transpose3d":
    case "sigmoid":
      return 1;
    case "tanh":
      return 5 / 3;
    case "relu":
      return Math.SQRT2;
    case "leaky_relu": {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case "selu":
      return 3 / 4;
    default:
      throw new Error(`calculateGain: unsupported nonlinearity "${nonlinearity}"`);
  }
}

/**
 * (fan_in, fan_out) of a weight shape as PyTorch computes them: dim 1 and dim 0 times the receptive field
 * (the product of the remaining dims). Needs at least 2 dims.
 */
export function calculateFanInAndFanOut(shape: readonly number[]): [number, number] {
  if (shape.length < 2) {
    throw new Error(`init: fan in and fan out cannot be computed for a tensor with fewer than 2 dims, got [${shape}]`);
  }
  let receptive = 1;
  for (let i = 2; i < shape.length; i++) receptive *= shape[i];
  return [shape[1] * receptive, shape[0] * receptive];
}

function shapeOf(target: InitTarget): readonly number[] {
  return target instanceof Tensor ? target.shape : target;
}

/** Builds the tensor from host values, or installs them into the target. */
function emit(target: InitTarget, data: Float32Array, opts: InitOptions): Tensor {
  if (!(target instanceof Tensor)) {
    return Tensor.fromHost(data, target, "float32", opts.device ?? getDefaultDevice());
  }
  if (target.dtype !== "float32") throw new TypeError(`init: can only fill float32 tensors, got ${target.dtype}`);
  const fresh = Tensor.fromHost(data, target.shape, "float32", target.device);
  target.assign(fresh);
  fresh.dispose();
  return target;
}

function size(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function draw(target: InitTarget, opts: InitOptions, sample: (g: Generator) => number): Tensor {
  const g = opts.generator ?? globalGenerator;
  const data = new Float32Array(size(shapeOf(target)));
  for (let i = 0; i < data.length; i++) data[i] = sample(g);
  return emit(target, data, opts);
}

/** Fills with `value`. */
export function constant(target: InitTarget, value: number, opts: InitOptions = {}): Tensor {
  return emit(target, new Float32Array(size(shapeOf(target))).fill(value), opts);
}

/** Fills with zeros. */
export function zeros(target: InitTarget, opts: InitOptions = {}): Tensor {
  return constant(target, 0, opts);
}

/** Fills with ones. */
export function ones(target: InitTarget, opts: InitOptions = {}): Tensor {
  return constant(target, 1, opts);
}

/** Draws from U(low, high). */
export function uniform(target: InitTarget, low = 0, high = 1, opts: InitOptions = {}): Tensor {
  return draw(target, opts, (g) => low + (high - low) * g.uniform());
}

/** Draws from N(mean, std²). */
export function normal(target: InitTarget, mean = 0, std = 1, opts: InitOptions = {}): Tensor {
  return draw(target, opts, (g) => mean + std * g.normal());
}

function kaimingStd(shape: readonly number[], opts: KaimingOptions): number {
  const [fanIn, fanOut] = calculateFanInAndFanOut(shape);
  const fan = (opts.mode ?? "fanIn") === "fanIn" ? fanIn : fanOut;
  if (fan === 0) throw new Error(`init: kaiming initialisation of a zero-element tensor [${shape}]`);
  return calculateGain(opts.nonlinearity ?? "leaky_relu", opts.a ?? 0) / Math.sqrt(fan);
}

/**
 * He uniform init: U(-bound, bound) with bound = gain·√(3 / fan), gain = calculateGain(nonlinearity, a).
 * PyTorch's default Linear/Conv weight init is `kaimingUniform(w, {a: √5})`, i.e. bound = 1/√fan_in.
 */
export function kaimingUniform(target: InitTarget, opts: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(shapeOf(target), opts);
  return uniform(target, -bound, bound, opts);
}

/** He normal init: N(0, std²) with std = gain / √fan. */
export function kaimingNormal(target: InitTarget, opts: KaimingOptions = {}): Tensor {
  return normal(target, 0, kaimingStd(shapeOf(target), opts), opts);
}

/** Glorot uniform init: U(-a, a) with a = gain·√(6 / (fan_in + fan_out)). */
export function xavierUniform(target: InitTarget, opts: XavierOptions = {}): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(shapeOf(target));
  const a = (opts.gain ?? 1) * Math.sqrt(6 / (fanIn + fanOut));
  return uniform(target, -a, a, opts);
}

/** Glorot normal init: N(0, std²) with std = gain·√(2 / (fan_in + fan_out)). */
export function xavierNormal(target: InitTarget, opts: XavierOptions = {}): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(shapeOf(target));
  return normal(target, 0, (opts.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut)), opts);
}

/** Inverse error function: Giles' single-precision approximation refined by two Newton steps. */
function erfinv(y: number): number {
  if (y <= -1) return -Infinity;
  if (y >= 1) return Infinity;
  let w = -Math.log((1 - y) * (1 + y));
  let x: number;
  if (w < 5) {
    w -= 2.5;
    let p = 2.81022636e-08;
    p = 3.43273939e-07 + p * w;
    p = -3.5233877e-06 + p * w;
    p = -4.39150654e-06 + p * w;
    p = 0.00021858087 + p * w;
    p = -0.00125372503 + p * w;
    p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w;
    p = 1.50140941 + p * w;
    x = p * y;
  } else {
    w = Math.sqrt(w) - 3;
    let p = -0.000200214257;
    p = 0.000100950558 + p * w;
    p = 0.00134934322 + p * w;
    p = -0.00367342844 + p * w;
    p = 0.00573950773 + p * w;
    p = -0.0076224613 + p * w;
    p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w;
    p = 2.83297682 + p * w;
    x = p * y;
  }
  for (let i = 0; i < 2; i++) x -= (erf(x) - y) / ((2 / Math.sqrt(Math.PI)) * Math.exp(-x * x));
  return x;
}

/**
 * Truncated normal as `torch.nn.init.trunc_normal_`: N(mean, std²) restricted to [a, b] (absolute bounds,
 * not multiples of std), sampled by the inverse CDF: u ~ U(2Φ(α)-1, 2Φ(β)-1), x = mean + std·√2·erfinv(u),
 * clamped to [a, b].
 */
export function truncNormal(target: InitTarget, opts: TruncNormalOptions = {}): Tensor {
  const mean = opts.mean ?? 0, std = opts.std ?? 1, a = opts.a ?? -2, b = opts.b ?? 2;
  if (!(a < b)) throw new Error(`truncNormal: need a < b, got a=${a}, b=${b}`);
  const cdf = (x: number): number => (1 + erf(x / Math.SQRT2)) / 2;
  const lo = 2 * cdf((a - mean) / std) - 1, hi = 2 * cdf((b - mean) / std) - 1;
  return draw(target, opts, (g) => {
    const x = mean + std * Math.SQRT2 * erfinv(lo + (hi - lo) * g.uniform());
    return Math.min(b, Math.max(a, x));
  });
}
