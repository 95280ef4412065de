/**
 * `Conv2d`, as `torch.nn.Conv2d` (zero padding).
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { conv2d } from "../../autodiff/ops/index.ts";
import type { Tensor } from "../../autodiff/tensor.ts";
import { kaimingUniform, uniform } from "../init.ts";
import { Module, Parameter } from "../module.ts";

/** Options of {@linkcode Conv2d}. */
export interface Conv2dLayerOptions {
  /** Step between windows (default 1). */
  stride?: number | [number, number];
  /** Zero padding per side, or "same" (stride 1 only) / "valid" (default 0). */
  padding?: number | [number, number] | "same" | "valid";
  /** Spacing between kernel taps (default 1). */
  dilation?: number | [number, number];
  /** Channel groups; both channel counts must divide by it (default 1). */
  groups?: number;
  /** Learn an additive bias (default true). */
  bias?: boolean;
  /** Device of the parameters (default: the default device). */
  device?: Device;
}

function pair(v: number | readonly [number, number]): [number, number] {
  return typeof v === "number" ? [v, v] : [v[0], v[1]];
}

/**
 * 2-D convolution (N, inChannels, H, W) → (N, outChannels, H', W'). Parameters `weight`
 * (outChannels, inChannels/groups, kh, kw) and `bias` (outChannels), initialised as PyTorch:
 * kaiming_uniform(a=√5) and U(±1/√fan_in) with fan_in = inChannels/groups·kh·kw.
 */
export class Conv2d extends Module {
  /** Input channels. */
  readonly inChannels: number;
  /** Output channels. */
  readonly outChannels: number;
  /** (kh, kw). */
  readonly kernelSize: [number, number];
  /** (sh, sw). */
  readonly stride: [number, number];
  /** Padding per side, or "same" / "valid". */
  readonly padding: [number, number] | "same" | "valid";
  /** (dh, dw). */
  readonly dilation: [number, number];
  /** Channel groups. */
  readonly groups: number;
  /** (outChannels, inChannels/groups, kh, kw). */
  weight: Parameter;
  /** (outChannels), or null without bias. */
  bias: Parameter | null;

  /** A convolution from `inChannels` to `outChannels` with a `kernelSize` window. */
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number | [number, number],
    opts: Conv2dLayerOptions = {},
  ) {
    super();
    const groups = opts.groups ?? 1;
    const tag = `Conv2d(${inChannels}→${outChannels})`;
    if (!Number.isInteger(groups) || groups < 1 || inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new Error(`${tag}: groups=${groups} must divide both channel counts`);
    }
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = pair(kernelSize);
    this.stride = pair(opts.stride ?? 1);
    const padding = opts.padding ?? 0;
    this.padding = typeof padding === "string" ? padding : pair(padding);
    this.dilation = pair(opts.dilation ?? 1);
    this.groups = groups;
    if (padding === "same" && (this.stride[0] !== 1 || this.stride[1] !== 1)) {
      throw new Error(`${tag}: padding "same" is not supported for strided convolutions (stride ${this.stride})`);
    }
    const [kh, kw] = this.kernelSize;
    const device = opts.device;
    const fanIn = (inChannels / groups) * kh * kw;
    this.weight = new Parameter(
      kaimingUniform([outChannels, inChannels / groups, kh, kw], { a: Math.sqrt(5), device }),
    );
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    this.bias = (opts.bias ?? true) ? new Parameter(uniform([outChannels], -bound, bound, { device })) : null;
  }

  /** Applies the convolution to x (N, inChannels, H, W). */
  forward(x: Tensor): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.inChannels) {
      const what = x.ndim !== 4
        ? `expected a 4-D (N, C, H, W) input`
        : `input has ${x.shape[1]} channels, expected ${this.inChannels}`;
      throw new Error(`Conv2d(${this.inChannels}→${this.outChannels}): ${what}, input shape [${x.shape}]`);
    }
    return conv2d(x, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }
}
