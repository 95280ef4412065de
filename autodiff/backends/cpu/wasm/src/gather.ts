// AssemblyScript: indexSelect and its gradient on x viewed as (outer, size, inner) for tensors in the kernels'
// memory (the host's tensor heap), rows [r0, r1) of `outer` per call. idx holds `count` int32 indices (checked by
// the host). The gradient adds in index order, as the host's loop does.

/** out (outer, count, inner) = x[:, idx, :]. */
export function gather(x: usize, idx: usize, out: usize, size: i32, count: i32, inner: i32, r0: i32, r1: i32): void {
  const innerBytes = <usize>inner << 2;
  for (let r = r0; r < r1; r++) {
    const src = x + <usize>r * <usize>size * innerBytes, dst = out + <usize>r * <usize>count * innerBytes;
    if (inner == 1) {
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
