// AssemblyScript: vector maths shared by the CPU backend's WebAssembly kernels (f32x4 lanes).
// Each function matches the scalar definition of autodiff/op_table.ts to float32 rounding (relative error ≈ 1e-7).

const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;

/** 1.5·2²³: adding it rounds a float32 of magnitude < 2²² to an integer held in the low mantissa bits. */
const ROUND: f32 = 12582912.0;
const ROUND_BITS: i32 = 0x4b400000;

// The vector constants are module globals, not splat literals: V8 rebuilds a v128 constant at every use inside a
// loop (3 instructions), where a global is one load (kernels 1.3–1.7× faster). AssemblyScript sets them in the
// module's start function, so every instance (the main thread's and each worker's) has them.
let C_M87_3 = f32x4.splat(-87.3);
let C_88_7 = f32x4.splat(88.7);
let C_LOG2E = f32x4.splat(LOG2E);
let C_ROUND = f32x4.splat(ROUND);
let C_LN2_HI = f32x4.splat(LN2_HI);
let C_LN2_LO = f32x4.splat(LN2_LO);
let C_1_9875691500E_M4 = f32x4.splat(1.9875691500e-4);
let C_1_3981999507E_M3 = f32x4.splat(1.3981999507e-3);
let C_8_3334519073E_M3 = f32x4.splat(8.3334519073e-3);
let C_4_1665795894E_M2 = f32x4.splat(4.1665795894e-2);
let C_1_6666665459E_M1 = f32x4.splat(1.6666665459e-1);
let C_5_0000001201E_M1 = f32x4.splat(5.0000001201e-1);
export let C_1_0 = f32x4.splat(1.0);
let C_M104_0 = f32x4.splat(-104.0);
let C_88_8 = f32x4.splat(88.8);
let C_88_72284 = f32x4.splat(88.72284);
let C_M103_972084 = f32x4.splat(-103.972084);
let C_INFINITY = f32x4.splat(Infinity);
let C_2_0 = f32x4.splat(2.0);
let C_1_0_DIV_15_0 = f32x4.splat(1.0 / 15.0);
let C_1_0_DIV_13_0 = f32x4.splat(1.0 / 13.0);
let C_1_0_DIV_11_0 = f32x4.splat(1.0 / 11.0);
let C_1_0_DIV_9_0 = f32x4.splat(1.0 / 9.0);
let C_1_0_DIV_7_0 = f32x4.splat(1.0 / 7.0);
let C_1_0_DIV_5_0 = f32x4.splat(1.0 / 5.0);
let C_1_0_DIV_3_0 = f32x4.splat(1.0 / 3.0);
let C_0_0 = f32x4.splat(0.0);
let C_0_5 = f32x4.splat(0.5);
let C_0_17087277 = f32x4.splat(0.17087277);
let C_M0_82215223 = f32x4.splat(-0.82215223);
let C_1_48851587 = f32x4.splat(1.48851587);
let C_M1_13520398 = f32x4.splat(-1.13520398);
let C_0_27886807 = f32x4.splat(0.27886807);
let C_M0_18628806 = f32x4.splat(-0.18628806);
let C_0_09678418 = f32x4.splat(0.09678418);
let C_0_37409196 = f32x4.splat(0.37409196);
let C_1_00002368 = f32x4.splat(1.00002368);
let C_M1_26551223 = f32x4.splat(-1.26551223);
let I_127_ROUND_BITS = i32x4.splat(127 - ROUND_BITS);
let I_ROUND_BITS = i32x4.splat(ROUND_BITS);
let I_127 = i32x4.splat(127);

/** a·x + b, one term pair of Estrin's scheme (see expReduced). */
@inline export function mulAdd(a: v128, x: v128, b: v128): v128 {
  return f32x4.add(f32x4.mul(a, x), b);
}

/**
 * e^x for 4 lanes; x clamped to [−87.3, 88.7] (the scan's arguments; below that e^x is within 1e-38 of 0).
 * k = round(x·log2 e) by the ROUND trick, so k's integer bits come for free; pmin/pmax are single
 * instructions where wasm's NaN-propagating min/max are not (NaN still passes: pmax(NaN, a) is NaN).
 */
@inline export function vexp(x: v128): v128 {
  x = f32x4.pmin(f32x4.pmax(x, C_M87_3), C_88_7);
  const t = f32x4.add(f32x4.mul(x, C_LOG2E), C_ROUND);
  const k = f32x4.sub(t, C_ROUND);
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(k, C_LN2_HI)), f32x4.mul(k, C_LN2_LO));
  // 2^k: k + 127 in the exponent bits
  const bits = i32x4.shl(i32x4.add(t, I_127_ROUND_BITS), 23);
  return f32x4.mul(expReduced(r), bits);
}

/**
 * e^r for |r| ≤ ln2/2: Cephes' degree-7 polynomial 1 + r + r²·p(r), p by Estrin's scheme. Horner's chain of
 * multiply-adds is ~40 cycles of latency; a loop of these is bound by that latency (the out-of-order window holds
 * only one or two elements' chains), and Estrin's pairs halve it (see docs/architecture.md).
 */
@inline function expReduced(r: v128): v128 {
  const r2 = f32x4.mul(r, r), r4 = f32x4.mul(r2, r2);
  const a = mulAdd(C_1_6666665459E_M1, r, C_5_0000001201E_M1);
  const b = mulAdd(C_8_3334519073E_M3, r, C_4_1665795894E_M2);
  const c = mulAdd(C_1_9875691500E_M4, r, C_1_3981999507E_M3);
  const p = f32x4.add(f32x4.add(a, f32x4.mul(r2, b)), f32x4.mul(r4, c));
  return f32x4.add(f32x4.add(r, C_1_0), f32x4.mul(r2, p));
}

/**
 * e^x with float32's own range (the elementwise `exp` op): +∞ above 88.72, gradual underflow down to −103.97,
 * then 0; NaN kept. 2^k is applied in two halves so that k = 128 and subnormal results stay exact.
 */
@inline export function vexpIeee(x: v128): v128 {
  const xc = f32x4.pmin(f32x4.pmax(x, C_M104_0), C_88_8);
  const t = f32x4.add(f32x4.mul(xc, C_LOG2E), C_ROUND);
  const k = f32x4.sub(t, C_ROUND);
  const p = expReduced(f32x4.sub(f32x4.sub(xc, f32x4.mul(k, C_LN2_HI)), f32x4.mul(k, C_LN2_LO)));
  const ki = i32x4.sub(t, I_ROUND_BITS);
  const k1 = i32x4.shr_s(ki, 1), k2 = i32x4.sub(ki, k1);
  const s1 = i32x4.shl(i32x4.add(k1, I_127), 23), s2 = i32x4.shl(i32x4.add(k2, I_127), 23);
  const e = f32x4.mul(f32x4.mul(p, s1), s2);
  const big = f32x4.gt(x, C_88_72284);
  const tiny = f32x4.lt(x, C_M103_972084);
  return v128.andnot(v128.bitselect(C_INFINITY, e, big), tiny);
}

/** log(1 + y) for y in [0, 1]: 2·atanh(s), s = y / (2 + y) ≤ 1/3, series to s¹⁵ (error < 1e-8). */
@inline export function vlog1pUnit(y: v128): v128 {
  const s = f32x4.div(y, f32x4.add(y, C_2_0));
  // the series in w = s² by Estrin's scheme (see expReduced)
  const w = f32x4.mul(s, s), w2 = f32x4.mul(w, w), w4 = f32x4.mul(w2, w2);
  const a = mulAdd(C_1_0_DIV_3_0, w, C_1_0);
  const b = mulAdd(C_1_0_DIV_7_0, w, C_1_0_DIV_5_0);
  const c = mulAdd(C_1_0_DIV_11_0, w, C_1_0_DIV_9_0);
  const d = mulAdd(C_1_0_DIV_15_0, w, C_1_0_DIV_13_0);
  const p = f32x4.add(f32x4.add(a, f32x4.mul(w2, b)), f32x4.mul(w4, f32x4.add(c, f32x4.mul(w2, d))));
  return f32x4.mul(f32x4.mul(p, s), C_2_0);
}

/** softplus(x) = max(x, 0) + log1p(e^−|x|) (torch's threshold 20 gives the same float32 value). */
@inline export function vsoftplus(x: v128): v128 {
  return f32x4.add(f32x4.max(x, C_0_0), vlog1pUnit(vexp(f32x4.neg(f32x4.abs(x)))));
}

/** 1 / (1 + e^−x). */
@inline export function vsigmoid(x: v128): v128 {
  return f32x4.div(C_1_0, f32x4.add(C_1_0, vexp(f32x4.neg(x))));
}

/**
 * erfc(|x|) by the Numerical Recipes formula op_table.ts's `erf` uses (Chebyshev fit, |error| < 1.2e-7):
 * r = t·exp(−z² − 1.26551223 + t·P(t)), t = 1 / (1 + z/2), z = |x|; erf(x) = ±(1 − r).
 */
@inline function erfcAbs(x: v128): v128 {
  const z = f32x4.abs(x);
  const t = f32x4.div(C_1_0, f32x4.add(C_1_0, f32x4.mul(C_0_5, z)));
  // P(t), degree 9, by Estrin's scheme (see expReduced)
  const t2 = f32x4.mul(t, t), t4 = f32x4.mul(t2, t2), t8 = f32x4.mul(t4, t4);
  const e0 = mulAdd(C_1_00002368, t, C_M1_26551223);
  const e1 = mulAdd(C_0_09678418, t, C_0_37409196);
  const e2 = mulAdd(C_0_27886807, t, C_M0_18628806);
  const e3 = mulAdd(C_1_48851587, t, C_M1_13520398);
  const e4 = mulAdd(C_0_17087277, t, C_M0_82215223);
  const lo = f32x4.add(e0, f32x4.mul(t2, e1)), hi = f32x4.add(e2, f32x4.mul(t2, e3));
  const p = f32x4.add(f32x4.add(lo, f32x4.mul(t4, hi)), f32x4.mul(t8, e4));
  return f32x4.mul(t, vexpNegative(f32x4.sub(p, f32x4.mul(z, z))));
}

/**
 * e^x for x ≤ 0 (NaN kept), flushing results below float32's smallest normal (x < −87.3) to 0: vexp and a mask,
 * 10 operations fewer than vexpIeee, whose gradual underflow only erfc's and φ's far tails (|x| > 13 in GELU)
 * would reach.
 */
@inline export function vexpNegative(x: v128): v128 {
  return v128.andnot(vexp(x), f32x4.lt(x, C_M87_3));
}

/** 1 + erf(x), from erfc(|x|) = r without cancellation: 2 − r for x ≥ 0, r for x < 0 (GELU's Φ = this / 2). */
@inline export function vOnePlusErf(x: v128): v128 {
  const r = erfcAbs(x);
  return v128.bitselect(f32x4.sub(C_2_0, r), r, f32x4.ge(x, C_0_0));
}
