// AssemblyScript: indexSelect and its gradient on x viewed as (outer, size, inner) for tensors in the kernels'
// memory (the host's tensor heap), rows [r0, r1) of `outer` per call. idx holds `count` int32 indices (checked by
// the host). The gradient adds in index order, as the host's loop does.

/** Where touch() leaves its sum, so the reads are not optimised away. */
let touched: f32 = 0;

/**
 * Reads one float of every 64-byte line of a row in order: sequential loads the hardware prefetches, so the
 * gather's reads in index order (a scan order's jumps) then hit the cache instead of missing a line at a time.
 */
@inline function touch(p: usize, n: i32): void {
  // 4 independent sums: the loads overlap instead of waiting on one chain of adds
  let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
  const end = p + (<usize>n << 2);
  let q = p;
  for (; q + 256 <= end; q += 256) {
    s0 += load<f32>(q);
    s1 += load<f32>(q, 64);
    s2 += load<f32>(q, 128);
    s3 += load<f32>(q, 192);
  }
  for (; q < end; q += 64) s0 += load<f32>(q);
  touched += s0 + s1 + s2 + s3;
}

/** out (outer, count, inner) = x[:, idx, :]. */
export function gather(x: usize, idx: usize, out: usize, size: i32, count: i32, inner: i32, r0: i32, r1: i32): void {
  const innerBytes = <usize>inner << 2;
  for (let r = r0; r < r1; r++) {
    const src = x + <usize>r * <usize>size * innerBytes, dst = out + <usize>r * <usize>count * innerBytes;
    if (inner == 1) {
      touch(src, size);
      for (let j = 0; j < count; j++) {
        store<f32>(dst + (<usize>j << 2), load<f32>(src + (<usize>load<i32>(idx + (<usize>j << 2)) << 2)));
      }
    } else {
      for (let j = 0; j < count; j++) {
        memory.copy(dst + <usize>j * innerBytes, src + <usize>load<i32>(idx + (<usize>j << 2)) * innerBytes, innerBytes);
      }
    }
  }
}

/** out (outer, size, inner) = 0, then out[:, idx[j], :] += g[:, j, :] for j = 0, 1, … (rows [r0, r1)). */
export function scatterAdd(g: usize, idx: usize, out: usize, size: i32, count: i32, inner: i32, r0: i32, r1: i32): void {
  const innerBytes = <usize>inner << 2;
  memory.fill(out + <usize>r0 * <usize>size * innerBytes, 0, <usize>(r1 - r0) * <usize>size * innerBytes);
  for (let r = r0; r < r1; r++) {
    const dst = out + <usize>r * <usize>size * innerBytes, src = g + <usize>r * <usize>count * innerBytes;
    for (let j = 0; j < count; j++) {
      const d = dst + <usize>load<i32>(idx + (<usize>j << 2)) * innerBytes, s = src + <usize>j * innerBytes;
      for (let i = 0; i < inner; i++) {
        const at = <usize>i << 2;
        store<f32>(d + at, load<f32>(d + at) + load<f32>(s + at));
      }
    }
  }
}
