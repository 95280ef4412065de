/**
 * Gradient clipping by the global norm, as `torch.nn.utils.clip_grad_norm_` (PyTorch 1.13).
 *
 * @module
 */

import { abs, clamp, div, max, mul, pow, sqrt, square, stack, sum, zeros } from "../../autodiff/ops/index.ts";
import { noGrad, type Tensor, tidy } from "../../autodiff/tensor.ts";
import { sumOfSquaresMulti } from "./multi_tensor.ts";

function norm(x: Tensor, normType: number): Tensor {
  if (normType === Infinity) return max(abs(x));
  if (normType === 2) return sqrt(sum(square(x)));
  if (normType === 1) return sum(abs(x));
  return pow(sum(pow(abs(x), normType)), 1 / normType);
}

function totalNorm(grads: readonly Tensor[], normType: number): Tensor {
  const norms = grads.map((g) => norm(g, normType));
  return norms.length === 1 && normType === Infinity ? norms[0] : norm(stack(norms, 0), normType);
}

/**
 * Scales the gradients of `params` in place (each `.grad` is re-assigned) so that their global norm is at
 * most `maxNorm`, and returns that total norm (before clipping) as a 0-d tensor on the gradients' device —
 * nothing is read back, so the call does not wait for the device.
 *
 * As PyTorch: total = ‖(‖g₁‖, ‖g₂‖, …)‖ over the parameters that have a grad (`normType` p, or `Infinity`
 * for the max-abs norm), coef = min(maxNorm / (total + 1e-6), 1), and every grad is multiplied by coef
 * (also when coef is 1). Parameters without a grad are skipped; with none, the result is 0.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number, normType = 2): Tensor {
  if (!(normType > 0)) throw new RangeError(`clipGradNorm: normType must be positive or Infinity, got ${normType}`);
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
  if (grads.length === 0) return zeros([]);
  const device = grads[0].device;
  for (const g of grads) {
    if (g.device !== device) throw new Error(`clipGradNorm: grads on ${device} and ${g.device}`);
  }
  return noGrad(() =>
    tidy(() => {
      // the 2-norm of the per-grad 2-norms is √(Σ g²) over all grads: on WebGPU a few kernels for all of them
      const sq = normType === 2 ? sumOfSquaresMulti(grads, device) : null;
      const total = sq ? sqrt(sq) : totalNorm(grads, normType);
      const coef = clamp(div(maxNorm, total.add(Math.fround(1e-6))), undefined, 1);
      for (const g of grads) g.assign(mul(g, coef));
      return total;
    })
  );
}
