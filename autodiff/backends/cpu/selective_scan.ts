/**
 * The selective scan (Mamba's S6 recurrence) on the CPU: one sequential loop per (batch, channel) over the
 * sequence, with the dState-wide state in a float64 array.
 *
 * - Forward: `h_l = exp(δ_l·A) ⊙ h_{l−1} + δ_l·B_l·u_l`, `y_l = Σ_n h_l·C_l`; the state at the end of every
 *   chunk is stored for the backward.
 * - Backward: chunks are visited last to first; each chunk's states are recomputed from the stored state
 *   before it into a (chunk + 1, dState) scratch, then the adjoint `s_l = gy_l·C_l + exp(δ_{l+1}·A) ⊙ s_{l+1}`
 *   runs in reverse. Sums over channels, batch and length (dA, dB, dC, dD, d deltaBias) accumulate in float64.
 *
 * @module
 */

import type { BackendBuffer, SelectiveScanGrads, SelectiveScanInputs, SelectiveScanParams } from "../../backend.ts";

/** A float32 CPU buffer as the backend makes them. */
type F32Buf = BackendBuffer & { readonly data: Float32Array | Int32Array | Uint8Array };

const f32 = (b: BackendBuffer): Float32Array => (b as F32Buf).data as Float32Array;

/** torch.nn.functional.softplus (β = 1, threshold 20). */
function softplus(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

/** Forward kernel; `alloc` makes a float32 buffer of n (uninitialised) elements. */
export function selectiveScanForwardCpu(
  x: SelectiveScanInputs,
  p: SelectiveScanParams,
  returnLastState: boolean,
  alloc: (n: number) => BackendBuffer,
): { out: BackendBuffer; lastState?: BackendBuffer; chunkStates: BackendBuffer } {
  const { batch, channels: Dn, length: L, dState: N, groups: G, chunk: T } = p;
  const nC = Math.ceil(L / T);
  const outB = alloc(batch * Dn * L), csB = alloc(batch * Dn * nC * N);
  const lastB = returnLastState ? alloc(batch * Dn * N) : undefined;
  const out = f32(outB), cs = f32(csB), last = lastB ? f32(lastB) : null;
  const u = f32(x.u), delta = f32(x.delta), A = f32(x.A), Bm = f32(x.B), Cm = f32(x.C);
  const Dv = x.D ? f32(x.D) : null, z = x.z ? f32(x.z) : null, bias = x.deltaBias ? f32(x.deltaBias) : null;
  const h = new Float64Array(N), a = new Float64Array(N);
  const perGroup = G > 0 ? Dn / G : 0;
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < Dn; d++) {
      const base = (b * Dn + d) * L;
      // B/C element (n, l) is at bcBase + n·bcN + l·bcL
      const bcBase = G > 0 ? (b * G + Math.floor(d / perGroup)) * N * L : d * N;
      const bcN = G > 0 ? L : 1, bcL = G > 0 ? 1 : 0;
      for (let n = 0; n < N; n++) {
        h[n] = 0;
        a[n] = A[d * N + n];
      }
      const bd = bias ? bias[d] : 0, Dd = Dv ? Dv[d] : 0;
      for (let l = 0; l < L; l++) {
        const i = base + l;
        const raw = delta[i] + bd;
        const dl = p.deltaSoftplus ? softplus(raw) : raw;
        const du = dl * u[i];
        let y = 0;
        for (let n = 0, o = bcBase + l * bcL; n < N; n++, o += bcN) {
          const hn = Math.exp(dl * a[n]) * h[n] + du * Bm[o];
          h[n] = hn;
          y += hn * Cm[o];
        }
        let v = y + Dd * u[i];
        if (z) {
          const zv = z[i];
          v *= zv / (1 + Math.exp(-zv));
        }
        out[i] = v;
        if ((l + 1) % T === 0 || l === L - 1) {
          const c = Math.floor(l / T);
          cs.set(h, ((b * Dn + d) * nC + c) * N);
        }
      }
      if (last) last.set(h, (b * Dn + d) * N);
    }
  }
  return lastB ? { out: outB, lastState: lastB, chunkStates: csB } : { out: outB, chunkStates: csB };
}

/** Backward kernel; `alloc` makes a float32 buffer of n (uninitialised) elements. */
export function selectiveScanBackwardCpu(
  x: SelectiveScanInputs,
  chunkStates: BackendBuffer,
  dout: BackendBuffer,
  p: SelectiveScanParams,
  alloc: (n: number) => BackendBuffer,
): SelectiveScanGrads {
  const { batch, channels: Dn, length: L, dState: N, groups: G, chunk: T } = p;
  const nC = Math.ceil(L / T);
  const u = f32(x.u), delta = f32(x.delta), A = f32(x.A), Bm = f32(x.B), Cm = f32(x.C);
  const Dv = x.D ? f32(x.D) : null, z = x.z ? f32(x.z) : null, bias = x.deltaBias ? f32(x.deltaBias) : null;
  const cs = f32(chunkStates), g = f32(dout);
  const duB = alloc(batch * Dn * L), ddB = alloc(batch * Dn * L), dzB = z ? alloc(batch * Dn * L) : null;
  const du = f32(duB), dd = f32(ddB), dz = dzB ? f32(dzB) : null;
  const bcSize = G > 0 ? batch * G * N * L : Dn * N;
  const dA = new Float64Array(Dn * N), dB = new Float64Array(bcSize), dC = new Float64Array(bcSize);
  const dDv = new Float64Array(Dn), dBias = new Float64Array(Dn);
  const hs = new Float64Array((T + 1) * N), ea = new Float64Array(T * N);
  const dls = new Float64Array(T), ys = new Float64Array(T), s = new Float64Array(N), a = new Float64Array(N);
  const perGroup = G > 0 ? Dn / G : 0;
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < Dn; d++) {
      const base = (b * Dn + d) * L;
      const bcBase = G > 0 ? (b * G + Math.floor(d / perGroup)) * N * L : d * N;
      const bcN = G > 0 ? L : 1, bcL = G > 0 ? 1 : 0;
      for (let n = 0; n < N; n++) {
        s[n] = 0;
        a[n] = A[d * N + n];
      }
      const bd = bias ? bias[d] : 0, Dd = Dv ? Dv[d] : 0;
      let accD = 0, accBias = 0;
      for (let c = nC - 1; c >= 0; c--) {
        const l0 = c * T, len = Math.min(L, l0 + T) - l0;
        // recompute this chunk's states from the stored state before it
        if (c === 0) hs.fill(0, 0, N);
        else for (let n = 0; n < N; n++) hs[n] = cs[((b * Dn + d) * nC + c - 1) * N + n];
        for (let t = 0; t < len; t++) {
          const l = l0 + t, i = base + l;
          const raw = delta[i] + bd;
          const dl = p.deltaSoftplus ? softplus(raw) : raw;
          dls[t] = dl;
          const dbu = dl * u[i];
          let y = 0;
          for (let n = 0, o = bcBase + l * bcL; n < N; n++, o += bcN) {
            const e = Math.exp(dl * a[n]);
            ea[t * N + n] = e;
            const hn = e * hs[t * N + n] + dbu * Bm[o];
            hs[(t + 1) * N + n] = hn;
            y += hn * Cm[o];
          }
          ys[t] = y;
        }
        // adjoint recurrence, last step first
        for (let t = len - 1; t >= 0; t--) {
          const l = l0 + t, i = base + l;
          const ul = u[i], dl = dls[t];
          let gy = g[i];
          if (z && dz) {
            const zv = z[i], sg = 1 / (1 + Math.exp(-zv));
            dz[i] = gy * (ys[t] + Dd * ul) * sg * (1 + zv * (1 - sg));
            gy *= zv * sg;
          }
          accD += gy * ul;
          let dut = gy * Dd, ddl = 0;
          for (let n = 0, o = bcBase + l * bcL; n < N; n++, o += bcN) {
            const Bn = Bm[o];
            const sn = s[n] + gy * Cm[o];
            dC[o] += gy * hs[(t + 1) * N + n];
            const e = ea[t * N + n];
            const t1 = sn * hs[t * N + n] * e;
            dA[d * N + n] += t1 * dl;
            ddl += t1 * a[n] + sn * Bn * ul;
            dB[o] += sn * dl * ul;
            dut += sn * dl * Bn;
            s[n] = sn * e;
          }
          du[i] = dut;
          if (p.deltaSoftplus) {
            const raw = delta[i] + bd;
            if (raw <= 20) ddl *= 1 / (1 + Math.exp(-raw));
          }
          dd[i] = ddl;
          accBias += ddl;
        }
      }
      dDv[d] += accD;
      dBias[d] += accBias;
    }
  }
  const fromF64 = (v: Float64Array): BackendBuffer => {
    const buf = alloc(v.length);
    f32(buf).set(v);
    return buf;
  };
  return {
    du: duB,
    ddelta: ddB,
    dA: fromF64(dA),
    dB: fromF64(dB),
    dC: fromF64(dC),
    dD: x.D ? fromF64(dDv) : null,
    dz: dzB,
    ddeltaBias: x.deltaBias ? fromF64(dBias) : null,
  };
}
