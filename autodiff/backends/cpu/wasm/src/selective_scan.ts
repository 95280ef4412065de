// AssemblyScript source of the CPU backend's selective-scan kernels (WebAssembly SIMD). Built by
// `deno run -A tools/build_wasm.ts` into ../kernels.wasm.ts; tests/cpu_wasm_test.ts checks that the
// committed binary is this source's build.
//
// The recurrence is the one of autodiff/backends/cpu/selective_scan.ts (the scalar reference):
//   h_l = exp(δ_l·A) ⊙ h_{l−1} + δ_l·B_l·u_l,   y_l = Σ_n h_l·C_l,   out = (y + D·u) · silu(z)
// vectorised over 4 channels of one group at a time (f32x4 lanes): the channels of a group share B_l and
// C_l, so those are splatted, and every per-channel quantity is a lane. Channels stay in the tensors'
// (channels, length) layout; a lane block goes through the length a chunk of T steps at a time:
// - δ, δ·u and the forward's outputs are computed row by row, 4 steps of a channel per v128 load, and
//   transposed to and from step-major scratch vectors (one vector = the 4 lanes at one step); the backward's
//   other per-step terms are computed step by step (4 strided loads per vector);
// - the states go 4 at a time over the whole chunk with their h (or adjoint s) and A in registers (the
//   forward's and the backward's recomputed states read 4 steps of a state's B and C per load); sums over
//   states (y, the δ and u gradients) are kept per step in scratch and still add the states in the order
//   n = 0, 1, … as a loop over the states at each step does.
// V8 keeps none of a loop's v128 constants in registers (it rebuilds each one at every use, 3 instructions),
// so the hot loops take theirs from locals loaded once from a table in scratch (see writeExpConstants).
//
// Memory: the caller (../selective_scan_wasm.ts) copies one batch element's operands into linear memory
// and passes byte addresses; 0 means "absent". Scratch areas are passed in too. Nothing is allocated here.

import { mulAdd, vsigmoid, vsoftplus } from "./vmath";

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

// ---- constants held in locals ------------------------------------------------------------------------------
//
// The kernels write this table at the start of their scratch once per call and load the vectors into locals,
// which V8 keeps in registers or reloads from its stack (one instruction) instead of rebuilding them.
// expK and log1pUnitK compute exactly what vmath's vexp and vlog1pUnit do (same float32 results), for
// softplus and sigmoid; the states' decays use exp2K.

const K_LO = 0, K_HI = 1, K_LOG2E = 2, K_ROUND = 3, K_LN2HI = 4, K_LN2LO = 5;
const K_P0 = 6, K_P1 = 7, K_P2 = 8, K_P3 = 9, K_P4 = 10, K_P5 = 11, K_ONE = 12;
// vlog1pUnit's (softplus)
const K_TWO = 13, K_S15 = 14, K_S13 = 15, K_S11 = 16, K_S9 = 17, K_S7 = 18, K_S5 = 19, K_S3 = 20;
// exp2K's
const K_LO2 = 21, K_HI2 = 22, K_Q0 = 23, K_Q1 = 24, K_Q2 = 25, K_Q3 = 26, K_Q4 = 27, K_Q5 = 28;
/** Vectors in the constant table (the host's scratch sizes count them: keep ../selective_scan_wasm.ts in step). */
const K_COUNT = 29;

/** Writes the constant table (K_COUNT vectors) at `k`. */
function writeExpConstants(k: usize): void {
  v128.store(k + (K_LO << 4), f32x4.splat(-87.3));
  v128.store(k + (K_HI << 4), f32x4.splat(88.7));
  v128.store(k + (K_LOG2E << 4), f32x4.splat(<f32> 1.44269504088896341));
  v128.store(k + (K_ROUND << 4), f32x4.splat(12583039.0));
  v128.store(k + (K_LN2HI << 4), f32x4.splat(0.693359375));
  v128.store(k + (K_LN2LO << 4), f32x4.splat(-2.12194440e-4));
  v128.store(k + (K_P0 << 4), f32x4.splat(1.9875691500e-4));
  v128.store(k + (K_P1 << 4), f32x4.splat(1.3981999507e-3));
  v128.store(k + (K_P2 << 4), f32x4.splat(8.3334519073e-3));
  v128.store(k + (K_P3 << 4), f32x4.splat(4.1665795894e-2));
  v128.store(k + (K_P4 << 4), f32x4.splat(1.6666665459e-1));
  v128.store(k + (K_P5 << 4), f32x4.splat(5.0000001201e-1));
  v128.store(k + (K_ONE << 4), f32x4.splat(1.0));
  v128.store(k + (K_TWO << 4), f32x4.splat(2.0));
  v128.store(k + (K_S15 << 4), f32x4.splat(1.0 / 15.0));
  v128.store(k + (K_S13 << 4), f32x4.splat(1.0 / 13.0));
  v128.store(k + (K_S11 << 4), f32x4.splat(1.0 / 11.0));
  v128.store(k + (K_S9 << 4), f32x4.splat(1.0 / 9.0));
  v128.store(k + (K_S7 << 4), f32x4.splat(1.0 / 7.0));
  v128.store(k + (K_S5 << 4), f32x4.splat(1.0 / 5.0));
  v128.store(k + (K_S3 << 4), f32x4.splat(1.0 / 3.0));
  v128.store(k + (K_LO2 << 4), f32x4.splat(-125.9));
  v128.store(k + (K_HI2 << 4), f32x4.splat(127.4));
  v128.store(k + (K_Q0 << 4), f32x4.splat(0.6931471824645996));
  v128.store(k + (K_Q1 << 4), f32x4.splat(0.24022647738456726));
  v128.store(k + (K_Q2 << 4), f32x4.splat(0.055503327399492264));
  v128.store(k + (K_Q3 << 4), f32x4.splat(0.009618431329727173));
  v128.store(k + (K_Q4 << 4), f32x4.splat(0.0013398835435509682));
  v128.store(k + (K_Q5 << 4), f32x4.splat(0.000153551998664625));
}

/** The 4×4 transpose of rows r0..r3 (lane k of row i → lane i of row k), stored as 4 vectors from `p`. */
@inline function storeTransposed(p: usize, r0: v128, r1: v128, r2: v128, r3: v128): void {
  const t0 = i32x4.shuffle(r0, r1, 0, 4, 1, 5), t1 = i32x4.shuffle(r0, r1, 2, 6, 3, 7);
  const t2 = i32x4.shuffle(r2, r3, 0, 4, 1, 5), t3 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
  v128.store(p, i32x4.shuffle(t0, t2, 0, 1, 4, 5));
  v128.store(p, i32x4.shuffle(t0, t2, 2, 3, 6, 7), 16);
  v128.store(p, i32x4.shuffle(t1, t3, 0, 1, 4, 5), 32);
  v128.store(p, i32x4.shuffle(t1, t3, 2, 3, 6, 7), 48);
}

/**
 * vexp(x) (vmath.ts, its polynomial by Estrin's scheme as there) with its constants passed in (see
 * writeExpConstants). `round` is 1.5·2²³ + 127, so t's low mantissa bits are k + 127 and shifting t left by 23
 * leaves exactly 2^k's bits (vexp adds 127 − bits(1.5·2²³) first: the same bits, one constant and one operation
 * more).
 */
@inline function expK(
  x: v128, lo: v128, hi: v128, log2e: v128, round: v128, ln2hi: v128, ln2lo: v128,
  p0: v128, p1: v128, p2: v128, p3: v128, p4: v128, p5: v128, one: v128,
): v128 {
  x = f32x4.pmin(f32x4.pmax(x, lo), hi);
  const t = f32x4.add(f32x4.mul(x, log2e), round);
  const k = f32x4.sub(t, round);
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(k, ln2hi)), f32x4.mul(k, ln2lo));
  const bits = i32x4.shl(t, 23);
  const r2 = f32x4.mul(r, r), r4 = f32x4.mul(r2, r2);
  const a = mulAdd(p4, r, p5), b = mulAdd(p2, r, p3);
  const c = mulAdd(p0, r, p1);
  const p = f32x4.add(f32x4.add(a, f32x4.mul(r2, b)), f32x4.mul(r4, c));
  return f32x4.mul(f32x4.add(f32x4.add(r, one), f32x4.mul(r2, p)), bits);
}

/**
 * 2^x for the decays e^(δ·A) = 2^(δ·A·log₂e), A·log₂e taken once per state: 2^k from the bits of t = x + ROUND
 * as in expK, f = x − round(x) exact (round's one instruction is off t's path), 2^f on [−½, ½] by a degree-6
 * polynomial (a relative least-squares-minimax fit, error 2e-9 in exact arithmetic, under 1e-7 evaluated in
 * float32) in Estrin's pairs. Fewer operations and constants than expK's Cody–Waite reduction; against the
 * float64 reference the scan's outputs and gradients come out as close as with vexp (mean error within 3 %).
 * Horner's rule made this chain ~42 cycles long and the scan waited on it; Estrin's pairs (~21 cycles) made the
 * scan 1.17× faster. What bounds it now is its instruction count (reordering or splitting the loop gained nothing). x is clamped to [−125.9, 127.4] (vexp's [−87.3, 88.7]
 * in base 2, less the top half unit that would make k = 128).
 */
@inline function exp2K(
  x: v128, lo: v128, hi: v128, round: v128, q0: v128, q1: v128, q2: v128, q3: v128, q4: v128, q5: v128, one: v128,
): v128 {
  x = f32x4.pmin(f32x4.pmax(x, lo), hi);
  const t = f32x4.add(x, round);
  const f = f32x4.sub(x, f32x4.nearest(x));
  const f2 = f32x4.mul(f, f), f4 = f32x4.mul(f2, f2);
  const a = mulAdd(q0, f, one), b = mulAdd(q2, f, q1), c = mulAdd(q4, f, q3);
  const p = f32x4.add(f32x4.add(a, f32x4.mul(f2, b)), f32x4.mul(f4, f32x4.add(c, f32x4.mul(f2, q5))));
  return f32x4.mul(p, i32x4.shl(t, 23));
}

/** vmath's vsigmoid, 1 / (1 + e^−x), with expK's constants passed in. */
@inline function sigmoidK(
  x: v128, lo: v128, hi: v128, log2e: v128, round: v128, ln2hi: v128, ln2lo: v128,
  p0: v128, p1: v128, p2: v128, p3: v128, p4: v128, p5: v128, one: v128,
): v128 {
  return f32x4.div(one, f32x4.add(one, expK(f32x4.neg(x), lo, hi, log2e, round, ln2hi, ln2lo, p0, p1, p2, p3, p4, p5, one)));
}

/** vmath's vlog1pUnit with its constants passed in. */
@inline function log1pUnitK(
  y: v128, two: v128, s15: v128, s13: v128, s11: v128, s9: v128, s7: v128, s5: v128, s3: v128, one: v128,
): v128 {
  const s = f32x4.div(y, f32x4.add(y, two));
  const w = f32x4.mul(s, s), w2 = f32x4.mul(w, w), w4 = f32x4.mul(w2, w2);
  const a = mulAdd(s3, w, one), b = mulAdd(s7, w, s5);
  const c = mulAdd(s11, w, s9), d = mulAdd(s15, w, s13);
  const p = f32x4.add(f32x4.add(a, f32x4.mul(w2, b)), f32x4.mul(w4, f32x4.add(c, f32x4.mul(w2, d))));
  return f32x4.mul(f32x4.mul(p, s), two);
}

/** 4 steps of one channel's output: (y + D·u)·silu(z) (z omitted when `pz` is 0), as the step-major loop. */
@inline function outRow(
  po: usize, pu: usize, pz: usize, y: v128, dd: v128,
  lo: v128, hi: v128, log2e: v128, round: v128, ln2hi: v128, ln2lo: v128,
  p0: v128, p1: v128, p2: v128, p3: v128, p4: v128, p5: v128, one: v128,
): void {
  let v = f32x4.add(y, f32x4.mul(dd, v128.load(pu)));
  if (pz) {
    const zv = v128.load(pz);
    // vsigmoid: 1 / (1 + e^−z)
    const sg = sigmoidK(zv, lo, hi, log2e, round, ln2hi, ln2lo, p0, p1, p2, p3, p4, p5, one);
    v = f32x4.mul(v, f32x4.mul(zv, sg));
  }
  v128.store(po, v);
}

/**
 * δ_l (softplus'd when asked) and δ_l·u_l of a lane block's chunk of `len` steps into `dls`, `dus` (a vector per
 * step), 4 steps of each row per load and transposed; `ys` zeroed. `off0` is the chunk's first byte in lane 0's
 * row, r1..r3 the other lanes' row offsets; b0..b3 the lanes' delta bias splatted, bd the 4 as one vector.
 */
@inline function prepChunk(
  kc: usize, delta: usize, u: usize, off0: usize, r1: usize, r2: usize, r3: usize,
  bd: v128, b0: v128, b1: v128, b2: v128, b3: v128, softplus: i32, len: i32, dls: usize, dus: usize, ys: usize,
): void {
  const lo = v128.load(kc, K_LO << 4), hi = v128.load(kc, K_HI << 4), log2e = v128.load(kc, K_LOG2E << 4);
  const round = v128.load(kc, K_ROUND << 4), ln2hi = v128.load(kc, K_LN2HI << 4);
  const ln2lo = v128.load(kc, K_LN2LO << 4);
  const p0 = v128.load(kc, K_P0 << 4), p1 = v128.load(kc, K_P1 << 4), p2 = v128.load(kc, K_P2 << 4);
  const p3 = v128.load(kc, K_P3 << 4), p4 = v128.load(kc, K_P4 << 4), p5 = v128.load(kc, K_P5 << 4);
  const one = v128.load(kc, K_ONE << 4);
  const two = v128.load(kc, K_TWO << 4);
  const s15 = v128.load(kc, K_S15 << 4), s13 = v128.load(kc, K_S13 << 4), s11 = v128.load(kc, K_S11 << 4);
  const s9 = v128.load(kc, K_S9 << 4), s7 = v128.load(kc, K_S7 << 4), s5 = v128.load(kc, K_S5 << 4);
  const s3 = v128.load(kc, K_S3 << 4);
  // δ and δ·u of the chunk's steps, 4 steps of each row at a time, transposed into step-major vectors
  const len4 = len & ~3;
  for (let t = 0; t < len4; t += 4) {
    const off = off0 + (<usize> t << 2), tb = <usize> t << 4;
    let x0 = f32x4.add(v128.load(delta + off), b0), x1 = f32x4.add(v128.load(delta + off + r1), b1);
    let x2 = f32x4.add(v128.load(delta + off + r2), b2), x3 = f32x4.add(v128.load(delta + off + r3), b3);
    if (softplus) {
      // vsoftplus: max(x, 0) + log1p(e^−|x|)
      x0 = f32x4.add(f32x4.max(x0, f32x4.splat(0)), log1pUnitK(
        expK(f32x4.neg(f32x4.abs(x0)), lo, hi, log2e, round, ln2hi, ln2lo, p0, p1, p2, p3, p4, p5, one),
        two, s15, s13, s11, s9, s7, s5, s3, one,
      ));
      x1 = f32x4.add(f32x4.max(x1, f32x4.splat(0)), log1pUnitK(
        expK(f32x4.neg(f32x4.abs(x1)), lo, hi, log2e, round, ln2hi, ln2lo, p0, p1, p2, p3, p4, p5, one),
        two, s15, s13, s11, s9, s7, s5, s3, one,
      ));
      x2 = f32x4.add(f32x4.max(x2, f32x4.splat(0)), log1pUnitK(
        expK(f32x4.neg(f32x4.abs(x2)), lo, hi, log2e, round, ln2hi, ln2lo, p0, p1, p2, p3, p4, p5, one),
        two, s15, s13, s11, s9, s7, s5, s3, one,
      ));
      x3 = f32x4.add(f32x4.max(x3, f32x4.splat(0)), log1pUnitK(
        expK(f32x4.neg(f32x4.abs(x3)), lo, hi, log2e, round, ln2hi, ln2lo, p0, p1, p2, p3, p4, p5, one),
        two, s15, s13, s11, s9, s7, s5, s3, one,
      ));
    }
    storeTransposed(dls + tb, x0, x1, x2, x3);
    storeTransposed(
      dus + tb,
      f32x4.mul(x0, v128.load(u + off)),
      f32x4.mul(x1, v128.load(u + off + r1)),
      f32x4.mul(x2, v128.load(u + off + r2)),
      f32x4.mul(x3, v128.load(u + off + r3)),
    );
  }
  for (let t = len4; t < len; t++) {
    const off = off0 + (<usize> t << 2), tb = <usize> t << 4;
    const dl = stepDelta(delta + off, r1, r2, r3, bd, softplus);
    v128.store(dls + tb, dl);
    v128.store(dus + tb, f32x4.mul(dl, load4(u + off, r1, r2, r3)));
  }
  memory.fill(ys, 0, <usize> len << 4);
}

/** One step of a state: e = e^(δ·a), h' = e·h + δu·b, both stored at `ho`, `eo` when `keep`; returns h'. */
@inline function keptStep(
  h: v128, a: v128, dl: v128, du: v128, b: v128, keep: i32, ho: usize, eo: usize,
  lo: v128, hi: v128, round: v128, q0: v128, q1: v128, q2: v128, q3: v128, q4: v128, q5: v128, one: v128,
): v128 {
  const e = exp2K(f32x4.mul(dl, a), lo, hi, round, q0, q1, q2, q3, q4, q5, one);
  const hn = f32x4.add(f32x4.mul(e, h), f32x4.mul(du, b));
  if (keep) {
    v128.store(ho, hn);
    v128.store(eo, e);
  }
  return hn;
}

/**
 * The N states of a lane block over a chunk of `len` steps (δ, δu from `dls`, `dus`; B, C of the chunk's first
 * step at pb0, pc0, rows `rowBytes` apart), adding y_l = Σ_n h_l·C_l into `ys` in the order n = 0, 1, …
 * States start from `h` (N vectors). With `keep` (a constant at each call), h after step t goes to
 * hs + (t + 1)·N vectors and its decay to ea + t·N vectors, and `h` is left as it was; without, `h` ends as
 * the chunk's last state. `withY` (a constant at each call) 0 skips y (the backward reads it only for z's
 * gradient). States go 4 at a time, h and A in registers, 4 steps per load of B and C.
 */
@inline function statesChunk(
  kc: usize, h: usize, a: usize, N: i32, pb0: usize, pc0: usize, rowBytes: usize, dls: usize, dus: usize,
  ys: usize, len: i32, keep: i32, hs: usize, ea: usize, withY: i32,
): void {
  const lo = v128.load(kc, K_LO << 4), hi = v128.load(kc, K_HI << 4), log2e = v128.load(kc, K_LOG2E << 4);
  const round = v128.load(kc, K_ROUND << 4), ln2hi = v128.load(kc, K_LN2HI << 4);
  const ln2lo = v128.load(kc, K_LN2LO << 4);
  const p0 = v128.load(kc, K_P0 << 4), p1 = v128.load(kc, K_P1 << 4), p2 = v128.load(kc, K_P2 << 4);
  const p3 = v128.load(kc, K_P3 << 4), p4 = v128.load(kc, K_P4 << 4), p5 = v128.load(kc, K_P5 << 4);
  const one = v128.load(kc, K_ONE << 4);
  const lo2 = v128.load(kc, K_LO2 << 4), hi2 = v128.load(kc, K_HI2 << 4);
  const q0 = v128.load(kc, K_Q0 << 4), q1 = v128.load(kc, K_Q1 << 4), q2 = v128.load(kc, K_Q2 << 4);
  const q3 = v128.load(kc, K_Q3 << 4), q4 = v128.load(kc, K_Q4 << 4), q5 = v128.load(kc, K_Q5 << 4);
  const nv = <usize> N << 4, len4 = len & ~3, rb2 = 2 * rowBytes, rb3 = 3 * rowBytes;
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const o = <usize> n << 4;
    let h0 = v128.load(h + o), h1 = v128.load(h + o, 16), h2 = v128.load(h + o, 32), h3 = v128.load(h + o, 48);
    const a0 = f32x4.mul(v128.load(a + o), log2e), a1 = f32x4.mul(v128.load(a + o, 16), log2e);
    const a2 = f32x4.mul(v128.load(a + o, 32), log2e), a3 = f32x4.mul(v128.load(a + o, 48), log2e);
    let pb = pb0 + <usize> n * rowBytes, pc = pc0 + <usize> n * rowBytes;
    // h after step t and its decay (keep): ho = hs + (t + 1)·nv + o, eo = ea + t·nv + o
    let ho = hs + nv + o, eo = ea + o;
    for (let t = 0; t < len4; t += 4) {
      const tb = dls + (<usize> t << 4), ub = dus + (<usize> t << 4), yb = ys + (<usize> t << 4);
      const dl0 = v128.load(tb), dl1 = v128.load(tb, 16), dl2 = v128.load(tb, 32), dl3 = v128.load(tb, 48);
      const du0 = v128.load(ub), du1 = v128.load(ub, 16), du2 = v128.load(ub, 32), du3 = v128.load(ub, 48);
      let y0 = f32x4.splat(0), y1 = f32x4.splat(0), y2 = f32x4.splat(0), y3 = f32x4.splat(0);
      if (withY) {
        y0 = v128.load(yb);
        y1 = v128.load(yb, 16);
        y2 = v128.load(yb, 32);
        y3 = v128.load(yb, 48);
      }
      let bq = v128.load(pb), cq = withY ? v128.load(pc) : f32x4.splat(0);
      h0 = keptStep(h0, a0, dl0, du0, i32x4.shuffle(bq, bq, 0, 0, 0, 0), keep, ho + 0 * nv + 0, eo + 0 * nv + 0, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) y0 = f32x4.add(y0, f32x4.mul(h0, i32x4.shuffle(cq, cq, 0, 0, 0, 0)));
      h0 = keptStep(h0, a0, dl1, du1, i32x4.shuffle(bq, bq, 1, 1, 1, 1), keep, ho + 1 * nv + 0, eo + 1 * nv + 0, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) y1 = f32x4.add(y1, f32x4.mul(h0, i32x4.shuffle(cq, cq, 1, 1, 1, 1)));
      h0 = keptStep(h0, a0, dl2, du2, i32x4.shuffle(bq, bq, 2, 2, 2, 2), keep, ho + 2 * nv + 0, eo + 2 * nv + 0, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) y2 = f32x4.add(y2, f32x4.mul(h0, i32x4.shuffle(cq, cq, 2, 2, 2, 2)));
      h0 = keptStep(h0, a0, dl3, du3, i32x4.shuffle(bq, bq, 3, 3, 3, 3), keep, ho + 3 * nv + 0, eo + 3 * nv + 0, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) y3 = f32x4.add(y3, f32x4.mul(h0, i32x4.shuffle(cq, cq, 3, 3, 3, 3)));
      bq = v128.load(pb + rowBytes);
      if (withY) cq = v128.load(pc + rowBytes);
      h1 = keptStep(h1, a1, dl0, du0, i32x4.shuffle(bq, bq, 0, 0, 0, 0), keep, ho + 0 * nv + 16, eo + 0 * nv + 16, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) y0 = f32x4.add(y0, f32x4.mul(h1, i32x4.shuffle(cq, cq, 0, 0, 0, 0)));
      h1 = keptStep(h1, a1, dl1, du1, i32x4.shuffle(bq, bq, 1, 1, 1, 1), keep, ho + 1 * nv + 16, eo + 1 * nv + 16, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) y1 = f32x4.add(y1, f32x4.mul(h1, i32x4.shuffle(cq, cq, 1, 1, 1, 1)));
      h1 = keptStep(h1, a1, dl2, du2, i32x4.shuffle(bq, bq, 2, 2, 2, 2), keep, ho + 2 * nv + 16, eo + 2 * nv + 16, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) y2 = f32x4.add(y2, f32x4.mul(h1, i32x4.shuffle(cq, cq, 2, 2, 2, 2)));
      h1 = keptStep(h1, a1, dl3, du3, i32x4.shuffle(bq, bq, 3, 3, 3, 3), keep, ho + 3 * nv + 16, eo + 3 * nv + 16, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) y3 = f32x4.add(y3, f32x4.mul(h1, i32x4.shuffle(cq, cq, 3, 3, 3, 3)));
      bq = v128.load(pb + rb2);
      if (withY) cq = v128.load(pc + rb2);
      h2 = keptStep(h2, a2, dl0, du0, i32x4.shuffle(bq, bq, 0, 0, 0, 0), keep, ho + 0 * nv + 32, eo + 0 * nv + 32, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) y0 = f32x4.add(y0, f32x4.mul(h2, i32x4.shuffle(cq, cq, 0, 0, 0, 0)));
      h2 = keptStep(h2, a2, dl1, du1, i32x4.shuffle(bq, bq, 1, 1, 1, 1), keep, ho + 1 * nv + 32, eo + 1 * nv + 32, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) y1 = f32x4.add(y1, f32x4.mul(h2, i32x4.shuffle(cq, cq, 1, 1, 1, 1)));
      h2 = keptStep(h2, a2, dl2, du2, i32x4.shuffle(bq, bq, 2, 2, 2, 2), keep, ho + 2 * nv + 32, eo + 2 * nv + 32, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) y2 = f32x4.add(y2, f32x4.mul(h2, i32x4.shuffle(cq, cq, 2, 2, 2, 2)));
      h2 = keptStep(h2, a2, dl3, du3, i32x4.shuffle(bq, bq, 3, 3, 3, 3), keep, ho + 3 * nv + 32, eo + 3 * nv + 32, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) y3 = f32x4.add(y3, f32x4.mul(h2, i32x4.shuffle(cq, cq, 3, 3, 3, 3)));
      bq = v128.load(pb + rb3);
      if (withY) cq = v128.load(pc + rb3);
      h3 = keptStep(h3, a3, dl0, du0, i32x4.shuffle(bq, bq, 0, 0, 0, 0), keep, ho + 0 * nv + 48, eo + 0 * nv + 48, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) y0 = f32x4.add(y0, f32x4.mul(h3, i32x4.shuffle(cq, cq, 0, 0, 0, 0)));
      h3 = keptStep(h3, a3, dl1, du1, i32x4.shuffle(bq, bq, 1, 1, 1, 1), keep, ho + 1 * nv + 48, eo + 1 * nv + 48, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) y1 = f32x4.add(y1, f32x4.mul(h3, i32x4.shuffle(cq, cq, 1, 1, 1, 1)));
      h3 = keptStep(h3, a3, dl2, du2, i32x4.shuffle(bq, bq, 2, 2, 2, 2), keep, ho + 2 * nv + 48, eo + 2 * nv + 48, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) y2 = f32x4.add(y2, f32x4.mul(h3, i32x4.shuffle(cq, cq, 2, 2, 2, 2)));
      h3 = keptStep(h3, a3, dl3, du3, i32x4.shuffle(bq, bq, 3, 3, 3, 3), keep, ho + 3 * nv + 48, eo + 3 * nv + 48, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) y3 = f32x4.add(y3, f32x4.mul(h3, i32x4.shuffle(cq, cq, 3, 3, 3, 3)));
      if (withY) {
        v128.store(yb, y0);
        v128.store(yb, y1, 16);
        v128.store(yb, y2, 32);
        v128.store(yb, y3, 48);
      }
      pb += 16;
      pc += 16;
      ho += 4 * nv;
      eo += 4 * nv;
    }
    for (let t = len4; t < len; t++) {
      const tb = <usize> t << 4;
      const dl = v128.load(dls + tb), du = v128.load(dus + tb);
      h0 = keptStep(h0, a0, dl, du, v128.load32_splat(pb), keep, ho, eo, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      h1 = keptStep(h1, a1, dl, du, v128.load32_splat(pb + rowBytes), keep, ho + 16, eo + 16, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      h2 = keptStep(h2, a2, dl, du, v128.load32_splat(pb + rb2), keep, ho + 32, eo + 32, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      h3 = keptStep(h3, a3, dl, du, v128.load32_splat(pb + rb3), keep, ho + 48, eo + 48, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) {
        let y = v128.load(ys + tb);
        y = f32x4.add(y, f32x4.mul(h0, v128.load32_splat(pc)));
        y = f32x4.add(y, f32x4.mul(h1, v128.load32_splat(pc + rowBytes)));
        y = f32x4.add(y, f32x4.mul(h2, v128.load32_splat(pc + rb2)));
        y = f32x4.add(y, f32x4.mul(h3, v128.load32_splat(pc + rb3)));
        v128.store(ys + tb, y);
      }
      pb += 4;
      pc += 4;
      ho += nv;
      eo += nv;
    }
    if (!keep) {
      v128.store(h + o, h0);
      v128.store(h + o, h1, 16);
      v128.store(h + o, h2, 32);
      v128.store(h + o, h3, 48);
    }
  }
  for (; n < N; n++) {
    const o = <usize> n << 4;
    let h0 = v128.load(h + o);
    const a0 = f32x4.mul(v128.load(a + o), log2e);
    let pb = pb0 + <usize> n * rowBytes, pc = pc0 + <usize> n * rowBytes;
    let ho = hs + nv + o, eo = ea + o;
    for (let t = 0; t < len; t++) {
      const tb = <usize> t << 4;
      const dl = v128.load(dls + tb), du = v128.load(dus + tb);
      h0 = keptStep(h0, a0, dl, du, v128.load32_splat(pb), keep, ho, eo, lo2, hi2, round, q0, q1, q2, q3, q4, q5, one);
      if (withY) v128.store(ys + tb, f32x4.add(v128.load(ys + tb), f32x4.mul(h0, v128.load32_splat(pc))));
      pb += 4;
      pc += 4;
      ho += nv;
      eo += nv;
    }
    if (!keep) v128.store(h + o, h0);
  }
}

/**
 * The adjoint states of a lane block over a chunk of `len` steps, last step first: s_l = gy_l·C_l + e_{l+1}·s_{l+1}
 * for the N states from `s` (N vectors, updated), adding each step's dA terms into `dAc`, its dB, dC terms
 * into `pdb`, `pdc` ((len, N) vectors of the chunk's steps) and its δ and u gradient terms into the step vectors
 * at `ddls`, `duts`, state by state in the order n = 0, 1, … as one state loop per step would. States go 4 at
 * a time with s, the dA sums and A in registers. hs, ea: the chunk's states and decays (statesChunk's keep);
 * dls, gys, uls: δ, gy, u per step; gms, dms: gy and δ·u with missing lanes zeroed.
 */
@inline function adjointChunk(
  s: usize, dAc: usize, a: usize, hs: usize, ea: usize, N: i32, pb0: usize, pc0: usize, rowBytes: usize,
  pdb0: usize, pdc0: usize, dls: usize, gys: usize, uls: usize, gms: usize, dms: usize, duts: usize, ddls: usize,
  len: i32,
): void {
  const nv = <usize> N << 4, rb2 = 2 * rowBytes, rb3 = 3 * rowBytes;
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const o = <usize> n << 4;
    let s0 = v128.load(s + o), s1 = v128.load(s + o, 16), s2 = v128.load(s + o, 32), s3 = v128.load(s + o, 48);
    let dA0 = v128.load(dAc + o), dA1 = v128.load(dAc + o, 16), dA2 = v128.load(dAc + o, 32);
    let dA3 = v128.load(dAc + o, 48);
    const a0 = v128.load(a + o), a1 = v128.load(a + o, 16), a2 = v128.load(a + o, 32), a3 = v128.load(a + o, 48);
    for (let t = len - 1; t >= 0; t--) {
      const tb = <usize> t << 4;
      const gy = v128.load(gys + tb), ul = v128.load(uls + tb), dl = v128.load(dls + tb);
      const gyM = v128.load(gms + tb), dluM = v128.load(dms + tb);
      let ddl = v128.load(ddls + tb), dut = v128.load(duts + tb);
      const hPrev = hs + <usize> t * nv, hNext = hPrev + nv, eRow = ea + <usize> t * nv;
      const pb = pb0 + <usize> n * rowBytes + (<usize> t << 2), pc = pc0 + <usize> n * rowBytes + (<usize> t << 2);
      const pdb = pdb0 + <usize> t * nv, pdc = pdc0 + <usize> t * nv;
      {
        const Bn = v128.load32_splat(pb);
        const sn = f32x4.add(s0, f32x4.mul(gy, v128.load32_splat(pc)));
        v128.store(pdc + o, f32x4.add(v128.load(pdc + o), f32x4.mul(gyM, v128.load(hNext + o))));
        const e = v128.load(eRow + o);
        const t1 = f32x4.mul(f32x4.mul(sn, v128.load(hPrev + o)), e);
        dA0 = f32x4.add(dA0, f32x4.mul(t1, dl));
        ddl = f32x4.add(ddl, f32x4.add(f32x4.mul(t1, a0), f32x4.mul(f32x4.mul(sn, Bn), ul)));
        v128.store(pdb + o, f32x4.add(v128.load(pdb + o), f32x4.mul(sn, dluM)));
        dut = f32x4.add(dut, f32x4.mul(f32x4.mul(sn, dl), Bn));
        s0 = f32x4.mul(sn, e);
      }
      {
        const Bn = v128.load32_splat(pb + rowBytes);
        const sn = f32x4.add(s1, f32x4.mul(gy, v128.load32_splat(pc + rowBytes)));
        v128.store(pdc + o, f32x4.add(v128.load(pdc + o, 16), f32x4.mul(gyM, v128.load(hNext + o, 16))), 16);
        const e = v128.load(eRow + o, 16);
        const t1 = f32x4.mul(f32x4.mul(sn, v128.load(hPrev + o, 16)), e);
        dA1 = f32x4.add(dA1, f32x4.mul(t1, dl));
        ddl = f32x4.add(ddl, f32x4.add(f32x4.mul(t1, a1), f32x4.mul(f32x4.mul(sn, Bn), ul)));
        v128.store(pdb + o, f32x4.add(v128.load(pdb + o, 16), f32x4.mul(sn, dluM)), 16);
        dut = f32x4.add(dut, f32x4.mul(f32x4.mul(sn, dl), Bn));
        s1 = f32x4.mul(sn, e);
      }
      {
        const Bn = v128.load32_splat(pb + rb2);
        const sn = f32x4.add(s2, f32x4.mul(gy, v128.load32_splat(pc + rb2)));
        v128.store(pdc + o, f32x4.add(v128.load(pdc + o, 32), f32x4.mul(gyM, v128.load(hNext + o, 32))), 32);
        const e = v128.load(eRow + o, 32);
        const t1 = f32x4.mul(f32x4.mul(sn, v128.load(hPrev + o, 32)), e);
        dA2 = f32x4.add(dA2, f32x4.mul(t1, dl));
        ddl = f32x4.add(ddl, f32x4.add(f32x4.mul(t1, a2), f32x4.mul(f32x4.mul(sn, Bn), ul)));
        v128.store(pdb + o, f32x4.add(v128.load(pdb + o, 32), f32x4.mul(sn, dluM)), 32);
        dut = f32x4.add(dut, f32x4.mul(f32x4.mul(sn, dl), Bn));
        s2 = f32x4.mul(sn, e);
      }
      {
        const Bn = v128.load32_splat(pb + rb3);
        const sn = f32x4.add(s3, f32x4.mul(gy, v128.load32_splat(pc + rb3)));
        v128.store(pdc + o, f32x4.add(v128.load(pdc + o, 48), f32x4.mul(gyM, v128.load(hNext + o, 48))), 48);
        const e = v128.load(eRow + o, 48);
        const t1 = f32x4.mul(f32x4.mul(sn, v128.load(hPrev + o, 48)), e);
        dA3 = f32x4.add(dA3, f32x4.mul(t1, dl));
        ddl = f32x4.add(ddl, f32x4.add(f32x4.mul(t1, a3), f32x4.mul(f32x4.mul(sn, Bn), ul)));
        v128.store(pdb + o, f32x4.add(v128.load(pdb + o, 48), f32x4.mul(sn, dluM)), 48);
        dut = f32x4.add(dut, f32x4.mul(f32x4.mul(sn, dl), Bn));
        s3 = f32x4.mul(sn, e);
      }
      v128.store(ddls + tb, ddl);
      v128.store(duts + tb, dut);
    }
    v128.store(s + o, s0);
    v128.store(s + o, s1, 16);
    v128.store(s + o, s2, 32);
    v128.store(s + o, s3, 48);
    v128.store(dAc + o, dA0);
    v128.store(dAc + o, dA1, 16);
    v128.store(dAc + o, dA2, 32);
    v128.store(dAc + o, dA3, 48);
  }
  for (; n < N; n++) {
    const o = <usize> n << 4;
    let s0 = v128.load(s + o), dA0 = v128.load(dAc + o);
    const a0 = v128.load(a + o);
    for (let t = len - 1; t >= 0; t--) {
      const tb = <usize> t << 4;
      const gy = v128.load(gys + tb), ul = v128.load(uls + tb), dl = v128.load(dls + tb);
      const gyM = v128.load(gms + tb), dluM = v128.load(dms + tb);
      let ddl = v128.load(ddls + tb), dut = v128.load(duts + tb);
      const hPrev = hs + <usize> t * nv, hNext = hPrev + nv, eRow = ea + <usize> t * nv;
      const pb = pb0 + <usize> n * rowBytes + (<usize> t << 2), pc = pc0 + <usize> n * rowBytes + (<usize> t << 2);
      const pdb = pdb0 + <usize> t * nv, pdc = pdc0 + <usize> t * nv;
      {
        const Bn = v128.load32_splat(pb);
        const sn = f32x4.add(s0, f32x4.mul(gy, v128.load32_splat(pc)));
        v128.store(pdc + o, f32x4.add(v128.load(pdc + o), f32x4.mul(gyM, v128.load(hNext + o))));
        const e = v128.load(eRow + o);
        const t1 = f32x4.mul(f32x4.mul(sn, v128.load(hPrev + o)), e);
        dA0 = f32x4.add(dA0, f32x4.mul(t1, dl));
        ddl = f32x4.add(ddl, f32x4.add(f32x4.mul(t1, a0), f32x4.mul(f32x4.mul(sn, Bn), ul)));
        v128.store(pdb + o, f32x4.add(v128.load(pdb + o), f32x4.mul(sn, dluM)));
        dut = f32x4.add(dut, f32x4.mul(f32x4.mul(sn, dl), Bn));
        s0 = f32x4.mul(sn, e);
      }
      v128.store(ddls + tb, ddl);
      v128.store(duts + tb, dut);
    }
    v128.store(s + o, s0);
    v128.store(dAc + o, dA0);
  }
}

/**
 * Forward of one batch element. u, delta, z, out: (D, L); B, C: (G, N, L), every row of L values S apart
 * (S ≥ L: padded rows keep the 4 lanes' rows and the N rows of B, C out of one cache set); A: (D, N); Dv, bias: (D);
 * cs: (D, nChunks, N) states at chunk ends; last: (D, N) or 0. Scratch: K_COUNT + 2·N + 3·T vectors.
 * Lane blocks never straddle a group: `perGroup` channels per group are taken 4 at a time.
 *
 * A lane block goes through the length a chunk of T steps at a time: δ_l and δ_l·u_l of the chunk's steps
 * first (into `dls`, `dus`), then the states 4 at a time over the whole chunk, their h and A rows held in
 * registers, each adding its terms of y_l into `ys`, then the outputs. y_l sums the states in order n = 0, 1, …
 * as a state-by-state loop would, so the results are those of one step at a time over all states.
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
  const kc = scratch, nv = <usize> N << 4;
  const h = kc + (K_COUNT << 4), a = h + nv, dls = a + nv, dus = dls + (<usize> T << 4), ys = dus + (<usize> T << 4);
  writeExpConstants(kc);
  const lo = v128.load(kc, K_LO << 4), hi = v128.load(kc, K_HI << 4), log2e = v128.load(kc, K_LOG2E << 4);
  const round = v128.load(kc, K_ROUND << 4), ln2hi = v128.load(kc, K_LN2HI << 4);
  const ln2lo = v128.load(kc, K_LN2LO << 4);
  const p0 = v128.load(kc, K_P0 << 4), p1 = v128.load(kc, K_P1 << 4), p2 = v128.load(kc, K_P2 << 4);
  const p3 = v128.load(kc, K_P3 << 4), p4 = v128.load(kc, K_P4 << 4), p5 = v128.load(kc, K_P5 << 4);
  const one = v128.load(kc, K_ONE << 4);
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
      // the lanes' bias and D, each splatted (for the row-wise passes)
      const b0 = f32x4.splat(f32x4.extract_lane(bd, 0)), b1 = f32x4.splat(f32x4.extract_lane(bd, 1));
      const b2 = f32x4.splat(f32x4.extract_lane(bd, 2)), b3 = f32x4.splat(f32x4.extract_lane(bd, 3));
      const e0d = f32x4.splat(f32x4.extract_lane(dd, 0)), e1d = f32x4.splat(f32x4.extract_lane(dd, 1));
      const e2d = f32x4.splat(f32x4.extract_lane(dd, 2)), e3d = f32x4.splat(f32x4.extract_lane(dd, 3));
      const row0 = (<usize> d0 * <usize> S) << 2;
      for (let c = 0; c < nC; c++) {
        const l0 = c * T, len = min(L, l0 + T) - l0;
        const off0 = row0 + (<usize> l0 << 2);
        prepChunk(kc, delta, u, off0, r1, r2, r3, bd, b0, b1, b2, b3, softplus, len, dls, dus, ys);
        statesChunk(
          kc, h, a, N, bBase + (<usize> l0 << 2), cBase + (<usize> l0 << 2), rowBytes, dls, dus, ys, len, 0, 0, 0, 1,
        );
        const len4 = len & ~3;
        // out = (y + D·u)·silu(z), 4 steps of each row at a time from the transposed y
        for (let t = 0; t < len4; t += 4) {
          const off = off0 + (<usize> t << 2), tb = ys + (<usize> t << 4);
          const q0 = v128.load(tb), q1 = v128.load(tb, 16), q2 = v128.load(tb, 32), q3 = v128.load(tb, 48);
          const w0 = i32x4.shuffle(q0, q1, 0, 4, 1, 5), w1 = i32x4.shuffle(q0, q1, 2, 6, 3, 7);
          const w2 = i32x4.shuffle(q2, q3, 0, 4, 1, 5), w3 = i32x4.shuffle(q2, q3, 2, 6, 3, 7);
          outRow(out + off, u + off, z ? z + off : 0, i32x4.shuffle(w0, w2, 0, 1, 4, 5), e0d,
            lo, hi, log2e, round, ln2hi, ln2lo, p0, p1, p2, p3, p4, p5, one);
          if (lanes > 1) {
            outRow(out + off + r1, u + off + r1, z ? z + off + r1 : 0, i32x4.shuffle(w0, w2, 2, 3, 6, 7), e1d,
              lo, hi, log2e, round, ln2hi, ln2lo, p0, p1, p2, p3, p4, p5, one);
          }
          if (lanes > 2) {
            outRow(out + off + r2, u + off + r2, z ? z + off + r2 : 0, i32x4.shuffle(w1, w3, 0, 1, 4, 5), e2d,
              lo, hi, log2e, round, ln2hi, ln2lo, p0, p1, p2, p3, p4, p5, one);
          }
          if (lanes > 3) {
            outRow(out + off + r3, u + off + r3, z ? z + off + r3 : 0, i32x4.shuffle(w1, w3, 2, 3, 6, 7), e3d,
              lo, hi, log2e, round, ln2hi, ln2lo, p0, p1, p2, p3, p4, p5, one);
          }
        }
        for (let t = len4; t < len; t++) {
          const off = off0 + (<usize> t << 2);
          let v = f32x4.add(v128.load(ys + (<usize> t << 4)), f32x4.mul(dd, load4(u + off, r1, r2, r3)));
          if (z) {
            const zv = load4(z + off, r1, r2, r3);
            v = f32x4.mul(v, f32x4.mul(zv, vsigmoid(zv)));
          }
          store4(out + off, rowBytes, v, lanes);
        }
        for (let n = 0; n < N; n++) {
          store4(
            cs + ((<usize> ((d0 * nC + c) * N + n)) << 2),
            (<usize> (nC * N)) << 2,
            v128.load(h + (<usize> n << 4)),
            lanes,
          );
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
 * their decays in `ea` (T·N vectors) by the forward's statesChunk; then the adjoint runs over the chunk
 * (adjointChunk). Chunks are the outer loop and a group's lane blocks the inner one, so that the chunk's dB, dC
 * lane sums stay in cache. Scratch: K_COUNT constants, hs, ea, 8 vectors per step of a chunk (dls, dus, ys, gys,
 * uls, dms, duts, ddls), a, dAc (N vectors each), dB4, dC4 (T·N vectors each), the adjoint states of a group's
 * lane blocks (⌈perGroup/4⌉·N vectors).
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
  const kc = scratch, hs = kc + (K_COUNT << 4), ea = hs + <usize> (T + 1) * nv, dls = ea + <usize> T * nv;
  const dus = dls + (<usize> T << 4), ys = dus + (<usize> T << 4);
  const a = ys + (<usize> T << 4), dAc = a + nv;
  // the adjoint's per-step vectors (gms reuses dus, free once the chunk's states are recomputed)
  const gys = dAc + nv, uls = gys + (<usize> T << 4), dms = uls + (<usize> T << 4), duts = dms + (<usize> T << 4);
  const ddls = duts + (<usize> T << 4), gms = dus;
  writeExpConstants(kc);
  const lo = v128.load(kc, K_LO << 4), hi = v128.load(kc, K_HI << 4), log2e = v128.load(kc, K_LOG2E << 4);
  const round = v128.load(kc, K_ROUND << 4), ln2hi = v128.load(kc, K_LN2HI << 4);
  const ln2lo = v128.load(kc, K_LN2LO << 4);
  const p0 = v128.load(kc, K_P0 << 4), p1 = v128.load(kc, K_P1 << 4), p2 = v128.load(kc, K_P2 << 4);
  const p3 = v128.load(kc, K_P3 << 4), p4 = v128.load(kc, K_P4 << 4), p5 = v128.load(kc, K_P5 << 4);
  const one = v128.load(kc, K_ONE << 4);
  // per-lane dB, dC sums of a chunk's steps over the group's lane blocks, (T, N) vectors each: one horizontal
  // sum per (n, l) and group instead of one per lane block; then the adjoint states of every lane block of
  // the group (N vectors each), which carry from chunk to chunk
  const dB4 = ddls + (<usize> T << 4), dC4 = dB4 + <usize> T * nv, sAll = dC4 + <usize> T * nv;
  const gBytes = (<usize> N * <usize> S) << 2;
  for (let g = 0; g < G; g++) {
    const bBase = B + <usize> g * gBytes, cBase = C + <usize> g * gBytes;
    const blocks = (perGroup + 3) >> 2;
    memory.fill(sAll, 0, <usize> blocks * nv);
    // chunks outside, lane blocks inside: a chunk's dB, dC sums stay in cache while every lane block adds to them
    for (let c = nC - 1; c >= 0; c--) {
      const l0 = c * T, len = min(L, l0 + T) - l0;
      memory.fill(dB4, 0, <usize> len * nv);
      memory.fill(dC4, 0, <usize> len * nv);
      for (let j = 0; j < perGroup; j += 4) {
        const d0 = g * perGroup + j;
        const lanes = min(4, perGroup - j);
        const r1 = laneOffset(1, lanes, rowBytes),
          r2 = laneOffset(2, lanes, rowBytes),
          r3 = laneOffset(3, lanes, rowBytes);
        // a lane that repeats lane 0 must add nothing to the shared dB, dC: mask it out
        const mask = f32x4(1, lanes > 1 ? 1 : 0, lanes > 2 ? 1 : 0, lanes > 3 ? 1 : 0);
        const s = sAll + <usize> (j >> 2) * nv;
        for (let n = 0; n < N; n++) {
          v128.store(a + (<usize> n << 4), gather4(A + ((<usize> (d0 * N + n)) << 2), <usize> N << 2, lanes));
        }
        const bd = bias ? gather4(bias + (<usize> d0 << 2), 4, lanes) : f32x4.splat(0);
        const Dd = Dv ? gather4(Dv + (<usize> d0 << 2), 4, lanes) : f32x4.splat(0);
        const b0 = f32x4.splat(f32x4.extract_lane(bd, 0)), b1 = f32x4.splat(f32x4.extract_lane(bd, 1));
        const b2 = f32x4.splat(f32x4.extract_lane(bd, 2)), b3 = f32x4.splat(f32x4.extract_lane(bd, 3));
        const row0 = (<usize> d0 * <usize> S) << 2;
        let accD = f32x4.splat(0), accBias = f32x4.splat(0);
        for (let n = 0; n < N; n++) {
          const hv = c === 0
            ? f32x4.splat(0)
            : gather4(cs + ((<usize> ((d0 * nC + c - 1) * N + n)) << 2), (<usize> (nC * N)) << 2, lanes);
          v128.store(hs + (<usize> n << 4), hv);
          v128.store(dAc + (<usize> n << 4), f32x4.splat(0));
        }
        // recompute the chunk's states and decays (into hs, ea) and y (into ys)
        prepChunk(kc, delta, u, row0 + (<usize> l0 << 2), r1, r2, r3, bd, b0, b1, b2, b3, softplus, len, dls, dus, ys);
        // y only for the z gate's gradient
        if (z) {
          statesChunk(
            kc, hs, a, N, bBase + (<usize> l0 << 2), cBase + (<usize> l0 << 2), rowBytes, dls, dus, ys, len, 1, hs, ea, 1,
          );
        } else {
          statesChunk(
            kc, hs, a, N, bBase + (<usize> l0 << 2), cBase + (<usize> l0 << 2), rowBytes, dls, dus, ys, len, 1, hs, ea, 0,
          );
        }
        // adjoint recurrence, last step first. The per-step terms first (gy after the gate, and what the
        // states need of it), then the states 4 at a time over the chunk with s, the dA sums and A in registers
        // (ddl, du accumulate per step in scratch, in the order n = 0, 1, …), then the per-step outputs.
        for (let t = len - 1; t >= 0; t--) {
          const l = l0 + t, off = row0 + (<usize> l << 2), tb = <usize> t << 4;
          const ul = load4(u + off, r1, r2, r3), dl = v128.load(dls + tb);
          let gy = load4(gout + off, r1, r2, r3);
          if (z) {
            const zv = load4(z + off, r1, r2, r3), sg = sigmoidK(zv, lo, hi, log2e, round, ln2hi, ln2lo, p0, p1, p2, p3, p4, p5, one);
            const y = f32x4.add(v128.load(ys + tb), f32x4.mul(Dd, ul));
            // d silu(z)/dz = sg·(1 + z·(1 − sg))
            const dsilu = f32x4.mul(sg, f32x4.add(f32x4.splat(1), f32x4.mul(zv, f32x4.sub(f32x4.splat(1), sg))));
            store4(dz + off, rowBytes, f32x4.mul(f32x4.mul(gy, y), dsilu), lanes);
            gy = f32x4.mul(gy, f32x4.mul(zv, sg));
          }
          accD = f32x4.add(accD, f32x4.mul(gy, ul));
          v128.store(gys + tb, gy);
          v128.store(uls + tb, ul);
          v128.store(gms + tb, f32x4.mul(gy, mask));
          v128.store(dms + tb, f32x4.mul(f32x4.mul(dl, ul), mask));
          v128.store(duts + tb, f32x4.mul(gy, Dd));
          v128.store(ddls + tb, f32x4.splat(0));
        }
        adjointChunk(
          s, dAc, a, hs, ea, N, bBase + (<usize> l0 << 2), cBase + (<usize> l0 << 2), rowBytes,
          dB4, dC4, dls, gys, uls, gms, dms, duts, ddls, len,
        );
        for (let t = len - 1; t >= 0; t--) {
          const l = l0 + t, off = row0 + (<usize> l << 2), tb = <usize> t << 4;
          store4(du + off, rowBytes, v128.load(duts + tb), lanes);
          let ddl = v128.load(ddls + tb);
          if (softplus) {
            // d softplus(raw)/d raw = sigmoid(raw); torch's threshold makes it exactly 1 above 20
            const raw = f32x4.add(load4(delta + off, r1, r2, r3), bd);
            const sg = v128.bitselect(f32x4.splat(1), sigmoidK(raw, lo, hi, log2e, round, ln2hi, ln2lo, p0, p1, p2, p3, p4, p5, one), f32x4.gt(raw, f32x4.splat(20)));
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
      // the chunk's dB, dC: lanes summed, (len, N) → (N, L)
      const dbBase = dB + <usize> g * gBytes, dcBase = dC + <usize> g * gBytes;
      for (let t = 0; t < len; t++) {
        for (let n = 0; n < N; n++) {
          const at = (<usize> (n * S + l0 + t)) << 2, v = <usize> t * nv + (<usize> n << 4);
          store<f32>(dbBase + at, hsum(v128.load(dB4 + v)));
          store<f32>(dcBase + at, hsum(v128.load(dC4 + v)));
        }
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
