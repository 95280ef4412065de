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

/** Copies batch element b's u, delta, z (when given), B and C into its region. */
function copyInputs(
  mem: Float32Array,
  x: SelectiveScanInputs,
  r: InputRegion,
  b: number,
  DL: number,
  GNL: number,
): void {
  mem.set(f32(x.u).subarray(b * DL, (b + 1) * DL), r.u >> 2);
  mem.set(f32(x.delta).subarray(b * DL, (b + 1) * DL), r.delta >> 2);
  if (x.z) mem.set(f32(x.z).subarray(b * DL, (b + 1) * DL), r.z >> 2);
  mem.set(f32(x.B).subarray(b * GNL, (b + 1) * GNL), r.B >> 2);
  mem.set(f32(x.C).subarray(b * GNL, (b + 1) * GNL), r.C >> 2);
}

/** Byte offsets of one batch element's forward operands. */
interface ForwardRegion extends InputRegion {
  out: number;
  cs: number;
  last: number;
  scratch: number;
}

/** Forward through WebAssembly; the caller checked `cpuWasm()` and `groups > 0`. */
export function selectiveScanForwardWasm(
  x: SelectiveScanInputs,
  p: SelectiveScanParams,
  returnLastState: boolean,
  alloc: (n: number) => BackendBuffer,
): { out: BackendBuffer; lastState?: BackendBuffer; chunkStates: BackendBuffer } {
  const m = cpuWasm()!;
  const { batch, channels: D, length: L, dState: N, groups: G, chunk: T } = p;
  const nC = Math.ceil(L / T), DL = D * L, GNL = G * N * L, CS = D * nC * N;
  const outB = alloc(batch * DL), csB = alloc(batch * CS);
  const lastB = returnLastState ? alloc(batch * D * N) : undefined;
  const lay = new WasmLayout();
  const pA = lay.take(D * N), pD = lay.take(x.D ? D : 0), pbias = lay.take(x.deltaBias ? D : 0);
  const regions: ForwardRegion[] = Array.from({ length: Math.min(batch, cpuThreads()) }, () => ({
    u: lay.take(DL),
    delta: lay.take(DL),
    z: lay.take(x.z ? DL : 0),
    B: lay.take(GNL),
    C: lay.take(GNL),
    out: lay.take(DL),
    cs: lay.take(CS),
    last: lay.take(lastB ? D * N : 0),
    scratch: lay.take(2 * N * 4),
  }));
  const mem = m.reserve(lay.bytes);
  mem.set(f32(x.A), pA >> 2);
  if (x.D) mem.set(f32(x.D), pD >> 2);
  if (x.deltaBias) mem.set(f32(x.deltaBias), pbias >> 2);
  const out = f32(outB), cs = f32(csB), last = lastB ? f32(lastB) : null;
  parallelCalls(
    batch,
    regions.length,
    (slot, b) => {
      const r = regions[slot];
      copyInputs(mem, x, r, b, DL, GNL);
      const args = [r.u, r.delta, pA, r.B, r.C, pD, r.z, pbias, r.out, r.cs, r.last, r.scratch];
      return { kernel: "scanForward", args: [...args, D, L, N, G, T, p.deltaSoftplus ? 1 : 0] };
    },
    (slot, b) => {
      const r = regions[slot];
      out.set(mem.subarray(r.out >> 2, (r.out >> 2) + DL), b * DL);
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

/** Backward through WebAssembly; the caller checked `cpuWasm()` and `groups > 0`. */
export function selectiveScanBackwardWasm(
  x: SelectiveScanInputs,
  chunkStates: BackendBuffer,
  dout: BackendBuffer,
  p: SelectiveScanParams,
  alloc: (n: number) => BackendBuffer,
): SelectiveScanGrads {
  const m = cpuWasm()!;
  const { batch, channels: D, length: L, dState: N, groups: G, chunk: T } = p;
  const nC = Math.ceil(L / T), DL = D * L, GNL = G * N * L, CS = D * nC * N;
  const lay = new WasmLayout();
  const pA = lay.take(D * N), pD = lay.take(x.D ? D : 0), pbias = lay.take(x.deltaBias ? D : 0);
  const regions: BackwardRegion[] = Array.from({ length: Math.min(batch, cpuThreads()) }, () => ({
    u: lay.take(DL),
    delta: lay.take(DL),
    z: lay.take(x.z ? DL : 0),
    B: lay.take(GNL),
    C: lay.take(GNL),
    cs: lay.take(CS),
    g: lay.take(DL),
    du: lay.take(DL),
    dd: lay.take(DL),
    dz: lay.take(x.z ? DL : 0),
    dB: lay.take(GNL),
    dC: lay.take(GNL),
    // float64 sums over this batch element: two float32 slots each
    dA: lay.take(2 * D * N),
    dD: lay.take(2 * D),
    dBias: lay.take(2 * D),
    scratch: lay.take(4 * ((T + 1) * N + T * N + 2 * T + 3 * N + 2 * L * N)),
  }));
  const mem = m.reserve(lay.bytes);
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
      copyInputs(mem, x, r, b, DL, GNL);
      mem.set(cs.subarray(b * CS, (b + 1) * CS), r.cs >> 2);
      mem.set(g.subarray(b * DL, (b + 1) * DL), r.g >> 2);
      f64(r.dA, D * N).fill(0);
      f64(r.dD, D).fill(0);
      f64(r.dBias, D).fill(0);
      const ins = [r.u, r.delta, pA, r.B, r.C, pD, r.z, pbias, r.cs, r.g];
      const outs = [r.du, r.dd, r.dz, r.dA, r.dB, r.dC, r.dD, r.dBias, r.scratch];
      return { kernel: "scanBackward", args: [...ins, ...outs, D, L, N, G, T, p.deltaSoftplus ? 1 : 0] };
    },
    (slot, b) => {
      const r = regions[slot];
      du.set(mem.subarray(r.du >> 2, (r.du >> 2) + DL), b * DL);
      dd.set(mem.subarray(r.dd >> 2, (r.dd >> 2) + DL), b * DL);
      if (dz) dz.set(mem.subarray(r.dz >> 2, (r.dz >> 2) + DL), b * DL);
      dB.set(mem.subarray(r.dB >> 2, (r.dB >> 2) + GNL), b * GNL);
      dC.set(mem.subarray(r.dC >> 2, (r.dC >> 2) + GNL), b * GNL);
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
