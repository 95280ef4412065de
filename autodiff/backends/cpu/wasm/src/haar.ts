// AssemblyScript: Wave-MambaAD's Haar DWT and IWT (autodiff/backends/cpu/wavelet.ts has the definitions and the
// reference loops) on planes [p0, p1), 4 quads a vector: the same float32 operations in the same order, so the
// results are bitwise the loops' (and PyTorch's). Rows are split into even and odd columns by shuffles.

let HALF = f32x4.splat(0.5);

/** The four sub-bands of one quad (a = x[2i, 2j], b below it, c right of it, d diagonal), 4 quads a vector. */
@inline function bands(a: v128, b: v128, c: v128, d: v128, ll: usize, hl: usize, lh: usize, hh: usize): void {
  const x1 = f32x4.mul(a, HALF), x2 = f32x4.mul(b, HALF), x3 = f32x4.mul(c, HALF), x4 = f32x4.mul(d, HALF);
  v128.store(ll, f32x4.add(f32x4.add(f32x4.add(x1, x2), x3), x4));
  v128.store(hl, f32x4.add(f32x4.add(f32x4.sub(f32x4.neg(x1), x2), x3), x4));
  v128.store(lh, f32x4.add(f32x4.sub(f32x4.add(f32x4.neg(x1), x2), x3), x4));
  v128.store(hh, f32x4.add(f32x4.sub(f32x4.sub(x1, x2), x3), x4));
}

/** DWT of planes [p0, p1) of x (height × width each) into out's four bands (band k at k·bandBytes). */
export function haarDwt(x: usize, out: usize, planes: i32, height: i32, width: i32, p0: i32, p1: i32): void {
  const h = height >> 1, w = width >> 1, band = <usize>planes * <usize>h * <usize>w << 2;
  for (let p = p0; p < p1; p++) {
    const base = x + (<usize>p * <usize>height * <usize>width << 2);
    let q = out + (<usize>p * <usize>h * <usize>w << 2);
    for (let i = 0; i < h; i++) {
      const r0 = base + (<usize>(2 * i * width) << 2), r1 = r0 + (<usize>width << 2);
      let j = 0;
      for (; j + 4 <= w; j += 4, q += 16) {
        const at = <usize>j << 3;
        const u0 = v128.load(r0 + at), u1 = v128.load(r0 + at, 16), v0 = v128.load(r1 + at), v1 = v128.load(r1 + at, 16);
        const a = i32x4.shuffle(u0, u1, 0, 2, 4, 6), c = i32x4.shuffle(u0, u1, 1, 3, 5, 7);
        const b = i32x4.shuffle(v0, v1, 0, 2, 4, 6), d = i32x4.shuffle(v0, v1, 1, 3, 5, 7);
        bands(a, b, c, d, q, q + band, q + 2 * band, q + 3 * band);
      }
      for (; j < w; j++, q += 4) {
        const at = <usize>j << 3;
        const x1 = load<f32>(r0 + at) * 0.5, x2 = load<f32>(r1 + at) * 0.5;
        const x3 = load<f32>(r0 + at, 4) * 0.5, x4 = load<f32>(r1 + at, 4) * 0.5;
        store<f32>(q, x1 + x2 + x3 + x4);
        store<f32>(q + band, -x1 - x2 + x3 + x4);
        store<f32>(q + 2 * band, -x1 + x2 - x3 + x4);
        store<f32>(q + 3 * band, x1 - x2 - x3 + x4);
      }
    }
  }
}

/** IWT of planes [p0, p1): y's four bands (h × w planes, band k at k·bandBytes) into out (2h × 2w planes). */
export function haarIwt(y: usize, out: usize, planes: i32, h: i32, w: i32, p0: i32, p1: i32): void {
  const band = <usize>planes * <usize>h * <usize>w << 2, width = 2 * w;
  for (let p = p0; p < p1; p++) {
    let q = y + (<usize>p * <usize>h * <usize>w << 2);
    const base = out + (<usize>p * 4 * <usize>h * <usize>w << 2);
    for (let i = 0; i < h; i++) {
      const r0 = base + (<usize>(2 * i * width) << 2), r1 = r0 + (<usize>width << 2);
      let j = 0;
      for (; j + 4 <= w; j += 4, q += 16) {
        const x1 = f32x4.mul(v128.load(q), HALF), x2 = f32x4.mul(v128.load(q + band), HALF);
        const x3 = f32x4.mul(v128.load(q + 2 * band), HALF), x4 = f32x4.mul(v128.load(q + 3 * band), HALF);
        const a = f32x4.add(f32x4.sub(f32x4.sub(x1, x2), x3), x4), b = f32x4.sub(f32x4.add(f32x4.sub(x1, x2), x3), x4);
        const c = f32x4.sub(f32x4.sub(f32x4.add(x1, x2), x3), x4), d = f32x4.add(f32x4.add(f32x4.add(x1, x2), x3), x4);
        const at = <usize>j << 3;
        v128.store(r0 + at, i32x4.shuffle(a, c, 0, 4, 1, 5));
        v128.store(r0 + at, i32x4.shuffle(a, c, 2, 6, 3, 7), 16);
        v128.store(r1 + at, i32x4.shuffle(b, d, 0, 4, 1, 5));
        v128.store(r1 + at, i32x4.shuffle(b, d, 2, 6, 3, 7), 16);
      }
      for (; j < w; j++, q += 4) {
        const x1 = load<f32>(q) * 0.5, x2 = load<f32>(q + band) * 0.5;
        const x3 = load<f32>(q + 2 * band) * 0.5, x4 = load<f32>(q + 3 * band) * 0.5;
        const at = <usize>j << 3;
        store<f32>(r0 + at, x1 - x2 - x3 + x4);
        store<f32>(r1 + at, x1 - x2 + x3 - x4);
        store<f32>(r0 + at, x1 + x2 - x3 - x4, 4);
        store<f32>(r1 + at, x1 + x2 + x3 + x4, 4);
      }
    }
  }
}
