/**
 * Typed WGSL building blocks shared by every kernel: the uniform block, storage declarations, the
 * 1-D/2-D dispatch entry point, the strided index math, and dtype conversions.
 *
 * @module
 */

import type { DType, Im2colParams } from "../../backend.ts";
import type { BindingKind } from "./pipeline_cache.ts";
import type { GPUBuf, Runtime } from "./runtime.ts";

export { collapse, contiguousStrides } from "../../shape.ts";

/** Threads per workgroup of 1-D kernels. */
export const WG = 256;
/** Highest rank the strided kernels take (after collapsing dims). */
export const MAX_RANK = 8;
/** Workgroups per grid dimension (WebGPU's guaranteed maximum). */
export const MAX_GROUPS = 65535;

/** WGSL scalar types a buffer element or uniform field can have. */
export type Scalar = "f32" | "i32" | "u32";

/** One scalar uniform field: name, WGSL type, value. */
export type UniformScalar = readonly [name: string, type: Scalar, value: number];
/** One uniform array of up to {@linkcode MAX_RANK} i32 values (stored as two `vec4<i32>`). */
export type UniformArray = readonly [name: string, values: readonly number[]];

/** A uniform block: its WGSL declaration (struct + binding 0, named `P`) and its bytes. */
export interface Uniforms {
  /** WGSL declaration; depends on field names and types only, never on values. */
  decl: string;
  /** The packed bytes. */
  data: ArrayBuffer;
}

/** Builds the uniform block `P` at binding 0 from scalar fields and rank-8 i32 arrays. */
export function uniforms(scalars: readonly UniformScalar[], arrays: readonly UniformArray[] = []): Uniforms {
  const header = Math.max(4, Math.ceil(scalars.length / 4) * 4);
  const data = new ArrayBuffer(header * 4 + arrays.length * MAX_RANK * 4);
  const f = new Float32Array(data), i = new Int32Array(data), u = new Uint32Array(data);
  const fields: string[] = [];
  scalars.forEach(([name, type, value], k) => {
    fields.push(`${name}: ${type},`);
    if (type === "f32") f[k] = value;
    else if (type === "i32") i[k] = value;
    else u[k] = value;
  });
  for (let k = scalars.length; k < header; k++) fields.push(`pad${k}_: u32,`);
  arrays.forEach(([name, values], k) => {
    if (values.length > MAX_RANK) throw new Error(`rank ${values.length} exceeds ${MAX_RANK}`);
    fields.push(`${name}: array<vec4<i32>, ${MAX_RANK / 4}>,`);
    i.set(values, header + k * MAX_RANK);
  });
  const decl = `struct Params {\n  ${fields.join("\n  ")}\n}\n@group(0) @binding(0) var<uniform> P: Params;\n`;
  return { decl, data };
}

/**
 * The uniform fields of an NCHW window geometry (unfold, fold, depthwise conv, pooling): `C`, `H`, `W`,
 * kernel `kh`/`kw`, stride `sh`/`sw`, padding `ph`/`pw`, dilation `dh`/`dw`, output `oh`/`ow`. Fields that
 * enter signed tap arithmetic are `i32`.
 */
export function windowUniforms(p: Im2colParams): UniformScalar[] {
  return [
    ["C", "u32", p.channels],
    ["H", "i32", p.height],
    ["W", "i32", p.width],
    ["kh", "u32", p.kernelH],
    ["kw", "u32", p.kernelW],
    ["sh", "i32", p.strideH],
    ["sw", "i32", p.strideW],
    ["ph", "i32", p.padH],
    ["pw", "i32", p.padW],
    ["dh", "i32", p.dilationH],
    ["dw", "i32", p.dilationW],
    ["oh", "u32", p.outH],
    ["ow", "u32", p.outW],
  ];
}

/**
 * Body of an adjoint-of-a-window kernel in gather form (col2im, and the input gradients of the depthwise
 * conv and of max pooling): one invocation per input pixel `gidx` of (batch·C, H, W) visits every
 * (tap ki/kj, output oh/ow) pair whose window reads it, so no atomics are needed. Uses the
 * {@linkcode windowUniforms} plus `n`; `prelude` runs once (it may use `xh`, `xw`, `bc`), `body` once per
 * pair (it adds to `acc`, and may use `ki`, `kj`, `oh`, `ow`); the result is stored to `out[gidx]`.
 */
export function pixelAdjoint(prelude: string, body: string): string {
  return `  if (gidx >= P.n) { return; }
  let xw = i32(gidx % u32(P.W));
  let xh = i32((gidx / u32(P.W)) % u32(P.H));
  let bc = gidx / u32(P.W * P.H);
${prelude}
  var acc = 0.0;
  for (var ki = 0u; ki < P.kh; ki++) {
    let th = xh + P.ph - i32(ki) * P.dh;
    if (th < 0 || th % P.sh != 0) { continue; }
    let oh = u32(th / P.sh);
    if (oh >= P.oh) { continue; }
    for (var kj = 0u; kj < P.kw; kj++) {
      let tw = xw + P.pw - i32(kj) * P.dw;
      if (tw < 0 || tw % P.sw != 0) { continue; }
      let ow = u32(tw / P.sw);
      if (ow >= P.ow) { continue; }
${body}
    }
  }
  out[gidx] = acc;`;
}

/** WGSL element of rank-8 uniform array `name` at dynamic index `d` (an i32 expression). */
export function at(name: string, d: string): string {
  return `P.${name}[(${d}) / 4][(${d}) % 4]`;
}

/** A storage buffer declaration `name: array<type>` at `binding`. */
export function storage(binding: number, name: string, type: string, kind: Exclude<BindingKind, "uniform">): string {
  const access = kind === "read" ? "read" : "read_write";
  return `@group(0) @binding(${binding}) var<storage, ${access}> ${name}: array<${type}>;\n`;
}

/** One storage binding of a kernel: WGSL name, buffer (null: absent, skipped), access, element type (default f32). */
export type Binding = readonly [name: string, buf: GPUBuf | null, kind: "read" | "rw", type?: string];
/** The storage bindings of a kernel, in binding order. */
export type BindingList = Binding[];

/**
 * The one place a kernel lists its buffers: from `list` it derives both the WGSL declarations (bindings `first`,
 * `first + 1`, ... in order, absent buffers skipped) and the buffer list of the dispatch, so the two can never
 * disagree.
 */
export function bindings(list: readonly Binding[], first = 1): {
  decl: string;
  buffers: [GPUBuf, "read" | "rw"][];
} {
  let decl = "";
  const buffers: [GPUBuf, "read" | "rw"][] = [];
  for (const [name, buf, kind, type] of list) {
    if (!buf) continue;
    decl += storage(first + buffers.length, name, type ?? "f32", kind);
    buffers.push([buf, kind]);
  }
  return { decl, buffers };
}

/**
 * Dispatches a 1-D kernel ({@linkcode entry1d} with {@linkcode WG} threads per group) of `n` threads over the
 * buffers of `b` ({@linkcode bindings}).
 */
export function dispatch1d(
  rt: Runtime,
  code: string,
  u: Uniforms,
  b: { buffers: [GPUBuf, "read" | "rw"][] },
  n: number,
): void {
  rt.dispatch({ code, uniforms: u, buffers: b.buffers, groups: grid(Math.ceil(n / WG)) });
}

/**
 * A 1-D compute entry point of `wg` threads per group; `body` sees `gidx: u32`, the flat thread
 * index over a 2-D grid of groups (see {@linkcode grid}).
 */
export function entry1d(body: string, wg: number = WG): string {
  return `@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let gidx = (wid.y * nwg.x + wid.x) * ${wg}u + lid;
${body}
}
`;
}

/** Workgroup grid covering `groups` groups without exceeding {@linkcode MAX_GROUPS} per dimension. */
export function grid(groups: number): [number, number, number] {
  if (groups <= MAX_GROUPS) return [Math.max(groups, 1), 1, 1];
  const y = Math.ceil(groups / MAX_GROUPS);
  return [Math.ceil(groups / y), y, 1];
}

/** WGSL `isnan_` that survives fast-math (bit test), plus the op table's helpers where needed. */
export const ISNAN_WGSL = `fn isnan_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }\n`;

/**
 * The one index-math helper of every strided kernel: `offsets_(flat)` decodes a flat index over
 * `P.shape` (rank `P.rank`, row-major) and returns, for each of `k` operands, `P.off<j> + Σ i_d P.s<j>[d]`
 * (as `i32` for k = 1, `vecK<i32>` otherwise). Strides may be 0 or negative.
 */
export function offsetsFn(k: number): string {
  const ty = k === 1 ? "i32" : `vec${k}<i32>`;
  const offs = Array.from({ length: k }, (_, j) => `P.off${j}`).join(", ");
  const strides = Array.from({ length: k }, (_, j) => at(`s${j}`, "d")).join(", ");
  return `fn offsets_(flat: u32) -> ${ty} {
  var rem = flat;
  var o = ${ty}(${offs});
  for (var d = i32(P.rank) - 1; d >= 0; d--) {
    let sz = u32(${at("shape", "d")});
    let c = i32(rem % sz);
    rem = rem / sz;
    o += c * ${ty}(${strides});
  }
  return o;
}
`;
}

/** Uniform fields used by {@linkcode offsetsFn}: rank, offsets, shape and one stride array per operand. */
export function stridedUniforms(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
  offsets: readonly number[],
): { scalars: UniformScalar[]; arrays: UniformArray[] } {
  const scalars: UniformScalar[] = [["rank", "u32", shape.length]];
  offsets.forEach((o, j) => scalars.push([`off${j}`, "i32", o]));
  const arrays: UniformArray[] = [["shape", shape]];
  strides.forEach((s, j) => arrays.push([`s${j}`, s]));
  return { scalars, arrays };
}

/** The WGSL storage element type of a dtype (bool is stored as u32 0/1). */
export function wgslType(dtype: DType): Scalar {
  return dtype === "float32" ? "f32" : dtype === "int32" ? "i32" : "u32";
}

/** How a value is held inside a kernel: a stored dtype, or a WGSL `bool` expression result. */
export type ValueKind = DType | "wbool";

/** Converts a WGSL expression of kind `from` into kind `to` (anything → bool is `x != 0`). */
export function convert(expr: string, from: ValueKind, to: ValueKind): string {
  if (from === to) return expr;
  if (from === "wbool") {
    if (to === "float32") return `select(0.0, 1.0, ${expr})`;
    if (to === "int32") return `select(0, 1, ${expr})`;
    return `select(0u, 1u, ${expr})`;
  }
  if (to === "wbool") return `(${expr} != ${zero(from)})`;
  if (to === "bool") return `select(0u, 1u, ${expr} != ${zero(from)})`;
  return `${wgslType(to)}(${expr})`;
}

/** The WGSL zero literal of a dtype. */
export function zero(dtype: DType): string {
  return dtype === "float32" ? "0.0" : dtype === "int32" ? "0" : "0u";
}
