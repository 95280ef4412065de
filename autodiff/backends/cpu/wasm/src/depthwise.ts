// AssemblyScript: depthwise 2-D convolution of one image at stride 1 (any kernel size, padding, dilation),
// forward and both gradients, vectorised along the image rows (f32x4). The scalar loops of
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

/** out (C, OH, OW) = depthwise conv of x (C, H, W) with w (C, KH, KW). */
export function dwForward(
  x: usize, w: usize, out: usize,
  C: i32, H: i32, W: i32, KH: i32, KW: i32, OH: i32, OW: i32, padH: i32, padW: i32, dilH: i32, dilW: i32,
): void {
  taps(0, x, w, out, C, H, W, KH, KW, OH, OW, padH, padW, dilH, dilW);
}

/** gx (C, H, W) = the input gradient of gy (C, OH, OW). */
export function dwBackwardInput(
  gy: usize, w: usize, gx: usize,
  C: i32, H: i32, W: i32, KH: i32, KW: i32, OH: i32, OW: i32, padH: i32, padW: i32, dilH: i32, dilW: i32,
): void {
  memory.fill(gx, 0, (<usize> (C * H * W)) << 2);
  taps(1, gx, w, gy, C, H, W, KH, KW, OH, OW, padH, padW, dilH, dilW);
}

/** dw (C, KH, KW) += the weight gradient of one image: x (C, H, W), gy (C, OH, OW). */
export function dwBackwardWeight(
  x: usize, gy: usize, dw: usize,
  C: i32, H: i32, W: i32, KH: i32, KW: i32, OH: i32, OW: i32, padH: i32, padW: i32, dilH: i32, dilW: i32,
): void {
  taps(2, x, dw, gy, C, H, W, KH, KW, OH, OW, padH, padW, dilH, dilW);
}
