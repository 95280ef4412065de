// AssemblyScript: the row walk shared by the heap kernels (binary.ts, copy.ts): row r of a coalesced
// (n0, n1, n2, len) shape starts at element i0·s0 + i1·s1 + i2·s2 of an operand with strides (s0, s1, s2).

/** Byte offset of row r's first element for strides (s0, s1, s2), in elements. */
@inline export function rowStart(r: i32, n1: i32, n2: i32, s0: i32, s1: i32, s2: i32): usize {
  const i2 = r % n2, q = r / n2, i1 = q % n1, i0 = q / n1;
  return <usize>(i0 * s0 + i1 * s1 + i2 * s2) << 2;
}
