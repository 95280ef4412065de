// AssemblyScript: strided copies between float32 tensors in the kernels' memory (the host's tensor heap): the
// general copy walks a coalesced (n0, n1, n2, len) shape row by row, each row split over threads by [r0, r1);
// `transpose` is the permute whose destination rows walk the source with a stride, done in 4×4 SIMD blocks inside
// square tiles so both sides stay in cache.

import { rowStart } from "./rows";

/** Rows [r0, r1) of the (n0, n1, n2, len) walk: dst[i0·d0 + i1·d1 + i2·d2 + j·dl] = src[i0·s0 + … + j·sl]. */
export function copy(
  src: usize, dst: usize, n1: i32, n2: i32, len: i32,
  s0: i32, s1: i32, s2: i32, sl: i32, d0: i32, d1: i32, d2: i32, dl: i32, r0: i32, r1: i32,
): void {
  for (let r = r0; r < r1; r++) {
    const ps = src + rowStart(r, n1, n2, s0, s1, s2), pd = dst + rowStart(r, n1, n2, d0, d1, d2);
    if (sl === 1 && dl === 1) {
      memory.copy(pd, ps, <usize>len << 2);
      continue;
    }
    if (sl === 2 && dl === 1) {
      stride2Row(ps, pd, len);
      continue;
    }
    if (sl === -1 && dl === 1) {
      reversedRow(ps, pd, len);
      continue;
    }
    const sb = <usize>sl << 2, db = <usize>dl << 2;
    let a = ps, b = pd;
    for (let j = 0; j < len; j++, a += sb, b += db) store<f32>(b, load<f32>(a));
  }
}

/** dst[j] = src[−j] for j < len (a flip): 4 elements a load, lanes reversed. */
@inline function reversedRow(src: usize, dst: usize, len: i32): void {
  let j = 0;
  for (; j + 4 <= len; j += 4, dst += 16) {
    const v = v128.load(src - (<usize> (j + 3) << 2));
    v128.store(dst, i32x4.shuffle(v, v, 3, 2, 1, 0));
  }
  for (; j < len; j++, dst += 4) store<f32>(dst, load<f32>(src - (<usize> j << 2)));
}

/**
 * dst[j] = src[2j] for j < len (a stride-2 conv's unfolding): the even lanes of two loads per 4 outputs. A vector
 * reads one float past the last it keeps, so the vectors stop while that float is still in the row.
 */
@inline function stride2Row(src: usize, dst: usize, len: i32): void {
  let j = 0;
  for (; j + 5 <= len; j += 4, src += 32, dst += 16) {
    v128.store(dst, i32x4.shuffle(v128.load(src), v128.load(src, 16), 0, 2, 4, 6));
  }
  for (; j < len; j++, src += 8, dst += 4) store<f32>(dst, load<f32>(src));
}

/** Side of the square tiles: 16 rows of a source tile in flight (32 thrashed L1 when rows lie 4 KB apart: 1.2-1.8x). */
const TILE = 16;

/**
 * dst[a·dj + l] = src[a + l·sl] for a in [a0, a1) and l in [0, nl): the source is contiguous along a, the
 * destination along l.
 */
export function transpose(src: usize, dst: usize, nl: i32, sl: i32, dj: i32, a0: i32, a1: i32): void {
  const ss = <usize>sl << 2, ds = <usize>dj << 2;
  for (let t0 = a0; t0 < a1; t0 += TILE) {
    const t1 = min(a1, t0 + TILE);
    for (let u0 = 0; u0 < nl; u0 += TILE) {
      const u1 = min(nl, u0 + TILE);
      let a = t0;
      for (; a + 4 <= t1; a += 4) {
        let l = u0;
        for (; l + 4 <= u1; l += 4) {
          // four source rows (l .. l+3) of four values (a .. a+3) become four destination rows
          const s = src + (<usize>a << 2) + <usize>l * ss;
          const v0 = v128.load(s), v1 = v128.load(s + ss), v2 = v128.load(s + 2 * ss), v3 = v128.load(s + 3 * ss);
          const t0 = i32x4.shuffle(v0, v1, 0, 4, 1, 5), t1 = i32x4.shuffle(v2, v3, 0, 4, 1, 5);
          const t2 = i32x4.shuffle(v0, v1, 2, 6, 3, 7), t3 = i32x4.shuffle(v2, v3, 2, 6, 3, 7);
          const d = dst + <usize>a * ds + (<usize>l << 2);
          v128.store(d, i32x4.shuffle(t0, t1, 0, 1, 4, 5));
          v128.store(d + ds, i32x4.shuffle(t0, t1, 2, 3, 6, 7));
          v128.store(d + 2 * ds, i32x4.shuffle(t2, t3, 0, 1, 4, 5));
          v128.store(d + 3 * ds, i32x4.shuffle(t2, t3, 2, 3, 6, 7));
        }
        for (; l < u1; l++) {
          for (let k = 0; k < 4; k++) {
            store<f32>(dst + <usize>(a + k) * ds + (<usize>l << 2), load<f32>(src + (<usize>(a + k) << 2) + <usize>l * ss));
          }
        }
      }
      for (; a < t1; a++) {
        for (let l = u0; l < u1; l++) {
          store<f32>(dst + <usize>a * ds + (<usize>l << 2), load<f32>(src + (<usize>a << 2) + <usize>l * ss));
        }
      }
    }
  }
}
