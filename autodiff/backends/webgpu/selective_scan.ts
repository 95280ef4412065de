/**
 * The selective scan (Mamba's S6 recurrence) on WebGPU.
 *
 * - Forward: one invocation per (batch, channel, segment of the length) runs the recurrence with the dState-wide
 *   state in registers (dState is compiled in), writing `out` and the state at the end of every chunk; with more
 *   than one segment it is a chunked parallel scan (local scans, a carry pass, a rescan; see `selectiveScanForward`).
 * - Backward, pass 1: one invocation per (batch, channel, segment of chunks; see `selectiveScanBackward` for the
 *   split and its carry of the adjoint) visits the chunks last to first; per chunk and
 *   state index n it recomputes h_n over the chunk from the stored state before it (a chunk-long private
 *   array), then runs the adjoint `s_l = gy_l·C_l + exp(δ_{l+1}·A) ⊙ s_{l+1}` backwards, accumulating the
 *   per-step sums over n (du, dδ) in chunk-long private arrays. Per-channel partials (dA, fixed dB/dC, dD,
 *   d deltaBias) go to a (batch, channel, 3·dState + 2) buffer summed over the batch by `reduce`.
 * - Backward, pass 2 (grouped B/C): one invocation per (batch, group, n, slice of the group's channels, segment) reruns
 *   the scalar recurrence of state n for its channels, chunk by chunk, summing their terms in chunk-long private
 *   arrays, and owns dB/dC[b, g, n, :] of its slice, so no atomics are needed; slices (chosen so the partials stay
 *   about the size of u) are summed by `reduce`.
 * - Wide kernels (large scans on software adapters, see `channelsPerInvocation`): an invocation of the forward and
 *   of backward pass 1 takes 4 channels of one group, and of pass 2 takes 4 states, so that values shared by them
 *   (B and C; δ, u and dout) are loaded once: software adapters load a value one lane at a time. The generated
 *   code spells out each channel (`each`); with one it is the plain kernel.
 *
 * Nothing of size (batch, channels, length, dState) is allocated. Lazy inputs (views and elementwise
 * expressions such as A = −exp(A_log), or B and C sliced out of one projection) are evaluated inside the scan
 * kernels (`fusedReads`), so a scan costs one dispatch per pass instead of one more per input. Unfused, a kernel
 * binds up to 14 storage buffers.
 *
 * @module
 */

import type { SelectiveScanGrads, SelectiveScanInputs, SelectiveScanParams } from "../../backend.ts";
import type { GPUBuf, Runtime } from "./runtime.ts";
import { reduce } from "./reduce.ts";
import { fill, stridedCopyInto } from "./elementwise.ts";
import { fusedReads } from "./fusion.ts";
import { bindings, grid, uniforms, type UniformScalar } from "./templates.ts";

/** Invocations per workgroup of the scan kernels. */
const SWG = 64;

/** A named input of a scan kernel (absent inputs are skipped). */
type Read = readonly [string, GPUBuf | null];

/**
 * Dispatches one scan kernel: `src` (helpers, entry point and body) reads `reads` by name and writes `outputs`;
 * lazy inputs are evaluated inside it (see {@linkcode fusedReads}), computed ones are bound as they are.
 */
function scanDispatch(
  rt: Runtime,
  scalars: readonly UniformScalar[],
  reads: readonly Read[],
  outputs: readonly Read[],
  src: string,
  count: number,
): void {
  const present = (l: readonly Read[]) => l.filter((r): r is readonly [string, GPUBuf] => r[1] !== null);
  const groups = grid(Math.ceil(count / SWG));
  const f = fusedReads(rt, scalars, present(reads), present(outputs), src);
  if (f) {
    rt.dispatch({ code: f.decl + f.body, uniforms: f.u, buffers: f.b.buffers, groups, label: "selective scan" });
    return;
  }
  const u = uniforms(scalars);
  const b = bindings([
    ...present(reads).map(([name, x]) => [name, x, "read"] as const),
    ...present(outputs).map(([name, x]) => [name, x, "rw"] as const),
  ]);
  rt.dispatch({ code: u.decl + b.decl + src, uniforms: u, buffers: b.buffers, groups, label: "selective scan" });
}

/** The inputs every scan kernel reads, by their WGSL names (lazy ones stay lazy). */
function scanReads(rt: Runtime, x: SelectiveScanInputs): Read[] {
  const own = (b: SelectiveScanInputs[keyof SelectiveScanInputs]) => (b ? rt.own(b) : null);
  return [
    ["u", own(x.u)],
    ["delta", own(x.delta)],
    ["Bm", own(x.B)],
    ["Cm", own(x.C)],
    ["Am", own(x.A)],
    ["Dv", own(x.D)],
    ["bias", own(x.deltaBias)],
    ["z", own(x.z)],
  ];
}

/** Shared WGSL helpers: indices of B/C, δ, silu. */
function helpers(p: SelectiveScanParams): string {
  const grouped = p.groups > 0;
  return `const NS: u32 = ${p.dState}u;
const TS: u32 = ${p.chunk}u;
fn bc_(b: u32, d: u32, n: u32, l: u32) -> u32 {
  ${grouped ? "return ((b * P.G + d / P.pg) * NS + n) * P.L + l;" : "return d * NS + n;"}
}
fn delta_(i: u32, d: u32) -> f32 {
  let raw = delta[i]${p.hasDeltaBias ? " + bias[d]" : ""};
  ${
    p.deltaSoftplus
      ? `if (raw > 20.0) { return raw; }
  let e = exp(raw);
  let u1 = 1.0 + e;
  return select(log(u1) * e / (u1 - 1.0), e, u1 == 1.0);`
      : "return raw;"
  }
}
fn ddelta_(i: u32, d: u32, g: f32) -> f32 {
  ${
    p.deltaSoftplus
      ? `let raw = delta[i]${p.hasDeltaBias ? " + bias[d]" : ""};
  return select(g / (1.0 + exp(-raw)), g, raw > 20.0);`
      : "return g;"
  }
}
`;
}

function scanUniforms(p: SelectiveScanParams, count: number, slices = 1, segs = 1, cps = 0): UniformScalar[] {
  return [
    ["count", "u32", count],
    ["Dn", "u32", p.channels],
    ["L", "u32", p.length],
    ["G", "u32", Math.max(p.groups, 1)],
    ["pg", "u32", p.groups > 0 ? p.channels / p.groups : p.channels],
    ["nC", "u32", Math.ceil(p.length / p.chunk)],
    ["slices", "u32", slices],
    ["per", "u32", p.groups > 0 ? groupedSlice(p).per : 0], // channels per slice of the grouped dB/dC pass
    ["S", "u32", segs],
    ["cps", "u32", cps || Math.ceil(p.length / p.chunk)],
  ];
}

/** WGSL: the entry point, opened up to its body: invocations `gidx` below `bound` (WGSL) run. */
function entry(bound = "P.count"): string {
  return `@compute @workgroup_size(${SWG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let gidx = (wid.y * nwg.x + wid.x) * ${SWG}u + lid;
  if (gidx >= ${bound}) { return; }
`;
}

/** `f(k)` for k = 0 … count − 1 (the channels or states of a wide kernel), joined by newlines. */
function each(count: number, f: (k: number) => string): string {
  return Array.from({ length: count }, (_, k) => f(k)).join("\n");
}

/** Hardware adapters: the forward splits each sequence into segments until it launches about this many invocations. */
export const SCAN_TARGET_INVOCATIONS = 65536;
/** Shortest segment (steps) the split makes on its own. */
const MIN_SEGMENT = 8;
let splitOverride: number | null = null;

/** Forces the number of segments per sequence of the forward scan (tests, tuning); `null` restores the choice. */
export function setScanSplit(segments: number | null): void {
  splitOverride = segments;
}

/**
 * Steps per segment of the forward scan: each segment of a sequence is scanned by its own invocation. Software
 * adapters run few threads at once, so the extra pass would only cost time there: they keep whole sequences.
 * Hardware adapters split until `batch · channels · segments` reaches {@linkcode SCAN_TARGET_INVOCATIONS}
 * (segments of at least {@linkcode MIN_SEGMENT} steps).
 */
export function scanSegmentLength(p: SelectiveScanParams, software: boolean): number {
  const L = Math.max(1, p.length);
  let segments = 1;
  if (splitOverride !== null) segments = splitOverride;
  else if (!software) {
    segments = Math.min(
      Math.ceil(L / MIN_SEGMENT),
      Math.ceil(SCAN_TARGET_INVOCATIONS / Math.max(1, p.batch * p.channels)),
    );
  }
  return Math.ceil(L / Math.max(1, Math.min(L, segments)));
}

/**
 * Loop iterations one invocation of a backward kernel may run on a software adapter. Lavapipe stops a thread's
 * loops after about 65,535 iterations in all, silently: an unsplit backward at L = 4,096, dState 16 (MambaAD at
 * 256²) came back with every du wrong. Half of that, for margin.
 */
const SOFTWARE_LOOP_BUDGET = 32768;

/**
 * Chunks per segment of the backward scan. Its segments are runs of whole chunks, whose start states the forward
 * stored; the split follows the forward's (same target, same override), in chunks instead of steps. On software
 * adapters segments are also short enough for {@linkcode SOFTWARE_LOOP_BUDGET}.
 */
export function scanBackwardChunksPerSegment(p: SelectiveScanParams, software: boolean): number {
  const nC = Math.max(1, Math.ceil(p.length / p.chunk));
  const segments = Math.ceil(p.length / scanSegmentLength(p, software));
  let cps = Math.ceil(nC / Math.max(1, Math.min(nC, segments)));
  if (software) {
    // per chunk: the main kernel's step loops (2·dState + 2 of them), the grouped dB/dC pass's 2 per channel + 2
    const N = p.dState, per = p.groups > 0 ? groupedSlice(p).per : 0;
    const perChunk = Math.max((2 * N + 2) * p.chunk + N, p.groups > 0 ? (2 * per + 2) * p.chunk + per : 0);
    cps = Math.min(cps, Math.max(1, Math.floor(SOFTWARE_LOOP_BUDGET / perChunk)));
  }
  return cps;
}

/** How the grouped dB/dC pass splits a group's channels: slices, and channels per slice. */
function groupedSlice(p: SelectiveScanParams): { slices: number; per: number } {
  const pg = p.channels / p.groups;
  // enough invocations, partials about the size of u
  const slices = Math.max(1, Math.min(pg, Math.floor(p.channels / (p.groups * p.dState))));
  return { slices, per: Math.ceil(pg / slices) };
}

/** Work items per invocation of the wide kernels: channels of the forward, states of the grouped dB/dC pass. */
const WIDE = 4;
/**
 * State updates (batch · channels · length · dState) from which a software adapter runs the wide kernels. They
 * compile slower (lavapipe: about 20 s more for a backward, against about 70 ns saved per state update forward
 * and backward), so they pay back only on large scans: 2^27 is the decoder's widest scan at batch 2, 256².
 */
const WIDE_FROM = 2 ** 27;
let widthOverride: number | null = null;

/**
 * Forces the channels (forward) and states (grouped dB/dC pass) one scan invocation takes, where the shapes allow
 * it (tests); `null` restores the choice.
 */
export function setScanWidth(width: number | null): void {
  widthOverride = width;
}

/** The width asked for: the override, else {@linkcode WIDE} for a large scan on a software adapter, else 1. */
function wantedWidth(p: SelectiveScanParams, software: boolean): number {
  if (widthOverride !== null) return widthOverride;
  return software && p.batch * p.channels * p.length * p.dState >= WIDE_FROM ? WIDE : 1;
}

/**
 * Channels per invocation of the forward's scan proper and the backward's per-channel passes, all of one group of
 * B/C. A software adapter loads a value one lane at a time, so B and C, shared by a group's channels, cost a load
 * per lane that reads them: on large scans each invocation takes {@linkcode WIDE} channels and loads B and C once
 * for them (lavapipe, the bench's scan: forward 2.5x, backward 2.6x faster). Hardware adapters broadcast a load
 * shared by a warp's lanes and keep 1 (more invocations, fewer registers).
 */
export function channelsPerInvocation(p: SelectiveScanParams, software: boolean): number {
  const want = wantedWidth(p, software);
  return p.groups > 0 && (p.channels / p.groups) % want === 0 ? want : 1;
}

/**
 * States per invocation of the grouped dB/dC pass: δ, u and dout of a step are loaded (and softplus taken) once
 * for them. As {@linkcode channelsPerInvocation}: {@linkcode WIDE} on large scans on software adapters, else 1
 * (on hardware its private arrays would grow as much).
 */
export function statesPerInvocation(p: SelectiveScanParams, software: boolean): number {
  const want = wantedWidth(p, software);
  return p.dState % want === 0 ? want : 1;
}

/** Invocations of the forward scan's widest pass (for reports and tests). */
export function scanInvocations(p: SelectiveScanParams, software: boolean): number {
  const segments = Math.ceil(p.length / scanSegmentLength(p, software));
  return p.batch * p.channels * segments / channelsPerInvocation(p, software);
}

/**
 * Forward: out (batch, channels, length), chunkStates (batch, channels, nChunks, dState), lastState optional.
 *
 * With S > 1 segments per sequence (of any length, not tied to the chunks) it is a chunked parallel scan, as the official CUDA kernel: (1) every
 * (batch, channel, segment) scans its segment from a zero state, keeping the end state and the product of its
 * decays; (2) a carry pass per (batch, channel) composes them into each segment's true start state; (3) every
 * segment rescans from its start state, writing `out` and its chunk states. With S = 1 only (3) runs.
 */
export function selectiveScanForward(
  rt: Runtime,
  x: SelectiveScanInputs,
  p: SelectiveScanParams,
  returnLastState: boolean,
): { out: GPUBuf; lastState?: GPUBuf; chunkStates: GPUBuf } {
  const { batch, channels: Dn, length: L, dState: N } = p;
  const nC = Math.ceil(L / p.chunk);
  const out = rt.alloc(batch * Dn * L, "float32"), cs = rt.alloc(batch * Dn * nC * N, "float32");
  const seqs = batch * Dn;
  if (seqs > 0 && L > 0 && N > 0) {
    const segLen = scanSegmentLength(p, rt.software);
    const segs = Math.ceil(L / segLen);
    const count = seqs * segs;
    const scalars: UniformScalar[] = [
      ["count", "u32", count],
      ["Dn", "u32", Dn],
      ["L", "u32", L],
      ["G", "u32", Math.max(p.groups, 1)],
      ["pg", "u32", p.groups > 0 ? Dn / p.groups : Dn],
      ["nC", "u32", nC],
      ["S", "u32", segs],
      ["seg", "u32", segLen],
    ];
    const inputs = scanReads(rt, x);
    // the segment of this invocation: sequence `seq` = (b, d), steps [l0, l1)
    const head = `  let seq = gidx / P.S;
  let s = gidx % P.S;
  let bb = seq / P.Dn;
  let d = seq % P.Dn;
  let base = seq * P.L;
  let l0 = s * P.seg;
  let l1 = min(P.L, l0 + P.seg);
  var a: array<f32, NS>;
  for (var n = 0u; n < NS; n++) { a[n] = Am[d * NS + n]; }
`;
    const seg = segs > 1 ? rt.alloc(2 * count * N, "float32") : null;
    if (seg) {
      // (1) local scans: seg[gidx, n] = end state from zero, seg[count + gidx, n] = product of the decays
      const code1 = helpers(p) + entry() + head + `  var h: array<f32, NS>;
  var pd: array<f32, NS>;
  for (var n = 0u; n < NS; n++) { h[n] = 0.0; pd[n] = 1.0; }
  for (var l = l0; l < l1; l++) {
    let i = base + l;
    let dl = delta_(i, d);
    let dbu = dl * u[i];
    for (var n = 0u; n < NS; n++) {
      let e = exp(dl * a[n]);
      h[n] = e * h[n] + dbu * Bm[bc_(bb, d, n, l)];
      pd[n] *= e;
    }
  }
  for (var n = 0u; n < NS; n++) { seg[gidx * NS + n] = h[n]; seg[(P.count + gidx) * NS + n] = pd[n]; }
}
`;
      scanDispatch(rt, scalars, inputs.filter(([name]) => name !== "z"), [["seg", seg]], code1, count);
      // (2) carry: per (sequence, n), the true start state of every segment replaces its local end state
      const u = uniforms(scalars);
      const b2 = bindings([["seg", seg, "rw"]]);
      const code2 = u.decl + b2.decl + `const NS: u32 = ${N}u;
` + entry("P.count / P.S * NS") +
        `  let seq = gidx / NS;
  let n = gidx % NS;
  var h = 0.0;
  for (var s = 0u; s < P.S; s++) {
    let o = (seq * P.S + s) * NS + n;
    let end = seg[o];
    seg[o] = h;
    h = seg[P.count * NS + o] * h + end;
  }
}
`;
      rt.dispatch({ code: code2, uniforms: u, buffers: b2.buffers, groups: grid(Math.ceil(seqs * N / SWG)) });
    }
    // (3) the scan proper, each segment from its start state; `cpi` channels of one group per invocation
    const cpi = channelsPerInvocation(p, rt.software);
    const count3 = count / cpi;
    const channels = (f: (k: number) => string) => each(cpi, f), states = (f: (n: number) => string) => each(N, f);
    // state n of channel k: h${k}_${n}, decay rate a${k}_${n} (scalars, so they stay in registers)
    const code = helpers(p) + entry(`P.count / ${cpi}u`) + `  let q = gidx / P.S;
  let s = gidx % P.S;
  let seq0 = q * ${cpi}u;
  let bb = seq0 / P.Dn;
  let d0 = seq0 % P.Dn;
  let l0 = s * P.seg;
  let l1 = min(P.L, l0 + P.seg);
${
      channels((k) =>
        states((n) =>
          `  let a${k}_${n} = Am[(d0 + ${k}u) * NS + ${n}u];
  var h${k}_${n} = ${seg ? `seg[((seq0 + ${k}u) * P.S + s) * NS + ${n}u]` : "0.0"};`
        )
      )
    }
${channels((k) => `  let D${k} = ${p.hasD ? `Dv[d0 + ${k}u]` : "0.0"};`)}
  for (var l = l0; l < l1; l++) {
${
      channels((k) =>
        `    let i${k} = (seq0 + ${k}u) * P.L + l;
    let dl${k} = delta_(i${k}, d0 + ${k}u);
    let u${k} = u[i${k}];
    let dbu${k} = dl${k} * u${k};
    var y${k} = 0.0;`
      )
    }
${
      states((n) =>
        `    {
      let o = bc_(bb, d0, ${n}u, l);
      let Bn = Bm[o];
      let Cn = Cm[o];
${
          channels((k) =>
            `      h${k}_${n} = exp(dl${k} * a${k}_${n}) * h${k}_${n} + dbu${k} * Bn;
      y${k} += h${k}_${n} * Cn;`
          )
        }
    }`
      )
    }
${
      channels((k) =>
        `    var v${k} = y${k} + D${k} * u${k};
    ${p.hasZ ? `let z${k} = z[i${k}];\n    v${k} *= z${k} / (1.0 + exp(-z${k}));` : ""}
    out[i${k}] = v${k};`
      )
    }
    if ((l + 1u) % TS == 0u || l + 1u == P.L) {
${
      channels((k) =>
        `      let so${k} = ((seq0 + ${k}u) * P.nC + l / TS) * NS;
${states((n) => `      cs[so${k} + ${n}u] = h${k}_${n};`)}`
      )
    }
    }
  }
}
`;
    scanDispatch(rt, scalars, [...inputs, ["seg", seg]], [["out", out], ["cs", cs]], code, count3);
    if (seg) rt.free(seg);
  }
  if (!returnLastState) return { out, chunkStates: cs };
  // the last state is the stored state of the last chunk
  const last = rt.alloc(batch * Dn * N, "float32");
  if (last.length > 0) {
    stridedCopyInto(rt, cs, (nC - 1) * N, [nC * N, 1], last, 0, [N, 1], [batch * Dn, N]);
  }
  return { out, lastState: last, chunkStates: cs };
}

/**
 * WGSL: the `cpi` channels (one group's when more than one) and the segment of whole chunks [cBeg, cEnd) of
 * `gidx`. Channel k is sequence seq0 + k = (bb, d0 + k), its steps from `base{k}`.
 */
function segment(cpi: number): string {
  return `  let seq0 = gidx / P.S * ${cpi}u;
  let sg = gidx % P.S;
  let cBeg = sg * P.cps;
  let cEnd = min(P.nC, cBeg + P.cps);
  let bb = seq0 / P.Dn;
  let d0 = seq0 % P.Dn;
${each(cpi, (k) => `  let base${k} = (seq0 + ${k}u) * P.L;`)}`;
}

/**
 * WGSL: opens the loop over the segment's chunks, last first, and fills `dls{k}` (δ) and `gys{k}` (dout,
 * SiLU(z)-gated) of each channel k for the chunk's steps, running `perStep(k)` after each; the caller closes the
 * chunk loop.
 */
function chunkSteps(p: SelectiveScanParams, cpi: number, perStep: (k: number) => string): string {
  return `  for (var c = cEnd; c > cBeg; ) {
    c--;
    let l0 = c * TS;
    let len = min(P.L, l0 + TS) - l0;
    for (var t = 0u; t < len; t++) {
${
    each(cpi, (k) =>
      `      let i${k} = base${k} + l0 + t;
      dls${k}[t] = delta_(i${k}, d0 + ${k}u);
      var gy${k} = dout[i${k}];
      ${p.hasZ ? `let zv${k} = z[i${k}];\n      gy${k} *= zv${k} / (1.0 + exp(-zv${k}));` : ""}
      gys${k}[t] = gy${k};${perStep(k)}`)
  }
    }`;
}

/**
 * Backward: the gradients of every input given dout and the forward's chunk states.
 *
 * Split into S segments of whole chunks (hardware adapters), it is parallel over the length as the forward is. The
 * adjoint runs right to left, `s ← (s + gy_l·C_l) · exp(δ_l·A)` per state, which is affine in s: over a segment
 * `s_out = P·s_in + Q` with P the product of the decays and Q the segment's result from s_in = 0. (1) every
 * (batch, channel, segment) computes its P and Q; (2) a carry pass per (batch, channel, state) composes them right
 * to left into the adjoint entering each segment; (3) every segment runs the full backward from that adjoint and
 * the stored chunk states. With S = 1 only (3) runs.
 */
export function selectiveScanBackward(
  rt: Runtime,
  x: SelectiveScanInputs,
  cs: GPUBuf,
  dout: GPUBuf,
  p: SelectiveScanParams,
): SelectiveScanGrads {
  const { batch, channels: Dn, length: L, dState: N, groups: G } = p;
  const W = 3 * N + 2; // per-channel partials: dA | dB | dC (fixed) | dD | dbias
  const du = rt.alloc(batch * Dn * L, "float32"), dd = rt.alloc(batch * Dn * L, "float32");
  const dz = x.z ? rt.alloc(batch * Dn * L, "float32") : null;
  const nC = Math.ceil(L / p.chunk);
  const cps = L > 0 ? scanBackwardChunksPerSegment(p, rt.software) : 1;
  const S = Math.max(1, Math.ceil(nC / cps));
  const seqs = batch * Dn;
  const count = seqs * S;
  // zero-filled when no kernel writes it (an empty length); laid out (batch, segment, channel, W)
  const part = L > 0 ? rt.alloc(count * W, "float32") : fill(rt, count * W, 0, "float32");
  const inputs: Read[] = [...scanReads(rt, x), ["cs", cs], ["dout", dout]];
  const cpi = channelsPerInvocation(p, rt.software);
  const sin = count > 0 && L > 0 && S > 1 ? adjointCarry(rt, inputs, p, S, cps, cpi) : null;
  if (count > 0 && L > 0) {
    const fixed = G === 0;
    const shared = cpi > 1; // B and C of a step are loaded once for the channels and kept for the adjoint's loop
    const channels = (f: (k: number) => string) => each(cpi, f);
    const code = helpers(p) + entry(`P.count / ${cpi}u`) + `${segment(cpi)}
${
      channels((k) =>
        `  let Dd${k} = ${p.hasD ? `Dv[d0 + ${k}u]` : "0.0"};
  var sc${k}: array<f32, NS>;
  var accA${k}: array<f32, NS>;
  ${fixed ? `var accB${k}: array<f32, NS>;\n  var accC${k}: array<f32, NS>;` : ""}
  for (var n = 0u; n < NS; n++) {
    sc${k}[n] = ${sin ? `sin[((seq0 + ${k}u) * P.S + sg) * NS + n]` : "0.0"};
    accA${k}[n] = 0.0;
    ${fixed ? `accB${k}[n] = 0.0; accC${k}[n] = 0.0;` : ""}
  }
  var accD${k} = 0.0;
  var accBias${k} = 0.0;
  var dls${k}: array<f32, TS>;
  var gys${k}: array<f32, TS>;
  ${p.hasZ ? `var ys${k}: array<f32, TS>;` : ""}
  var hs${k}: array<f32, ${p.chunk + 1}>;
  var ddl${k}: array<f32, TS>;
  var dus${k}: array<f32, TS>;
  var us${k}: array<f32, TS>;`
      )
    }
  ${shared ? "var bq: array<f32, TS>;\n  var cq: array<f32, TS>;" : ""}
${
      chunkSteps(p, cpi, (k) => `
      let ul${k} = u[i${k}];
      us${k}[t] = ul${k};
      accD${k} += gy${k} * ul${k};
      ${p.hasZ ? `ys${k}[t] = 0.0;` : ""}
      ddl${k}[t] = 0.0;
      dus${k}[t] = gy${k} * Dd${k};`)
    }
    for (var n = 0u; n < NS; n++) {
${
      channels((k) =>
        `      let an${k} = Am[(d0 + ${k}u) * NS + n];
      hs${k}[0] = select(0.0, cs[((seq0 + ${k}u) * P.nC + c - 1u) * NS + n], c > 0u);`
      )
    }
      for (var t = 0u; t < len; t++) {
        let o = bc_(bb, d0, n, l0 + t);
        let Bn = Bm[o];
        let Cn = Cm[o];
        ${shared ? "bq[t] = Bn;\n        cq[t] = Cn;" : ""}
${
      channels((k) =>
        `        let hn${k} = exp(dls${k}[t] * an${k}) * hs${k}[t] + dls${k}[t] * us${k}[t] * Bn;
        hs${k}[t + 1u] = hn${k};
        ${p.hasZ ? `ys${k}[t] += hn${k} * Cn;` : ""}`
      )
    }
      }
${
      channels((k) =>
        `      var s${k} = sc${k}[n];
      var aA${k} = 0.0;
      ${fixed ? `var aB${k} = 0.0;\n      var aC${k} = 0.0;` : ""}`
      )
    }
      for (var tt = 0u; tt < len; tt++) {
        let t = len - 1u - tt;
        ${
      shared
        ? "let Bn = bq[t];\n        let Cn = cq[t];"
        : "let o = bc_(bb, d0, n, l0 + t);\n        let Bn = Bm[o];\n        let Cn = Cm[o];"
    }
${
      channels((k) =>
        `        {
          let dl = dls${k}[t];
          let ul = us${k}[t];
          let sn = s${k} + gys${k}[t] * Cn;
          let e = exp(dl * an${k});
          let t1 = sn * hs${k}[t] * e;
          aA${k} += t1 * dl;
          ddl${k}[t] += t1 * an${k} + sn * Bn * ul;
          dus${k}[t] += sn * dl * Bn;
          ${fixed ? `aB${k} += sn * dl * ul;\n          aC${k} += gys${k}[t] * hs${k}[t + 1u];` : ""}
          s${k} = sn * e;
        }`
      )
    }
      }
${
      channels((k) =>
        `      sc${k}[n] = s${k};
      accA${k}[n] += aA${k};
      ${fixed ? `accB${k}[n] += aB${k};\n      accC${k}[n] += aC${k};` : ""}`
      )
    }
    }
    for (var t = 0u; t < len; t++) {
${
      channels((k) =>
        `      {
        let i = base${k} + l0 + t;
        ${
          p.hasZ
            ? `let zv = z[i];
        let sg = 1.0 / (1.0 + exp(-zv));
        dz[i] = dout[i] * (ys${k}[t] + Dd${k} * u[i]) * sg * (1.0 + zv * (1.0 - sg));`
            : ""
        }
        du[i] = dus${k}[t];
        let g = ddelta_(i, d0 + ${k}u, ddl${k}[t]);
        dd[i] = g;
        accBias${k} += g;
      }`
      )
    }
    }
  }
${
      channels((k) =>
        `  {
    let po = ((bb * P.S + sg) * P.Dn + d0 + ${k}u) * ${W}u;
    for (var n = 0u; n < NS; n++) {
      part[po + n] = accA${k}[n];
      ${fixed ? `part[po + NS + n] = accB${k}[n];\n      part[po + 2u * NS + n] = accC${k}[n];` : ""}
    }
    part[po + 3u * NS] = accD${k};
    part[po + 3u * NS + 1u] = accBias${k};
  }`
      )
    }
}
`;
    const outputs: Read[] = [["du", du], ["dd", dd], ["dz", dz], ["part", part]];
    scanDispatch(rt, scanUniforms(p, count, 1, S, cps), [...inputs, ["sin", sin]], outputs, code, count / cpi);
  }
  // sum the per-channel partials over batch and segments → (channels, W)
  const sums = reduce(rt, "sum", part, 1, batch * S, Dn * W);
  rt.free(part);
  const column = (off: number, width: number): GPUBuf => {
    const t = rt.alloc(Dn * width, "float32");
    if (t.length > 0) stridedCopyInto(rt, sums, off, [W, 1], t, 0, [width, 1], [Dn, width]);
    return t;
  };
  const dA = column(0, N);
  let dB: GPUBuf, dC: GPUBuf;
  if (G === 0) {
    dB = column(N, N);
    dC = column(2 * N, N);
  } else {
    [dB, dC] = groupedBC(rt, [...inputs, ["sin", sin]], p, S, cps);
  }
  if (sin) rt.free(sin);
  const dD = x.D ? column(3 * N, 1) : null;
  const dBias = x.deltaBias ? column(3 * N + 1, 1) : null;
  rt.free(sums);
  return { du, ddelta: dd, dA, dB, dC, dD, dz, ddeltaBias: dBias };
}

/** Pass 2: dB and dC of grouped B/C, (batch, groups, dState, length). */
function groupedBC(
  rt: Runtime,
  inputs: readonly Read[],
  p: SelectiveScanParams,
  S: number,
  cps: number,
): [GPUBuf, GPUBuf] {
  const { batch, length: L, dState: N, groups: G } = p;
  const { slices, per } = groupedSlice(p);
  const size = batch * G * N * L;
  const partB = rt.alloc(slices * size, "float32"), partC = rt.alloc(slices * size, "float32");
  const count = slices * batch * G * N * S;
  const hasSin = inputs.some(([name, b]) => name === "sin" && b !== null);
  if (count > 0 && L > 0) {
    // `spi` states per invocation, written out for each state k: n = n0 + k
    const spi = statesPerInvocation(p, rt.software);
    const states = (f: (k: number) => string) => each(spi, f);
    const code = helpers(p) + entry(`P.count / ${spi}u`) +
      `  // gidx = (((slice · batch + b) · G + g) · NS / ${spi} + n0 / ${spi}) · S + segment
  let sg = gidx % P.S;
  let r = gidx / P.S;
  let n0 = (r % (NS / ${spi}u)) * ${spi}u;
  let rest = r / (NS / ${spi}u); // (slice · batch + b) · G + g
  let nb = P.count / (P.slices * P.G * NS * P.S); // batch
  let bg = rest % (P.G * nb);
  let slice = rest / (P.G * nb);
  let bb = bg / P.G;
  let g = bg % P.G;
  let cBeg = sg * P.cps;
  let cEnd = min(P.nC, cBeg + P.cps);
  let row = (rest * NS + n0) * P.L; // the (slice, b, g, n0) row of the partials; state k's is k rows on
  let d0 = g * P.pg + slice * P.per;
  let d1 = min(d0 + P.per, (g + 1u) * P.pg);
  let bcRow = bc_(bb, d0, n0, 0u); // B and C of state n0: one row for every channel of the group
  var dls: array<f32, TS>;
  var us: array<f32, TS>;
${
        states((k) =>
          `  var hs${k}: array<f32, ${p.chunk + 1}>;
  var bq${k}: array<f32, TS>;
  var cq${k}: array<f32, TS>;
  var accB${k}: array<f32, TS>;
  var accC${k}: array<f32, TS>;
  var sd${k}: array<f32, ${per}>; // the adjoint of state n0 + ${k} per channel of the slice, from chunk to chunk`
        )
      }
  for (var j = 0u; j < d1 - d0; j++) {
${states((k) => `    sd${k}[j] = ${hasSin ? `sin[((bb * P.Dn + d0 + j) * P.S + sg) * NS + n0 + ${k}u]` : "0.0"};`)}
  }
  for (var c = cEnd; c > cBeg; ) {
    c--;
    let l0 = c * TS;
    let len = min(P.L, l0 + TS) - l0;
    for (var t = 0u; t < len; t++) {
${
        states((k) =>
          `      bq${k}[t] = Bm[bcRow + ${k}u * P.L + l0 + t];
      cq${k}[t] = Cm[bcRow + ${k}u * P.L + l0 + t];
      accB${k}[t] = 0.0;
      accC${k}[t] = 0.0;`
        )
      }
    }
    for (var j = 0u; j < d1 - d0; j++) {
      let d = d0 + j;
      let ch = bb * P.Dn + d;
      let base = ch * P.L;
${
        states((k) =>
          `      let a${k} = Am[d * NS + n0 + ${k}u];
      hs${k}[0] = select(0.0, cs[(ch * P.nC + c - 1u) * NS + n0 + ${k}u], c > 0u);`
        )
      }
      for (var t = 0u; t < len; t++) {
        let i = base + l0 + t;
        let dl = delta_(i, d);
        dls[t] = dl;
        let ul = u[i];
        us[t] = ul;
${states((k) => `        hs${k}[t + 1u] = exp(dl * a${k}) * hs${k}[t] + dl * ul * bq${k}[t];`)}
      }
${states((k) => `      var s${k} = sd${k}[j];`)}
      for (var tt = 0u; tt < len; tt++) {
        let t = len - 1u - tt;
        let i = base + l0 + t;
        var gy = dout[i];
        ${p.hasZ ? "let zv = z[i];\n        gy *= zv / (1.0 + exp(-zv));" : ""}
        let dl = dls[t];
${
        states((k) =>
          `        let sn${k} = s${k} + gy * cq${k}[t];
        accC${k}[t] += gy * hs${k}[t + 1u];
        accB${k}[t] += sn${k} * dl * us[t];
        s${k} = sn${k} * exp(dl * a${k});`
        )
      }
      }
${states((k) => `      sd${k}[j] = s${k};`)}
    }
    for (var t = 0u; t < len; t++) {
${
        states((k) =>
          `      pB[row + ${k}u * P.L + l0 + t] = accB${k}[t];
      pC[row + ${k}u * P.L + l0 + t] = accC${k}[t];`
        )
      }
    }
  }
}
`;
    scanDispatch(
      rt,
      scanUniforms(p, count, slices, S, cps),
      inputs.filter(([name]) => name !== "Dv"),
      [["pB", partB], ["pC", partC]],
      code,
      count / spi,
    );
  }
  if (slices === 1) return [partB, partC];
  const dB = reduce(rt, "sum", partB, 1, slices, size), dC = reduce(rt, "sum", partC, 1, slices, size);
  rt.free(partB);
  rt.free(partC);
  return [dB, dC];
}

/**
 * Passes (1) and (2) of the split backward: the adjoint state entering each segment from its right end,
 * (batch, channel, segment, dState).
 */
function adjointCarry(
  rt: Runtime,
  inputs: readonly Read[],
  p: SelectiveScanParams,
  S: number,
  cps: number,
  cpi: number,
): GPUBuf {
  const { batch, channels: Dn, dState: N } = p;
  const seqs = batch * Dn;
  const pq = rt.alloc(seqs * S * 2 * N, "float32");
  // (1) per (batch, channel, segment): P = Π exp(δ·A), Q = the adjoint from zero, per state
  const channels = (f: (k: number) => string) => each(cpi, f);
  const local = helpers(p) + entry(`P.count / ${cpi}u`) + `${segment(cpi)}
${
    channels((k) =>
      `  var pp${k}: array<f32, NS>;
  var qq${k}: array<f32, NS>;
  for (var n = 0u; n < NS; n++) { pp${k}[n] = 1.0; qq${k}[n] = 0.0; }
  var dls${k}: array<f32, TS>;
  var gys${k}: array<f32, TS>;`
    )
  }
${chunkSteps(p, cpi, () => "")}
    for (var n = 0u; n < NS; n++) {
${
    channels((k) =>
      `      let an${k} = Am[(d0 + ${k}u) * NS + n];
      var q${k} = qq${k}[n];
      var pr${k} = pp${k}[n];`
    )
  }
      for (var tt = 0u; tt < len; tt++) {
        let t = len - 1u - tt;
        let Cn = Cm[bc_(bb, d0, n, l0 + t)];
${
    channels((k) =>
      `        {
          let e = exp(dls${k}[t] * an${k});
          q${k} = (q${k} + gys${k}[t] * Cn) * e;
          pr${k} *= e;
        }`
    )
  }
      }
${channels((k) => `      qq${k}[n] = q${k};\n      pp${k}[n] = pr${k};`)}
    }
  }
${
    channels((k) =>
      `  for (var n = 0u; n < NS; n++) {
    let o = ((seq0 + ${k}u) * P.S + sg) * 2u * NS + n;
    pq[o] = pp${k}[n];
    pq[o + NS] = qq${k}[n];
  }`
    )
  }
}
`;
  const localReads = inputs.filter(([name]) => !["u", "Bm", "Dv", "cs", "sin"].includes(name));
  scanDispatch(rt, scanUniforms(p, seqs * S, 1, S, cps), localReads, [["pq", pq]], local, seqs * S / cpi);
  // (2) per (batch, channel, state): compose right to left
  const sin = rt.alloc(seqs * S * N, "float32");
  const carry = `const NS: u32 = ${N}u;\n` + entry() + `  let seq = gidx / NS;
  let n = gidx % NS;
  var s = 0.0;
  for (var sg = P.S; sg > 0u; ) {
    sg--;
    let k = seq * P.S + sg;
    sin[k * NS + n] = s;
    s = pq[(k * 2u) * NS + n] * s + pq[(k * 2u + 1u) * NS + n];
  }
}
`;
  scanDispatch(rt, scanUniforms(p, seqs * N, 1, S, cps), [["pq", pq]], [["sin", sin]], carry, seqs * N);
  rt.free(pq);
  return sin;
}
