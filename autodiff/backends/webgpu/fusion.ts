/**
 * Lazy elementwise fusion (tinygrad-style). Elementwise kernels (fill, cast, unary, binary, where, clamp, affine,
 * and a strided copy into a fresh buffer, which covers permute/slice/expand views) do not dispatch: they return a
 * lazy {@linkcode GPUBuf} holding an expression DAG over already computed buffers (its leaves). When a kernel
 * other than an elementwise one binds the buffer, or it is read, {@linkcode realize} compiles the whole DAG into
 * ONE generated WGSL kernel (pipelines are cached by source, which depends on the DAG's structure only: every
 * constant and view geometry is a uniform) and dispatches it.
 *
 * Views are index remaps: a `view` node evaluates its operand at `offset + Σ i_d strides_d` for the multi-index
 * i of the current flat index over `shape`, so broadcasts, permutes and slices of lazy values fuse too.
 *
 * Memory: a lazy buffer counts as live (the accounting matches the CPU backend) but holds no storage; its leaves
 * keep their storage until every lazy buffer that reads them is computed or freed. Writing into a buffer
 * (`stridedCopyInto`, `scatterAddInto`) first computes the lazy buffers that read it.
 *
 * @module
 */

import type { BinaryOp, DType, UnaryOp } from "../../backend.ts";
import { BINARY, UNARY, WGSL_HELPERS } from "../../op_table.ts";
import type { GPUBuf, Runtime } from "./runtime.ts";
import {
  type BindingList,
  bindings,
  collapse,
  convert,
  entry1d,
  grid,
  ISNAN_WGSL,
  MAX_RANK,
  type UniformArray,
  type Uniforms,
  uniforms,
  type UniformScalar,
  type ValueKind,
  WG,
  wgslType,
} from "./templates.ts";

/** A written binding of a generated kernel: name, buffer and, optionally, its WGSL element type. */
export type Output = readonly [name: string, buf: GPUBuf, type?: string];

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** One node of a lazy elementwise expression; `dtype` is the stored type of its value. */
export type FusedNode =
  | { k: "leaf"; dtype: DType; buf: GPUBuf }
  | { k: "const"; dtype: DType; v: number }
  | { k: "unary"; dtype: DType; op: UnaryOp; x: FusedNode }
  | { k: "binary"; dtype: DType; op: BinaryOp; a: FusedNode; b: FusedNode }
  | { k: "where"; dtype: DType; c: FusedNode; a: FusedNode; b: FusedNode }
  | { k: "clamp"; dtype: DType; x: FusedNode; lo: number; hi: number }
  | { k: "affine"; dtype: DType; x: FusedNode; scale: number; shift: number }
  | { k: "cast"; dtype: DType; x: FusedNode }
  | { k: "view"; dtype: DType; x: FusedNode; shape: number[]; strides: number[]; offset: number }
  | {
    k: "region";
    dtype: DType;
    x: FusedNode;
    base: FusedNode;
    shape: number[];
    strides: number[];
    cstrides: number[];
    offset: number;
  };

/** Storage buffers one fused kernel may read (plus its output) where the adapter allows 16 per stage. */
export const MAX_LEAVES = 15;

/**
 * Storage buffers one fused kernel of `rt` may read: {@linkcode MAX_LEAVES}, or fewer where the device's
 * `maxStorageBuffersPerShaderStage` is smaller (WebGPU guarantees 8: 7 leaves and the output).
 */
export function maxLeaves(rt: Runtime): number {
  const limit = rt.device.limits?.maxStorageBuffersPerShaderStage ?? 8;
  return Math.max(7, Math.min(MAX_LEAVES, limit - 1));
}
/** Nodes of one fused expression. */
export const MAX_NODES = 48;
/** View (index remap) nodes of one fused expression (each takes two uniform arrays). */
export const MAX_VIEWS = 12;

/** The expression node of a buffer: its lazy expression, or a leaf reading it. */
export function operand(b: GPUBuf): FusedNode {
  return b.expr ?? { k: "leaf", dtype: b.dtype, buf: b };
}

/** Leaves, node count and view count of one or more DAGs (shared nodes counted once). */
export function measure(...roots: FusedNode[]): { leaves: Set<GPUBuf>; nodes: number; views: number } {
  const seen = new Set<FusedNode>();
  const leaves = new Set<GPUBuf>();
  let views = 0;
  const walk = (n: FusedNode): void => {
    if (seen.has(n)) return;
    seen.add(n);
    switch (n.k) {
      case "leaf":
        leaves.add(n.buf);
        return;
      case "const":
        return;
      case "binary":
        walk(n.a);
        walk(n.b);
        return;
      case "where":
        walk(n.c);
        walk(n.a);
        walk(n.b);
        return;
      case "view":
        views++;
        walk(n.x);
        return;
      case "region":
        views++;
        walk(n.x);
        walk(n.base);
        return;
      default:
        walk(n.x);
    }
  };
  for (const root of roots) walk(root);
  return { leaves, nodes: seen.size, views };
}

/**
 * A lazy buffer of `length` elements of `dtype` computing `build()` over `inputs`. When the fused expression would
 * exceed the limits of one kernel, the lazy inputs are computed first and the expression is built again over
 * them. With `into`, that (fresh) buffer becomes the lazy buffer instead of a new one.
 */
export function lazy(
  rt: Runtime,
  length: number,
  dtype: DType,
  inputs: readonly GPUBuf[],
  build: () => FusedNode,
  into?: GPUBuf,
): GPUBuf {
  let expr = build();
  let m = measure(expr);
  if (m.leaves.size > maxLeaves(rt) || m.nodes > MAX_NODES || m.views > MAX_VIEWS) {
    for (const b of inputs) if (b.expr) realize(rt, b);
    expr = build();
    m = measure(expr);
  }
  const out = into ?? rt.alloc(length, dtype);
  out.expr = expr;
  out.leaves = [...m.leaves];
  for (const leaf of out.leaves) leaf.consumers.add(out);
  return out;
}

/** Kind in which a unary op evaluates for input dtype `d`. */
export function unaryEvalKind(op: UnaryOp, d: DType): DType {
  return d === "int32" && UNARY[op].int ? "int32" : "float32";
}

/** Output dtype of a unary op. */
export function unaryOutDtype(op: UnaryOp, d: DType): DType {
  return op === "isnan" ? "bool" : d;
}

/** Integer bounds of an int clamp (as the CPU backend: ceil/floor, NaN = unbounded). */
export function intClampBounds(lo: number, hi: number): [number, number] {
  const ilo = Number.isNaN(lo) ? -2147483648 : Math.max(-2147483648, Math.min(2147483647, Math.ceil(lo)));
  const ihi = Number.isNaN(hi) ? 2147483647 : Math.max(-2147483648, Math.min(2147483647, Math.floor(hi)));
  return [ilo, ihi];
}

/**
 * WGSL generator for fused expressions: shared uniforms, helpers and leaf bindings; {@linkcode Codegen.value}
 * emits the lines computing a node at an index expression into the current block ({@linkcode Codegen.block}
 * starts a new scope, so several slots of one kernel never share temporaries).
 */
export class Codegen {
  /** Scalar uniforms (`n` first). */
  readonly scalars: UniformScalar[] = [];
  /** Array uniforms of the views. */
  readonly arrays: UniformArray[] = [];
  /** Leaf buffers by binding index (x0, x1, …). */
  readonly leafIdx: Map<GPUBuf, number> = new Map();
  /** Helper functions. */
  readonly helpers: Set<string> = new Set();
  /** Lines of the current block. */
  lines: string[] = [];
  #memo = new Map<FusedNode, Map<string, string>>();
  #tmp = 0;
  #views = 0;

  /** Starts a new scope: returns the lines so far and forgets every temporary. */
  block(): string[] {
    const l = this.lines;
    this.lines = [];
    this.#memo = new Map();
    return l;
  }

  /** Adds a scalar uniform; returns its WGSL reference. */
  uniform(type: "f32" | "i32" | "u32", v: number): string {
    const name = `c${this.scalars.length}`;
    this.scalars.push([name, type, v]);
    return `P.${name}`;
  }

  /** Emits (once per block and index) the value of `node` at flat index `idx`; returns its temporary's name. */
  value(node: FusedNode, idx: string): string {
    let byIdx = this.#memo.get(node);
    const hit = byIdx?.get(idx);
    if (hit) return hit;
    const value = this.#expression(node, idx);
    const name = `t${this.#tmp++}`;
    this.lines.push(`  let ${name} = ${value};`);
    if (!byIdx) this.#memo.set(node, byIdx = new Map());
    byIdx.set(idx, name);
    return name;
  }

  #expression(node: FusedNode, idx: string): string {
    const helpers = this.helpers;
    const uniform = (type: "f32" | "i32" | "u32", v: number) => this.uniform(type, v);
    const emit = (n: FusedNode, i: string) => this.value(n, i);
    switch (node.k) {
      case "leaf": {
        let j = this.leafIdx.get(node.buf);
        if (j === undefined) this.leafIdx.set(node.buf, j = this.leafIdx.size);
        return `x${j}[${idx}]`;
      }
      case "const":
        return uniform(wgslType(node.dtype), node.dtype === "bool" ? (node.v !== 0 ? 1 : 0) : node.v);
      case "cast":
        return convert(emit(node.x, idx), node.x.dtype, node.dtype);
      case "affine": {
        const v = convert(emit(node.x, idx), node.x.dtype, "float32");
        return convert(`${v} * ${uniform("f32", node.scale)} + ${uniform("f32", node.shift)}`, "float32", node.dtype);
      }
      case "clamp": {
        const v = emit(node.x, idx);
        if (node.x.dtype === "float32") {
          helpers.add(ISNAN_WGSL);
          return `select(min(max(${v}, ${uniform("f32", node.lo)}), ${uniform("f32", node.hi)}), ${v}, isnan_(${v}))`;
        }
        const [ilo, ihi] = intClampBounds(node.lo, node.hi);
        const vi = convert(v, node.x.dtype, "int32");
        return convert(`min(max(${vi}, ${uniform("i32", ilo)}), ${uniform("i32", ihi)})`, "int32", node.dtype);
      }
      case "unary": {
        const xd = node.x.dtype;
        const ek = unaryEvalKind(node.op, xd);
        const et = wgslType(ek);
        const body = node.op === "isnan" && ek === "float32" ? "select(0.0, 1.0, isnan_(x))" : UNARY[node.op].wgsl;
        const fn = `u_${node.op}_${et}`;
        helpers.add(WGSL_HELPERS);
        helpers.add(ISNAN_WGSL);
        helpers.add(`fn ${fn}(x: ${et}) -> ${et} { return ${body}; }\n`);
        return convert(`${fn}(${convert(emit(node.x, idx), xd, ek)})`, ek, node.dtype);
      }
      case "binary": {
        const def = BINARY[node.op];
        const useInt = node.a.dtype !== "float32" && def.wgslInt !== undefined;
        const ek: DType = useInt ? "int32" : "float32";
        let e = useInt ? def.wgslInt! : def.wgsl;
        // PyTorch propagates NaN through maximum/minimum; WGSL max/min need not.
        if (!useInt && (node.op === "maximum" || node.op === "minimum")) {
          e = `select(${e}, a + b, isnan_(a) || isnan_(b))`;
        }
        const resKind: ValueKind = def.bool ? "wbool" : ek;
        const et = wgslType(ek);
        const fn = `b_${node.op}_${et}`;
        helpers.add(WGSL_HELPERS);
        helpers.add(ISNAN_WGSL);
        helpers.add(`fn ${fn}(a: ${et}, b: ${et}) -> ${def.bool ? "bool" : et} { return ${e}; }\n`);
        const va = convert(emit(node.a, idx), node.a.dtype, ek);
        const vb = convert(emit(node.b, idx), node.b.dtype, ek);
        return convert(`${fn}(${va}, ${vb})`, resKind, node.dtype);
      }
      case "where": {
        const c = convert(emit(node.c, idx), node.c.dtype, "wbool");
        const va = convert(emit(node.a, idx), node.a.dtype, node.dtype);
        const vb = convert(emit(node.b, idx), node.b.dtype, node.dtype);
        return `select(${vb}, ${va}, ${c})`;
      }
      case "view": {
        const v = this.#views++;
        const c = collapse(node.shape, [node.strides]);
        if (c.shape.length > MAX_RANK) {
          throw new Error(`WebGPU: rank ${c.shape.length} exceeds ${MAX_RANK} after collapsing`);
        }
        this.scalars.push([`v${v}o`, "i32", node.offset]);
        this.arrays.push([`v${v}s`, c.shape], [`v${v}t`, c.strides[0]]);
        // Unrolled over the rank (part of the source): lavapipe stops a thread's loops after 65,535 iterations
        // in all, nested ones included, so a loop here, inside a long matmul or scan loop, cut those short.
        const steps = range(c.shape.length).reverse().map((d) =>
          `  c = i32(rem % u32(P.v${v}s[${d >> 2}][${d & 3}]));
  rem = rem / u32(P.v${v}s[${d >> 2}][${d & 3}]);
  o += c * P.v${v}t[${d >> 2}][${d & 3}];`
        );
        helpers.add(`fn view${v}_(flat: u32) -> u32 {
  var rem = flat;
  var o = P.v${v}o;
  var c = 0;
${steps.join("\n")}
  return u32(o);
}
`);
        const i = `i${v}`;
        this.lines.push(`  let ${i} = view${v}_(${idx});`);
        return emit(node.x, i);
      }
      case "region": {
        // flat index → the copied element it holds (decoding dst offsets, strides nested largest first), or -1
        const v = this.#views++;
        this.scalars.push([`r${v}o`, "i32", node.offset]);
        this.arrays.push([`r${v}s`, node.shape], [`r${v}t`, node.strides], [`r${v}c`, node.cstrides]);
        // unrolled over the rank, as views are
        const steps = range(node.shape.length).map((d) => {
          const el = (a: string) => `P.r${v}${a}[${d >> 2}][${d & 3}]`;
          return `  i = r / ${el("t")};
  if (i >= ${el("s")}) { return -1; }
  r -= i * ${el("t")};
  j += i * ${el("c")};`;
        });
        helpers.add(`fn region${v}_(flat: u32) -> i32 {
  var r = i32(flat) - P.r${v}o;
  if (r < 0) { return -1; }
  var i = 0;
  var j = 0;
${steps.join("\n")}
  return select(-1, j, r == 0);
}
`);
        const j = `j${v}`;
        this.lines.push(`  let ${j} = region${v}_(${idx});`);
        // outside the region x is read at 0 (in bounds) and discarded
        const xv = emit(node.x, `u32(max(${j}, 0))`);
        const bv = emit(node.base, idx);
        return `select(${bv}, ${xv}, ${j} >= 0)`;
      }
    }
  }

  /**
   * The uniform block and the bindings: leaves (read) then `outputs` (rw, named by the caller; element type that
   * of the dtype unless given, e.g. `atomic<u32>`).
   */
  finish(outputs: readonly Output[]): { u: Uniforms; b: ReturnType<typeof bindings> } {
    const u = uniforms(this.scalars, this.arrays);
    const list: BindingList = [...this.leafIdx.keys()].map((b, j) => [`x${j}`, b, "read", wgslType(b.dtype)]);
    for (const [name, buf, type] of outputs) list.push([name, buf, "rw", type ?? wgslType(buf.dtype)]);
    return { u, b: bindings(list) };
  }
}

/** Generates and dispatches the one kernel of a lazy buffer, which then holds its values. */
export function realize(rt: Runtime, out: GPUBuf): void {
  const root = out.expr;
  if (!root) return;
  const n = out.length;
  const g = new Codegen();
  g.scalars.push(["n", "u32", n]);
  const result = g.value(root, "gidx");
  const lines = g.block();
  const { u, b } = g.finish([["out", out]]);
  const code = u.decl + b.decl + [...g.helpers].join("") +
    entry1d(`  if (gidx >= P.n) { return; }\n${lines.join("\n")}\n  out[gidx] = ${result};`);
  // the leaves stay linked (and keep their storage) until the kernel that reads them is recorded
  out.expr = null;
  if (n > 0) rt.dispatch({ code, uniforms: u, buffers: b.buffers, groups: grid(Math.ceil(n / WG)), label: "fused" });
  rt.unlink(out);
}

/**
 * Fuses lazy inputs into a hand-written kernel: every read binding `name` of `reads` becomes a generated function
 * `ld_name(j)` (a lazy buffer's expression at flat index j, or a plain load of a computed one) and each `name[…]`
 * in `body` becomes `ld_name(…)`. Returns the uniforms (`scalars` and `arrays` first), the bindings (leaves, then `outputs`),
 * the declarations to put before the entry point, and the rewritten body; null when no input is lazy. When the
 * leaves would not fit one kernel, the widest lazy inputs are computed first (null if none stays lazy).
 */
export function fusedReads(
  rt: Runtime,
  scalars: readonly UniformScalar[],
  reads: readonly (readonly [string, GPUBuf])[],
  outputs: readonly Output[],
  body: string,
  arrays: readonly UniformArray[] = [],
): { u: Uniforms; b: ReturnType<typeof bindings>; decl: string; body: string } | null {
  if (!reads.some(([, x]) => x.expr)) return null;
  // maxLeaves keeps one binding for an output: kernels with more outputs read fewer leaves
  const limit = maxLeaves(rt) + 1 - Math.max(1, outputs.length);
  const leaves = new Set<GPUBuf>();
  for (const [, x] of reads) for (const l of measure(operand(x)).leaves) leaves.add(l);
  // over the limit: compute the lazy input with the most leaves first, until the rest fit
  while (leaves.size > limit) {
    let widest: GPUBuf | null = null, most = 0;
    for (const [, x] of reads) {
      const n = x.expr ? measure(x.expr).leaves.size : 0;
      if (n > most) [widest, most] = [x, n];
    }
    if (!widest) return null;
    realize(rt, widest);
    leaves.clear();
    for (const [, x] of reads) for (const l of measure(operand(x)).leaves) leaves.add(l);
  }
  if (!reads.some(([, x]) => x.expr)) return null;
  const g = new Codegen();
  g.scalars.push(...scalars);
  g.arrays.push(...arrays);
  const fns: string[] = [];
  for (const [name, x] of reads) {
    const v = g.value(operand(x), "j");
    const lines = g.block();
    fns.push(`fn ld_${name}(j: u32) -> ${wgslType(x.dtype)} {\n${lines.join("\n")}\n  return ${v};\n}\n`);
    body = rewriteLoads(body, name);
  }
  const { u, b } = g.finish(outputs);
  return { u, b, decl: u.decl + b.decl + [...g.helpers].join("") + fns.join(""), body };
}

/** Replaces every `name[index]` in `code` by `ld_name(index)` (brackets matched). */
function rewriteLoads(code: string, name: string): string {
  const re = new RegExp(`(?<![\\w.])${name}\\[`, "g");
  let out = "";
  let pos = 0;
  for (let m = re.exec(code); m; m = re.exec(code)) {
    let depth = 1;
    let i = m.index + m[0].length;
    for (; i < code.length && depth > 0; i++) {
      if (code[i] === "[") depth++;
      else if (code[i] === "]") depth--;
    }
    if (depth !== 0) throw new Error(`unbalanced ${name}[ in kernel`);
    out += code.slice(pos, m.index) + `ld_${name}(` + code.slice(m.index + m[0].length, i - 1) + ")";
    pos = i;
    re.lastIndex = i;
  }
  return out + code.slice(pos);
}
