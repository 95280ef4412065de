/**
 * The fused Adam/AdamW step of the CPU backend: one loop over a parameter instead of eleven elementwise passes
 * (decay, the two moments, √v, the bias corrections, the step). Every operation is rounded to float32 in the
 * order of the composite of nn/optim/adam.ts, including its scalar ops' `x·s + 0` (so −0 becomes +0 where the
 * composite's affine kernel makes it), so results are bit-identical to the composite.
 *
 * @module
 */

import type { AdamStepScalars } from "../../backend.ts";

const f = Math.fround;

/** Writes p', m', v' for parameter p, gradient g and moments m, v. */
export function adamStepCpu(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  pOut: Float32Array,
  mOut: Float32Array,
  vOut: Float32Array,
  h: AdamStepScalars,
): void {
  const decayed = h.decay !== undefined,
    decay = f(h.decay ?? 1),
    b1 = f(h.beta1),
    c1 = f(h.oneMinusBeta1),
    b2 = f(h.beta2),
    c2 = f(h.oneMinusBeta2);
  const divisor = f(h.biasCorrection2Sqrt), eps = f(h.eps), step = f(-h.stepSize);
  for (let i = 0; i < p.length; i++) {
    const gi = g[i];
    const pi = decayed ? f(p[i] * decay + 0) : p[i];
    const mi = f(f(m[i] * b1 + 0) + f(gi * c1 + 0));
    const vi = f(f(v[i] * b2 + 0) + f(f(gi * c2 + 0) * gi));
    const denom = f(f(f(Math.sqrt(vi)) / divisor) * 1 + eps);
    mOut[i] = mi;
    vOut[i] = vi;
    pOut[i] = pi + f(f(mi * step + 0) / denom);
  }
}
