/**
 * Normalisation layers: BatchNorm2d, InstanceNorm2d, LayerNorm, LayerNorm2d (channels-first LayerNorm) and
 * GroupNorm, with PyTorch's parameter and buffer names, defaults and running-statistics rules.
 *
 * Every layer normalises with the biased variance, (x - mean) / √(var + eps). The batch, instance and group
 * norms build it from differentiable ops (the backward pass is autodiff's); LayerNorm and LayerNorm2d call the
 * `layerNorm` op, one fused kernel each way where the backend has one.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { add, affine, full, layerNorm, mean, mul, ones, reshape, rsqrt, sub, zeros } from "../../autodiff/ops/index.ts";
import { keep, noGrad, type Tensor, tidy } from "../../autodiff/tensor.ts";
import { Module, Parameter } from "../module.ts";

/** (x - mean) / √(var + eps) over `axes`, plus the (keepdim) batch mean and biased variance. */
function normalize(x: Tensor, axes: number[], eps: number): { y: Tensor; mean: Tensor; var: Tensor } {
  const m = mean(x, axes, true);
  const d = sub(x, m);
  const v = mean(mul(d, d), axes, true);
  return { y: mul(d, rsqrt(affine(v, 1, eps))), mean: m, var: v };
}

/** Broadcasts a per-channel (C) vector against (N, C, ...). */
function perChannel(t: Tensor, ndim: number): Tensor {
  return reshape(t, [1, t.shape[0], ...new Array(Math.max(0, ndim - 2)).fill(1)]);
}

function check4d(tag: string, x: Tensor, channels: number): void {
  if (x.ndim !== 4) throw new Error(`${tag}: expected a 4-D (N, C, H, W) input, input shape [${x.shape}]`);
  if (x.shape[1] !== channels) {
    throw new Error(`${tag}: input has ${x.shape[1]} channels, expected ${channels}, input shape [${x.shape}]`);
  }
}

/** Options of the batch and instance norms. */
export interface NormOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Weight of the new batch statistics in the running averages (default 0.1). */
  momentum?: number;
  /** Learn a per-channel scale `weight` and shift `bias`. */
  affine?: boolean;
  /** Keep running mean/variance buffers for eval mode. */
  trackRunningStats?: boolean;
  /** Device of the parameters and buffers (default: the default device). */
  device?: Device;
}

/** Shared machinery of BatchNorm2d and InstanceNorm2d (they differ only in the axes the statistics reduce over). */
export abstract class RunningStatsNorm extends Module {
  /** Channels. */
  readonly numFeatures: number;
  /** Added to the variance. */
  readonly eps: number;
  /** Weight of the batch statistics in the running averages. */
  readonly momentum: number;
  /** Whether `weight`/`bias` exist. */
  readonly affine: boolean;
  /** Whether the running buffers exist. */
  readonly trackRunningStats: boolean;
  /** Per-channel scale (ones), or null. */
  weight: Parameter | null;
  /** Per-channel shift (zeros), or null. */
  bias: Parameter | null;
  /** Running mean (zeros), or null. */
  running_mean: Tensor | null;
  /** Running unbiased variance (ones), or null. */
  running_var: Tensor | null;
  /** Number of training batches seen (int32), or null. */
  num_batches_tracked: Tensor | null;

  /** Creates the parameters and buffers; subclasses pass their affine/tracking defaults. */
  constructor(numFeatures: number, opts: NormOptions, affineDefault: boolean, trackDefault: boolean) {
    super();
    this.numFeatures = numFeatures;
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    this.affine = opts.affine ?? affineDefault;
    this.trackRunningStats = opts.trackRunningStats ?? trackDefault;
    const device = opts.device;
    this.weight = this.affine ? new Parameter(ones([numFeatures], { device })) : null;
    this.bias = this.affine ? new Parameter(zeros([numFeatures], { device })) : null;
    const track = this.trackRunningStats;
    this.running_mean = track ? keep(zeros([numFeatures], { device })) : null;
    this.running_var = track ? keep(ones([numFeatures], { device })) : null;
    this.num_batches_tracked = track ? keep(full([], 0, { dtype: "int32", device })) : null;
  }

  /** "BatchNorm2d(64)" for error messages. */
  protected get tag(): string {
    return `${this.constructor.name}(${this.numFeatures})`;
  }

  /** The axes the batch statistics reduce over. */
  protected abstract statAxes(): number[];

  /** Whether a training forward increments `num_batches_tracked`. */
  protected abstract get countsBatches(): boolean;

  /** Normalises x (N, C, H, W) with batch statistics in training (or without running stats), else running ones. */
  forward(x: Tensor): Tensor {
    check4d(this.tag, x, this.numFeatures);
    const useBatchStats = this.training || !this.trackRunningStats;
    let y: Tensor;
    if (useBatchStats) {
      const axes = this.statAxes();
      const n = axes.reduce((p, a) => p * x.shape[a], 1);
      if (this.training && n <= 1) {
        throw new Error(`${this.tag}: expected more than 1 value per channel when training, input shape [${x.shape}]`);
      }
      const st = normalize(x, axes, this.eps);
      if (this.training && this.trackRunningStats) this.#updateRunning(st.mean, st.var, n);
      y = st.y;
    } else {
      // eval: one scale and shift per channel
      const rs = rsqrt(affine(this.running_var!, 1, this.eps));
      const scale = this.weight ? mul(this.weight, rs) : rs;
      const shift = sub(this.bias ?? 0, mul(this.running_mean!, scale));
      return add(mul(x, perChannel(scale, 4)), perChannel(shift, 4));
    }
    return this.weight ? add(mul(y, perChannel(this.weight, 4)), perChannel(this.bias!, 4)) : y;
  }

  /** running ← (1 - momentum)·running + momentum·batch, with the unbiased batch variance (as PyTorch). */
  #updateRunning(batchMean: Tensor, batchVar: Tensor, n: number): void {
    const c = this.numFeatures, m = this.momentum;
    noGrad(() =>
      tidy(() => {
        // InstanceNorm's statistics are (N, C): the running update averages them over the batch
        const bm = mean(reshape(batchMean, [-1, c]), 0);
        const bv = affine(mean(reshape(batchVar, [-1, c]), 0), n / (n - 1), 0);
        this.running_mean!.assign(add(affine(this.running_mean!, 1 - m, 0), affine(bm, m, 0)));
        this.running_var!.assign(add(affine(this.running_var!, 1 - m, 0), affine(bv, m, 0)));
        // PyTorch counts batches in BatchNorm only (F.instance_norm leaves num_batches_tracked at its value)
        if (this.countsBatches) this.num_batches_tracked!.assign(add(this.num_batches_tracked!, 1));
      })
    );
  }
}

/**
 * Batch normalisation over (N, H, W) per channel, as `torch.nn.BatchNorm2d`: `weight` (ones), `bias` (zeros),
 * buffers `running_mean` (zeros), `running_var` (ones), `num_batches_tracked` (int32 0). Training normalises
 * with the batch's biased variance and updates the running averages with momentum 0.1 and the unbiased
 * variance; eval uses the running statistics.
 */
export class BatchNorm2d extends RunningStatsNorm {
  /** Batch norm over `numFeatures` channels (affine and running stats on by default). */
  constructor(numFeatures: number, opts: NormOptions = {}) {
    super(numFeatures, opts, true, true);
  }

  /** (N, H, W). */
  protected statAxes(): number[] {
    return [0, 2, 3];
  }

  /** True. */
  protected get countsBatches(): boolean {
    return true;
  }
}

/**
 * Instance normalisation over (H, W) per sample and channel, as `torch.nn.InstanceNorm2d`: no affine
 * parameters and no running statistics by default (so train and eval agree). With `affine`, `weight`/`bias`
 * per channel; with `trackRunningStats`, running averages of the per-instance statistics (averaged over the
 * batch) used in eval mode; as in PyTorch, `num_batches_tracked` exists but is not incremented.
 */
export class InstanceNorm2d extends RunningStatsNorm {
  /** Instance norm over `numFeatures` channels (affine and running stats off by default). */
  constructor(numFeatures: number, opts: NormOptions = {}) {
    super(numFeatures, opts, false, false);
  }

  /** (H, W). */
  protected statAxes(): number[] {
    return [2, 3];
  }

  /** False, as PyTorch. */
  protected get countsBatches(): boolean {
    return false;
  }
}

/** Options of {@linkcode LayerNorm} and {@linkcode LayerNorm2d}. */
export interface LayerNormOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Learn `weight` (ones) and `bias` (zeros) of the normalised shape (default true). */
  elementwiseAffine?: boolean;
  /** With elementwiseAffine, also learn the `bias` (default true). */
  bias?: boolean;
  /** Device of the parameters (default: the default device). */
  device?: Device;
}

/**
 * Layer normalisation over the last `normalizedShape.length` dims, as `torch.nn.LayerNorm`: parameters
 * `weight` (ones) and `bias` (zeros) of shape `normalizedShape`, eps 1e-5.
 */
export class LayerNorm extends Module {
  /** The trailing dims normalised over. */
  readonly normalizedShape: readonly number[];
  /** Added to the variance. */
  readonly eps: number;
  /** Scale (ones), or null. */
  weight: Parameter | null;
  /** Shift (zeros), or null. */
  bias: Parameter | null;

  /** A layer norm over trailing dims `normalizedShape` (a number is one dim). */
  constructor(normalizedShape: number | readonly number[], opts: LayerNormOptions = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === "number" ? [normalizedShape] : [...normalizedShape];
    this.eps = opts.eps ?? 1e-5;
    const affineOn = opts.elementwiseAffine ?? true, device = opts.device;
    this.weight = affineOn ? new Parameter(ones(this.normalizedShape, { device })) : null;
    this.bias = affineOn && (opts.bias ?? true) ? new Parameter(zeros(this.normalizedShape, { device })) : null;
  }

  /** Normalises x (..., *normalizedShape). */
  forward(x: Tensor): Tensor {
    const k = this.normalizedShape.length;
    const tail = x.shape.slice(x.ndim - k);
    if (x.ndim < k || tail.join() !== this.normalizedShape.join()) {
      throw new Error(
        `LayerNorm([${this.normalizedShape}]): input's trailing dims [${tail}] do not match, input shape [${x.shape}]`,
      );
    }
    return layerNorm(x, this.normalizedShape, { weight: this.weight, bias: this.bias, eps: this.eps });
  }
}

/**
 * LayerNorm over the channels of a channels-first map: each pixel of x (N, C, H, W) is normalised over its C
 * values. It equals permuting to (N, H, W, C), `LayerNorm(C)` and permuting back (VMamba's `LayerNorm2d`,
 * a subclass of nn.LayerNorm, hence eps 1e-5 and the keys `weight`/`bias` of shape (C)), without the copies.
 */
export class LayerNorm2d extends Module {
  /** Channels. */
  readonly numChannels: number;
  /** Added to the variance. */
  readonly eps: number;
  /** Scale (ones), or null. */
  weight: Parameter | null;
  /** Shift (zeros), or null. */
  bias: Parameter | null;

  /** A channels-first layer norm over `numChannels`. */
  constructor(numChannels: number, opts: LayerNormOptions = {}) {
    super();
    this.numChannels = numChannels;
    this.eps = opts.eps ?? 1e-5;
    const affineOn = opts.elementwiseAffine ?? true, device = opts.device;
    this.weight = affineOn ? new Parameter(ones([numChannels], { device })) : null;
    this.bias = affineOn && (opts.bias ?? true) ? new Parameter(zeros([numChannels], { device })) : null;
  }

  /** Normalises x (N, C, H, W) over C at each pixel. */
  forward(x: Tensor): Tensor {
    check4d(`LayerNorm2d(${this.numChannels})`, x, this.numChannels);
    return layerNorm(x, this.numChannels, { weight: this.weight, bias: this.bias, eps: this.eps, axis: 1 });
  }
}

/** Options of {@linkcode GroupNorm}. */
export interface GroupNormOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Learn per-channel `weight` (ones) and `bias` (zeros) (default true). */
  affine?: boolean;
  /** Device of the parameters (default: the default device). */
  device?: Device;
}

/**
 * Group normalisation, as `torch.nn.GroupNorm`: the channels of x (N, C, ...) split into `numGroups` groups,
 * each normalised over its channels and all spatial positions per sample; then a per-channel affine.
 */
export class GroupNorm extends Module {
  /** Number of channel groups. */
  readonly numGroups: number;
  /** Channels. */
  readonly numChannels: number;
  /** Added to the variance. */
  readonly eps: number;
  /** Per-channel scale (ones), or null. */
  weight: Parameter | null;
  /** Per-channel shift (zeros), or null. */
  bias: Parameter | null;

  /** A group norm of `numChannels` channels in `numGroups` groups. */
  constructor(numGroups: number, numChannels: number, opts: GroupNormOptions = {}) {
    super();
    if (!Number.isInteger(numGroups) || numGroups < 1 || numChannels % numGroups !== 0) {
      throw new Error(`GroupNorm(${numGroups}, ${numChannels}): the number of groups must divide the channels`);
    }
    this.numGroups = numGroups;
    this.numChannels = numChannels;
    this.eps = opts.eps ?? 1e-5;
    const affineOn = opts.affine ?? true, device = opts.device;
    this.weight = affineOn ? new Parameter(ones([numChannels], { device })) : null;
    this.bias = affineOn ? new Parameter(zeros([numChannels], { device })) : null;
  }

  /** Normalises x (N, C, ...). */
  forward(x: Tensor): Tensor {
    if (x.ndim < 2 || x.shape[1] !== this.numChannels) {
      throw new Error(
        `GroupNorm(${this.numGroups}, ${this.numChannels}): input has ${
          x.shape[1]
        } channels, expected ${this.numChannels}, input shape [${x.shape}]`,
      );
    }
    const grouped = reshape(x, [x.shape[0], this.numGroups, -1]);
    let y = reshape(normalize(grouped, [2], this.eps).y, x.shape);
    if (this.weight) y = mul(y, perChannel(this.weight, x.ndim));
    if (this.bias) y = add(y, perChannel(this.bias, x.ndim));
    return y;
  }
}
