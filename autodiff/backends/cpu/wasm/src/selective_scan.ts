// AssemblyScript source of the CPU backend's selective-scan kernels (WebAssembly SIMD). Built by
// `deno run -A tools/build_wasm.ts` into ../selective_scan_wasm.ts; tests/wasm_build_test.ts checks that the
// committed binary is this source's build.
//
// The recurrence is the one of autodiff/backends/cpu/selective_scan.ts (the scalar reference):
//   h_l = exp(δ_l·A) ⊙ h_{l−1} + δ_l·B_l·u_l,   y_l = Σ_n h_l·C_l,   out = (y + D·u) · silu(z)
// vectorised over 4 channels of one group at a time (f32x4 lanes): the channels of a group share B_l and
// C_l, so those are loaded once and splatted, and every per-channel quantity is a lane. Channels stay in
// the tensors' (channels, length) layout: a lane block reads its 4 rows at stride L.
//
// Memory: the caller (selective_scan_wasm_host.ts) copies one batch element's operands into linear memory
// and passes byte addresses; 0 means "absent". Scratch areas are passed in too. Nothing is allocated here.

import { vexp, vsigmoid, vsoftplus } from "./vmath";

// ---- strided lane access: lane k is row (d0 + k) of a (channels, L) array ------------------------------

/** Lane k reads `p + k·rowBytes` for the block's `lanes` real channels and `p` (lane 0's row) beyond. */
@inline function laneOffset(k: i32, lanes: i32, rowBytes: usize): usize {
  return k < lanes ? <usize> k * rowBytes : 0;
}

/** Loads one element from each of the 4 lanes' rows: lane k at `p + rk` (r0 = 0). */
@inline function load4(p: usize, r1: usize, r2: usize, r3: usize): v128 {
  let v = f32x4.splat(load<f32>(p));
  v = f32x4.replace_lane(v, 1, load<f32>(p + r1));
  v = f32x4.replace_lane(v, 2, load<f32>(p + r2));
  return f32x4.replace_lane(v, 3, load<f32>(p + r3));
}

/** Stores the first `lanes` lanes of `v` to 4 rows `rowBytes` apart starting at `p`. */
@inline function store4(p: usize, rowBytes: usize, v: v128, lanes: i32): void {
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (lanes > 1) store<f32>(p + rowBytes, f32x4.extract_lane(v, 1));
  if (lanes > 2) store<f32>(p + 2 * rowBytes, f32x4.extract_lane(v, 2));
  if (lanes > 3) store<f32>(p + 3 * rowBytes, f32x4.extract_lane(v, 3));
}

/** Per-channel scalars (A rows, D, bias) of a lane block as vectors; missing lanes repeat lane 0. */
@inline function gather4(p: usize, strideBytes: usize, lanes: i32): v128 {
  let v = f32x4.splat(load<f32>(p));
  if (lanes > 1) v = f32x4.replace_lane(v, 1, load<f32>(p + strideBytes));
  if (lanes > 2) v = f32x4.replace_lane(v, 2, load<f32>(p + 2 * strideBytes));
  if (lanes > 3) v = f32x4.replace_lane(v, 3, load<f32>(p + 3 * strideBytes));
  return v;
}

/** δ_l = delta_l + deltaBias (softplus'd when asked) for a lane block. */
@inline function stepDelta(p: usize, r1: usize, r2: usize, r3: usize, bias: v128, softplus: i32): v128 {
  const dl = f32x4.add(load4(p, r1, r2, r3), bias);
  return softplus ? vsoftplus(dl) : dl;
}

/**
 * One step of the recurrence over the N states of a lane block: h_l = exp(δ_l·A) ⊙ h_{l−1} + δ_l·u_l·B_l from
 * `hPrev` into `hNext` (the same address to update in place), keeping the decays in `eRow` unless it is 0;
 * returns y_l = Σ_n h_l·C_l. `pb`, `pc` address B_l[0], C_l[0]; the states are `rowBytes` apart.
 */
@inline function stateStep(
  dl: v128, du: v128, hPrev: usize, hNext: usize, eRow: usize, a: usize, pb: usize, pc: usize, N: i32,
  rowBytes: usize,
): v128 {
  let y = f32x4.splat(0);
  for (let n = 0; n < N; n++) {
    const o = <usize> n << 4;
    const e = vexp(f32x4.mul(dl, v128.load(a + o)));
    if (eRow) v128.store(eRow + o, e);
    const hn = f32x4.add(f32x4.mul(e, v128.load(hPrev + o)), f32x4.mul(du, f32x4.splat(load<f32>(pb))));
    v128.store(hNext + o, hn);
    y = f32x4.add(y, f32x4.mul(hn, f32x4.splat(load<f32>(pc))));
    pb += rowBytes;
    pc += rowBytes;
  }
  return y;
}

/**
 * Forward of one batch element. u, delta, z, out: (D, L); B, C: (G, N, L), every row of L values S apart
 * (S ≥ L: padded rows keep the 4 lanes' rows and the N rows of B, C out of one cache set); A: (D, N); Dv, bias: (D);
 * cs: (D, nChunks, N) states at chunk ends; last: (D, N) or 0. Scratch: `scratch` holds 2·N vectors.
 * Lane blocks never straddle a group: `perGroup` channels per group are taken 4 at a time.
 */
export function scanForward(
  u: usize,
  delta: usize,
  A: usize,
  B: usize,
  C: usize,
  Dv: usize,
  z: usize,
  bias: usize,
  out: usize,
  cs: usize,
  last: usize,
  scratch: usize,
  D: i32,
  L: i32,
  N: i32,
  G: i32,
  T: i32,
  softplus: i32,
  S: i32,
): void {
  const rowBytes = <usize> S << 2;
  const perGroup = D / G;
  const nC = (L + T - 1) / T;
  const h = scratch, a = scratch + (<usize> N << 4);
  for (let g = 0; g < G; g++) {
    const bBase = B + ((<usize> g * <usize> N * <usize> S) << 2),
      cBase = C + ((<usize> g * <usize> N * <usize> S) << 2);
    for (let j = 0; j < perGroup; j += 4) {
      const d0 = g * perGroup + j;
      const lanes = min(4, perGroup - j);
      // missing lanes read row d0 again (their results are never stored)
      const r1 = laneOffset(1, lanes, rowBytes),
        r2 = laneOffset(2, lanes, rowBytes),
        r3 = laneOffset(3, lanes, rowBytes);
      for (let n = 0; n < N; n++) {
        v128.store(h + (<usize> n << 4), f32x4.splat(0));
        v128.store(a + (<usize> n << 4), gather4(A + ((<usize> (d0 * N + n)) << 2), <usize> N << 2, lanes));
      }
      const bd = bias ? gather4(bias + (<usize> d0 << 2), 4, lanes) : f32x4.splat(0);
      const dd = Dv ? gather4(Dv + (<usize> d0 << 2), 4, lanes) : f32x4.splat(0);
      const row0 = (<usize> d0 * <usize> S) << 2;
      for (let l = 0; l < L; l++) {
        const off = row0 + (<usize> l << 2);
        const dl = stepDelta(delta + off, r1, r2, r3, bd, softplus);
        const ul = load4(u + off, r1, r2, r3);
        const y = stateStep(dl, f32x4.mul(dl, ul), h, h, 0, a, bBase + (<usize> l << 2), cBase + (<usize> l << 2), N, rowBytes);
        let v = f32x4.add(y, f32x4.mul(dd, ul));
        if (z) {
          const zv = load4(z + off, r1, r2, r3);
          v = f32x4.mul(v, f32x4.mul(zv, vsigmoid(zv)));
        }
        store4(out + off, rowBytes, v, lanes);
        if ((l + 1) % T === 0 || l === L - 1) {
          const c = l / T;
          for (let n = 0; n < N; n++) {
            store4(
              cs + ((<usize> ((d0 * nC + c) * N + n)) << 2),
              (<usize> (nC * N)) << 2,
              v128.load(h + (<usize> n << 4)),
              lanes,
            );
          }
        }
      }
      if (last) {
        for (let n = 0; n < N; n++) {
          store4(last + ((<usize> (d0 * N + n)) << 2), <usize> N << 2, v128.load(h + (<usize> n << 4)), lanes);
        }
      }
    }
  }
}

/** Sum of the 4 lanes. */
@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/**
 * Backward of one batch element (same layouts as {@linkcode scanForward}). Writes du, dd, dz: (D, L);
 * adds into dA (D, N), dDv (D), dBias (D) as float64 (sums over batch elements and chunks stay exact to
 * float32 rounding of each chunk's partial sum); writes dB, dC: (G, N, L). Chunks are visited last to first;
 * each chunk's states are recomputed from the stored state before it into `hs` ((T + 1)·N vectors) with
 * their decays in `ea` (T·N vectors); dls, ys: T vectors each; s, a, dAc: N vectors each; dB4, dC4: L·N vectors each.
 */
export function scanBackward(
  u: usize,
  delta: usize,
  A: usize,
  B: usize,
  C: usize,
  Dv: usize,
  z: usize,
  bias: usize,
  cs: usize,
  gout: usize,
  du: usize,
  dd: usize,
  dz: usize,
  dA: usize,
  dB: usize,
  dC: usize,
  dDv: usize,
  dBias: usize,
  scratch: usize,
  D: i32,
  L: i32,
  N: i32,
  G: i32,
  T: i32,
  softplus: i32,
  S: i32,
): void {
  const rowBytes = <usize> S << 2;
  const perGroup = D / G;
  const nC = (L + T - 1) / T;
  const nv = <usize> N << 4;
  const hs = scratch, ea = hs + <usize> (T + 1) * nv, dls = ea + <usize> T * nv, ys = dls + (<usize> T << 4);
  const s = ys + (<usize> T << 4), a = s + nv, dAc = a + nv;
  // per-lane dB, dC sums of the group's lane blocks, (L, N) vectors each: one horizontal sum per (n, l) and
  // group at the end instead of one per lane block
  const dB4 = dAc + nv, dC4 = dB4 + <usize> L * nv;
  const gBytes = (<usize> N * <usize> S) << 2;
  for (let g = 0; g < G; g++) {
    const bBase = B + <usize> g * gBytes, cBase = C + <usize> g * gBytes;
    memory.fill(dB4, 0, <usize> L * nv);
    memory.fill(dC4, 0, <usize> L * nv);
    for (let j = 0; j < perGroup; j += 4) {
      const d0 = g * perGroup + j;
      const lanes = min(4, perGroup - j);
      const r1 = laneOffset(1, lanes, rowBytes),
        r2 = laneOffset(2, lanes, rowBytes),
        r3 = laneOffset(3, lanes, rowBytes);
      // a lane that repeats lane 0 must add nothing to the shared dB, dC: mask it out
      const mask = f32x4(1, lanes > 1 ? 1 : 0, lanes > 2 ? 1 : 0, lanes > 3 ? 1 : 0);
      for (let n = 0; n < N; n++) {
        v128.store(s + (<usize> n << 4), f32x4.splat(0));
        v128.store(a + (<usize> n << 4), gather4(A + ((<usize> (d0 * N + n)) << 2), <usize> N << 2, lanes));
      }
      const bd = bias ? gather4(bias + (<usize> d0 << 2), 4, lanes) : f32x4.splat(0);
      const Dd = Dv ? gather4(Dv + (<usize> d0 << 2), 4, lanes) : f32x4.splat(0);
      const row0 = (<usize> d0 * <usize> S) << 2;
      for (let c = nC - 1; c >= 0; c--) {
        let accD = f32x4.splat(0), accBias = f32x4.splat(0);
        const l0 = c * T, len = min(L, l0 + T) - l0;
        for (let n = 0; n < N; n++) {
          const hv = c === 0
            ? f32x4.splat(0)
            : gather4(cs + ((<usize> ((d0 * nC + c - 1) * N + n)) << 2), (<usize> (nC * N)) << 2, lanes);
          v128.store(hs + (<usize> n << 4), hv);
          v128.store(dAc + (<usize> n << 4), f32x4.splat(0));
        }
        // recompute the chunk's states
        for (let t = 0; t < len; t++) {
          const l = l0 + t, off = row0 + (<usize> l << 2);
          const dl = stepDelta(delta + off, r1, r2, r3, bd, softplus);
          v128.store(dls + (<usize> t << 4), dl);
          const hPrev = hs + <usize> t * nv;
          const y = stateStep(
            dl, f32x4.mul(dl, load4(u + off, r1, r2, r3)), hPrev, hPrev + nv, ea + <usize> t * nv, a,
            bBase + (<usize> l << 2), cBase + (<usize> l << 2), N, rowBytes,
          );
          v128.store(ys + (<usize> t << 4), y);
        }
        // adjoint recurrence, last step first
        for (let t = len - 1; t >= 0; t--) {
          const l = l0 + t, off = row0 + (<usize> l << 2);
          const ul = load4(u + off, r1, r2, r3), dl = v128.load(dls + (<usize> t << 4));
          let gy = load4(gout + off, r1, r2, r3);
          if (z) {
            const zv = load4(z + off, r1, r2, r3), sg = vsigmoid(zv);
            const y = f32x4.add(v128.load(ys + (<usize> t << 4)), f32x4.mul(Dd, ul));
            // d silu(z)/dz = sg·(1 + z·(1 − sg))
            const dsilu = f32x4.mul(sg, f32x4.add(f32x4.splat(1), f32x4.mul(zv, f32x4.sub(f32x4.splat(1), sg))));
            store4(dz + off, rowBytes, f32x4.mul(f32x4.mul(gy, y), dsilu), lanes);
            gy = f32x4.mul(gy, f32x4.mul(zv, sg));
          }
          accD = f32x4.add(accD, f32x4.mul(gy, ul));
          let dut = f32x4.mul(gy, Dd), ddl = f32x4.splat(0);
          const dlu = f32x4.mul(dl, ul);
          const hPrev = hs + <usize> t * nv, hNext = hPrev + nv, eRow = ea + <usize> t * nv;
          const gyMasked = f32x4.mul(gy, mask), dluMasked = f32x4.mul(dlu, mask);
          let pb = bBase + (<usize> l << 2), pc = cBase + (<usize> l << 2);
          const pdb = dB4 + <usize> l * nv, pdc = dC4 + <usize> l * nv;
          for (let n = 0; n < N; n++) {
            const o = <usize> n << 4;
            const Bn = f32x4.splat(load<f32>(pb));
            const sn = f32x4.add(v128.load(s + o), f32x4.mul(gy, f32x4.splat(load<f32>(pc))));
            v128.store(pdc + o, f32x4.add(v128.load(pdc + o), f32x4.mul(gyMasked, v128.load(hNext + o))));
            const e = v128.load(eRow + o);
            const t1 = f32x4.mul(f32x4.mul(sn, v128.load(hPrev + o)), e);
            v128.store(dAc + o, f32x4.add(v128.load(dAc + o), f32x4.mul(t1, dl)));
            ddl = f32x4.add(ddl, f32x4.add(f32x4.mul(t1, v128.load(a + o)), f32x4.mul(f32x4.mul(sn, Bn), ul)));
            v128.store(pdb + o, f32x4.add(v128.load(pdb + o), f32x4.mul(sn, dluMasked)));
            dut = f32x4.add(dut, f32x4.mul(f32x4.mul(sn, dl), Bn));
            v128.store(s + o, f32x4.mul(sn, e));
            pb += rowBytes;
            pc += rowBytes;
          }
          store4(du + off, rowBytes, dut, lanes);
          if (softplus) {
            // d softplus(raw)/d raw = sigmoid(raw); torch's threshold makes it exactly 1 above 20
            const raw = f32x4.add(load4(delta + off, r1, r2, r3), bd);
            const sg = v128.bitselect(f32x4.splat(1), vsigmoid(raw), f32x4.gt(raw, f32x4.splat(20)));
            ddl = f32x4.mul(ddl, sg);
          }
          store4(dd + off, rowBytes, ddl, lanes);
          accBias = f32x4.add(accBias, ddl);
        }
        // this chunk's dA, dD, dBias into the float64 totals
        for (let n = 0; n < N; n++) {
          const v = v128.load(dAc + (<usize> n << 4));
          for (let k = 0; k < lanes; k++) {
            const p = dA + ((<usize> ((d0 + k) * N + n)) << 3);
            store<f64>(p, load<f64>(p) + laneOf(v, k));
          }
        }
        for (let k = 0; k < lanes; k++) {
          const pD = dDv + ((<usize> (d0 + k)) << 3), pB = dBias + ((<usize> (d0 + k)) << 3);
          store<f64>(pD, load<f64>(pD) + laneOf(accD, k));
          store<f64>(pB, load<f64>(pB) + laneOf(accBias, k));
        }
      }
    }
    // the group's dB, dC: lanes summed, (L, N) → (N, L)
    const dbBase = dB + <usize> g * gBytes, dcBase = dC + <usize> g * gBytes;
    for (let l = 0; l < L; l++) {
      for (let n = 0; n < N; n++) {
        const at = (<usize> (n * S + l)) << 2, v = <usize> l * nv + (<usize> n << 4);
        store<f32>(dbBase + at, hsum(v128.load(dB4 + v)));
        store<f32>(dcBase + at, hsum(v128.load(dC4 + v)));
      }
    }
  }
}

/** Lane `k` (a run-time index) of a vector, as float64. */
@inline function laneOf(v: v128, k: i32): f64 {
  if (k === 0) return <f64> f32x4.extract_lane(v, 0);
  if (k === 1) return <f64> f32x4.extract_lane(v, 1);
  if (k === 2) return <f64> f32x4.extract_lane(v, 2);
  return <f64> f32x4.extract_lane(v, 3);
}
