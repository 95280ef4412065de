/**
 * The selective scan on the CPU through WebAssembly SIMD (kernels in wasm/src/selective_scan.ts). Four channels of a group share one f32x4 lane block, so a step costs about a
 * quarter of the scalar kernel's work, and exp/softplus/sigmoid are vector polynomials instead of `Math.exp`
 * calls. The operands of one batch element at a time are copied into the module's memory (a few MB), so the
 * memory stays small and the copies stay in cache.
 *
 * Used by the CPU backend when the runtime has WebAssembly SIMD and B, C are input-dependent (grouped); the
 * scalar kernels of selective_scan.ts stay the reference (float64 state) and the fallback.
 *
 * @module
 */

import type { BackendBuffer, SelectiveScanGrads, SelectiveScanInputs, SelectiveScanParams } from "../../backend.ts";
import { cpuWasm, WasmLayout } from "./wasm/module.ts";

type F32Buf = BackendBuffer & { readonly data: Float32Array };
const f32 = (b: BackendBuffer): Float32Array => (b as F32Buf).data;

/** Forward through WebAssembly; the caller checked `cpuWasm()` and `groups > 0`. */
export function selectiveScanForwardWasm(
  x: SelectiveScanInputs,
  p: SelectiveScanParams,
  returnLastState: boolean,
  alloc: (n: number) => BackendBuffer,
): { out: BackendBuffer; lastState?: BackendBuffer; chunkStates: BackendBuffer } {
  const m = cpuWasm()!;
  const { batch, channels: D, length: L, dState: N, groups: G, chunk: T } = p;
  const nC = Math.ceil(L / T), DL = D * L, GNL = G * N * L;
  const outB = alloc(batch * DL), csB = alloc(batch * D * nC * N);
  const lastB = returnLastState ? alloc(batch * D * N) : undefined;
  const lay = new WasmLayout();
  const pu = lay.take(DL), pdelta = lay.take(DL), pz = lay.take(x.z ? DL : 0);
  const pB = lay.take(GNL), pC = lay.take(GNL), pA = lay.take(D * N);
  const pD = lay.take(x.D ? D : 0), pbias = lay.take(x.deltaBias ? D : 0);
  const pout = lay.take(DL), pcs = lay.take(D * nC * N), plast = lay.take(lastB ? D * N : 0);
  const pscratch = lay.take(2 * N * 4);
  const mem = m.reserve(lay.bytes);
  mem.set(f32(x.A), pA >> 2);
  if (x.D) mem.set(f32(x.D), pD >> 2);
  if (x.deltaBias) mem.set(f32(x.deltaBias), pbias >> 2);
  const u = f32(x.u), delta = f32(x.delta), z = x.z ? f32(x.z) : null, Bm = f32(x.B), Cm = f32(x.C);
  const out = f32(outB), cs = f32(csB), last = lastB ? f32(lastB) : null;
  for (let b = 0; b < batch; b++) {
    mem.set(u.subarray(b * DL, (b + 1) * DL), pu >> 2);
    mem.set(delta.subarray(b * DL, (b + 1) * DL), pdelta >> 2);
    if (z) mem.set(z.subarray(b * DL, (b + 1) * DL), pz >> 2);
    mem.set(Bm.subarray(b * GNL, (b + 1) * GNL), pB >> 2);
    mem.set(Cm.subarray(b * GNL, (b + 1) * GNL), pC >> 2);
    m.exports.scanForward(
      pu,
      pdelta,
      pA,
      pB,
      pC,
      pD,
      pz,
      pbias,
      pout,
      pcs,
      plast,
      pscratch,
      D,
      L,
      N,
      G,
      T,
      p.deltaSoftplus ? 1 : 0,
    );
    out.set(mem.subarray(pout >> 2, (pout >> 2) + DL), b * DL);
    cs.set(mem.subarray(pcs >> 2, (pcs >> 2) + D * nC * N), b * D * nC * N);
    if (last) last.set(mem.subarray(plast >> 2, (plast >> 2) + D * N), b * D * N);
  }
  return lastB ? { out: outB, lastState: lastB, chunkStates: csB } : { out: outB, chunkStates: csB };
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
  const pu = lay.take(DL), pdelta = lay.take(DL), pz = lay.take(x.z ? DL : 0);
  const pB = lay.take(GNL), pC = lay.take(GNL), pA = lay.take(D * N);
  const pD = lay.take(x.D ? D : 0), pbias = lay.take(x.deltaBias ? D : 0);
  const pcs = lay.take(CS), pg = lay.take(DL);
  const pdu = lay.take(DL), pdd = lay.take(DL), pdz = lay.take(x.z ? DL : 0);
  const pdB = lay.take(GNL), pdC = lay.take(GNL);
  // float64 accumulators: two float32 slots each
  const pdA = lay.take(2 * D * N), pdD = lay.take(2 * D), pdBias = lay.take(2 * D);
  const pscratch = lay.take(4 * ((T + 1) * N + T * N + 2 * T + 3 * N + 2 * L * N));
  const mem = m.reserve(lay.bytes);
  new Float64Array(mem.buffer, pdA, D * N).fill(0);
  new Float64Array(mem.buffer, pdD, D).fill(0);
  new Float64Array(mem.buffer, pdBias, D).fill(0);
  mem.set(f32(x.A), pA >> 2);
  if (x.D) mem.set(f32(x.D), pD >> 2);
  if (x.deltaBias) mem.set(f32(x.deltaBias), pbias >> 2);
  const u = f32(x.u), delta = f32(x.delta), z = x.z ? f32(x.z) : null, Bm = f32(x.B), Cm = f32(x.C);
  const cs = f32(chunkStates), g = f32(dout);
  const duB = alloc(batch * DL), ddB = alloc(batch * DL), dzB = z ? alloc(batch * DL) : null;
  const dBB = alloc(batch * GNL), dCB = alloc(batch * GNL);
  const du = f32(duB), dd = f32(ddB), dz = dzB ? f32(dzB) : null, dB = f32(dBB), dC = f32(dCB);
  for (let b = 0; b < batch; b++) {
    mem.set(u.subarray(b * DL, (b + 1) * DL), pu >> 2);
    mem.set(delta.subarray(b * DL, (b + 1) * DL), pdelta >> 2);
    if (z) mem.set(z.subarray(b * DL, (b + 1) * DL), pz >> 2);
    mem.set(Bm.subarray(b * GNL, (b + 1) * GNL), pB >> 2);
    mem.set(Cm.subarray(b * GNL, (b + 1) * GNL), pC >> 2);
    mem.set(cs.subarray(b * CS, (b + 1) * CS), pcs >> 2);
    mem.set(g.subarray(b * DL, (b + 1) * DL), pg >> 2);
    m.exports.scanBackward(
      pu,
      pdelta,
      pA,
      pB,
      pC,
      pD,
      pz,
      pbias,
      pcs,
      pg,
      pdu,
      pdd,
      pdz,
      pdA,
      pdB,
      pdC,
      pdD,
      pdBias,
      pscratch,
      D,
      L,
      N,
      G,
      T,
      p.deltaSoftplus ? 1 : 0,
    );
    du.set(mem.subarray(pdu >> 2, (pdu >> 2) + DL), b * DL);
    dd.set(mem.subarray(pdd >> 2, (pdd >> 2) + DL), b * DL);
    if (dz) dz.set(mem.subarray(pdz >> 2, (pdz >> 2) + DL), b * DL);
    dB.set(mem.subarray(pdB >> 2, (pdB >> 2) + GNL), b * GNL);
    dC.set(mem.subarray(pdC >> 2, (pdC >> 2) + GNL), b * GNL);
  }
  const fromF64 = (at: number, n: number): BackendBuffer => {
    const buf = alloc(n);
    f32(buf).set(new Float64Array(mem.buffer, at, n));
    return buf;
  };
  return {
    du: duB,
    ddelta: ddB,
    dA: fromF64(pdA, D * N),
    dB: dBB,
    dC: dCB,
    dD: x.D ? fromF64(pdD, D) : null,
    dz: dzB,
    ddeltaBias: x.deltaBias ? fromF64(pdBias, D) : null,
  };
}
