/**
 * What the two decoders (`MambaUPNet` of MambaAD and of Wave-MambaAD) share besides their blocks: the stochastic-depth
 * schedule and the `MambaUPNet._init_weights` pass.
 *
 * @module
 */

import { constant, truncNormal } from "../../nn/init.ts";
import { Linear } from "../../nn/layers/linear.ts";
import { LayerNorm } from "../../nn/layers/norm.ts";
import type { Module } from "../../nn/module.ts";

/** reversed(linspace(0, rate, n)) as plain numbers (torch.linspace then [::-1], docs/paper.md §1.3, §3.1). */
export function dropPathSchedule(rate: number, n: number): number[] {
  const out = Array.from({ length: n }, (_, i) => (n === 1 ? 0 : (rate * i) / (n - 1)));
  return out.reverse();
}

/**
 * `MambaUPNet._init_weights` (docs/paper.md §1.8), applied last to a whole decoder: every Linear (in_proj,
 * out_proj, PatchExpand2D.expand, ...) weight ~ trunc_normal(std 0.02) on [-2, 2], bias 0; every LayerNorm weight 1,
 * bias 0. SS2D's stacked x_proj/dt_proj parameters are not Linear modules and keep their own init. Modules for which
 * `skip` is true are left alone. Returns `m`.
 */
export function mambaUPNetInit<M extends Module>(m: M, skip: (mod: Module) => boolean = () => false): M {
  for (const mod of m.modules()) {
    if (skip(mod)) continue;
    if (mod instanceof Linear) {
      truncNormal(mod.weight, { std: 0.02 });
      if (mod.bias) constant(mod.bias, 0);
    } else if (mod instanceof LayerNorm) {
      if (mod.weight) constant(mod.weight, 1);
      if (mod.bias) constant(mod.bias, 0);
    }
  }
  return m;
}
