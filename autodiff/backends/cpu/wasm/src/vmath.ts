// AssemblyScript: vector maths shared by the CPU backend's WebAssembly kernels (f32x4 lanes).
// Each function matches the scalar definition of autodiff/op_table.ts to float32 rounding (relative error ≈ 1e-7).

const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;

/** 1.5·2²³: adding it rounds a float32 of magnitude < 2²² to an integer held in the low mantissa bits. */
const ROUND: f32 = 12582912.0;
const ROUND_BITS: i32 = 0x4b400000;

/**
 * e^x for 4 lanes; x clamped to [−87.3, 88.7] (the scan's arguments; below that e^x is within 1e-38 of 0).
 * k = round(x·log2 e) by the ROUND trick, so k's integer bits come for free; pmin/pmax are single
 * instructions where wasm's NaN-propagating min/max are not (NaN still passes: pmax(NaN, a) is NaN).
 */
@inline export function vexp(x: v128): v128 {
  x = f32x4.pmin(f32x4.pmax(x, f32x4.splat(-87.3)), f32x4.splat(88.7));
  const t = f32x4.add(f32x4.mul(x, f32x4.splat(LOG2E)), f32x4.splat(ROUND));
  const k = f32x4.sub(t, f32x4.splat(ROUND));
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(k, f32x4.splat(LN2_HI))), f32x4.mul(k, f32x4.splat(LN2_LO)));
  // 2^k: k + 127 in the exponent bits
  const bits = i32x4.shl(i32x4.add(t, i32x4.splat(127 - ROUND_BITS)), 23);
  return f32x4.mul(expReduced(r), bits);
}

/** e^r for |r| ≤ ln2/2: Cephes' degree-7 polynomial. */
@inline function expReduced(r: v128): v128 {
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  return f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1.0));
}

/**
 * e^x with float32's own range (the elementwise `exp` op): +∞ above 88.72, gradual underflow down to −103.97,
 * then 0; NaN kept. 2^k is applied in two halves so that k = 128 and subnormal results stay exact.
 */
@inline export function vexpIeee(x: v128): v128 {
  const xc = f32x4.pmin(f32x4.pmax(x, f32x4.splat(-104.0)), f32x4.splat(88.8));
  const t = f32x4.add(f32x4.mul(xc, f32x4.splat(LOG2E)), f32x4.splat(ROUND));
  const k = f32x4.sub(t, f32x4.splat(ROUND));
  const p = expReduced(f32x4.sub(f32x4.sub(xc, f32x4.mul(k, f32x4.splat(LN2_HI))), f32x4.mul(k, f32x4.splat(LN2_LO))));
  const ki = i32x4.sub(t, i32x4.splat(ROUND_BITS));
  const k1 = i32x4.shr_s(ki, 1), k2 = i32x4.sub(ki, k1);
  const s1 = i32x4.shl(i32x4.add(k1, i32x4.splat(127)), 23), s2 = i32x4.shl(i32x4.add(k2, i32x4.splat(127)), 23);
  const e = f32x4.mul(f32x4.mul(p, s1), s2);
  const big = f32x4.gt(x, f32x4.splat(88.72284));
  const tiny = f32x4.lt(x, f32x4.splat(-103.972084));
  return v128.andnot(v128.bitselect(f32x4.splat(Infinity), e, big), tiny);
}

/** log(1 + y) for y in [0, 1]: 2·atanh(s), s = y / (2 + y) ≤ 1/3, series to s¹⁵ (error < 1e-8). */
@inline export function vlog1pUnit(y: v128): v128 {
  const s = f32x4.div(y, f32x4.add(y, f32x4.splat(2.0)));
  const s2 = f32x4.mul(s, s);
  let p = f32x4.splat(1.0 / 15.0);
  p = f32x4.add(f32x4.mul(p, s2), f32x4.splat(1.0 / 13.0));
  p = f32x4.add(f32x4.mul(p, s2), f32x4.splat(1.0 / 11.0));
  p = f32x4.add(f32x4.mul(p, s2), f32x4.splat(1.0 / 9.0));
  p = f32x4.add(f32x4.mul(p, s2), f32x4.splat(1.0 / 7.0));
  p = f32x4.add(f32x4.mul(p, s2), f32x4.splat(1.0 / 5.0));
  p = f32x4.add(f32x4.mul(p, s2), f32x4.splat(1.0 / 3.0));
  p = f32x4.add(f32x4.mul(p, s2), f32x4.splat(1.0));
  return f32x4.mul(f32x4.mul(p, s), f32x4.splat(2.0));
}

/** softplus(x) = max(x, 0) + log1p(e^−|x|) (torch's threshold 20 gives the same float32 value). */
@inline export function vsoftplus(x: v128): v128 {
  return f32x4.add(f32x4.max(x, f32x4.splat(0.0)), vlog1pUnit(vexp(f32x4.neg(f32x4.abs(x)))));
}

/** 1 / (1 + e^−x). */
@inline export function vsigmoid(x: v128): v128 {
  return f32x4.div(f32x4.splat(1.0), f32x4.add(f32x4.splat(1.0), vexp(f32x4.neg(x))));
}

/**
 * erfc(|x|) by the Numerical Recipes formula op_table.ts's `erf` uses (Chebyshev fit, |error| < 1.2e-7):
 * r = t·exp(−z² − 1.26551223 + t·P(t)), t = 1 / (1 + z/2), z = |x|; erf(x) = ±(1 − r).
 */
@inline function erfcAbs(x: v128): v128 {
  const z = f32x4.abs(x);
  const t = f32x4.div(f32x4.splat(1.0), f32x4.add(f32x4.splat(1.0), f32x4.mul(f32x4.splat(0.5), z)));
  let p = f32x4.splat(0.17087277);
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-0.82215223));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(1.48851587));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-1.13520398));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(0.27886807));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-0.18628806));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(0.09678418));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(0.37409196));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(1.00002368));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-1.26551223));
  return f32x4.mul(t, vexpIeee(f32x4.sub(p, f32x4.mul(z, z))));
}

/** 1 + erf(x), from erfc(|x|) = r without cancellation: 2 − r for x ≥ 0, r for x < 0 (GELU's Φ = this / 2). */
@inline export function vOnePlusErf(x: v128): v128 {
  const r = erfcAbs(x);
  return v128.bitselect(f32x4.sub(f32x4.splat(2.0), r), r, f32x4.ge(x, f32x4.splat(0.0)));
}
