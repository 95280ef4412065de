/**
 * The 2-D Hilbert curve exactly as MambaAD builds it: Skilling's decoding of the Hilbert integers, as coded in
 * the `hilbert` package (PrincetonLIPS/numpy-hilbert-curve, `decode(h, num_dims=2, num_bits)`), then flattened
 * with `loc0 + loc1 · size` (MambaAD `HSCANS.flat_locs_hilbert`), so coordinate 1 is the row and coordinate 0 the
 * column.
 *
 * @module
 */

/**
 * Decodes Hilbert integers into 2-D coordinates with Skilling's algorithm (Skilling 2004, "Programming the
 * Hilbert curve"), bit for bit as `hilbert.decode(h, 2, numBits)`: take the `2·numBits` low bits of `h` MSB
 * first, Gray-code them, de-interleave (bit `j` of dimension `d` is Gray bit `2j + d`), then undo the excess
 * work from the most significant bit down. Returns `[loc0, loc1]`, each read MSB first.
 *
 * @param h a Hilbert integer in `[0, 4^numBits)`
 * @param numBits bits per dimension (the curve covers a `2^numBits` square)
 */
export function hilbertDecode2d(h: number, numBits: number): [number, number] {
  const nb = numBits;
  const total = 2 * nb;
  // bits of h, MSB first
  const bits = new Uint8Array(total);
  for (let i = 0; i < total; i++) bits[i] = Math.floor(h / 2 ** (total - 1 - i)) & 1;
  // Gray code: g_i = b_i XOR b_{i-1} (b_{-1} = 0)
  const gray = new Uint8Array(total);
  for (let i = 0; i < total; i++) gray[i] = bits[i] ^ (i > 0 ? bits[i - 1] : 0);
  // de-interleave: G[d][j] = gray[2j + d], j indexing the bits of dimension d MSB first
  const g: Uint8Array[] = [new Uint8Array(nb), new Uint8Array(nb)];
  for (let j = 0; j < nb; j++) for (let d = 0; d < 2; d++) g[d][j] = gray[j * 2 + d];
  for (let bit = nb - 1; bit >= 0; bit--) {
    for (let dim = 1; dim >= 0; dim--) {
      const mask = g[dim][bit];
      for (let j = bit + 1; j < nb; j++) {
        // invert the lower bits of dimension 0 where the mask is set
        g[0][j] ^= mask;
        // otherwise exchange the lower bits of dimension 0 and `dim` where they differ
        const toFlip = (mask ^ 1) & (g[0][j] ^ g[dim][j]);
        g[dim][j] ^= toFlip;
        g[0][j] ^= toFlip;
      }
    }
  }
  const loc = [0, 0];
  for (let d = 0; d < 2; d++) for (let j = 0; j < nb; j++) loc[d] = loc[d] * 2 + g[d][j];
  return [loc[0], loc[1]];
}

/**
 * MambaAD's Hilbert scan of a `size × size` grid: `P[t]` is the row-major flat index (`row · size + col`) visited at
 * step `t`, with `row = loc1` and `col = loc0` of {@linkcode hilbertDecode2d}. The curve starts at the top-left
 * corner and ends at the top-right one; its orientation alternates with the parity of `log2(size)`.
 *
 * The official code computes `num_bits = int(log2(size))` and decodes `arange(size²)`, which is a permutation only
 * when `size` is a power of two (otherwise the high bits are dropped and the table repeats entries), so any other
 * size throws here.
 *
 * @throws RangeError when `size` is not a power of two (1 included: the 1×1 curve is `[0]`)
 */
export function hilbertPermutation(size: number): Int32Array {
  if (!Number.isInteger(size) || size < 1 || (size & (size - 1)) !== 0 || size > 2 ** 15) {
    throw new RangeError(
      `hilbert scan: the grid must be square with a power-of-two side (as MambaAD's HSCANS requires), got side ${size}`,
    );
  }
  const nb = Math.round(Math.log2(size));
  const n = size * size;
  const p = new Int32Array(n);
  for (let t = 0; t < n; t++) {
    const [loc0, loc1] = hilbertDecode2d(t, nb);
    p[t] = loc0 + loc1 * size;
  }
  return p;
}
