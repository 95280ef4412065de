/**
 * Elementwise ops declared once, as rows of a table: each row gives the host (JS) function the CPU
 * backend runs and the WGSL expression the WebGPU backend compiles. Both follow PyTorch's float32
 * definitions (GELU in erf form; softplus with beta 1 and threshold 20).
 *
 * @module
 */

import type { BinaryOp, UnaryOp } from "./backend.ts";

/**
 * erf from Numerical Recipes' Chebyshev fit of erfc (`erfcc`, fractional error below 1.2e-7 everywhere); the WGSL
 * `erf_` of {@linkcode WGSL_HELPERS} is the same formula, so both backends agree.
 */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(
    -z * z - 1.26551223 +
      t * (1.00002368 +
          t * (0.37409196 +
              t * (0.09678418 +
                  t * (-0.18628806 +
                      t * (0.27886807 +
                          t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
  );
  return x >= 0 ? 1 - r : r - 1;
}

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** log(1 + e) without cancellation for small e (Goldberg's trick, also used in WGSL). */
function log1pExp(x: number): number {
  const e = Math.exp(x);
  const u = 1 + e;
  return u === 1 ? e : Math.log(u) * e / (u - 1);
}

/** One elementwise unary op: host function and WGSL expression in `x` (type f32). */
export interface UnaryDef {
  /** Host implementation (float64 arithmetic, rounded on store). */
  js: (x: number) => number;
  /** WGSL expression; may call the helpers in {@linkcode WGSL_HELPERS}. */
  wgsl: string;
  /** The op also applies to int32 tensors. */
  int?: boolean;
}

/** The unary op table. */
export const UNARY: Record<UnaryOp, UnaryDef> = {
  neg: { js: (x) => -x, wgsl: "-x", int: true },
  abs: { js: Math.abs, wgsl: "abs(x)", int: true },
  exp: { js: Math.exp, wgsl: "exp(x)" },
  log: { js: Math.log, wgsl: "log(x)" },
  sqrt: { js: Math.sqrt, wgsl: "sqrt(x)" },
  rsqrt: { js: (x) => 1 / Math.sqrt(x), wgsl: "1.0 / sqrt(x)" },
  sin: { js: Math.sin, wgsl: "sin(x)" },
  cos: { js: Math.cos, wgsl: "cos(x)" },
  tanh: { js: Math.tanh, wgsl: "tanh(clamp(x, -15.0, 15.0))" },
  sigmoid: { js: sigmoid, wgsl: "1.0 / (1.0 + exp(-x))" },
  relu: { js: (x) => (x > 0 ? x : 0), wgsl: "max(x, 0.0)" },
  gelu: { js: (x) => 0.5 * x * (1 + erf(x * SQRT1_2)), wgsl: "0.5 * x * (1.0 + erf_(x * 0.70710678118654752))" },
  silu: { js: (x) => x * sigmoid(x), wgsl: "x / (1.0 + exp(-x))" },
  softplus: { js: (x) => (x > 20 ? x : log1pExp(x)), wgsl: "select(log1p_exp_(x), x, x > 20.0)" },
  erf: { js: erf, wgsl: "erf_(x)" },
  sign: { js: Math.sign, wgsl: "sign(x)", int: true },
  reciprocal: { js: (x) => 1 / x, wgsl: "1.0 / x" },
  square: { js: (x) => x * x, wgsl: "x * x", int: true },
  floor: { js: Math.floor, wgsl: "floor(x)" },
  ceil: { js: Math.ceil, wgsl: "ceil(x)" },
  // round half to even, as torch.round
  round: {
    js: (x) => {
      const r = Math.round(x);
      return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
    },
    wgsl: "round(x)",
  },
  logicalNot: { js: (x) => (x === 0 ? 1 : 0), wgsl: "select(0.0, 1.0, x == 0.0)" },
  // d/dx gelu(x) = Φ(x) + x φ(x)
  geluGrad: {
    js: (x) => 0.5 * (1 + erf(x * SQRT1_2)) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x),
    wgsl: "0.5 * (1.0 + erf_(x * 0.70710678118654752)) + x * 0.3989422804014327 * exp(-0.5 * x * x)",
  },
  // d/dx silu(x) = s (1 + x (1 - s))
  siluGrad: {
    js: (x) => {
      const s = sigmoid(x);
      return s * (1 + x * (1 - s));
    },
    wgsl: "silu_grad_(x)",
  },
  isnan: { js: (x) => (Number.isNaN(x) ? 1 : 0), wgsl: "select(0.0, 1.0, x != x)" },
};

/** One elementwise binary op: host function and WGSL expression in `a`, `b`. */
export interface BinaryDef {
  /** Host implementation. */
  js: (a: number, b: number) => number;
  /** WGSL expression for float32 operands (type f32, result f32 or bool). */
  wgsl: string;
  /** WGSL expression for int32 operands, where the op applies to them. */
  wgslInt?: string;
  /** Result is bool. */
  bool?: boolean;
}

/** The binary op table. */
export const BINARY: Record<BinaryOp, BinaryDef> = {
  add: { js: (a, b) => a + b, wgsl: "a + b", wgslInt: "a + b" },
  sub: { js: (a, b) => a - b, wgsl: "a - b", wgslInt: "a - b" },
  mul: { js: (a, b) => a * b, wgsl: "a * b", wgslInt: "a * b" },
  div: { js: (a, b) => a / b, wgsl: "a / b" },
  // Math.pow already has torch.pow's semantics (x^0 = 1, a negative base needs an integral exponent, else NaN);
  // WGSL's pow does not, hence pow_
  pow: { js: Math.pow, wgsl: "pow_(a, b)" },
  maximum: { js: (a, b) => (a !== a || b !== b ? NaN : Math.max(a, b)), wgsl: "max(a, b)", wgslInt: "max(a, b)" },
  minimum: { js: (a, b) => (a !== a || b !== b ? NaN : Math.min(a, b)), wgsl: "min(a, b)", wgslInt: "min(a, b)" },
  eq: { js: (a, b) => +(a === b), wgsl: "a == b", wgslInt: "a == b", bool: true },
  ne: { js: (a, b) => +(a !== b), wgsl: "a != b", wgslInt: "a != b", bool: true },
  lt: { js: (a, b) => +(a < b), wgsl: "a < b", wgslInt: "a < b", bool: true },
  le: { js: (a, b) => +(a <= b), wgsl: "a <= b", wgslInt: "a <= b", bool: true },
  gt: { js: (a, b) => +(a > b), wgsl: "a > b", wgslInt: "a > b", bool: true },
  ge: { js: (a, b) => +(a >= b), wgsl: "a >= b", wgslInt: "a >= b", bool: true },
  logicalAnd: {
    js: (a, b) => +(a !== 0 && b !== 0),
    wgsl: "(a != 0.0) && (b != 0.0)",
    wgslInt: "(a != 0) && (b != 0)",
    bool: true,
  },
  // a where b > 0, else 0: the backward of relu (and of max pooling masks) in one pass
  maskPositive: { js: (a, b) => (b > 0 ? a : 0), wgsl: "select(0.0, a, b > 0.0)" },
  logicalOr: {
    js: (a, b) => +(a !== 0 || b !== 0),
    wgsl: "(a != 0.0) || (b != 0.0)",
    wgslInt: "(a != 0) || (b != 0)",
    bool: true,
  },
};

/** WGSL helper functions referenced by the table's expressions. */
export const WGSL_HELPERS = /* wgsl */ `
fn erf_(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 +
    t * 0.17087277)))))))));
  return select(r - 1.0, 1.0 - r, x >= 0.0);
}
fn log1p_exp_(x: f32) -> f32 {
  let e = exp(x);
  let u = 1.0 + e;
  return select(log(u) * e / (u - 1.0), e, u == 1.0);
}
fn silu_grad_(x: f32) -> f32 {
  let s = 1.0 / (1.0 + exp(-x));
  return s * (1.0 + x * (1.0 - s));
}
fn pow_(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  let m = pow(abs(a), b);
  if (a >= 0.0) { return m; }
  // NaN through a var: a constant bitcast<f32>(NaN bits) is a const-expression, which Chrome's Tint rejects
  if (b != round(b)) { var nan_bits = 0x7fc00000u; return bitcast<f32>(nan_bits); }
  let odd = abs(b - 2.0 * floor(b * 0.5)) == 1.0;
  return select(m, -m, odd);
}
`;
