/**
 * The selective scan on the CPU through WebAssembly SIMD (kernels in wasm/src/selective_scan.ts). Four channels
 * of a group share one f32x4 lane block, so a step costs about a quarter of the scalar kernel's work, and
 * exp/softplus/sigmoid are vector polynomials instead of `Math.exp` calls. Batch elements are independent:
 * each goes through its own region of the module's memory, and they are spread over the calling thread and
 * the kernel worker threads (wasm/threads.ts).
 *
 * Used by the CPU backend when the runtime has WebAssembly SIMD and B, C are input-dependent (grouped); the
 * scalar kernels of selective_scan.ts stay the reference (float64 state) and the fallback.
 *
 * @module
 */

import type { BackendBuffer, SelectiveScanGrads, SelectiveScanInputs, SelectiveScanParams } from "../../backend.ts";
import { cpuWasm, reserveRegions, WasmLayout } from "./wasm/module.ts";
import { onHeap } from "./wasm/heap.ts";
import { cpuThreads, type KernelCall, parallelCalls } from "./wasm/threads.ts";

type F32Buf = BackendBuffer & { readonly data: Float32Array };
const f32 = (b: BackendBuffer): Float32Array => (b as F32Buf).data;

/** Byte offsets of a batch element's inputs in the module's memory. */
interface InputRegion {
  u: number;
  delta: number;
  z: number;
  B: number;
  C: number;
}

/**
 * The row stride in the module's memory of the kernels' (rows, L) operands. A lane block reads 4 rows of
 * u/delta/z/out and N rows of B and C at every step; with L a multiple of 256 those rows sit a multiple of
 * 1 KiB apart and share a handful of L1 cache sets, so every step misses. One extra cache line per row
 * (16 floats) spreads them over distinct sets.
 */
export function paddedStride(L: number): number {
  return ((L + 3) & ~3) + 16;
}

/** Vectors (4 floats) in the kernels' constant table at the start of their scratch (K_COUNT there). */
const CONSTANT_VECTORS = 29;

/** A copy kernel call: `rows` rows of L floats from byte address `src` (rows `from` apart) to `dst` (`to` apart). */
function rowsCall(src: number, dst: number, rows: number, L: number, from: number, to: number): KernelCall {
  return { kernel: "copy", args: [src, dst, 1, rows, L, 0, 0, from, 1, 0, 0, to, 1, 0, rows] };
}

/**
 * Copies `rows` rows of L values from `src` (starting at row `row0`, packed) into memory at `at`, S apart: a
 * tensor in the heap by a copy call added to `job` (the thread that runs the job copies), another one here.
 */
function rowsIn(
  job: KernelCall[],
  mem: Float32Array,
  src: Float32Array,
  row0: number,
  rows: number,
  L: number,
  at: number,
  S: number,
) {
  if (onHeap(src)) return void job.push(rowsCall(src.byteOffset + 4 * row0 * L, at, rows, L, L, S));
  const base = at >> 2;
  for (let r = 0; r < rows; r++) mem.set(src.subarray((row0 + r) * L, (row0 + r + 1) * L), base + r * S);
}

/**
 * Copies `rows` rows of L values from memory at `at` (S apart) into `dst` from row `row0`, packed. Called twice
 * per batch element: with the job being prepared (`job`), which gets a copy call for a `dst` in the heap, and
 * after the job ran (`job` null), when the other outputs are copied here.
 */
function rowsOut(
  job: KernelCall[] | null,
  mem: Float32Array,
  at: number,
  rows: number,
  L: number,
  S: number,
  dst: Float32Array,
  row0: number,
) {
  if (onHeap(dst)) {
    if (job) job.push(rowsCall(at, dst.byteOffset + 4 * row0 * L, rows, L, S, L));
    return;
  }
  if (job) return;
  const base = at >> 2;
  for (let r = 0; r < rows; r++) dst.set(mem.subarray(base + r * S, base + r * S + L), (row0 + r) * L);
}

/** Copies (or adds copy calls to `job` for) batch element b's u, delta, z (when given), B and C, rows S apart. */
function copyInputs(
  job: KernelCall[],
  mem: Float32Array,
  x: SelectiveScanInputs,
  r: InputRegion,
  b: number,
  p: SelectiveScanParams,
  S: number,
): void {
  const { channels: D, length: L, dState: N, groups: G } = p;
  rowsIn(job, mem, f32(x.u), b * D, D, L, r.u, S);
  rowsIn(job, mem, f32(x.delta), b * D, D, L, r.delta, S);
  if (x.z) rowsIn(job, mem, f32(x.z), b * D, D, L, r.z, S);
  rowsIn(job, mem, f32(x.B), b * G * N, G * N, L, r.B, S);
  rowsIn(job, mem, f32(x.C), b * G * N, G * N, L, r.C, S);
}

/** Byte offsets of one batch element's forward operands. */
interface ForwardRegion extends InputRegion {
  out: number;
  cs: number;
  last: number;
  scratch: number;
}

/**
 * Forward through WebAssembly; the caller checked `cpuWasm()` and `groups > 0`. Null (nothing allocated) when
 * one batch element's operands do not fit the kernels' scratch space.
 */
export function selectiveScanForwardWasm(
  x: SelectiveScanInputs,
  p: SelectiveScanParams,
  returnLastState: boolean,
  alloc: (n: number) => BackendBuffer,
): { out: BackendBuffer; lastState?: BackendBuffer; chunkStates: BackendBuffer } | null {
  const m = cpuWasm()!;
  const { batch, channels: D, length: L, dState: N, groups: G, chunk: T } = p;
  const nC = Math.ceil(L / T), DL = D * L, CS = D * nC * N;
  const S = paddedStride(L), DS = D * S, GNS = G * N * S;
  // one region per thread, fewer when they do not fit the scratch space
  const planned = reserveRegions(m, Math.min(batch, cpuThreads()), (k) => {
    const lay = new WasmLayout();
    const pA = lay.take(D * N), pD = lay.take(x.D ? D : 0), pbias = lay.take(x.deltaBias ? D : 0);
    const regions: ForwardRegion[] = Array.from({ length: k }, () => ({
      u: lay.take(DS),
      delta: lay.take(DS),
      z: lay.take(x.z ? DS : 0),
      B: lay.take(GNS),
      C: lay.take(GNS),
      out: lay.take(DS),
      cs: lay.take(CS),
      last: lay.take(returnLastState ? D * N : 0),
      // constants; h and A (N vectors each); δ, δ·u and y of a chunk's steps (T vectors each)
      scratch: lay.take(4 * (CONSTANT_VECTORS + 2 * N + 3 * T)),
    }));
    return { lay, pA, pD, pbias, regions };
  });
  if (!planned) return null;
  const { mem, pA, pD, pbias, regions } = planned;
  const outB = alloc(batch * DL), csB = alloc(batch * CS);
  const lastB = returnLastState ? alloc(batch * D * N) : undefined;
  mem.set(f32(x.A), pA >> 2);
  if (x.D) mem.set(f32(x.D), pD >> 2);
  if (x.deltaBias) mem.set(f32(x.deltaBias), pbias >> 2);
  const out = f32(outB), cs = f32(csB), last = lastB ? f32(lastB) : null;
  const outputs = (job: KernelCall[] | null, slot: number, b: number) => {
    const r = regions[slot];
    rowsOut(job, mem, r.out, D, L, S, out, b * D);
    rowsOut(job, mem, r.cs, 1, CS, CS, cs, b);
    if (last) rowsOut(job, mem, r.last, 1, D * N, D * N, last, b);
  };
  parallelCalls(
    batch,
    regions.length,
    (slot, b) => {
      const r = regions[slot], job: KernelCall[] = [];
      copyInputs(job, mem, x, r, b, p, S);
      const args = [r.u, r.delta, pA, r.B, r.C, pD, r.z, pbias, r.out, r.cs, r.last, r.scratch];
      job.push({ kernel: "scanForward", args: [...args, D, L, N, G, T, p.deltaSoftplus ? 1 : 0, S] });
      outputs(job, slot, b);
      return job;
    },
    (slot, b) => outputs(null, slot, b),
    (call) => m.run(call),
  );
  return lastB ? { out: outB, lastState: lastB, chunkStates: csB } : { out: outB, chunkStates: csB };
}

/** Byte offsets of one batch element's backward operands and float64 sums. */
interface BackwardRegion extends InputRegion {
  cs: number;
  g: number;
  du: number;
  dd: number;
  dz: number;
  dB: number;
  dC: number;
  dA: number;
  dD: number;
  dBias: number;
  scratch: number;
}

/**
 * Backward through WebAssembly; the caller checked `cpuWasm()` and `groups > 0`. Null (nothing allocated) when
 * one batch element's operands do not fit the kernels' scratch space.
 */
export function selectiveScanBackwardWasm(
  x: SelectiveScanInputs,
  chunkStates: BackendBuffer,
  dout: BackendBuffer,
  p: SelectiveScanParams,
  alloc: (n: number) => BackendBuffer,
): SelectiveScanGrads | null {
  const m = cpuWasm()!;
  const { batch, channels: D, length: L, dState: N, groups: G, chunk: T } = p;
  const nC = Math.ceil(L / T), DL = D * L, GNL = G * N * L, CS = D * nC * N;
  const S = paddedStride(L), DS = D * S, GNS = G * N * S;
  // one region per thread, fewer when they do not fit the scratch space
  const planned = reserveRegions(m, Math.min(batch, cpuThreads()), (k) => {
    const lay = new WasmLayout();
    const pA = lay.take(D * N), pD = lay.take(x.D ? D : 0), pbias = lay.take(x.deltaBias ? D : 0);
    const regions: BackwardRegion[] = Array.from({ length: k }, () => ({
      u: lay.take(DS),
      delta: lay.take(DS),
      z: lay.take(x.z ? DS : 0),
      B: lay.take(GNS),
      C: lay.take(GNS),
      cs: lay.take(CS),
      g: lay.take(DS),
      du: lay.take(DS),
      dd: lay.take(DS),
      dz: lay.take(x.z ? DS : 0),
      dB: lay.take(GNS),
      dC: lay.take(GNS),
      // float64 sums over this batch element: two float32 slots each
      dA: lay.take(2 * D * N),
      dD: lay.take(2 * D),
      dBias: lay.take(2 * D),
      // constants; a chunk's states and decays ((T + 1)·N, T·N vectors); 8 vectors per step of a chunk (δ, δ·u,
      // y, gy, u, masked δ·u, the δ and u gradients); A, dA sums (N each); a chunk's dB, dC lane sums (T·N each);
      // the adjoint states of a group's lane blocks (N each)
      scratch: lay.take(4 * (CONSTANT_VECTORS + (T + 1) * N + 3 * T * N + 8 * T + 2 * N + Math.ceil(D / G / 4) * N)),
    }));
    return { lay, pA, pD, pbias, regions };
  });
  if (!planned) return null;
  const { mem, pA, pD, pbias, regions } = planned;
  // sums over the batch, added batch element by batch element in order (the same result however many threads ran)
  const totA = new Float64Array(D * N), totD = new Float64Array(D), totBias = new Float64Array(D);
  const f64 = (at: number, n: number) => new Float64Array(mem.buffer, at, n);
  mem.set(f32(x.A), pA >> 2);
  if (x.D) mem.set(f32(x.D), pD >> 2);
  if (x.deltaBias) mem.set(f32(x.deltaBias), pbias >> 2);
  const z = x.z ? f32(x.z) : null;
  const cs = f32(chunkStates), g = f32(dout);
  const duB = alloc(batch * DL), ddB = alloc(batch * DL), dzB = z ? alloc(batch * DL) : null;
  const dBB = alloc(batch * GNL), dCB = alloc(batch * GNL);
  const du = f32(duB), dd = f32(ddB), dz = dzB ? f32(dzB) : null, dB = f32(dBB), dC = f32(dCB);
  const outputs = (job: KernelCall[] | null, slot: number, b: number) => {
    const r = regions[slot];
    rowsOut(job, mem, r.du, D, L, S, du, b * D);
    rowsOut(job, mem, r.dd, D, L, S, dd, b * D);
    if (dz) rowsOut(job, mem, r.dz, D, L, S, dz, b * D);
    rowsOut(job, mem, r.dB, G * N, L, S, dB, b * G * N);
    rowsOut(job, mem, r.dC, G * N, L, S, dC, b * G * N);
  };
  parallelCalls(
    batch,
    regions.length,
    (slot, b) => {
      const r = regions[slot], job: KernelCall[] = [];
      copyInputs(job, mem, x, r, b, p, S);
      rowsIn(job, mem, cs, b, 1, CS, r.cs, CS);
      rowsIn(job, mem, g, b * D, D, L, r.g, S);
      f64(r.dA, D * N).fill(0);
      f64(r.dD, D).fill(0);
      f64(r.dBias, D).fill(0);
      const ins = [r.u, r.delta, pA, r.B, r.C, pD, r.z, pbias, r.cs, r.g];
      const outs = [r.du, r.dd, r.dz, r.dA, r.dB, r.dC, r.dD, r.dBias, r.scratch];
      job.push({ kernel: "scanBackward", args: [...ins, ...outs, D, L, N, G, T, p.deltaSoftplus ? 1 : 0, S] });
      outputs(job, slot, b);
      return job;
    },
    (slot, b) => {
      const r = regions[slot];
      outputs(null, slot, b);
      for (const [tot, at] of [[totA, r.dA], [totD, r.dD], [totBias, r.dBias]] as const) {
        const part = f64(at, tot.length);
        for (let i = 0; i < tot.length; i++) tot[i] += part[i];
      }
    },
    (call) => m.run(call),
  );
  const toBuffer = (total: Float64Array): BackendBuffer => {
    const buf = alloc(total.length);
    f32(buf).set(total);
    return buf;
  };
  return {
    du: duB,
    ddelta: ddB,
    dA: toBuffer(totA),
    dB: dBB,
    dC: dCB,
    dD: x.D ? toBuffer(totD) : null,
    dz: dzB,
    ddeltaBias: x.deltaBias ? toBuffer(totBias) : null,
  };
}
