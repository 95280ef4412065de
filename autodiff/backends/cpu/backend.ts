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

/**
 * Merges adjacent dims that every operand walks contiguously (and drops size-1 dims), so the inner
 * loops run over rows as long as possible.
 */
function coalesce(shape: readonly number[], strides: readonly (readonly number[])[]): [number[], number[][]] {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((st, k) => outStrides[k][last] === st[d] * shape[d])) {
      outShape[last] *= shape[d];
      strides.forEach((st, k) => (outStrides[k][last] = st[d]));
    } else {
      outShape.push(shape[d]);
      strides.forEach((st, k) => outStrides[k].push(st[d]));
    }
  }
  if (outShape.length === 0) {
    outShape.push(1);
    strides.forEach((_, k) => outStrides[k].push(0));
  }
  return [outShape, outStrides];
}

/**
 * Walks `shape` in row-major order one innermost row at a time: `row(offsets, rowStart, length,
 * innerStrides)` gets each operand's offset at the row start and the row's flat output index.
 */
function forEachRow(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
  offsets: readonly number[],
  row: (offs: number[], outIndex: number, length: number, inner: number[]) => void,
): void {
  if (shape.some((d) => d === 0)) return;
  const [cs, cst] = coalesce(shape, strides);
  const nd = cs.length;
  const len = cs[nd - 1];
  const inner = cst.map((st) => st[nd - 1]);
  const rows = cs.slice(0, nd - 1).reduce((a, b) => a * b, 1);
  const idx = new Array(nd - 1).fill(0);
  const offs = offsets.slice();
  const k = cst.length;
  for (let r = 0; r < rows; r++) {
    row(offs.slice(), r * len, len, inner);
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]++;
      for (let s = 0; s < k; s++) offs[s] += cst[s][d];
      if (idx[d] < cs[d]) break;
      for (let s = 0; s < k; s++) offs[s] -= cst[s][d] * cs[d];
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
    forEachRow(shape, [stridesA, stridesB], [0, 0], (offs, o0, len, [ia, ib]) => {
      let pa = offs[0], pb = offs[1];
      for (let j = 0; j < len; j++, pa += ia, pb += ib) o[o0 + j] = f(x[pa], y[pb]);
    });
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
    forEachRow(shape, [stridesCond, stridesA, stridesB], [0, 0, 0], (offs, o0, len, [ic, ia, ib]) => {
      let pc = offs[0], pa = offs[1], pb = offs[2];
      for (let j = 0; j < len; j++, pc += ic, pa += ia, pb += ib) o[o0 + j] = c[pc] !== 0 ? x[pa] : y[pb];
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
    forEachRow(shape, [srcStrides, dstStrides], [srcOffset, dstOffset], (offs, _, len, [is, id]) => {
      const si = offs[0], di = offs[1];
      if (is === 1 && id === 1) d.set(s.subarray(si, si + len), di);
      else for (let j = 0, a = si, b = di; j < len; j++, a += is, b += id) d[b] = s[a];
    });
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
    const out = make(batch * channels * KH * KW * OH * OW, x.dtype);
    const o = out.data, s = arr(x);
    let dst = 0;
    for (let bc = 0; bc < batch * channels; bc++) {
      const src = bc * H * W;
      for (let ki = 0; ki < KH; ki++) {
        for (let kj = 0; kj < KW; kj++) {
          const [lo, hi] = validRange(OW, p.strideW, kj * p.dilationW - p.padW, W);
          for (let oh = 0; oh < OH; oh++, dst += OW) {
            const ih = oh * p.strideH - p.padH + ki * p.dilationH;
            if (ih < 0 || ih >= H) {
              o.fill(padValue, dst, dst + OW);
              continue;
            }
            if (lo > 0) o.fill(padValue, dst, dst + lo);
            if (hi < OW) o.fill(padValue, dst + hi, dst + OW);
            const row = src + ih * W + kj * p.dilationW - p.padW;
            if (p.strideW === 1) o.set(s.subarray(row + lo, row + hi), dst + lo);
            else for (let ow = lo; ow < hi; ow++) o[dst + ow] = s[row + ow * p.strideW];
          }
        }
      }
    }
    return out;
  },
  col2im(cols: BackendBuffer, p: Im2colParams): BackendBuffer {
    const { batch, channels, height: H, width: W, kernelH: KH, kernelW: KW, outH: OH, outW: OW } = p;
    const out = make(batch * channels * H * W, "float32");
    const o = out.data, s = arr(cols);
    let src = 0;
    for (let bc = 0; bc < batch * channels; bc++) {
      const dstBase = bc * H * W;
      for (let ki = 0; ki < KH; ki++) {
        for (let kj = 0; kj < KW; kj++) {
          const [lo, hi] = validRange(OW, p.strideW, kj * p.dilationW - p.padW, W);
          for (let oh = 0; oh < OH; oh++, src += OW) {
            const ih = oh * p.strideH - p.padH + ki * p.dilationH;
            if (ih < 0 || ih >= H) continue;
            const row = dstBase + ih * W + kj * p.dilationW - p.padW;
            const sw = p.strideW;
            for (let ow = lo; ow < hi; ow++) o[row + ow * sw] += s[src + ow];
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
    const step = xs[axis];
    forEachRow(indexShape, [xsNoAxis, contiguousStrides(indexShape)], [0, 0], (offs, _, len, [ix, ii]) => {
      for (let j = 0, p = offs[0], i = offs[1]; j < len; j++, p += ix, i += ii) {
        const v = idx[i];
        checkGatherIndex(v, size, "gather");
        o[i] = s[p + v * step];
      }
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
    const step = ds[axis];
    forEachRow(indexShape, [dsNoAxis, contiguousStrides(indexShape)], [0, 0], (offs, _, len, [ix, ii]) => {
      for (let j = 0, p = offs[0], i = offs[1]; j < len; j++, p += ix, i += ii) {
        const v = idx[i];
        checkGatherIndex(v, size, "scatterAdd");
        d[p + v * step] += s[i];
      }
    });
  },
};

/** The output columns [lo, hi) whose input column `ow * stride + shift` lies inside [0, width). */
function validRange(outW: number, stride: number, shift: number, width: number): [number, number] {
  const lo = Math.min(outW, Math.max(0, Math.ceil(-shift / stride)));
  const hi = Math.max(lo, Math.min(outW, Math.floor((width - 1 - shift) / stride) + 1));
  return [lo, hi];
}

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
