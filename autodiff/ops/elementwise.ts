/**
 * Elementwise ops with broadcasting, and their gradient rules. The kernels come from the op table
 * (`../op_table.ts`); the rules here are written with other tensor ops.
 *
 * @module
 */

import type { BinaryOp, Device, DType, UnaryOp } from "../backend.ts";
import { BINARY, UNARY } from "../op_table.ts";
import { getBackend } from "../device.ts";
import { record, Tensor } from "../tensor.ts";
import { full } from "./creation.ts";
import { sumTo } from "./reduce.ts";
import { broadcastShapes, broadcastStrides, fmt, sameDevice } from "./util.ts";

// ---- unary ------------------------------------------------------------------------------------------

function unaryKernel(op: UnaryOp, x: Tensor): Tensor {
  if (x.dtype !== "float32" && !UNARY[op].int) {
    if (x.dtype === "bool" && op === "logicalNot") {
      return Tensor.fromBuffer(x.backend.unary(op, x.buffer), x.shape, "bool", x.device);
    }
    throw new TypeError(`${op}: expected a float32 tensor, got ${x.dtype} ${fmt(x.shape)}`);
  }
  const buf = x.backend.unary(op, x.buffer);
  return Tensor.fromBuffer(buf, x.shape, op === "isnan" ? "bool" : x.dtype, x.device);
}

/** Gradient rules of the unary ops: (grad, x, out) → grad of x. */
const UNARY_GRAD: Partial<Record<UnaryOp, { save: "x" | "out"; rule: (g: Tensor, v: Tensor) => Tensor }>> = {
  neg: { save: "x", rule: (g) => neg(g) },
  abs: { save: "x", rule: (g, x) => mul(g, unaryKernel("sign", x)) },
  exp: { save: "out", rule: (g, y) => mul(g, y) },
  log: { save: "x", rule: (g, x) => div(g, x) },
  sqrt: { save: "out", rule: (g, y) => div(mul(g, 0.5), y) },
  rsqrt: { save: "out", rule: (g, y) => mul(mul(g, -0.5), mul(y, mul(y, y))) },
  sin: { save: "x", rule: (g, x) => mul(g, unaryKernel("cos", x)) },
  cos: { save: "x", rule: (g, x) => neg(mul(g, unaryKernel("sin", x))) },
  tanh: { save: "out", rule: (g, y) => mul(g, affineKernel(mul(y, y), -1, 1)) },
  sigmoid: { save: "out", rule: (g, y) => mul(g, mul(y, affineKernel(y, -1, 1))) },
  relu: { save: "out", rule: (g, y) => maskPositive(g, y) },
  gelu: { save: "x", rule: (g, x) => mul(g, unaryKernel("geluGrad", x)) },
  silu: { save: "x", rule: (g, x) => mul(g, unaryKernel("siluGrad", x)) },
  // softplus' = sigmoid(x); above the threshold 20 it is 1 (sigmoid(20) rounds to 1 in float32)
  softplus: { save: "x", rule: (g, x) => mul(g, unaryKernel("sigmoid", x)) },
  erf: { save: "x", rule: (g, x) => mul(g, mul(unaryKernel("exp", neg(mul(x, x))), 2 / Math.sqrt(Math.PI))) },
  reciprocal: { save: "out", rule: (g, y) => neg(mul(g, mul(y, y))) },
  square: { save: "x", rule: (g, x) => mul(g, mul(x, 2)) },
};

function unary(op: UnaryOp, x: Tensor): Tensor {
  const out = unaryKernel(op, x);
  const g = UNARY_GRAD[op];
  if (!g) return out;
  const saved = g.save === "x" ? x : out;
  return record(op, out, [x], [saved], (grad, [v]) => [g.rule(grad, v)]);
}

/** -x */
export function neg(x: Tensor): Tensor {
  return unary("neg", x);
}
/** |x| */
export function abs(x: Tensor): Tensor {
  return unary("abs", x);
}
/** e^x */
export function exp(x: Tensor): Tensor {
  return unary("exp", x);
}
/** Natural log. */
export function log(x: Tensor): Tensor {
  return unary("log", x);
}
/** Square root. */
export function sqrt(x: Tensor): Tensor {
  return unary("sqrt", x);
}
/** 1 / sqrt(x). */
export function rsqrt(x: Tensor): Tensor {
  return unary("rsqrt", x);
}
/** Sine. */
export function sin(x: Tensor): Tensor {
  return unary("sin", x);
}
/** Cosine. */
export function cos(x: Tensor): Tensor {
  return unary("cos", x);
}
/** Hyperbolic tangent. */
export function tanh(x: Tensor): Tensor {
  return unary("tanh", x);
}
/** Logistic sigmoid. */
export function sigmoid(x: Tensor): Tensor {
  return unary("sigmoid", x);
}
/** max(x, 0). */
export function relu(x: Tensor): Tensor {
  return unary("relu", x);
}
/** GELU, erf form: x Φ(x). */
export function gelu(x: Tensor): Tensor {
  return unary("gelu", x);
}
/** SiLU (swish): x σ(x). */
export function silu(x: Tensor): Tensor {
  return unary("silu", x);
}
/** softplus with beta 1 and threshold 20, as PyTorch: x > 20 ? x : log(1 + e^x). */
export function softplus(x: Tensor): Tensor {
  return unary("softplus", x);
}
/** The error function. */
export function erf(x: Tensor): Tensor {
  return unary("erf", x);
}
/** 1 / x. */
export function reciprocal(x: Tensor): Tensor {
  return unary("reciprocal", x);
}
/** x². */
export function square(x: Tensor): Tensor {
  return unary("square", x);
}
/** Sign (-1, 0, 1); no gradient. */
export function sign(x: Tensor): Tensor {
  return unaryKernel("sign", x);
}
/** Floor; no gradient. */
export function floor(x: Tensor): Tensor {
  return unaryKernel("floor", x);
}
/** Ceil; no gradient. */
export function ceil(x: Tensor): Tensor {
  return unaryKernel("ceil", x);
}
/** Round half to even; no gradient. */
export function round(x: Tensor): Tensor {
  return unaryKernel("round", x);
}
/** Elementwise NaN test (bool). */
export function isnan(x: Tensor): Tensor {
  return unaryKernel("isnan", x);
}
/** Logical not (bool). */
export function logicalNot(x: Tensor): Tensor {
  return unaryKernel("logicalNot", x.dtype === "bool" ? x : cast(x, "bool"));
}

// ---- scalar affine and clamp --------------------------------------------------------------------------

function affineKernel(x: Tensor, scale: number, shift: number): Tensor {
  return Tensor.fromBuffer(x.backend.affine(x.buffer, scale, shift), x.shape, x.dtype, x.device);
}

/** x * scale + shift, differentiable (one kernel). */
export function affine(x: Tensor, scale: number, shift: number): Tensor {
  if (x.dtype !== "float32") throw new TypeError(`affine: expected float32, got ${x.dtype}`);
  const out = affineKernel(x, scale, shift);
  return record("affine", out, [x], [], (g) => [affineKernel(g, scale, 0)]);
}

/** Clamps x into [min, max] (either bound optional). Gradient flows where min ≤ x ≤ max, as PyTorch. */
export function clamp(x: Tensor, min?: number, max?: number): Tensor {
  const lo = min ?? -Infinity, hi = max ?? Infinity;
  const out = Tensor.fromBuffer(x.backend.clamp(x.buffer, lo, hi), x.shape, x.dtype, x.device);
  return record("clamp", out, [x], [x], (g, [xs]) => {
    const inside = cast(logicalAnd(ge(xs, lo), le(xs, hi)), "float32");
    return [mul(g, inside)];
  });
}

// ---- dtype and device ---------------------------------------------------------------------------------

/** Converts the element type (float→int truncates; →bool is x != 0). Differentiable float→float only. */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return record("cast", x.shareWithShape(x.shape), [x], [], (g) => [g]);
  return Tensor.fromBuffer(x.backend.cast(x.buffer, dtype), x.shape, dtype, x.device);
}

/** Copies a tensor to another device; gradients flow back to the source device. */
export function to(x: Tensor, device: Device): Tensor {
  if (x.device === device) return x;
  const target = getBackend(device);
  // device-to-device goes through the host: a synchronous copy needs a source the host sees without waiting
  // (the CPU); from any other device the readback is async (toAsync)
  const host = x.backend.hostView(x.buffer);
  if (!host) {
    throw new Error(`to(${device}): copying from ${x.device} needs a readback; use await toAsync(x, "${device}")`);
  }
  const out = Tensor.fromBuffer(target.upload(host, x.dtype), x.shape, x.dtype, device);
  return record("to", out, [x], [], () => {
    throw new Error(`backward through to(${device}) needs a GPU readback; move the leaf tensors to ${device} instead`);
  });
}

/** Copies a tensor to another device, waiting for a readback when the source is not the CPU. */
export async function toAsync(x: Tensor, device: Device): Promise<Tensor> {
  if (x.device === device) return x;
  const data = await x.data();
  return Tensor.fromHost(data, x.shape, x.dtype, device);
}

// ---- binary -------------------------------------------------------------------------------------------

/** The dtype both operands are computed in, following PyTorch's promotion (float wins; bool → int). */
function promote(op: BinaryOp, a: DType, b: DType): DType {
  if (a === "float32" || b === "float32") return "float32";
  if (op === "logicalAnd" || op === "logicalOr") return a === "bool" && b === "bool" ? "bool" : "int32";
  return BINARY[op].wgslInt ? "int32" : "float32";
}

function asTensor(op: string, v: Tensor | number, like: Tensor): Tensor {
  if (v instanceof Tensor) return v;
  const dtype = like.dtype === "float32" || !Number.isInteger(v)
    ? "float32"
    : like.dtype === "bool"
    ? "int32"
    : like.dtype;
  if (typeof v !== "number") throw new TypeError(`${op}: expected a Tensor or number, got ${typeof v}`);
  return full([], v, { dtype, device: like.device });
}

function binaryKernel(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  sameDevice(op, a, b);
  const shape = broadcastShapes(op, a.shape, b.shape);
  const dt = promote(op, a.dtype, b.dtype);
  const ac = a.dtype === dt ? a : cast(a, dt);
  const bc = b.dtype === dt ? b : cast(b, dt);
  const buf = a.backend.binary(
    op,
    ac.buffer,
    bc.buffer,
    shape,
    broadcastStrides(a.shape, shape),
    broadcastStrides(b.shape, shape),
  );
  if (ac !== a) ac.dispose();
  if (bc !== b) bc.dispose();
  return Tensor.fromBuffer(buf, shape, BINARY[op].bool ? "bool" : dt, a.device);
}

/** Runs a binary op on tensor-or-number operands, disposing the scalar tensors it made. */
function binary(
  op: BinaryOp,
  a: Tensor | number,
  b: Tensor | number,
  rule?: (g: Tensor, a: Tensor, b: Tensor, out: Tensor) => [Tensor | null, Tensor | null],
  saveOut = false,
): Tensor {
  if (!(a instanceof Tensor) && !(b instanceof Tensor)) {
    throw new TypeError(`${op}: at least one operand must be a Tensor`);
  }
  const ta = asTensor(op, a, (a instanceof Tensor ? a : b) as Tensor);
  const tb = asTensor(op, b, ta);
  try {
    const out = binaryKernel(op, ta, tb);
    if (!rule) return out;
    const save = saveOut ? [ta, tb, out] : [ta, tb];
    return record(op, out, [ta, tb], save, (g, [sa, sb, so]) => {
      const [ga, gb] = rule(g, sa, sb, so);
      return [ga && sumTo(ga, sa.shape), gb && sumTo(gb, sb.shape)];
    });
  } finally {
    if (!(a instanceof Tensor)) ta.dispose();
    if (!(b instanceof Tensor)) tb.dispose();
  }
}

/** a + b (broadcasting). */
export function add(a: Tensor | number, b: Tensor | number): Tensor {
  if (typeof b === "number" && a instanceof Tensor && a.dtype === "float32") return affine(a, 1, b);
  if (typeof a === "number" && b instanceof Tensor && b.dtype === "float32") return affine(b, 1, a);
  return binary("add", a, b, (g) => [g, g]);
}
/** a - b (broadcasting). */
export function sub(a: Tensor | number, b: Tensor | number): Tensor {
  if (typeof b === "number" && a instanceof Tensor && a.dtype === "float32") return affine(a, 1, -b);
  if (typeof a === "number" && b instanceof Tensor && b.dtype === "float32") return affine(b, -1, a);
  return binary("sub", a, b, (g) => [g, neg(g)]);
}
/** a * b (broadcasting). */
export function mul(a: Tensor | number, b: Tensor | number): Tensor {
  if (typeof b === "number" && a instanceof Tensor && a.dtype === "float32") return affine(a, b, 0);
  if (typeof a === "number" && b instanceof Tensor && b.dtype === "float32") return affine(b, a, 0);
  return binary("mul", a, b, (g, x, y) => [mul(g, y), mul(g, x)]);
}
/** a / b (broadcasting; always float). */
export function div(a: Tensor | number, b: Tensor | number): Tensor {
  if (typeof b === "number" && a instanceof Tensor && a.dtype === "float32") return affine(a, 1 / b, 0);
  return binary("div", a, b, (g, x, y) => [div(g, y), neg(div(mul(g, x), mul(y, y)))]);
}
/** a ** b (broadcasting). d/db uses log(a), defined where a > 0 (0 elsewhere, as PyTorch for a = 0). */
export function pow(a: Tensor | number, b: Tensor | number): Tensor {
  if (typeof b === "number" && a instanceof Tensor) {
    if (b === 2) return square(a);
    if (b === 1) return mul(a, 1);
    const exponent = full([], b, { device: a.device });
    const out = binaryKernel("pow", a, exponent);
    exponent.dispose();
    return record("pow", out, [a], [a], (g, [x]) => [mul(g, mul(pow(x, b - 1), b))]);
  }
  return binary("pow", a, b, (g, x, y, out) => {
    const ga = mul(g, mul(y, pow(x, sub(y, 1))));
    const positive = gt(x, 0);
    const safeLog = log(where(positive, x, 1));
    const gb = mul(g, mul(out, safeLog));
    return [ga, gb];
  }, true);
}
/** Elementwise maximum; ties send half the gradient to each side, as PyTorch. */
export function maximum(a: Tensor, b: Tensor): Tensor {
  return binary("maximum", a, b, (g, x, y) => {
    const w = add(cast(gt(x, y), "float32"), mul(cast(eq(x, y), "float32"), 0.5));
    return [mul(g, w), mul(g, sub(1, w))];
  });
}
/** Elementwise minimum; ties split the gradient. */
export function minimum(a: Tensor, b: Tensor): Tensor {
  return binary("minimum", a, b, (g, x, y) => {
    const w = add(cast(lt(x, y), "float32"), mul(cast(eq(x, y), "float32"), 0.5));
    return [mul(g, w), mul(g, sub(1, w))];
  });
}
/** a == b (bool). */
export function eq(a: Tensor | number, b: Tensor | number): Tensor {
  return binary("eq", a, b);
}
/** a != b (bool). */
export function ne(a: Tensor | number, b: Tensor | number): Tensor {
  return binary("ne", a, b);
}
/** a < b (bool). */
export function lt(a: Tensor | number, b: Tensor | number): Tensor {
  return binary("lt", a, b);
}
/** a <= b (bool). */
export function le(a: Tensor | number, b: Tensor | number): Tensor {
  return binary("le", a, b);
}
/** a > b (bool). */
export function gt(a: Tensor | number, b: Tensor | number): Tensor {
  return binary("gt", a, b);
}
/** a >= b (bool). */
export function ge(a: Tensor | number, b: Tensor | number): Tensor {
  return binary("ge", a, b);
}
/** `a` where `b > 0`, else 0 (broadcasting; no gradient): the relu backward in one pass. */
export function maskPositive(a: Tensor, b: Tensor): Tensor {
  return binary("maskPositive", a, b);
}
/** Logical and (bool). */
export function logicalAnd(a: Tensor, b: Tensor): Tensor {
  return binary("logicalAnd", a, b);
}
/** Logical or (bool). */
export function logicalOr(a: Tensor, b: Tensor): Tensor {
  return binary("logicalOr", a, b);
}

/** `cond ? a : b` elementwise with broadcasting over all three. */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : null;
  const ta = like ? asTensor("where", a, like) : full([], a as number, { device: cond.device });
  const tb = asTensor("where", b, ta);
  try {
    sameDevice("where", cond, ta, tb);
    if (ta.dtype !== tb.dtype) {
      throw new TypeError(`where: a and b must have the same dtype, got ${ta.dtype} and ${tb.dtype}`);
    }
    const shape = broadcastShapes("where", broadcastShapes("where", cond.shape, ta.shape), tb.shape);
    const c = cond.dtype === "bool" ? cond : cast(cond, "bool");
    const buf = cond.backend.where(
      c.buffer,
      ta.buffer,
      tb.buffer,
      shape,
      broadcastStrides(cond.shape, shape),
      broadcastStrides(ta.shape, shape),
      broadcastStrides(tb.shape, shape),
    );
    const out = Tensor.fromBuffer(buf, shape, ta.dtype, cond.device);
    record("where", out, [ta, tb], [c], (g, [cs]) => [
      sumTo(where(cs, g, 0), ta.shape),
      sumTo(where(cs, 0, g), tb.shape),
    ]);
    if (c !== cond) c.dispose();
    return out;
  } finally {
    if (!(a instanceof Tensor)) ta.dispose();
    if (!(b instanceof Tensor)) tb.dispose();
  }
}
