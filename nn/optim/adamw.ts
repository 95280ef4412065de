/**
 * AdamW: Adam with decoupled weight decay, following PyTorch 1.13's `torch.optim.AdamW` (single-tensor
 * path) formula for formula.
 *
 * @module
 */

import { neg } from "../../autodiff/ops/index.ts";
import type { Tensor } from "../../autodiff/tensor.ts";
import { Adam, type AdamOptions } from "./adam.ts";
import type { ParamGroup, ParamGroupInput, ParamState } from "./optimizer.ts";

/**
 * AdamW as PyTorch 1.13: `p = p·(1 − lr·wd)` first, then Adam's moment updates and step with the raw
 * gradient (no L2 term). Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-2.
 *
 * The recipe of docs/paper.md §1.11 is `new AdamW(decayGroups(namedParams, 1e-4), { lr: 0.005, betas: [0.9, 0.999],
 * eps: 1e-8 })`.
 *
 * State per parameter: `step` (number), `exp_avg`, `exp_avg_sq`, and `max_exp_avg_sq` with amsgrad.
 */
export class AdamW extends Adam {
  /**
   * Creates the optimiser.
   *
   * @param params tensors or parameter groups
   * @param options defaults for every group
   */
  constructor(params: readonly Tensor[] | readonly ParamGroupInput<AdamOptions>[], options: Partial<AdamOptions> = {}) {
    super(params, { ...options, weightDecay: options.weightDecay ?? 1e-2 });
  }

  /** One parameter's AdamW update. */
  protected override updateParam(p: Tensor, grad: Tensor, state: ParamState, group: ParamGroup<AdamOptions>): void {
    const g = group.maximize ? neg(grad) : grad;
    // decoupled decay (torch multiplies even by 1; a no-op skipped here), applied first by adamStep
    const decay = group.weightDecay !== 0 ? Math.fround(1 - group.lr * group.weightDecay) : undefined;
    p.assign(this.adamStep(p, g, state, group, decay));
  }
}
