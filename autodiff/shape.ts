/**
 * Shape arithmetic shared by the op layer, both backends and the weight readers: element counts, row-major
 * strides, and the collapsing of a strided iteration into as few dims as possible.
 *
 * @module
 */

/** Number of elements of a shape (1 for a scalar's `[]`). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a contiguous shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/**
 * Simplifies a strided iteration over `shape` with one stride list per operand: drops size-1 dims and merges
 * adjacent dims that every operand walks contiguously, so inner loops run over rows as long as possible. The result
 * is empty (rank 0) when every dim has size 1.
 */
export function collapse(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, j) => outStrides[j][last] === s[d] * shape[d])) {
      outShape[last] *= shape[d];
      strides.forEach((s, j) => outStrides[j][last] = s[d]);
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, j) => outStrides[j].push(s[d]));
    }
  }
  return { shape: outShape, strides: outStrides };
}

/** {@linkcode collapse} as a `[shape, strides]` pair of rank ≥ 1 (all size-1 dims become one dim of size 1). */
export function coalesce(shape: readonly number[], strides: readonly (readonly number[])[]): [number[], number[][]] {
  const c = collapse(shape, strides);
  if (c.shape.length === 0) {
    c.shape.push(1);
    c.strides.forEach((s) => s.push(0));
  }
  return [c.shape, c.strides];
}
