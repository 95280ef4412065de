/**
 * Parameter groups for weight decay, as ADER's (and timm's) `add_weight_decay`.
 *
 * @module
 */

import type { Tensor } from "../../autodiff/tensor.ts";

/** A parameter group with its weight decay. */
export interface DecayGroup {
  /** The group's parameters. */
  params: Tensor[];
  /** The group's weight decay. */
  weightDecay: number;
}

/**
 * Splits named parameters into two groups, as `add_weight_decay(model, weight_decay, skip_list)`: first
 * the parameters that are 1-D, whose name ends in ".bias", or whose name is in `skipList`, with weight
 * decay 0; then all others with `weightDecay`. Frozen parameters (`requiresGrad` false) are left out.
 * Order within each group follows `namedParams`.
 *
 * ```ts
 * import { AdamW, decayGroups, Linear } from "../../mod.ts";
 * const model = new Linear(4, 2); // weight decays, bias does not
 * const opt = new AdamW(decayGroups(model.namedParameters(), 1e-4), { lr: 0.005 });
 * ```
 */
export function decayGroups(
  namedParams: Iterable<readonly [string, Tensor]>,
  weightDecay: number,
  skipList: readonly string[] = [],
): [DecayGroup, DecayGroup] {
  const decay: Tensor[] = [];
  const noDecay: Tensor[] = [];
  for (const [name, p] of namedParams) {
    if (!p.requiresGrad) continue;
    if (p.shape.length === 1 || name.endsWith(".bias") || skipList.includes(name)) noDecay.push(p);
    else decay.push(p);
  }
  return [{ params: noDecay, weightDecay: 0 }, { params: decay, weightDecay }];
}
