/**
 * Gradient checking by central differences, accumulated in float64 on the host.
 *
 * @module
 */

import { globalGenerator } from "./random.ts";
import { noGrad, type Tensor, tidy } from "./tensor.ts";
import { tensor } from "./ops/creation.ts";
import { mul, sum } from "./ops/index.ts";

/** Options of {@linkcode gradcheck}. */
export interface GradcheckOptions {
  /** Finite-difference step (default 1e-3; linear ops do better with 1e-2, float32 rounding being smaller). */
  eps?: number;
  /**
   * Absolute tolerance (default 1e-4): the floor of the per-entry test |a − n| ≤ atol + rtol·|n| and of the
   * per-input test ‖a − n‖₂ ≤ atol + rtol·‖n‖₂. It is not scaled by the number of entries, so a dropped or
   * scaled gradient rule fails the per-input test even where every single entry is below atol.
   */
  atol?: number;
  /** Relative tolerance (default 1e-2), per entry and per input (in the 2-norm). */
  rtol?: number;
}

/** Result of {@linkcode gradcheck}. */
export interface GradcheckResult {
  /** Whether every entry, and every input's gradient as a whole, was within tolerance. */
  ok: boolean;
  /** Largest |analytic - numeric| over all entries. */
  maxError: number;
  /** Largest ‖analytic − numeric‖₂ / ‖numeric‖₂ over the inputs (0 where both are 0). */
  relError: number;
  /** The first failure (or "all entries within tolerance"), for messages. */
  details: string;
}

/**
 * Compares the analytic gradient of `sum(fn(...inputs) · R)` (R fixed random) with central differences.
 * `fn` runs in float32 on the inputs' device; the numeric derivative of each input element is
 * (f(x+ε) − f(x−ε)) / (x+ε − (x−ε)) with both steps rounded to float32 and f summed in float64 on the host.
 *
 * Two tests, both must hold (torch.autograd.gradcheck's mixed tolerance, plus a norm test):
 * - every entry: |a − n| ≤ atol + rtol·|n|;
 * - every input as a whole: ‖a − n‖₂ ≤ atol + rtol·‖n‖₂.
 * An input whose gradient is missing (no rule recorded) counts as an all-zero analytic gradient.
 */
export async function gradcheck(
  fn: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  opts: GradcheckOptions = {},
): Promise<GradcheckResult> {
  const eps = opts.eps ?? 1e-3, atol = opts.atol ?? 1e-4, rtol = opts.rtol ?? 1e-2;
  const device = inputs[0].device;
  const hostInputs = await Promise.all(inputs.map(async (t) => Float64Array.from(await t.data())));
  const make = (vals: Float64Array[], grad: boolean) =>
    inputs.map((t, i) =>
      tensor(Float32Array.from(vals[i]), { shape: t.shape, device, requiresGrad: grad && t.requiresGrad })
    );
  // fixed upstream weights
  const probe = noGrad(() => tidy(() => fn(...make(hostInputs, false))));
  const outShape = probe.shape;
  probe.dispose();
  const r = new Float64Array(outShape.reduce((a, b) => a * b, 1)).map(() => globalGenerator.normal());
  const rT = tensor(Float32Array.from(r), { shape: outShape, device });
  const rF32 = Float32Array.from(r);

  // analytic
  const leaves = make(hostInputs, true);
  const loss = tidy(() => sum(mul(fn(...leaves), rT)));
  loss.backward();
  loss.dispose();
  const analytic = await Promise.all(leaves.map(async (l) => (l.grad ? Float64Array.from(await l.grad.data()) : null)));
  leaves.forEach((l) => {
    l.zeroGrad();
    l.dispose();
  });

  const evalAt = async (vals: Float64Array[]): Promise<number> => {
    const out = noGrad(() => tidy(() => fn(...make(vals, false))));
    const data = await out.data();
    out.dispose();
    let acc = 0;
    for (let i = 0; i < data.length; i++) acc += data[i] * rF32[i];
    return acc;
  };

  let maxError = 0, relError = 0, ok = true, details = "all entries within tolerance";
  const fail = (msg: string) => {
    if (ok) details = msg;
    ok = false;
  };
  for (let k = 0; k < inputs.length; k++) {
    if (!inputs[k].requiresGrad) continue;
    const vals = hostInputs.map((v) => v.slice());
    let errSq = 0, numSq = 0, anaSq = 0;
    for (let i = 0; i < vals[k].length; i++) {
      const x0 = vals[k][i];
      // the step actually representable in float32
      const hi = Math.fround(x0 + eps), lo = Math.fround(x0 - eps);
      vals[k][i] = hi;
      const fp = await evalAt(vals);
      vals[k][i] = lo;
      const fm = await evalAt(vals);
      vals[k][i] = x0;
      const numeric = (fp - fm) / (hi - lo);
      const a = analytic[k] ? analytic[k]![i] : 0;
      const err = Math.abs(a - numeric);
      errSq += err * err;
      numSq += numeric * numeric;
      anaSq += a * a;
      if (err > maxError) maxError = err;
      if (err > atol + rtol * Math.abs(numeric)) {
        fail(`input ${k} element ${i}: analytic ${a}, numeric ${numeric}`);
      }
    }
    const errNorm = Math.sqrt(errSq), numNorm = Math.sqrt(numSq);
    const rel = numNorm > 0 ? errNorm / numNorm : (errNorm > 0 ? Infinity : 0);
    if (rel > relError) relError = rel;
    if (errNorm > atol + rtol * numNorm) {
      fail(
        `input ${k} as a whole: ‖analytic − numeric‖ ${errNorm} > ${atol} + ${rtol}·‖numeric‖ ${numNorm} ` +
          `(‖analytic‖ ${Math.sqrt(anaSq)}${analytic[k] ? "" : ", no gradient reached this input"})`,
      );
    }
  }
  rT.dispose();
  return { ok, maxError, relError, details };
}
