// AssemblyScript: depthwise 2-D convolution of one image at stride 1 (any kernel size, padding, dilation),
// forward and both gradients, vectorised along the image rows (f32x4); 3×3 "same" kernels (the SSM blocks')
// sum each output in registers (dw3x3). The scalar loops of
// autodiff/backends/cpu/backend.ts are the reference; the host calls these per image with the image's
// planes laid out as (C, H, W) and the output as (C, OH, OW).

/** dst[i] += a·src[i] for i < n. */
@inline function axpy(dst: usize, src: usize, a: f32, n: i32): void {
  const av = f32x4.splat(a);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = <usize> i << 2;
    v128.store(dst + o, f32x4.add(v128.load(dst + o), f32x4.mul(av, v128.load(src + o))));
    v128.store(dst + o, f32x4.add(v128.load(dst + o, 16), f32x4.mul(av, v128.load(src + o, 16))), 16);
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize> i << 2;
    v128.store(dst + o, f32x4.add(v128.load(dst + o), f32x4.mul(av, v128.load(src + o))));
  }
  for (; i < n; i++) {
    const o = <usize> i << 2;
    store<f32>(dst + o, load<f32>(dst + o) + a * load<f32>(src + o));
  }
}

/** Σ a[i]·b[i] for i < n. */
@inline function dot(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize> i << 2;
    acc = f32x4.add(acc, f32x4.mul(v128.load(a + o), v128.load(b + o)));
  }
  let s = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  for (; i < n; i++) s += load<f32>(a + (<usize> i << 2)) * load<f32>(b + (<usize> i << 2));
  return s;
}

/**
 * Visits every (channel, output row, tap) whose input row lies inside the image, with the valid output
 * columns [lo, hi) and the input column shift: the loop nest all three kernels share. mode 0: forward
 * (out row += w·x row), 1: input gradient (gx row += w·gy row), 2: weight gradient (dw += gy row · x row).
 */
@inline function taps(
  mode: i32, x: usize, w: usize, y: usize,
  C: i32, H: i32, W: i32, KH: i32, KW: i32, OH: i32, OW: i32, padH: i32, padW: i32, dilH: i32, dilW: i32,
): void {
  const KK = KH * KW;
  for (let c = 0; c < C; c++) {
    for (let oh = 0; oh < OH; oh++) {
      const yRow = y + ((<usize> ((c * OH + oh) * OW)) << 2);
      if (mode === 0) memory.fill(yRow, 0, <usize> OW << 2);
      for (let ki = 0; ki < KH; ki++) {
        const ih = oh - padH + ki * dilH;
        if (ih < 0 || ih >= H) continue;
        for (let kj = 0; kj < KW; kj++) {
          const shift = kj * dilW - padW;
          const lo = max(0, -shift), hi = min(OW, W - shift);
          if (lo >= hi) continue;
          const xAt = x + ((<usize> ((c * H + ih) * W + lo + shift)) << 2);
          const yAt = yRow + (<usize> lo << 2);
          const wAt = w + ((<usize> (c * KK + ki * KW + kj)) << 2);
          if (mode === 0) axpy(yAt, xAt, load<f32>(wAt), hi - lo);
          else if (mode === 1) axpy(xAt, yAt, load<f32>(wAt), hi - lo);
          else store<f32>(wAt, load<f32>(wAt) + dot(yAt, xAt, hi - lo));
        }
      }
    }
  }
}

const ZERO = f32x4.splat(0);

/**
 * acc + the three taps of one input row at output columns col..col+3: its columns −1, 0, +1 around them with
 * weights w0, w1, w2 (with `rev`, columns +1, 0, −1); p, c, n are the row's columns col−4.., col.., col+4...
 */
@inline function rowTaps(acc: v128, p: v128, c: v128, n: v128, w0: v128, w1: v128, w2: v128, rev: bool): v128 {
  const l = i32x4.shuffle(p, c, 3, 4, 5, 6), r = i32x4.shuffle(c, n, 1, 2, 3, 4);
  const first = rev ? r : l, last = rev ? l : r;
  return f32x4.add(f32x4.add(f32x4.add(acc, f32x4.mul(w0, first)), f32x4.mul(w1, c)), f32x4.mul(w2, last));
}

/**
 * One output row o of {@link dw3x3} from the input rows t (above), m and b (below); hasT and hasB are constants
 * at every call, so each of the four variants compiles without the row tests (3× faster than testing per block).
 */
@inline function row3(
  o: usize, t: usize, m: usize, b: usize, W: i32, hasT: bool, hasB: bool,
  w0: v128, w1: v128, w2: v128, w3: v128, w4: v128, w5: v128, w6: v128, w7: v128, w8: v128, rev: bool,
): void {
  let pt = ZERO, pm = ZERO, pb = ZERO;
  let ct = hasT ? v128.load(t) : ZERO, cm = v128.load(m), cb = hasB ? v128.load(b) : ZERO;
  const end = <usize> (W - 4) << 2;
  let at: usize = 0;
  for (; at < end; at += 16) {
    const nt = hasT ? v128.load(t + at, 16) : ZERO;
    const nm = v128.load(m + at, 16);
    const nb = hasB ? v128.load(b + at, 16) : ZERO;
    let acc = ZERO;
    if (hasT) acc = rowTaps(acc, pt, ct, nt, w0, w1, w2, rev);
    acc = rowTaps(acc, pm, cm, nm, w3, w4, w5, rev);
    if (hasB) acc = rowTaps(acc, pb, cb, nb, w6, w7, w8, rev);
    v128.store(o + at, acc);
    pt = ct;
    ct = nt;
    pm = cm;
    cm = nm;
    pb = cb;
    cb = nb;
  }
  // the last block: nothing right of the row
  let acc = ZERO;
  if (hasT) acc = rowTaps(acc, pt, ct, ZERO, w0, w1, w2, rev);
  acc = rowTaps(acc, pm, cm, ZERO, w3, w4, w5, rev);
  if (hasB) acc = rowTaps(acc, pb, cb, ZERO, w6, w7, w8, rev);
  v128.store(o + at, acc);
}

/**
 * The common case in registers: a 3×3 kernel at padding 1, dilation 1, W a multiple of 4, out (C, H, W) from
 * inp (C, H, W). Each output sums the rows above, at and below it with weight rows k[0], k[1], k[2] (k = w, or
 * w's rows reversed with `rev`), each row's taps left to right (right to left with `rev`): the forward, and with
 * `rev` the input gradient, in the order the row-update loops below add them, so the sums are the same floats.
 * Columns outside the image read as 0, which adds +0 to a sum that is never −0: the same as skipping the tap.
 */
function dw3x3(inp: usize, w: usize, out: usize, C: i32, H: i32, W: i32, rev: bool): void {
  const rowBytes = <usize> W << 2;
  for (let c = 0; c < C; c++) {
    const k = w + ((<usize> (c * 9)) << 2);
    const top = rev ? k + 24 : k, bottom = rev ? k : k + 24;
    const w0 = v128.load32_splat(top), w1 = v128.load32_splat(top, 4), w2 = v128.load32_splat(top, 8);
    const w3 = v128.load32_splat(k, 12), w4 = v128.load32_splat(k, 16), w5 = v128.load32_splat(k, 20);
    const w6 = v128.load32_splat(bottom), w7 = v128.load32_splat(bottom, 4), w8 = v128.load32_splat(bottom, 8);
    const plane = inp + (<usize> (c * H) * rowBytes);
    for (let r = 0; r < H; r++) {
      const m = plane + <usize> r * rowBytes, t = m - rowBytes, b = m + rowBytes;
      const hasT = r > 0, hasB = r + 1 < H;
      const o = out + (<usize> (c * H + r) * rowBytes);
      if (hasT && hasB) row3(o, t, m, b, W, true, true, w0, w1, w2, w3, w4, w5, w6, w7, w8, rev);
      else if (hasT) row3(o, t, m, b, W, true, false, w0, w1, w2, w3, w4, w5, w6, w7, w8, rev);
      else if (hasB) row3(o, t, m, b, W, false, true, w0, w1, w2, w3, w4, w5, w6, w7, w8, rev);
      else row3(o, t, m, b, W, false, false, w0, w1, w2, w3, w4, w5, w6, w7, w8, rev);
    }
  }
}

/** Whether {@link dw3x3} computes this geometry (output size = input size). */
@inline function is3x3Same(H: i32, W: i32, KH: i32, KW: i32, OH: i32, OW: i32, padH: i32, padW: i32, dilH: i32, dilW: i32): bool {
  return KH == 3 && KW == 3 && padH == 1 && padW == 1 && dilH == 1 && dilW == 1 && OH == H && OW == W && W % 4 == 0;
}

/** out (C, OH, OW) = depthwise conv of x (C, H, W) with w (C, KH, KW). */
export function dwForward(
  x: usize, w: usize, out: usize,
  C: i32, H: i32, W: i32, KH: i32, KW: i32, OH: i32, OW: i32, padH: i32, padW: i32, dilH: i32, dilW: i32,
): void {
  if (is3x3Same(H, W, KH, KW, OH, OW, padH, padW, dilH, dilW)) {
    dw3x3(x, w, out, C, H, W, false);
    return;
  }
  taps(0, x, w, out, C, H, W, KH, KW, OH, OW, padH, padW, dilH, dilW);
}

/** gx (C, H, W) = the input gradient of gy (C, OH, OW). */
export function dwBackwardInput(
  gy: usize, w: usize, gx: usize,
  C: i32, H: i32, W: i32, KH: i32, KW: i32, OH: i32, OW: i32, padH: i32, padW: i32, dilH: i32, dilW: i32,
): void {
  if (is3x3Same(H, W, KH, KW, OH, OW, padH, padW, dilH, dilW)) {
    dw3x3(gy, w, gx, C, H, W, true);
    return;
  }
  memory.fill(gx, 0, (<usize> (C * H * W)) << 2);
  taps(1, gx, w, gy, C, H, W, KH, KW, OH, OW, padH, padW, dilH, dilW);
}

/** Horizontal sum of a vector's 4 lanes, lane 0 first. */
@inline function lanes(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/**
 * One weight row of {@link dwWeight3x3}: the sums over gy row g of gy·x for x row `xr`'s taps at columns −1, 0,
 * +1 (the shifted row vectors of {@link rowTaps}), added to a0, a1, a2 through the pointers' three vectors.
 */
@inline function weightRow(g: usize, xr: usize, W: i32, acc: usize): void {
  let a0 = v128.load(acc), a1 = v128.load(acc, 16), a2 = v128.load(acc, 32);
  let p = ZERO, c = v128.load(xr);
  const end = <usize> (W - 4) << 2;
  let at: usize = 0;
  for (; at < end; at += 16) {
    const n = v128.load(xr + at, 16), gv = v128.load(g + at);
    a0 = f32x4.add(a0, f32x4.mul(gv, i32x4.shuffle(p, c, 3, 4, 5, 6)));
    a1 = f32x4.add(a1, f32x4.mul(gv, c));
    a2 = f32x4.add(a2, f32x4.mul(gv, i32x4.shuffle(c, n, 1, 2, 3, 4)));
    p = c;
    c = n;
  }
  const gv = v128.load(g + at);
  a0 = f32x4.add(a0, f32x4.mul(gv, i32x4.shuffle(p, c, 3, 4, 5, 6)));
  a1 = f32x4.add(a1, f32x4.mul(gv, c));
  a2 = f32x4.add(a2, f32x4.mul(gv, i32x4.shuffle(c, ZERO, 1, 2, 3, 4)));
  v128.store(acc, a0);
  v128.store(acc, a1, 16);
  v128.store(acc, a2, 32);
}

/**
 * The weight gradient of {@link dw3x3}'s geometry: dw[c, ki, kj] += Σ gy[r, col]·x[r + ki − 1, col + kj − 1],
 * summed per lane over the plane in 9 vectors (at `acc`, 144 bytes of scratch) and the lanes added at the end.
 */
function dwWeight3x3(x: usize, gy: usize, dw: usize, C: i32, H: i32, W: i32, acc: usize): void {
  const rowBytes = <usize> W << 2;
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < 9; i++) v128.store(acc + (<usize> i << 4), ZERO);
    const plane = x + (<usize> (c * H) * rowBytes), gPlane = gy + (<usize> (c * H) * rowBytes);
    for (let r = 0; r < H; r++) {
      const g = gPlane + <usize> r * rowBytes, m = plane + <usize> r * rowBytes;
      if (r > 0) weightRow(g, m - rowBytes, W, acc);
      weightRow(g, m, W, acc + 48);
      if (r + 1 < H) weightRow(g, m + rowBytes, W, acc + 96);
    }
    const d = dw + ((<usize> (c * 9)) << 2);
    for (let i = 0; i < 9; i++) {
      const at = d + (<usize> i << 2);
      store<f32>(at, load<f32>(at) + lanes(v128.load(acc + (<usize> i << 4))));
    }
  }
}

/** dw (C, KH, KW) += the weight gradient of one image: x (C, H, W), gy (C, OH, OW); `acc`: 144 bytes of scratch. */
export function dwBackwardWeight(
  x: usize, gy: usize, dw: usize,
  C: i32, H: i32, W: i32, KH: i32, KW: i32, OH: i32, OW: i32, padH: i32, padW: i32, dilH: i32, dilW: i32,
  acc: usize,
): void {
  if (is3x3Same(H, W, KH, KW, OH, OW, padH, padW, dilH, dilW)) {
    dwWeight3x3(x, gy, dw, C, H, W, acc);
    return;
  }
  taps(2, x, dw, gy, C, H, W, KH, KW, OH, OW, padH, padW, dilH, dilW);
}
