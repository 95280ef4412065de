/**
 * Index ops: gather / indexSelect along an axis with int32 indices, and scatterAdd.
 *
 * @module
 */

import { record, Tensor } from "../tensor.ts";
import { reshape } from "./shape.ts";
import { fmt, normAxis, numel, sameDevice } from "./util.ts";
import { contiguousStrides } from "../shape.ts";

function checkIndex(op: string, x: Tensor, axis: number, index: Tensor, indexShapeOk: boolean): void {
  sameDevice(op, x, index);
  if (index.dtype !== "int32") {
    throw new TypeError(`${op}: index must be int32, got ${index.dtype} ${fmt(index.shape)}`);
  }
  if (!indexShapeOk) {
    throw new Error(`${op}: index shape ${fmt(index.shape)} does not fit input ${fmt(x.shape)} along dim ${axis}`);
  }
  // known ranges are checked here; unknown ones are checked by the CPU kernel, and the WebGPU kernel
  // reads nothing out of bounds (it writes 0)
  const range = index.storage.valueRange;
  const size = x.shape[axis];
  if (range && index.size > 0 && (range[0] < 0 || range[1] >= size)) {
    const bad = range[0] < 0 ? range[0] : range[1];
    throw new RangeError(
      `${op}: index ${bad} is out of range for dim ${axis} of size ${size} (input ${fmt(x.shape)}, index ${
        fmt(index.shape)
      })`,
    );
  }
}

/** torch.gather: `out[i][j][k] = x[i][index[i][j][k]][k]` (for dim 1). index has x's rank and fits inside it. */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  const axis = normAxis("gather", dim, x.ndim, x.shape);
  checkIndex(
    "gather",
    x,
    axis,
    index,
    index.ndim === x.ndim && index.shape.every((d, i) => i === axis || d <= x.shape[i]),
  );
  const buf = x.backend.gather(x.buffer, x.shape, axis, index.buffer, index.shape);
  const out = Tensor.fromBuffer(buf, index.shape, x.dtype, x.device);
  const inShape = x.shape;
  return record("gather", out, [x], [index], (g, [idx]) => [scatterAddRaw(inShape, axis, idx, g)]);
}

function scatterAddRaw(shape: readonly number[], axis: number, index: Tensor, src: Tensor): Tensor {
  const b = src.backend;
  const dst = b.fill(numel(shape), 0, src.dtype);
  b.scatterAddInto(dst, shape, axis, index.buffer, src.buffer, index.shape);
  return Tensor.fromBuffer(dst, shape, src.dtype, src.device);
}

/** Selects entries along `dim` by a 1-D int32 index (torch.index_select). */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  const axis = normAxis("indexSelect", dim, x.ndim, x.shape);
  checkIndex("indexSelect", x, axis, index, index.ndim === 1);
  // index_select is gather with the index broadcast over the other dims
  const shape = x.shape.map((d, i) => (i === axis ? index.shape[0] : d));
  const b = x.backend;
  if (b.indexSelect && b.indexSelectBackward) {
    // x as (outer, size, inner): one pass over the rows, the index read once per row
    const p = {
      outer: numel(x.shape.slice(0, axis)),
      size: x.shape[axis],
      inner: numel(x.shape.slice(axis + 1)),
      count: index.shape[0],
    };
    const buf = b.indexSelect(x.buffer, index.buffer, p);
    const out = Tensor.fromBuffer(buf, shape, x.dtype, x.device);
    return record("indexSelect", out, [x], [index], (g, [idx]) => [
      Tensor.fromBuffer(
        g.backend.indexSelectBackward!(g.buffer, idx.buffer, p),
        x.shape,
        g.dtype,
        g.device,
      ),
    ]);
  }
  const viewShape = x.shape.map((_, i) => (i === axis ? index.shape[0] : 1));
  const idx1 = reshape(index, viewShape);
  const strides = viewShape.map((_, i) => (i === axis ? 1 : 0));
  const full = b.alloc(numel(shape), "int32");
  b.stridedCopyInto(idx1.buffer, 0, strides, full, 0, contiguousStrides(shape), shape);
  idx1.dispose();
  const fullIdx = Tensor.fromBuffer(full, shape, "int32", x.device);
  fullIdx.storage.valueRange = index.storage.valueRange;
  const out = gather(x, axis, fullIdx);
  fullIdx.dispose();
  return out;
}

/** Out-of-place torch.scatter_add: a copy of x with `src[i]` added at the indexed positions along `dim`. */
export function scatterAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  const axis = normAxis("scatterAdd", dim, x.ndim, x.shape);
  checkIndex(
    "scatterAdd",
    x,
    axis,
    index,
    index.ndim === x.ndim && index.shape.every((d, i) => (i === axis || d <= x.shape[i]) && d <= src.shape[i]),
  );
  if (src.ndim !== x.ndim || src.dtype !== x.dtype) {
    throw new Error(
      `scatterAdd: src ${src.dtype} ${fmt(src.shape)} must match x ${x.dtype} ${fmt(x.shape)} in rank and dtype`,
    );
  }
  const b = x.backend;
  const dst = b.alloc(x.size, x.dtype);
  b.stridedCopyInto(x.buffer, 0, contiguousStrides(x.shape), dst, 0, contiguousStrides(x.shape), x.shape);
  // src may be larger than index: use the leading index-shaped block
  let srcC = src;
  if (src.shape.join() !== index.shape.join()) {
    const buf = b.alloc(index.size, src.dtype);
    b.stridedCopyInto(src.buffer, 0, contiguousStrides(src.shape), buf, 0, contiguousStrides(index.shape), index.shape);
    srcC = Tensor.fromBuffer(buf, index.shape, src.dtype, src.device);
  }
  b.scatterAddInto(dst, x.shape, axis, index.buffer, srcC.buffer, index.shape);
  if (srcC !== src) srcC.dispose();
  const out = Tensor.fromBuffer(dst, x.shape, x.dtype, x.device);
  const srcShape = src.shape;
  return record("scatterAdd", out, [x, src], [index], (g, [idx]) => {
    const gs = gather(g, axis, idx);
    if (srcShape.join() === idx.shape.join()) return [g, gs];
    // pad the gradient of the unused part of src with zeros
    const b2 = g.backend;
    const buf = b2.fill(numel(srcShape), 0, "float32");
    b2.stridedCopyInto(gs.buffer, 0, contiguousStrides(idx.shape), buf, 0, contiguousStrides(srcShape), idx.shape);
    return [g, Tensor.fromBuffer(buf, srcShape, "float32", g.device)];
  });
}
