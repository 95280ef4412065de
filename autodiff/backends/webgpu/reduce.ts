/**
 * Reductions and cumulative sums over the middle axis of an (outer, size, inner) view.
 *
 * Many outputs: one thread per output walks the axis. Few outputs over a long axis: one workgroup per
 * output, lanes stride the axis and combine in workgroup memory.
 *
 * @module
 */

import type { DType, ReduceOp } from "../../backend.ts";
import type { GPUBuf, Runtime } from "./runtime.ts";
import { Codegen } from "./fusion.ts";
import {
  bindings,
  convert,
  dispatch1d,
  entry1d,
  grid,
  ISNAN_WGSL,
  uniforms,
  type UniformScalar,
  wgslType,
} from "./templates.ts";

/** Threads per workgroup of the workgroup-per-output reduction. */
const RWG = 64;

/** Output dtype of a reduction: int32 for argmax/argmin, else the input's (as the CPU backend). */
export function reduceOutDtype(op: ReduceOp, dtype: DType): DType {
  if (op === "argmax" || op === "argmin") return "int32";
  return dtype;
}

/** WGSL pieces of one reduction: accumulator type, identity, and the combine step. */
interface ReduceSpec {
  /** WGSL type of the running value. */
  acc: string;
  /** Value of an empty reduction. */
  empty: string;
  /** Whether an index travels with the value. */
  indexed: boolean;
  /** `better_(v, i, bv, bi) -> bool`: replace (bv, bi) by (v, i)? (max/min/arg*). */
  better?: string;
}

function spec(op: ReduceOp, dtype: DType): ReduceSpec {
  const acc = dtype === "float32" ? "f32" : "i32";
  if (op === "sum") return { acc, empty: acc === "f32" ? "0.0" : "0", indexed: false };
  const isMax = op === "max" || op === "argmax";
  const cmp = isMax ? ">" : "<";
  const nan = acc === "f32" ? `(isnan_(v) && !isnan_(bv)) || (!isnan_(bv) && ` : "(";
  // (v, i) wins over (bv, bi) if it is strictly better, or equal with a smaller index; a NaN wins and stays.
  const better = (acc === "f32" ? "fn f32_bits_(u: u32) -> f32 { return bitcast<f32>(u); }\n" : "") +
    `fn better_(v: ${acc}, i: u32, bv: ${acc}, bi: u32) -> bool {
  if (${acc === "f32" ? "isnan_(v) && isnan_(bv)" : "false"}) { return i < bi; }
  return ${nan}(v ${cmp} bv || (v == bv && i < bi)));
}
`;
  // ±inf from a function call: a constant bitcast<f32>(inf bits) is a const-expression, which Chrome's Tint rejects
  const empty = acc === "f32"
    ? `f32_bits_(${isMax ? "0xff800000u" : "0x7f800000u"})`
    : isMax
    ? "(-2147483647 - 1)"
    : "2147483647";
  return { acc, empty, indexed: true, better };
}

/** The bindings of a one-input, one-output kernel: `x` read, `out` written, each in its dtype's storage type. */
function inOut(x: GPUBuf, out: GPUBuf): ReturnType<typeof bindings> {
  return bindings([["x", x, "read", wgslType(x.dtype)], ["out", out, "rw", wgslType(out.dtype)]]);
}

/**
 * Uniforms, bindings, helpers and the loop-body lines that evaluate lazy `x`'s expression at flat index `j`
 * (as an f32 or i32 value, like a plain load), so the expression is computed inside the consuming kernel.
 */
function fusedLoad(
  x: GPUBuf,
  scalars: UniformScalar[],
  out: GPUBuf,
): {
  u: ReturnType<typeof uniforms>;
  b: ReturnType<typeof bindings>;
  helpers: string;
  loadLines: string;
  loaded: string;
} {
  const g = new Codegen();
  g.scalars.push(...scalars);
  const v = g.value(x.expr!, "j");
  const lines = g.block();
  const { u, b } = g.finish([["out", out]]);
  const loaded = x.dtype === "float32" || x.dtype === "int32" ? v : convert(v, x.dtype, "int32");
  return { u, b, helpers: [...g.helpers].join(""), loadLines: lines.map((l) => `  ${l}\n`).join(""), loaded };
}

/** `reduce(op, x, outer, size, inner)` → (outer, inner); a lazy `x` fuses into the reduction. */
export function reduce(rt: Runtime, op: ReduceOp, x: GPUBuf, outer: number, size: number, inner: number): GPUBuf {
  const outDtype = reduceOutDtype(op, x.dtype);
  const nOut = outer * inner;
  const out = rt.alloc(nOut, outDtype);
  if (nOut === 0) return out;
  const s = spec(op, x.dtype);
  const load = (idx: string) => (x.dtype === "float32" || x.dtype === "int32" ? `x[${idx}]` : `i32(x[${idx}])`);
  const isArg = op === "argmax" || op === "argmin";
  const result = isArg ? "i32(bi)" : op === "sum" ? "acc" : "bv";
  const outExpr = outDtype === "bool" ? `select(0u, 1u, ${result} != 0)` : result;
  // A lazy input is evaluated inside the loop (its elementwise expression fuses into this kernel).
  const { u, b, helpers, loadLines, loaded } = x.expr
    ? fusedLoad(x, [["nOut", "u32", nOut], ["size", "u32", size], ["inner", "u32", inner]], out)
    : {
      u: uniforms([["nOut", "u32", nOut], ["size", "u32", size], ["inner", "u32", inner]]),
      b: inOut(x, out),
      helpers: "",
      loadLines: "",
      loaded: load("j"),
    };
  let code = u.decl + b.decl + helpers + (helpers.includes(ISNAN_WGSL) ? "" : ISNAN_WGSL) + (s.better ?? "");
  const pre = `let j = base + s * P.inner;\n${loadLines}`;
  const step = s.indexed
    ? `${pre}    let v = ${loaded};\n    if (better_(v, s, bv, bi)) { bv = v; bi = s; }`
    : `${pre}    acc += ${loaded};`;
  const init = s.indexed
    ? `var bv: ${s.acc} = ${s.empty};\n  var bi: u32 = 0xffffffffu;`
    : `var acc: ${s.acc} = ${s.empty};`;
  const fixEmpty = s.indexed ? `  if (bi == 0xffffffffu) { bi = 0u; }\n` : "";
  if (nOut >= 1024 || size <= 256) {
    code += entry1d(`  if (gidx >= P.nOut) { return; }
  let base = (gidx / P.inner) * P.size * P.inner + gidx % P.inner;
  ${init}
  for (var s = 0u; s < P.size; s++) {
    ${step}
  }
${fixEmpty}  out[gidx] = ${outExpr};`);
    dispatch1d(rt, code, u, b, nOut);
    return out;
  }
  // One workgroup per output.
  const sharedVals = `var<workgroup> sv: array<${s.acc}, ${RWG}>;\n` +
    (s.indexed ? `var<workgroup> si: array<u32, ${RWG}>;\n` : "");
  const combine = s.indexed
    ? `if (better_(sv[lid + k], si[lid + k], sv[lid], si[lid])) { sv[lid] = sv[lid + k]; si[lid] = si[lid + k]; }`
    : `sv[lid] += sv[lid + k];`;
  code += sharedVals + `@compute @workgroup_size(${RWG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = wid.y * nwg.x + wid.x;
  let valid = o < P.nOut;
  let oo = min(o, P.nOut - 1u);
  let base = (oo / P.inner) * P.size * P.inner + oo % P.inner;
  ${init}
  for (var s = lid; s < P.size; s += ${RWG}u) {
    ${step}
  }
  sv[lid] = ${s.indexed ? "bv" : "acc"};
  ${s.indexed ? "si[lid] = bi;" : ""}
  workgroupBarrier();
  for (var k = ${RWG / 2}u; k > 0u; k >>= 1u) {
    if (lid < k) { ${combine} }
    workgroupBarrier();
  }
  if (lid == 0u && valid) {
    ${s.indexed ? "bv = sv[0]; bi = si[0];" : "let acc = sv[0];"}
  ${fixEmpty}  out[o] = ${outExpr};
  }
}
`;
  rt.dispatch({ code, uniforms: u, buffers: b.buffers, groups: grid(nOut) });
  return out;
}

/** Inclusive cumulative sum along the middle axis of (outer, size, inner); one thread per line. */
export function cumsum(rt: Runtime, x: GPUBuf, outer: number, size: number, inner: number): GPUBuf {
  const outDtype: DType = x.dtype;
  const out = rt.alloc(outer * size * inner, outDtype);
  const lines = outer * inner;
  if (lines === 0 || size === 0) return out;
  const acc = outDtype === "float32" ? "f32" : "i32";
  const store = outDtype === "bool" ? "select(0u, 1u, acc != 0)" : "acc";
  const u = uniforms([["lines", "u32", lines], ["size", "u32", size], ["inner", "u32", inner]]);
  const b = inOut(x, out);
  const code = u.decl + b.decl +
    entry1d(`  if (gidx >= P.lines) { return; }
  let base = (gidx / P.inner) * P.size * P.inner + gidx % P.inner;
  var acc: ${acc} = ${acc}(0);
  for (var s = 0u; s < P.size; s++) {
    let j = base + s * P.inner;
    acc += ${acc}(x[j]);
    out[j] = ${store};
  }`);
  dispatch1d(rt, code, u, b, lines);
  return out;
}
