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
import { cpuWasm, WasmLayout } from "./wasm/module.ts";
import { cpuThreads, parallelCalls } from "./wasm/threads.ts";

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

/** Copies `rows` rows of L values from `src` (starting at row `row0`, packed) into memory at `at`, S apart. */
function rowsIn(mem: Float32Array, src: Float32Array, row0: number, rows: number, L: number, at: number, S: number) {
  const base = at >> 2;
  for (let r = 0; r < rows; r++) mem.set(src.subarray((row0 + r) * L, (row0 + r + 1) * L), base + r * S);
}

/** Copies `rows` rows of L values from memory at `at` (S apart) into `dst` from row `row0`, packed. */
function rowsOut(mem: Float32Array, at: number, rows: number, L: number, S: number, dst: Float32Array, row0: number) {
  const base = at >> 2;
  for (let r = 0; r < rows; r++) dst.set(mem.subarray(base + r * S, base + r * S + L), (row0 + r) * L);
}

/** Copies batch element b's u, delta, z (when given), B and C into its region, rows S apart. */
function copyInputs(
  mem: Float32Array,
  x: SelectiveScanInputs,
  r: InputRegion,
  b: number,
  p: SelectiveScanParams,
  S: number,
): void {
  const { channels: D, length: L, dState: N, groups: G } = p;
  rowsIn(mem, f32(x.u), b * D, D, L, r.u, S);
  rowsIn(mem, f32(x.delta), b * D, D, L, r.delta, S);
  if (x.z) rowsIn(mem, f32(x.z), b * D, D, L, r.z, S);
  rowsIn(mem, f32(x.B), b * G * N, G * N, L, r.B, S);
  rowsIn(mem, f32(x.C), b * G * N, G * N, L, r.C, S);
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
  const lay = new WasmLayout();
  const pA = lay.take(D * N), pD = lay.take(x.D ? D : 0), pbias = lay.take(x.deltaBias ? D : 0);
  const regions: ForwardRegion[] = Array.from({ length: Math.min(batch, cpuThreads()) }, () => ({
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
  const mem = m.reserve(lay.bytes);
  if (!mem) return null;
  const outB = alloc(batch * DL), csB = alloc(batch * CS);
  const lastB = returnLastState ? alloc(batch * D * N) : undefined;
  mem.set(f32(x.A), pA >> 2);
  if (x.D) mem.set(f32(x.D), pD >> 2);
  if (x.deltaBias) mem.set(f32(x.deltaBias), pbias >> 2);
  const out = f32(outB), cs = f32(csB), last = lastB ? f32(lastB) : null;
  parallelCalls(
    batch,
    regions.length,
    (slot, b) => {
      const r = regions[slot];
      copyInputs(mem, x, r, b, p, S);
      const args = [r.u, r.delta, pA, r.B, r.C, pD, r.z, pbias, r.out, r.cs, r.last, r.scratch];
      return { kernel: "scanForward", args: [...args, D, L, N, G, T, p.deltaSoftplus ? 1 : 0, S] };
    },
    (slot, b) => {
      const r = regions[slot];
      rowsOut(mem, r.out, D, L, S, out, b * D);
      cs.set(mem.subarray(r.cs >> 2, (r.cs >> 2) + CS), b * CS);
      if (last) last.set(mem.subarray(r.last >> 2, (r.last >> 2) + D * N), b * D * N);
    },
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
  const lay = new WasmLayout();
  const pA = lay.take(D * N), pD = lay.take(x.D ? D : 0), pbias = lay.take(x.deltaBias ? D : 0);
  const regions: BackwardRegion[] = Array.from({ length: Math.min(batch, cpuThreads()) }, () => ({
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
  const mem = m.reserve(lay.bytes);
  if (!mem) return null;
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
  parallelCalls(
    batch,
    regions.length,
    (slot, b) => {
      const r = regions[slot];
      copyInputs(mem, x, r, b, p, S);
      mem.set(cs.subarray(b * CS, (b + 1) * CS), r.cs >> 2);
      rowsIn(mem, g, b * D, D, L, r.g, S);
      f64(r.dA, D * N).fill(0);
      f64(r.dD, D).fill(0);
      f64(r.dBias, D).fill(0);
      const ins = [r.u, r.delta, pA, r.B, r.C, pD, r.z, pbias, r.cs, r.g];
      const outs = [r.du, r.dd, r.dz, r.dA, r.dB, r.dC, r.dD, r.dBias, r.scratch];
      return { kernel: "scanBackward", args: [...ins, ...outs, D, L, N, G, T, p.deltaSoftplus ? 1 : 0, S] };
    },
    (slot, b) => {
      const r = regions[slot];
      rowsOut(mem, r.du, D, L, S, du, b * D);
      rowsOut(mem, r.dd, D, L, S, dd, b * D);
      if (dz) rowsOut(mem, r.dz, D, L, S, dz, b * D);
      rowsOut(mem, r.dB, G * N, L, S, dB, b * G * N);
      rowsOut(mem, r.dC, G * N, L, S, dC, b * G * N);
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
