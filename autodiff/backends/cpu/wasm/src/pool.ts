// AssemblyScript: max pooling of (H, W) planes (the CPU backend's maxPool2d forward). Each window's in-image taps
// are scanned row-major and the first maximum kept (a tap replaces the running maximum when it is greater, or
// NaN), as autodiff/backends/cpu/pool.ts's loops do; the value and its flat index h·W + w in the plane are
// written. ResNet's 3×3, stride 2 windows go 4 outputs at a time (even and odd lanes of the rows' vectors).

// globals, not constants: V8 rebuilds a v128 constant at every use (see vmath.ts)
let NEG_INF = f32x4.splat(-Infinity);
/** Lane l's column offset 2l from the block's first column. */
let EVEN_LANES = i32x4(0, 2, 4, 6);

/** The kernel taps [lo, hi) whose position `start + k·dil` lies in [0, size). */
@inline function validLo(start: i32, dil: i32): i32 {
  return start >= 0 ? 0 : (-start + dil - 1) / dil;
}
@inline function validHi(start: i32, dil: i32, k: i32, size: i32): i32 {
  const last = size - 1 - start;
  return last < 0 ? 0 : min(k, last / dil + 1);
}

/** One output: the scan over its window's in-image taps. */
@inline function window(
  xb: usize, W: i32, h0: i32, w0: i32, k0: i32, k1: i32, j0: i32, j1: i32, DH: i32, DW: i32, o: usize, io: usize,
): void {
  let best: f32 = -Infinity;
  let at = (h0 + k0 * DH) * W + w0 + j0 * DW;
  for (let ki = k0; ki < k1; ki++) {
    const row = (h0 + ki * DH) * W + w0;
    for (let kj = j0; kj < j1; kj++) {
      const i = row + kj * DW;
      const v = load<f32>(xb + (<usize> i << 2));
      if (v > best || v != v) {
        best = v;
        at = i;
      }
    }
  }
  store<f32>(o, best);
  store<i32>(io, at);
}

/**
 * Planes [p0, p1) of x (planes, H, W) → out and idx (planes, OH, OW) (idx int32). Any kernel, stride, padding
 * and dilation; 3×3 windows at stride 2, dilation 1 are vectorised where all 3 columns of 4 outputs are inside.
 */
export function maxPoolForward(
  x: usize, out: usize, idx: usize, H: i32, W: i32, OH: i32, OW: i32, KH: i32, KW: i32,
  SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32, p0: i32, p1: i32,
): void {
  const plane = H * W, L = OH * OW;
  const vector = KW == 3 && SW == 2 && DW == 1 && DH == 1;
  // outputs [vLo, vHi) have whole windows in their columns, and their 4-output blocks read no further than
  // column 2·(block start) − PW + 15 (the next block's vectors): inside the row
  const vLo = vector ? (PW + 1) / 2 : 0;
  let vHi = vLo;
  if (vector) while (vHi + 4 <= OW && 2 * vHi - PW + 15 <= W - 1) vHi += 4;
  for (let pl = p0; pl < p1; pl++) {
    const xb = x + (<usize> (pl * plane) << 2);
    for (let oh = 0; oh < OH; oh++) {
      const h0 = oh * SH - PH, k0 = validLo(h0, DH), k1 = max(k0, validHi(h0, DH, KH, H));
      const o = out + (<usize> (pl * L + oh * OW) << 2), io = idx + (<usize> (pl * L + oh * OW) << 2);
      for (let ow = 0; ow < vLo; ow++) {
        const w0 = ow * SW - PW;
        const j0 = validLo(w0, DW), j1 = max(j0, validHi(w0, DW, KW, W));
        window(xb, W, h0, w0, k0, k1, j0, j1, DH, DW, o + (<usize> ow << 2), io + (<usize> ow << 2));
      }
      for (let ow = vLo; ow < vHi; ow += 4) {
        const c = 2 * ow - PW;
        let best = NEG_INF;
        let at = i32x4.add(EVEN_LANES, i32x4.splat((h0 + k0) * W + c));
        for (let ki = k0; ki < k1; ki++) {
          const rowAt = (h0 + ki) * W + c, p = xb + (<usize> rowAt << 2);
          const a = v128.load(p), b = v128.load(p, 16), n = v128.load(p, 32), m = v128.load(p, 48);
          const even = i32x4.shuffle(a, b, 0, 2, 4, 6), odd = i32x4.shuffle(a, b, 1, 3, 5, 7);
          const next = i32x4.shuffle(even, i32x4.shuffle(n, m, 0, 2, 4, 6), 1, 2, 3, 4);
          const base = i32x4.add(EVEN_LANES, i32x4.splat(rowAt));
          // each tap replaces the maximum where it is greater, or NaN
          let wins = v128.or(f32x4.gt(even, best), f32x4.ne(even, even));
          at = v128.bitselect(base, at, wins);
          best = v128.bitselect(even, best, wins);
          wins = v128.or(f32x4.gt(odd, best), f32x4.ne(odd, odd));
          at = v128.bitselect(i32x4.add(base, i32x4.splat(1)), at, wins);
          best = v128.bitselect(odd, best, wins);
          wins = v128.or(f32x4.gt(next, best), f32x4.ne(next, next));
          at = v128.bitselect(i32x4.add(base, i32x4.splat(2)), at, wins);
          best = v128.bitselect(next, best, wins);
        }
        v128.store(o + (<usize> ow << 2), best);
        v128.store(io + (<usize> ow << 2), at);
      }
      for (let ow = vHi; ow < OW; ow++) {
        const w0 = ow * SW - PW;
        const j0 = validLo(w0, DW), j1 = max(j0, validHi(w0, DW, KW, W));
        window(xb, W, h0, w0, k0, k1, j0, j1, DH, DW, o + (<usize> ow << 2), io + (<usize> ow << 2));
      }
    }
  }
}
