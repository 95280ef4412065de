/**
 * Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay, following
 * PyTorch 1.13's `torch.optim.SGD` (single-tensor path) formula for formula.
 *
 * @module
 */

import { add, mul, neg } from "../../autodiff/ops/index.ts";
import type { Tensor } from "../../autodiff/tensor.ts";
import {
  type BaseGroupOptions,
  Optimizer,
  type ParamGroup,
  type ParamGroupInput,
  type ParamState,
} from "./optimizer.ts";

/** torch's float32 kernels round Python scalars to float32 first: so do we (see adam.ts). */
const f32 = Math.fround;

/** SGD hyper-parameters (per group). */
export interface SGDOptions extends BaseGroupOptions {
  /** Momentum factor (0: plain SGD, no buffer). */
  momentum: number;
  /** Dampening of the momentum (the new gradient is weighted 1 − dampening). */
  dampening: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). */
  nesterov: boolean;
  /** Ascend instead of descend. */
  maximize: boolean;
}

/** Constructor options of {@linkcode SGD}: `lr` is required, the rest default to 0 / false. */
export type SGDInit = Partial<SGDOptions> & { lr: number };

/**
 * SGD as PyTorch 1.13:
 *
 * ```text
 * d = maximize ? −g : g;  if wd ≠ 0: d = d + wd·p
 * if momentum ≠ 0: buf = (first step) d  else  momentum·buf + (1 − dampening)·d
 *                  d = nesterov ? d + momentum·buf : buf
 * p = p − lr·d
 * ```
 *
 * State per parameter: `momentum_buffer` (only with momentum).
 */
export class SGD extends Optimizer<SGDOptions> {
  /**
   * Creates the optimiser.
   *
   * @param params tensors or parameter groups
   * @param options defaults for every group
   */
  constructor(params: readonly Tensor[] | readonly ParamGroupInput<SGDOptions>[], options: SGDInit) {
    super(params, {
      lr: options.lr,
      momentum: options.momentum ?? 0,
      dampening: options.dampening ?? 0,
      weightDecay: options.weightDecay ?? 0,
      nesterov: options.nesterov ?? false,
      maximize: options.maximize ?? false,
    });
  }

  /** Checks momentum and the Nesterov conditions. */
  protected override validate(group: ParamGroup<SGDOptions>): void {
    super.validate(group);
    if (!(group.momentum >= 0)) throw new RangeError(`Invalid momentum value: ${group.momentum}`);
    if (group.nesterov && (group.momentum <= 0 || group.dampening !== 0)) {
      throw new RangeError("Nesterov momentum requires a momentum and zero dampening");
    }
  }

  /** One parameter's SGD update. */
  protected updateParam(p: Tensor, grad: Tensor, state: ParamState, group: ParamGroup<SGDOptions>): void {
    const { lr, momentum, dampening, weightDecay, nesterov, maximize } = group;
    let d = maximize ? neg(grad) : grad;
    if (weightDecay !== 0) d = add(d, mul(p, f32(weightDecay)));
    if (momentum !== 0) {
      const prev = state.momentum_buffer;
      let buf: Tensor;
      if (typeof prev !== "object") buf = this.setState(state, "momentum_buffer", d);
      else {buf = this.setState(
          state,
          "momentum_buffer",
          add(mul(prev, f32(momentum)), dampening === 0 ? d : mul(d, f32(1 - dampening))),
        );}
      d = nesterov ? add(d, mul(buf, f32(momentum))) : buf;
    }
    p.assign(add(p, mul(d, f32(-lr))));
  }
}
