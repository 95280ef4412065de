/**
 * Adam (L2 weight decay added to the gradient, optional AMSGrad), following PyTorch 1.13's
 * `torch.optim.Adam` (single-tensor path) formula for formula.
 *
 * @module
 */

import { add, div, full, maximum, mul, neg, sqrt, zerosLike } from "../../autodiff/ops/index.ts";
import { Tensor } from "../../autodiff/tensor.ts";
import {
  type BaseGroupOptions,
  Optimizer,
  type ParamGroup,
  type ParamGroupInput,
  type ParamState,
} from "./optimizer.ts";

/** Adam / AdamW hyper-parameters (per group). */
export interface AdamOptions extends BaseGroupOptions {
  /** Coefficients of the running averages of the gradient and its square. */
  betas: [number, number];
  /** Added to the bias-corrected √v (numerical stability). */
  eps: number;
  /** Use the maximum of all past v (AMSGrad). */
  amsgrad: boolean;
  /** Ascend instead of descend. */
  maximize: boolean;
}

/**
 * PyTorch's float32 kernels round a Python scalar to float32 before using it; doing the same keeps the CPU
 * backend (which computes in float64 and rounds once) within an ulp or so of torch.
 */
const f32 = Math.fround;

function adamDefaults(options: Partial<AdamOptions>, weightDecay: number): AdamOptions {
  return {
    lr: options.lr ?? 1e-3,
    betas: options.betas ? [options.betas[0], options.betas[1]] : [0.9, 0.999],
    eps: options.eps ?? 1e-8,
    weightDecay: options.weightDecay ?? weightDecay,
    amsgrad: options.amsgrad ?? false,
    maximize: options.maximize ?? false,
  };
}

function validateAdam(group: ParamGroup<AdamOptions>): void {
  if (!(group.eps >= 0)) throw new RangeError(`Invalid epsilon value: ${group.eps}`);
  const [b1, b2] = group.betas;
  if (!(b1 >= 0 && b1 < 1)) throw new RangeError(`Invalid beta parameter at index 0: ${b1}`);
  if (!(b2 >= 0 && b2 < 1)) throw new RangeError(`Invalid beta parameter at index 1: ${b2}`);
}

/**
 * The moment updates and the parameter step shared by Adam and AdamW (PyTorch 1.13):
 *
 * ```text
 * step += 1
 * m = β1·m + (1 − β1)·g;   v = β2·v + (1 − β2)·g·g;   (amsgrad: vmax = max(vmax, v), used for v below)
 * denom = √v / √(1 − β2^step) + eps
 * p = p − (lr / (1 − β1^step))·m / denom
 * ```
 *
 * `p` is the (possibly already decayed) parameter value; returns the new one.
 */
function adamStep(
  set: (key: string, value: Tensor) => Tensor,
  param: Tensor,
  g: Tensor,
  state: ParamState,
  group: AdamOptions,
  decay?: number,
): Tensor {
  const { lr, eps, amsgrad } = group;
  const [beta1, beta2] = group.betas;
  if (state.step === undefined) {
    state.step = 0;
    set("exp_avg", zerosLike(param));
    set("exp_avg_sq", zerosLike(param));
    if (amsgrad) set("max_exp_avg_sq", zerosLike(param));
  }
  const step = (state.step as number) + 1;
  state.step = step;
  const biasCorrection1 = 1 - beta1 ** step;
  const biasCorrection2 = 1 - beta2 ** step;
  const stepSize = lr / biasCorrection1;
  const biasCorrection2Sqrt = Math.sqrt(biasCorrection2);
  const backend = param.backend;
  if (backend.adamStep && !amsgrad) {
    // one fused loop where the backend has it (the CPU), bit-identical to the ops below
    const h = {
      decay,
      beta1,
      oneMinusBeta1: 1 - beta1,
      beta2,
      oneMinusBeta2: 1 - beta2,
      biasCorrection2Sqrt,
      stepSize,
      eps,
    };
    const m0 = state.exp_avg as Tensor, v0 = state.exp_avg_sq as Tensor;
    const r = backend.adamStep(param.buffer, g.buffer, m0.buffer, v0.buffer, h);
    const wrap = (b: typeof r.p) => Tensor.fromBuffer(b, param.shape, "float32", param.device);
    set("exp_avg", wrap(r.m));
    set("exp_avg_sq", wrap(r.v));
    return wrap(r.p);
  }
  // decoupled decay (torch multiplies even by 1)
  const p = decay !== undefined ? mul(param, decay) : param;
  const m = set("exp_avg", add(mul(state.exp_avg as Tensor, f32(beta1)), mul(g, f32(1 - beta1))));
  let v = set("exp_avg_sq", add(mul(state.exp_avg_sq as Tensor, f32(beta2)), mul(mul(g, f32(1 - beta2)), g)));
  if (amsgrad) {
    const prev = state.max_exp_avg_sq;
    v = set("max_exp_avg_sq", typeof prev === "object" ? maximum(prev, v) : v);
  }
  // torch divides by the float32 √bc2 (a true division, not a multiplication by the reciprocal)
  const divisor = full([], f32(biasCorrection2Sqrt), { device: p.device });
  const denom = add(div(sqrt(v), divisor), f32(eps));
  return add(p, div(mul(m, f32(-stepSize)), denom));
}

/**
 * Adam as PyTorch 1.13: `g = (maximize ? −grad : grad) + wd·p`, then the shared moment update and step. Defaults:
 * lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.
 *
 * State per parameter: `step` (number), `exp_avg`, `exp_avg_sq`, and `max_exp_avg_sq` with amsgrad.
 */
export class Adam extends Optimizer<AdamOptions> {
  /**
   * Creates the optimiser.
   *
   * @param params tensors or parameter groups
   * @param options defaults for every group
   */
  constructor(params: readonly Tensor[] | readonly ParamGroupInput<AdamOptions>[], options: Partial<AdamOptions> = {}) {
    super(params, adamDefaults(options, 0));
  }

  /** The shared moment updates and parameter step; returns the new parameter value. */
  protected adamStep(p: Tensor, g: Tensor, state: ParamState, group: AdamOptions, decay?: number): Tensor {
    return adamStep((k, v) => this.setState(state, k, v), p, g, state, group, decay);
  }

  /** Checks eps and betas. */
  protected override validate(group: ParamGroup<AdamOptions>): void {
    super.validate(group);
    validateAdam(group);
  }

  /** One parameter's Adam update. */
  protected updateParam(p: Tensor, grad: Tensor, state: ParamState, group: ParamGroup<AdamOptions>): void {
    let g = group.maximize ? neg(grad) : grad;
    if (group.weightDecay !== 0) g = add(g, mul(p, f32(group.weightDecay)));
    p.assign(this.adamStep(p, g, state, group));
  }
}
