/**
 * The CPU backend: plain TypeScript on typed arrays. It is the semantic reference for every kernel
 * and the fallback when no WebGPU adapter exists. Matrix products (and convolutions, which the op
 * layer lowers to im2col + matmul) go through {@linkcode sgemm}: OpenBLAS when present, else a
 * cache-blocked TypeScript kernel.
 *
 * @module
 */

import type {
  Backend,
  BackendBuffer,
  BinaryOp,
  DType,
  HostArray,
  Im2colParams,
  MatmulParams,
  MemoryInfo,
  ReduceOp,
  UnaryOp,
} from "../../backend.ts";
import { BINARY, UNARY } from "../../op_table.ts";
import { sgemm } from "./gemm.ts";

/** A CPU buffer: a typed array of the dtype's host type. */
export class CpuBuffer implements BackendBuffer {
  /** Backing storage. */
  readonly data: HostArray;
  /** Element type. */
  readonly dtype: DType;
  constructor(data: HostArray, dtype: DType) {
    this.data = data;
    this.dtype = dtype;
  }
  /** Number of elements. */
  get length(): number {
    return this.data.length;
  }
}

function newArray(length: number, dtype: DType): HostArray {
  if (dtype === "float32") return new Float32Array(length);
  if (dtype === "int32") return new Int32Array(length);
  return new Uint8Array(length);
}

function arr(b: BackendBuffer): HostArray {
  return (b as CpuBuffer).data;
}

let liveBytes = 0;
let liveBuffers = 0;

function make(length: number, dtype: DType): CpuBuffer {
  liveBytes += length * 4;
  liveBuffers++;
  return new CpuBuffer(newArray(length, dtype), dtype);
}

/** Visits every index tuple of `shape` in row-major order, calling `fn(flatOut, offA, offB, offC)`. */
function forEachStrided(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
  offsets: number[],
  fn: (i: number, offs: number[]) => void,
): void {
  const nd = shape.length;
  const total = shape.reduce((a, b) => a * b, 1);
  if (total === 0) return;
  const idx = new Array(nd).fill(0);
  const offs = offsets.slice();
  const k = strides.length;
  for (let i = 0; i < total; i++) {
    fn(i, offs);
    // increment the multi-index, updating every operand offset incrementally
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      for (let s = 0; s < k; s++) offs[s] += strides[s][d];
      if (idx[d] < shape[d]) break;
      for (let s = 0; s < k; s++) offs[s] -= strides[s][d] * shape[d];
      idx[d] = 0;
    }
  }
}

function checkGatherIndex(v: number, size: number, op: string): void {
  if (v < 0 || v >= size || !Number.isInteger(v)) {
    throw new RangeError(`${op}: index ${v} is out of range for an axis of size ${size}`);
  }
}

/** The CPU backend instance. */
export const cpuBackend: Backend = {
  device: "cpu",

  alloc(length: number, dtype: DType): BackendBuffer {
    return make(length, dtype);
  },
  free(buf: BackendBuffer): void {
    liveBytes -= buf.length * 4;
    liveBuffers--;
  },
  upload(data: HostArray, dtype: DType): BackendBuffer {
    const out = make(data.length, dtype);
    out.data.set(data);
    return out;
  },
  read(buf: BackendBuffer): Promise<HostArray> {
    return Promise.resolve(arr(buf).slice());
  },
  sync(): Promise<void> {
    return Promise.resolve();
  },
  memory(): MemoryInfo {
    return { bytes: liveBytes, buffers: liveBuffers, pooledBytes: 0 };
  },

  fill(length: number, value: number, dtype: DType): BackendBuffer {
    const out = make(length, dtype);
    out.data.fill(value);
    return out;
  },
  cast(x: BackendBuffer, dtype: DType): BackendBuffer {
    const src = arr(x);
    const out = make(src.length, dtype);
    const o = out.data;
    if (dtype === "bool") { for (let i = 0; i < src.length; i++) o[i] = src[i] !== 0 ? 1 : 0; }
    else if (dtype === "int32") { for (let i = 0; i < src.length; i++) o[i] = Math.trunc(src[i]); }
    else o.set(src);
    return out;
  },
  unary(op: UnaryOp, x: BackendBuffer): BackendBuffer {
    const f = UNARY[op].js;
    const src = arr(x);
    const out = make(src.length, op === "isnan" ? "bool" : x.dtype);
    const o = out.data;
    for (let i = 0; i < src.length; i++) o[i] = f(src[i]);
    return out;
  },
  binary(
    op: BinaryOp,
    a: BackendBuffer,
    b: BackendBuffer,
    shape: readonly number[],
    stridesA: readonly number[],
    stridesB: readonly number[],
  ): BackendBuffer {
    const def = BINARY[op];
    const f = def.js;
    const n = shape.reduce((p, q) => p * q, 1);
    const out = make(n, def.bool ? "bool" : a.dtype);
    const o = out.data, x = arr(a), y = arr(b);
    if (x.length === n && y.length === n && isContiguous(shape, stridesA) && isContiguous(shape, stridesB)) {
      for (let i = 0; i < n; i++) o[i] = f(x[i], y[i]);
    } else {
      forEachStrided(shape, [stridesA, stridesB], [0, 0], (i, offs) => {
        o[i] = f(x[offs[0]], y[offs[1]]);
      });
    }
    return out;
  },
  where(
    cond: BackendBuffer,
    a: BackendBuffer,
    b: BackendBuffer,
    shape: readonly number[],
    stridesCond: readonly number[],
    stridesA: readonly number[],
    stridesB: readonly number[],
  ): BackendBuffer {
    const n = shape.reduce((p, q) => p * q, 1);
    const out = make(n, a.dtype);
    const o = out.data, c = arr(cond), x = arr(a), y = arr(b);
    forEachStrided(shape, [stridesCond, stridesA, stridesB], [0, 0, 0], (i, offs) => {
      o[i] = c[offs[0]] !== 0 ? x[offs[1]] : y[offs[2]];
    });
    return out;
  },
  clamp(x: BackendBuffer, lo: number, hi: number): BackendBuffer {
    const src = arr(x);
    const out = make(src.length, x.dtype);
    const o = out.data;
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      o[i] = v < lo ? lo : v > hi ? hi : v;
    }
    return out;
  },
  affine(x: BackendBuffer, scale: number, shift: number): BackendBuffer {
    const src = arr(x);
    const out = make(src.length, x.dtype);
    const o = out.data;
    for (let i = 0; i < src.length; i++) o[i] = src[i] * scale + shift;
    return out;
  },
  stridedCopyInto(
    src: BackendBuffer,
    srcOffset: number,
    srcStrides: readonly number[],
    dst: BackendBuffer,
    dstOffset: number,
    dstStrides: readonly number[],
    shape: readonly number[],
  ): void {
    const s = arr(src), d = arr(dst);
    const nd = shape.length;
    // inner loop over the last axis for speed
    if (nd === 0) {
      d[dstOffset] = s[srcOffset];
      return;
    }
    const last = shape[nd - 1], ss = srcStrides[nd - 1], ds = dstStrides[nd - 1];
    const outer = shape.slice(0, nd - 1);
    forEachStrided(
      outer,
      [srcStrides.slice(0, nd - 1), dstStrides.slice(0, nd - 1)],
      [srcOffset, dstOffset],
      (_, o) => {
        let si = o[0], di = o[1];
        if (ss === 1 && ds === 1) {
          d.set(s.subarray(si, si + last), di);
          return;
        }
        for (let j = 0; j < last; j++, si += ss, di += ds) d[di] = s[si];
      },
    );
  },
  reduce(op: ReduceOp, x: BackendBuffer, outer: number, size: number, inner: number): BackendBuffer {
    const s = arr(x);
    const isArg = op === "argmax" || op === "argmin";
    const out = make(outer * inner, isArg ? "int32" : x.dtype);
    const o = out.data;
    for (let p = 0; p < outer; p++) {
      for (let q = 0; q < inner; q++) {
        const base = p * size * inner + q;
        if (op === "sum") {
          let acc = 0;
          for (let r = 0; r < size; r++) acc += s[base + r * inner];
          o[p * inner + q] = acc;
        } else {
          const wantMax = op === "max" || op === "argmax";
          let best = size > 0 ? s[base] : wantMax ? -Infinity : Infinity;
          let bi = 0;
          for (let r = 1; r < size; r++) {
            const v = s[base + r * inner];
            if (best !== best) break; // NaN wins, as in PyTorch
            if (v !== v || (wantMax ? v > best : v < best)) {
              best = v;
              bi = r;
            }
          }
          o[p * inner + q] = isArg ? bi : best;
        }
      }
    }
    return out;
  },
  cumsum(x: BackendBuffer, outer: number, size: number, inner: number): BackendBuffer {
    const s = arr(x);
    const out = make(s.length, x.dtype);
    const o = out.data;
    for (let p = 0; p < outer; p++) {
      for (let q = 0; q < inner; q++) {
        let acc = 0;
        for (let r = 0; r < size; r++) {
          const i = p * size * inner + r * inner + q;
          acc += s[i];
          o[i] = acc;
        }
      }
    }
    return out;
  },
  matmul(a: BackendBuffer, b: BackendBuffer, p: MatmulParams): BackendBuffer {
    const { batch, m, n, k, transA, transB } = p;
    const out = make(batch * m * n, "float32");
    const A = arr(a) as Float32Array, B = arr(b) as Float32Array, C = out.data as Float32Array;
    for (let i = 0; i < batch; i++) {
      sgemm(
        transA,
        transB,
        m,
        n,
        k,
        1,
        A,
        i * p.strideA,
        transA ? m : k,
        B,
        i * p.strideB,
        transB ? k : n,
        0,
        C,
        i * m * n,
        n,
      );
    }
    return out;
  },
  im2col(x: BackendBuffer, p: Im2colParams, padValue: number): BackendBuffer {
    const { batch, channels, height: H, width: W, kernelH: KH, kernelW: KW, outH: OH, outW: OW } = p;
    const L = OH * OW;
    const rows = channels * KH * KW;
    const out = make(batch * rows * L, x.dtype);
    const o = out.data, s = arr(x);
    for (let b = 0; b < batch; b++) {
      for (let c = 0; c < channels; c++) {
        const src = (b * channels + c) * H * W;
        for (let ki = 0; ki < KH; ki++) {
          for (let kj = 0; kj < KW; kj++) {
            let dst = ((b * rows) + (c * KH + ki) * KW + kj) * L;
            for (let oh = 0; oh < OH; oh++) {
              const ih = oh * p.strideH - p.padH + ki * p.dilationH;
              const rowOk = ih >= 0 && ih < H;
              for (let ow = 0; ow < OW; ow++, dst++) {
                const iw = ow * p.strideW - p.padW + kj * p.dilationW;
                o[dst] = rowOk && iw >= 0 && iw < W ? s[src + ih * W + iw] : padValue;
              }
            }
          }
        }
      }
    }
    return out;
  },
  col2im(cols: BackendBuffer, p: Im2colParams): BackendBuffer {
    const { batch, channels, height: H, width: W, kernelH: KH, kernelW: KW, outH: OH, outW: OW } = p;
    const L = OH * OW;
    const rows = channels * KH * KW;
    const out = make(batch * channels * H * W, "float32");
    const o = out.data, s = arr(cols);
    for (let b = 0; b < batch; b++) {
      for (let c = 0; c < channels; c++) {
        const dstBase = (b * channels + c) * H * W;
        for (let ki = 0; ki < KH; ki++) {
          for (let kj = 0; kj < KW; kj++) {
            let src = ((b * rows) + (c * KH + ki) * KW + kj) * L;
            for (let oh = 0; oh < OH; oh++) {
              const ih = oh * p.strideH - p.padH + ki * p.dilationH;
              const rowOk = ih >= 0 && ih < H;
              for (let ow = 0; ow < OW; ow++, src++) {
                const iw = ow * p.strideW - p.padW + kj * p.dilationW;
                if (rowOk && iw >= 0 && iw < W) o[dstBase + ih * W + iw] += s[src];
              }
            }
          }
        }
      }
    }
    return out;
  },
  gather(
    x: BackendBuffer,
    xShape: readonly number[],
    axis: number,
    index: BackendBuffer,
    indexShape: readonly number[],
  ): BackendBuffer {
    const n = indexShape.reduce((p, q) => p * q, 1);
    const out = make(n, x.dtype);
    const o = out.data, s = arr(x), idx = arr(index);
    const xs = contiguousStrides(xShape);
    const xsNoAxis = xs.map((v, d) => (d === axis ? 0 : v));
    const size = xShape[axis];
    forEachStrided(indexShape, [xsNoAxis], [0], (i, offs) => {
      const v = idx[i];
      checkGatherIndex(v, size, "gather");
      o[i] = s[offs[0] + v * xs[axis]];
    });
    return out;
  },
  scatterAddInto(
    dst: BackendBuffer,
    dstShape: readonly number[],
    axis: number,
    index: BackendBuffer,
    src: BackendBuffer,
    indexShape: readonly number[],
  ): void {
    const d = arr(dst), s = arr(src), idx = arr(index);
    const ds = contiguousStrides(dstShape);
    const dsNoAxis = ds.map((v, k) => (k === axis ? 0 : v));
    const size = dstShape[axis];
    forEachStrided(indexShape, [dsNoAxis], [0], (i, offs) => {
      const v = idx[i];
      checkGatherIndex(v, size, "scatterAdd");
      d[offs[0] + v * ds[axis]] += s[i];
    });
  },
};

/** Row-major strides of a contiguous shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

function isContiguous(shape: readonly number[], strides: readonly number[]): boolean {
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && strides[d] !== acc) return false;
    acc *= shape[d];
  }
  return true;
}
