/**
 * Multi-tensor kernels: many small tensors in one dispatch, for optimiser steps and gradient clipping, where a
 * model's hundreds of parameters would otherwise cost a few dispatches each.
 *
 * - {@linkcode realizeTogether}: horizontal fusion. Each slot is a list of lazy buffers of one length (e.g. a
 *   parameter's new value and its new moment buffers, whose expressions share nodes); slots are packed into
 *   kernels up to the adapter's storage-binding limit. A kernel's flat index runs over the slots' lengths one
 *   after the other; each slot's branch evaluates its expressions once per element and stores every output.
 *   The values are exactly those {@linkcode realize} would compute one buffer at a time.
 * - {@linkcode sumOfSquares}: Σ x² of many buffers, one partial per workgroup (each workgroup reduces a chunk
 *   of one buffer), then one reduction of all partials.
 *
 * @module
 */

import type { GPUBuf, Runtime } from "./runtime.ts";
import { Codegen, measure } from "./fusion.ts";
import { reduce } from "./reduce.ts";
import { bindings, grid, uniforms, type UniformScalar, WG } from "./templates.ts";

/** Storage buffers one multi-tensor kernel may bind (the adapter's limit, at most this). */
const MAX_BUFFERS = 30;
/** Expression nodes one packed kernel may hold (compile time stays small). */
const MAX_KERNEL_NODES = 400;

function storageLimit(rt: Runtime): number {
  const lim = rt.device.limits.maxStorageBuffersPerShaderStage ?? 8;
  return Math.max(8, Math.min(MAX_BUFFERS, lim));
}

/** The leaves and node count of a slot's expressions. */
function slotSize(outs: readonly GPUBuf[]): { leaves: Set<GPUBuf>; nodes: number } {
  return measure(...outs.map((o) => o.expr!));
}

/**
 * Computes every lazy buffer of `slots` (buffers already computed are skipped) in as few kernels as the binding
 * limit allows. Each slot's buffers must have one length; a slot that cannot share a kernel is realised alone.
 */
export function realizeTogether(rt: Runtime, slots: readonly (readonly GPUBuf[])[]): void {
  const limit = storageLimit(rt);
  let pack: GPUBuf[][] = [];
  let leaves = new Set<GPUBuf>();
  let outputs = 0, nodes = 0;
  const flush = () => {
    if (pack.length > 0) dispatchPack(rt, pack);
    pack = [];
    leaves = new Set();
    outputs = 0;
    nodes = 0;
  };
  for (const slot of slots) {
    const outs = [...new Set(slot.filter((b) => b.expr !== null && !b.freed))];
    if (outs.length === 0) continue;
    if (outs.some((b) => b.length !== outs[0].length) || outs[0].length === 0) {
      for (const b of outs) rt.check(b);
      continue;
    }
    const size = slotSize(outs);
    const merged = new Set([...leaves, ...size.leaves]);
    if (pack.length > 0 && (merged.size + outputs + outs.length > limit || nodes + size.nodes > MAX_KERNEL_NODES)) {
      flush();
    }
    if (size.leaves.size + outs.length > limit) {
      for (const b of outs) rt.check(b);
      continue;
    }
    pack.push(outs);
    for (const l of size.leaves) leaves.add(l);
    outputs += outs.length;
    nodes += size.nodes;
  }
  flush();
}

function dispatchPack(rt: Runtime, pack: readonly GPUBuf[][]): void {
  const g = new Codegen();
  let total = 0;
  for (const outs of pack) total += outs[0].length;
  g.scalars.push(["n", "u32", total]);
  const outNames: [string, GPUBuf][] = [];
  let body = "  if (gidx >= P.n) { return; }\n";
  let start = 0;
  for (const outs of pack) {
    const end = start + outs[0].length;
    const s = g.uniform("u32", start), e = g.uniform("u32", end);
    g.block();
    const stores: string[] = [];
    for (const o of outs) {
      const v = g.value(o.expr!, "li");
      const name = `o${outNames.length}`;
      outNames.push([name, o]);
      stores.push(`  ${name}[li] = ${v};`);
    }
    const lines = g.block();
    body += `  if (gidx < ${e}) {\n  let li = gidx - ${s};\n${lines.join("\n")}\n${
      stores.join("\n")
    }\n  return;\n  }\n`;
    start = end;
  }
  const { u, b } = g.finish(outNames);
  const code = u.decl + b.decl + [...g.helpers].join("") + `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let gidx = (wid.y * nwg.x + wid.x) * ${WG}u + lid;
${body}}
`;
  const outs = outNames.map(([, o]) => o);
  // the leaves stay linked (and keep their storage) until the kernel that reads them is recorded
  for (const o of outs) o.expr = null;
  rt.dispatch({ code, uniforms: u, buffers: b.buffers, groups: grid(Math.ceil(total / WG)), label: "fused-multi" });
  for (const o of outs) rt.unlink(o);
}

/** Elements one workgroup of {@linkcode sumOfSquares} reduces. */
const SQ_CHUNK = WG * 8;

/**
 * Σ x² over every element of every buffer of `bufs` (float32), as a 1-element buffer: per-workgroup partials
 * (each workgroup a chunk of one buffer, in a tree), then one `reduce` over all partials.
 */
export function sumOfSquares(rt: Runtime, bufs: readonly GPUBuf[]): GPUBuf {
  // gradients still lazy (views of a reduction, sums of branches) are computed together, not one kernel each
  realizeTogether(rt, bufs.filter((b) => b.expr && b.length > 0).map((b) => [b]));
  const inputs = bufs.filter((b) => b.length > 0).map((b) => rt.check(b));
  const chunks = inputs.map((b) => Math.ceil(b.length / SQ_CHUNK));
  const totalChunks = chunks.reduce((a, c) => a + c, 0);
  if (totalChunks === 0) {
    const z = rt.alloc(1, "float32");
    const u = uniforms([["n", "u32", 1]]);
    const b = bindings([["out", z, "rw"]]);
    rt.dispatch({
      code: u.decl + b.decl + `@compute @workgroup_size(1) fn main() { out[0] = 0.0; }\n`,
      uniforms: u,
      buffers: b.buffers,
      groups: [1, 1, 1],
      label: "zero",
    });
    return z;
  }
  const partials = rt.alloc(totalChunks, "float32");
  const limit = storageLimit(rt) - 1;
  let first = 0, base = 0;
  while (first < inputs.length) {
    const group = inputs.slice(first, first + limit);
    const gchunks = chunks.slice(first, first + limit);
    const nChunks = gchunks.reduce((a, c) => a + c, 0);
    const scalars: UniformScalar[] = [["count", "u32", nChunks], ["base", "u32", base]];
    let w = 0;
    let branches = "";
    group.forEach((buf, k) => {
      scalars.push([`n${k}`, "u32", buf.length], [`w${k}`, "u32", w]);
      w += gchunks[k];
      const cond = k === group.length - 1 ? "" : `if (w < ${w}u) `;
      branches += `  ${k > 0 ? "else " : ""}${cond}{
    let c0 = (w - P.w${k}) * ${SQ_CHUNK}u;
    let c1 = min(P.n${k}, c0 + ${SQ_CHUNK}u);
    for (var i = c0 + lid; i < c1; i += ${WG}u) { let v = x${k}[i]; acc += v * v; }
  }
`;
    });
    const u = uniforms(scalars);
    const b = bindings([
      ...group.map((buf, k) => [`x${k}`, buf, "read"] as const),
      ["out", partials, "rw"],
    ]);
    const code = u.decl + b.decl + `var<workgroup> sh: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = wid.y * nwg.x + wid.x;
  var acc = 0.0;
  if (w < P.count) {
${branches}  }
  sh[lid] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { sh[lid] += sh[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u && w < P.count) { out[P.base + w] = sh[0]; }
}
`;
    rt.dispatch({ code, uniforms: u, buffers: b.buffers, groups: grid(nChunks), label: "sumsq-multi" });
    first += group.length;
    base += nChunks;
  }
  const total = reduce(rt, "sum", partials, 1, totalChunks, 1);
  rt.free(partials);
  return total;
}
