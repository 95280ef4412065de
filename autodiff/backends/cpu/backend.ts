/**
 * The CPU backend: plain TypeScript on typed arrays. It is the semantic reference for every kernel
 * and the fallback when no WebGPU adapter exists. Matrix products (and convolutions, which the op
 * layer lowers to im2col + matmul) go through {@linkcode sgemm}: OpenBLAS when present, else a
 * cache-blocked TypeScript kernel. Depthwise convolutions and max pooling have direct loops instead.
 *
 * @module
 */

import type {
  AdamStepScalars,
  Backend,
  BackendBuffer,
  BinaryOp,
  DType,
  HostArray,
  Im2colParams,
  IndexSelectParams,
  MatmulParams,
  MemoryInfo,
  ReduceOp,
  SelectiveScanGrads,
  SelectiveScanInputs,
  SelectiveScanParams,
  UnaryOp,
} from "../../backend.ts";
import { BINARY, UNARY } from "../../op_table.ts";
import { coalesce, contiguousStrides } from "../../shape.ts";
import { sgemm } from "./gemm.ts";
import {
  col2imInto,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  conv2dForward,
  im2colInto,
  validRange,
} from "./conv.ts";
import { isPlain2x2, maxPool2dBackward, maxPool2dForward, maxPool2dForward2x2, maxPool2dForwardWasm } from "./pool.ts";
import { selectiveScanBackwardCpu, selectiveScanForwardCpu } from "./selective_scan.ts";
import { selectiveScanBackwardWasm, selectiveScanForwardWasm } from "./selective_scan_wasm.ts";
import { geluCrossGradWasm, geluCrossWasm, unaryWasm } from "./elementwise_wasm.ts";
import { depthwiseBackwardInputWasm, depthwiseBackwardWeightWasm, depthwiseForwardWasm } from "./depthwise_wasm.ts";
import { cpuWasm } from "./wasm/module.ts";
import { heapArray, heapFree, onHeap } from "./wasm/heap.ts";
import { binaryOnHeap, copyOnHeap, indexOnHeap, TILE, transposeAxis } from "./heap_kernels.ts";
import { haarDwtForward, haarIwtForward } from "./wavelet.ts";
import { layerNormBackward, layerNormForward } from "./layer_norm.ts";
import { adamStepCpu } from "./adam.ts";

/** A CPU buffer: a typed array of the dtype's host type. */
export class CpuBuffer implements BackendBuffer {
  /** Backing storage. */
  readonly data: HostArray;
  /** Element type. */
  readonly dtype: DType;
  /** Whether `data` is a block of the tensor heap not yet given back. */
  heap: boolean;
  constructor(data: HostArray, dtype: DType) {
    this.data = data;
    this.dtype = dtype;
    this.heap = onHeap(data);
    if (this.heap) heapOwners.register(this, data as Float32Array, this);
  }
  /** Number of elements. */
  get length(): number {
    return this.data.length;
  }
}

/** Gives the heap block of a buffer that was dropped without being freed back (tensors left to the collector). */
const heapOwners = new FinalizationRegistry<Float32Array>((data) => heapFree(data));

function newArray(length: number, dtype: DType): HostArray {
  if (dtype === "float32") return new Float32Array(length);
  if (dtype === "int32") return new Int32Array(length);
  return new Uint8Array(length);
}

function arr(b: BackendBuffer): HostArray {
  return (b as CpuBuffer).data;
}

function f32(b: BackendBuffer): Float32Array {
  return (b as CpuBuffer).data as Float32Array;
}

let liveBytes = 0;
let liveBuffers = 0;
let peakBytes = 0;

/**
 * Freed arrays kept for reuse, by dtype and exact length: training repeats the same shapes, and first
 * touches of fresh memory (page faults) cost more than the kernels that fill it.
 */
const pool = new Map<string, HostArray[]>();
let pooledBytes = 0;
/** Upper bound of the pool; beyond it freed arrays are left to the garbage collector. */
const MAX_POOLED_BYTES = 1 << 30;
/** Arrays below this size are cheap to allocate and not pooled. */
const MIN_POOLED_LENGTH = 4096;

/** Float32 arrays of at least this many elements live in the tensor heap, where the WebAssembly kernels work in place. */
const MIN_HEAP_LENGTH = 4096;

/** A buffer whose contents are unspecified (pooled and heap arrays keep old data). */
function make(length: number, dtype: DType): CpuBuffer {
  liveBytes += length * 4;
  liveBuffers++;
  if (liveBytes > peakBytes) peakBytes = liveBytes;
  const inHeap = dtype === "float32" && length >= MIN_HEAP_LENGTH ? heapArray(length) : null;
  if (inHeap) return new CpuBuffer(inHeap, dtype);
  const reuse = length >= MIN_POOLED_LENGTH ? pool.get(`${dtype}:${length}`)?.pop() : undefined;
  if (reuse) pooledBytes -= reuse.byteLength;
  return new CpuBuffer(reuse ?? newArray(length, dtype), dtype);
}

function recycle(buf: CpuBuffer): void {
  const data = buf.data;
  if (buf.heap) {
    // heap blocks go straight back to the heap, which reuses them for any size
    buf.heap = false;
    heapOwners.unregister(buf);
    heapFree(data as Float32Array);
    return;
  }
  if (onHeap(data)) return;
  if (data.length < MIN_POOLED_LENGTH || pooledBytes + data.byteLength > MAX_POOLED_BYTES) return;
  const key = `${buf.dtype}:${data.length}`;
  let list = pool.get(key);
  if (!list) pool.set(key, list = []);
  list.push(data);
  pooledBytes += data.byteLength;
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
  const offs = offsets.slice(), cur = offsets.slice();
  const k = cst.length;
  for (let r = 0; r < rows; r++) {
    // one array reused for every row (callbacks read it at once): no allocation per row
    for (let s = 0; s < k; s++) cur[s] = offs[s];
    row(cur, r * len, len, inner);
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
    recycle(buf as CpuBuffer);
  },
  upload(data: HostArray, dtype: DType): BackendBuffer {
    const out = make(data.length, dtype);
    out.data.set(data);
    return out;
  },
  read(buf: BackendBuffer): Promise<HostArray> {
    return Promise.resolve(arr(buf).slice());
  },
  hostView(buf: BackendBuffer): HostArray {
    return arr(buf);
  },
  watchDeviceLoss(): void {},
  isDeviceLost(): boolean {
    return false;
  },
  sync(): Promise<void> {
    return Promise.resolve();
  },
  memory(): MemoryInfo {
    return { bytes: liveBytes, buffers: liveBuffers, pooledBytes, peakBytes };
  },

  resetPeakMemory(): void {
    peakBytes = liveBytes;
  },

  fill(length: number, value: number, dtype: DType): BackendBuffer {
    const out = make(length, dtype);
    out.data.fill(dtype === "bool" ? (value ? 1 : 0) : value);
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
    const src = arr(x);
    const out = make(src.length, op === "isnan" ? "bool" : x.dtype);
    // relu's bit loop beats copying blocks through the kernels' memory: WebAssembly only in place in the heap
    if (op === "relu" && src instanceof Float32Array && !onHeap(src)) reluBits(out.data as Float32Array, src);
    else if (!(src instanceof Float32Array && unaryWasm(op, out.data as Float32Array, src))) {
      unaryLoop(op)(out.data, src, src.length);
    }
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
    const n = shape.reduce((p, q) => p * q, 1);
    const out = make(n, BINARY[op].bool ? "bool" : a.dtype);
    const o = out.data, x = arr(a), y = arr(b);
    if (op === "maskPositive" && x.length === n && y.length === n && x instanceof Float32Array) {
      maskPositiveBits(o as Float32Array, x, y as Float32Array);
      return out;
    }
    if (binaryOnHeap(op, o, x, y, shape, stridesA, stridesB)) return out;
    const loops = binaryLoops(op);
    forEachRow(shape, [stridesA, stridesB], [0, 0], (offs, o0, len, [ia, ib]) => {
      // the common rows (both operands contiguous, or one a constant along the row) get stride-free loops
      if (ia === 1 && ib === 1) loops.both(o, x, y, o0, len, offs[0], offs[1]);
      else if (ia === 1 && ib === 0) loops.left(o, x, y[offs[1]], o0, len, offs[0]);
      else if (ia === 0 && ib === 1) loops.right(o, x[offs[0]], y, o0, len, offs[1]);
      else loops.strided(o, x, y, o0, len, offs[0], ia, offs[1], ib);
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
      // torch order: min(max(x, lo), hi), so hi wins when lo > hi; NaN propagates
      o[i] = Math.min(Math.max(src[i], lo), hi);
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
    if (copyOnHeap(s, srcOffset, srcStrides, d, dstOffset, dstStrides, shape)) return;
    if (transposeCopy(s, srcOffset, srcStrides, d, dstOffset, dstStrides, shape)) return;
    stridedCopy(s, srcOffset, srcStrides, d, dstOffset, dstStrides, shape);
  },
  reduce(op: ReduceOp, x: BackendBuffer, outer: number, size: number, inner: number): BackendBuffer {
    const s = arr(x);
    const isArg = op === "argmax" || op === "argmin";
    const out = make(outer * inner, isArg ? "int32" : x.dtype);
    const o = out.data;
    // walk each (size, inner) slab row by row so reads stay contiguous
    if (op === "sum" && inner === 1) {
      for (let p = 0, i = 0; p < outer; p++) {
        let acc = 0;
        for (let r = 0; r < size; r++) acc += s[i++];
        o[p] = acc;
      }
      return out;
    }
    if (op === "sum") {
      const acc = new Float64Array(inner);
      for (let p = 0; p < outer; p++) {
        acc.fill(0);
        let i = p * size * inner;
        for (let r = 0; r < size; r++) for (let q = 0; q < inner; q++) acc[q] += s[i++];
        for (let q = 0; q < inner; q++) o[p * inner + q] = acc[q];
      }
      return out;
    }
    const wantMax = op === "max" || op === "argmax";
    const best = new Float64Array(inner), bestIdx = new Int32Array(inner);
    for (let p = 0; p < outer; p++) {
      const base = p * size * inner;
      best.fill(size > 0 ? NaN : wantMax ? -Infinity : Infinity);
      bestIdx.fill(0);
      if (size > 0) { for (let q = 0; q < inner; q++) best[q] = s[base + q]; }
      for (let r = 1; r < size; r++) {
        const row = base + r * inner;
        for (let q = 0; q < inner; q++) {
          const v = s[row + q], b = best[q];
          // NaN wins and stays, as in PyTorch
          if (b === b && (v !== v || (wantMax ? v > b : v < b))) {
            best[q] = v;
            bestIdx[q] = r;
          }
        }
      }
      for (let q = 0; q < inner; q++) o[p * inner + q] = isArg ? bestIdx[q] : best[q];
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
    const out = make(p.batch * p.channels * p.kernelH * p.kernelW * p.outH * p.outW, x.dtype);
    im2colInto(arr(x), 0, p.batch, p, padValue, out.data);
    return out;
  },
  col2im(cols: BackendBuffer, p: Im2colParams): BackendBuffer {
    const out = make(p.batch * p.channels * p.height * p.width, "float32");
    col2imInto(arr(cols), 0, p.batch, p, out.data as Float32Array);
    return out;
  },
  conv2d(x: BackendBuffer, w: BackendBuffer, p: Im2colParams, outChannels: number): BackendBuffer {
    const out = make(p.batch * outChannels * p.outH * p.outW, "float32");
    conv2dForward(f32(x), f32(w), out.data as Float32Array, p, outChannels);
    return out;
  },
  conv2dBackwardInput(gy: BackendBuffer, w: BackendBuffer, p: Im2colParams, outChannels: number): BackendBuffer {
    const out = make(p.batch * p.channels * p.height * p.width, "float32");
    conv2dBackwardInput(f32(gy), f32(w), out.data as Float32Array, p, outChannels);
    return out;
  },
  conv2dBackwardWeight(x: BackendBuffer, gy: BackendBuffer, p: Im2colParams, outChannels: number): BackendBuffer {
    const out = make(outChannels * p.channels * p.kernelH * p.kernelW, "float32");
    conv2dBackwardWeight(f32(x), f32(gy), out.data as Float32Array, p, outChannels);
    return out;
  },
  adamStep(
    p: BackendBuffer,
    g: BackendBuffer,
    m: BackendBuffer,
    v: BackendBuffer,
    h: AdamStepScalars,
  ): { p: BackendBuffer; m: BackendBuffer; v: BackendBuffer } {
    const n = p.length, out = { p: make(n, "float32"), m: make(n, "float32"), v: make(n, "float32") };
    adamStepCpu(f32(p), f32(g), f32(m), f32(v), f32(out.p), f32(out.m), f32(out.v), h);
    return out;
  },
  geluCrossGate(x: BackendBuffer, outer: number, span: number): BackendBuffer {
    const out = make(outer * span, "float32"), o = f32(out), src = f32(x);
    if (!geluCrossWasm(o, src, outer, span)) {
      const gelu = UNARY.gelu.js;
      for (let r = 0; r < outer; r++) {
        for (let i = 0, a = 2 * r * span; i < span; i++, a++) {
          const p = src[a], q = src[a + span];
          o[r * span + i] = Math.fround(Math.fround(gelu(p)) * q) + Math.fround(Math.fround(gelu(q)) * p);
        }
      }
    }
    return out;
  },
  geluCrossGateBackward(gy: BackendBuffer, x: BackendBuffer, outer: number, span: number): BackendBuffer {
    const out = make(2 * outer * span, "float32"), d = f32(out), src = f32(x), g = f32(gy);
    if (!geluCrossGradWasm(d, src, g, outer, span)) {
      const gelu = UNARY.gelu.js, grad = UNARY.geluGrad.js;
      for (let r = 0; r < outer; r++) {
        for (let i = 0, a = 2 * r * span; i < span; i++, a++) {
          const p = src[a], q = src[a + span], gv = g[r * span + i];
          d[a] = gv * (grad(p) * q + gelu(q));
          d[a + span] = gv * (grad(q) * p + gelu(p));
        }
      }
    }
    return out;
  },
  layerNorm(
    x: BackendBuffer,
    weight: BackendBuffer | null,
    bias: BackendBuffer | null,
    outer: number,
    size: number,
    inner: number,
    eps: number,
  ): { y: BackendBuffer; mean: BackendBuffer; rstd: BackendBuffer } {
    const y = make(outer * size * inner, "float32"), mean = make(outer * inner, "float32");
    const rstd = make(outer * inner, "float32");
    layerNormForward(
      f32(x),
      weight ? f32(weight) : null,
      bias ? f32(bias) : null,
      f32(y),
      f32(mean),
      f32(rstd),
      outer,
      size,
      inner,
      eps,
    );
    return { y, mean, rstd };
  },
  layerNormBackward(
    gy: BackendBuffer,
    x: BackendBuffer,
    weight: BackendBuffer | null,
    mean: BackendBuffer,
    rstd: BackendBuffer,
    outer: number,
    size: number,
    inner: number,
    want: { dx: boolean; dWeight: boolean; dBias: boolean },
  ): { dx: BackendBuffer | null; dWeight: BackendBuffer | null; dBias: BackendBuffer | null } {
    const dx = want.dx ? make(outer * size * inner, "float32") : null;
    const dWeight = want.dWeight ? make(size, "float32") : null;
    const dBias = want.dBias ? make(size, "float32") : null;
    layerNormBackward(
      f32(gy),
      f32(x),
      weight ? f32(weight) : null,
      f32(mean),
      f32(rstd),
      dx ? f32(dx) : null,
      dWeight ? f32(dWeight) : null,
      dBias ? f32(dBias) : null,
      outer,
      size,
      inner,
    );
    return { dx, dWeight, dBias };
  },
  depthwiseConv2d(x: BackendBuffer, w: BackendBuffer, p: Im2colParams): BackendBuffer {
    const out = make(p.batch * p.channels * p.outH * p.outW, "float32");
    depthwiseForward(out.data as Float32Array, arr(x) as Float32Array, arr(w) as Float32Array, p);
    return out;
  },
  depthwiseConv2dBackwardInput(gy: BackendBuffer, w: BackendBuffer, p: Im2colParams): BackendBuffer {
    const out = make(p.batch * p.channels * p.height * p.width, "float32");
    depthwiseBackwardInput(out.data as Float32Array, arr(gy) as Float32Array, arr(w) as Float32Array, p);
    return out;
  },
  depthwiseConv2dBackwardWeight(x: BackendBuffer, gy: BackendBuffer, p: Im2colParams): BackendBuffer {
    const out = make(p.channels * p.kernelH * p.kernelW, "float32");
    depthwiseBackwardWeight(out.data as Float32Array, arr(x) as Float32Array, arr(gy) as Float32Array, p);
    return out;
  },
  maxPool2d(x: BackendBuffer, p: Im2colParams): { out: BackendBuffer; indices: BackendBuffer } {
    const n = p.batch * p.channels * p.outH * p.outW;
    const out = make(n, "float32"), indices = make(n, "int32");
    const args = [f32(x), out.data as Float32Array, indices.data as Int32Array, p] as const;
    if (!maxPool2dForwardWasm(...args)) (isPlain2x2(p) ? maxPool2dForward2x2 : maxPool2dForward)(...args);
    return { out, indices };
  },
  maxPool2dBackward(gy: BackendBuffer, indices: BackendBuffer, p: Im2colParams): BackendBuffer {
    const out = make(p.batch * p.channels * p.height * p.width, "float32");
    maxPool2dBackward(f32(gy), arr(indices) as Int32Array, out.data as Float32Array, p);
    return out;
  },
  haarDwt(x: BackendBuffer, batch: number, channels: number, height: number, width: number): BackendBuffer {
    const out = make(batch * channels * height * width, "float32");
    haarDwtForward(f32(x), out.data as Float32Array, batch * channels, height, width);
    return out;
  },
  haarIwt(y: BackendBuffer, batch: number, channels: number, height: number, width: number): BackendBuffer {
    const out = make(4 * batch * channels * height * width, "float32");
    haarIwtForward(f32(y), out.data as Float32Array, batch * channels, height, width);
    return out;
  },
  selectiveScanForward(
    x: SelectiveScanInputs,
    p: SelectiveScanParams,
    returnLastState: boolean,
  ): { out: BackendBuffer; lastState?: BackendBuffer; chunkStates: BackendBuffer } {
    const alloc = (n: number) => make(n, "float32");
    const viaWasm = p.groups > 0 && cpuWasm() ? selectiveScanForwardWasm(x, p, returnLastState, alloc) : null;
    return viaWasm ?? selectiveScanForwardCpu(x, p, returnLastState, alloc);
  },
  selectiveScanBackward(
    x: SelectiveScanInputs,
    chunkStates: BackendBuffer,
    dout: BackendBuffer,
    p: SelectiveScanParams,
  ): SelectiveScanGrads {
    const alloc = (n: number) => make(n, "float32");
    const viaWasm = p.groups > 0 && cpuWasm() ? selectiveScanBackwardWasm(x, chunkStates, dout, p, alloc) : null;
    return viaWasm ?? selectiveScanBackwardCpu(x, chunkStates, dout, p, alloc);
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
  indexSelect(x: BackendBuffer, index: BackendBuffer, { outer, size, inner, count }: IndexSelectParams): BackendBuffer {
    const idx = arr(index) as Int32Array, s = arr(x), out = make(outer * count * inner, x.dtype), o = out.data;
    for (let j = 0; j < count; j++) checkGatherIndex(idx[j], size, "indexSelect");
    if (indexOnHeap("gather", s, idx, o, outer, size, count, inner)) return out;
    if (inner === 1) {
      for (let r = 0; r < outer; r++) {
        const src = r * size, dst = r * count;
        for (let j = 0; j < count; j++) o[dst + j] = s[src + idx[j]];
      }
    } else {
      for (let r = 0; r < outer; r++) {
        for (let j = 0; j < count; j++) {
          const src = (r * size + idx[j]) * inner, dst = (r * count + j) * inner;
          for (let i = 0; i < inner; i++) o[dst + i] = s[src + i];
        }
      }
    }
    return out;
  },
  indexSelectBackward(
    g: BackendBuffer,
    index: BackendBuffer,
    { outer, size, inner, count }: IndexSelectParams,
  ): BackendBuffer {
    const idx = arr(index) as Int32Array, src = arr(g), out = make(outer * size * inner, g.dtype), o = out.data;
    if (indexOnHeap("scatterAdd", src, idx, o, outer, size, count, inner)) return out;
    o.fill(0);
    for (let r = 0; r < outer; r++) {
      for (let j = 0; j < count; j++) {
        const d = (r * size + idx[j]) * inner, e = (r * count + j) * inner;
        for (let i = 0; i < inner; i++) o[d + i] += src[e + i];
      }
    }
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

/**
 * The general strided copy: coalesced dims walked as an odometer, each innermost row a tight loop (short
 * contiguous rows too: a subarray per row costs more than the copy below about a thousand elements).
 */
function stridedCopy(
  s: HostArray,
  srcOffset: number,
  srcStrides: readonly number[],
  d: HostArray,
  dstOffset: number,
  dstStrides: readonly number[],
  shape: readonly number[],
): void {
  if (shape.some((n) => n === 0)) return;
  const [cs, [ss, ds]] = coalesce(shape, [srcStrides, dstStrides]);
  const last = cs.length - 1, len = cs[last], is = ss[last], id = ds[last];
  let rows = 1;
  for (let k = 0; k < last; k++) rows *= cs[k];
  const idx = new Int32Array(Math.max(1, last));
  let a = srcOffset, b = dstOffset;
  for (let r = 0; r < rows; r++) {
    if (is === 1 && id === 1 && len >= 1024) d.set(s.subarray(a, a + len), b);
    else for (let j = 0, p = a, q = b; j < len; j++, p += is, q += id) d[q] = s[p];
    for (let k = last - 1; k >= 0; k--) {
      a += ss[k];
      b += ds[k];
      if (++idx[k] < cs[k]) break;
      a -= ss[k] * cs[k];
      b -= ds[k] * cs[k];
      idx[k] = 0;
    }
  }
}

/**
 * A copy whose innermost destination dim walks the source with a stride while another dim walks it
 * contiguously ({@linkcode transposeAxis}), in square tiles over those two dims. Returns false (nothing copied)
 * for other copies.
 */
function transposeCopy(
  s: HostArray,
  srcOffset: number,
  srcStrides: readonly number[],
  d: HostArray,
  dstOffset: number,
  dstStrides: readonly number[],
  shape: readonly number[],
): boolean {
  const [cs, [ss, ds]] = coalesce(shape, [srcStrides, dstStrides]);
  const last = cs.length - 1, j = transposeAxis(cs, ss, ds);
  if (j < 0) return false;
  const nj = cs[j], nl = cs[last], dj = ds[j], sl = ss[last];
  // the other dims, walked as an odometer
  const outer = cs.map((_, k) => k).filter((k) => k !== j && k !== last);
  const idx = new Array(outer.length).fill(0);
  let count = 1;
  for (const k of outer) count *= cs[k];
  let so = srcOffset, dof = dstOffset;
  for (let r = 0; r < count; r++) {
    for (let j0 = 0; j0 < nj; j0 += TILE) {
      const j1 = Math.min(nj, j0 + TILE);
      for (let l0 = 0; l0 < nl; l0 += TILE) {
        const l1 = Math.min(nl, l0 + TILE);
        for (let a = j0; a < j1; a++) {
          const sRow = so + a, dRow = dof + a * dj;
          for (let l = l0; l < l1; l++) d[dRow + l] = s[sRow + l * sl];
        }
      }
    }
    for (let q = outer.length - 1; q >= 0; q--) {
      const k = outer[q];
      so += ss[k];
      dof += ds[k];
      if (++idx[q] < cs[k]) break;
      so -= ss[k] * cs[k];
      dof -= ds[k] * cs[k];
      idx[q] = 0;
    }
  }
  return true;
}

/**
 * Per kernel column kj of a depthwise conv: the input column offset `kj·dilationW − padW` and the output
 * columns [lo, hi) whose tap lies inside the image.
 */
function tapColumns(p: Im2colParams): { shift: Int32Array; lo: Int32Array; hi: Int32Array } {
  const KW = p.kernelW;
  const shift = new Int32Array(KW), lo = new Int32Array(KW), hi = new Int32Array(KW);
  for (let kj = 0; kj < KW; kj++) {
    shift[kj] = kj * p.dilationW - p.padW;
    [lo[kj], hi[kj]] = validRange(p.outW, p.strideW, shift[kj], p.width);
  }
  return { shift, lo, hi };
}

/** Depthwise conv forward: each output row accumulates (in float64) its taps' input rows. */
function depthwiseForward(o: Float32Array, x: Float32Array, w: Float32Array, p: Im2colParams): void {
  if (depthwiseForwardWasm(o, x, w, p)) return;
  const { batch, channels: C, height: H, width: W, kernelH: KH, kernelW: KW, outH: OH, outW: OW } = p;
  const sh = p.strideH, sw = p.strideW, dh = p.dilationH, ph = p.padH, KK = KH * KW;
  const { shift, lo, hi } = tapColumns(p);
  const acc = new Float64Array(OW);
  for (let bc = 0; bc < batch * C; bc++) {
    const src = bc * H * W, wBase = (bc % C) * KK;
    for (let oh = 0; oh < OH; oh++) {
      acc.fill(0);
      for (let ki = 0; ki < KH; ki++) {
        const ih = oh * sh - ph + ki * dh;
        if (ih < 0 || ih >= H) continue;
        const row = src + ih * W;
        for (let kj = 0; kj < KW; kj++) {
          const wv = w[wBase + ki * KW + kj], a = lo[kj], b = hi[kj];
          let xi = row + shift[kj] + a * sw;
          if (sw === 1) { for (let ow = a; ow < b; ow++) acc[ow] += wv * x[xi++]; }
          else for (let ow = a; ow < b; ow++, xi += sw) acc[ow] += wv * x[xi];
        }
      }
      o.set(acc, (bc * OH + oh) * OW);
    }
  }
}

/** Depthwise conv input gradient: the adjoint loop of {@linkcode depthwiseForward}, scattering into a float64 plane. */
function depthwiseBackwardInput(o: Float32Array, gy: Float32Array, w: Float32Array, p: Im2colParams): void {
  if (depthwiseBackwardInputWasm(o, gy, w, p)) return;
  const { batch, channels: C, height: H, width: W, kernelH: KH, kernelW: KW, outH: OH, outW: OW } = p;
  const sh = p.strideH, sw = p.strideW, dh = p.dilationH, ph = p.padH, KK = KH * KW;
  const { shift, lo, hi } = tapColumns(p);
  const plane = new Float64Array(H * W);
  for (let bc = 0; bc < batch * C; bc++) {
    const wBase = (bc % C) * KK;
    plane.fill(0);
    for (let oh = 0; oh < OH; oh++) {
      const g0 = (bc * OH + oh) * OW;
      for (let ki = 0; ki < KH; ki++) {
        const ih = oh * sh - ph + ki * dh;
        if (ih < 0 || ih >= H) continue;
        const row = ih * W;
        for (let kj = 0; kj < KW; kj++) {
          const wv = w[wBase + ki * KW + kj], a = lo[kj], b = hi[kj];
          let xi = row + shift[kj] + a * sw;
          if (sw === 1) { for (let ow = a; ow < b; ow++) plane[xi++] += wv * gy[g0 + ow]; }
          else for (let ow = a; ow < b; ow++, xi += sw) plane[xi] += wv * gy[g0 + ow];
        }
      }
    }
    o.set(plane, bc * H * W);
  }
}

/** Depthwise conv weight gradient: per (channel, tap), float64 dot products of gradient rows and input rows. */
function depthwiseBackwardWeight(o: Float32Array, x: Float32Array, gy: Float32Array, p: Im2colParams): void {
  if (depthwiseBackwardWeightWasm(o, x, gy, p)) return;
  const { batch, channels: C, height: H, width: W, kernelH: KH, kernelW: KW, outH: OH, outW: OW } = p;
  const sh = p.strideH, sw = p.strideW, dh = p.dilationH, ph = p.padH, KK = KH * KW;
  const { shift, lo, hi } = tapColumns(p);
  const acc = new Float64Array(C * KK);
  for (let bc = 0; bc < batch * C; bc++) {
    const src = bc * H * W, wBase = (bc % C) * KK;
    for (let oh = 0; oh < OH; oh++) {
      const g0 = (bc * OH + oh) * OW;
      for (let ki = 0; ki < KH; ki++) {
        const ih = oh * sh - ph + ki * dh;
        if (ih < 0 || ih >= H) continue;
        const row = src + ih * W;
        for (let kj = 0; kj < KW; kj++) {
          const a = lo[kj], b = hi[kj];
          let xi = row + shift[kj] + a * sw, dot = 0;
          if (sw === 1) { for (let ow = a; ow < b; ow++) dot += gy[g0 + ow] * x[xi++]; }
          else for (let ow = a; ow < b; ow++, xi += sw) dot += gy[g0 + ow] * x[xi];
          acc[wBase + ki * KW + kj] += dot;
        }
      }
    }
  }
  o.set(acc);
}

/**
 * relu and its backward mask on the float bits: random signs make the compare-and-branch forms
 * mispredict half the time (3-4x slower here). Exact for all finite and infinite values.
 */
function reluBits(o: Float32Array, x: Float32Array): void {
  const xi = new Int32Array(x.buffer, x.byteOffset, x.length), oi = new Int32Array(o.buffer, o.byteOffset, o.length);
  for (let i = 0; i < xi.length; i++) {
    const v = xi[i];
    oi[i] = v & ~(v >> 31);
  }
}

function maskPositiveBits(o: Float32Array, a: Float32Array, b: Float32Array): void {
  const ai = new Int32Array(a.buffer, a.byteOffset, a.length), bi = new Int32Array(b.buffer, b.byteOffset, b.length);
  const oi = new Int32Array(o.buffer, o.byteOffset, o.length);
  // b > 0 ⇔ sign bit clear and not ±0
  for (let i = 0; i < ai.length; i++) {
    const v = bi[i];
    oi[i] = ai[i] & ~(v >> 31) & (-v >> 31);
  }
}

type UnaryLoop = (o: HostArray, x: HostArray, n: number) => void;
type BinaryLoop = (
  o: HostArray,
  x: HostArray,
  y: HostArray,
  o0: number,
  len: number,
  pa: number,
  ia: number,
  pb: number,
  ib: number,
) => void;
/** One op's row loops: any strides, both operands contiguous, and one operand constant along the row. */
interface BinaryLoops {
  strided: BinaryLoop;
  both: (o: HostArray, x: HostArray, y: HostArray, o0: number, len: number, pa: number, pb: number) => void;
  left: (o: HostArray, x: HostArray, yv: number, o0: number, len: number, pa: number) => void;
  right: (o: HostArray, xv: number, y: HostArray, o0: number, len: number, pb: number) => void;
}
const unaryLoops = new Map<UnaryOp, UnaryLoop>();
const binaryLoopCache = new Map<BinaryOp, BinaryLoops>();

/**
 * One compiled loop per op: each is its own function (own type feedback), so V8 inlines the op's
 * table function into a monomorphic loop instead of calling a megamorphic one per element.
 */
function unaryLoop(op: UnaryOp): UnaryLoop {
  let loop = unaryLoops.get(op);
  if (!loop) {
    loop = new Function("f", `return function ${op}Loop(o, x, n) { for (let i = 0; i < n; i++) o[i] = f(x[i]); }`)(
      UNARY[op].js,
    ) as UnaryLoop;
    unaryLoops.set(op, loop);
  }
  return loop;
}

function binaryLoops(op: BinaryOp): BinaryLoops {
  let loops = binaryLoopCache.get(op);
  if (!loops) {
    loops = new Function(
      "f",
      `return {
        strided: function ${op}Strided(o, x, y, o0, len, pa, ia, pb, ib) {
          for (let j = 0; j < len; j++, pa += ia, pb += ib) o[o0 + j] = f(x[pa], y[pb]);
        },
        both: function ${op}Both(o, x, y, o0, len, pa, pb) {
          for (let j = 0; j < len; j++) o[o0 + j] = f(x[pa + j], y[pb + j]);
        },
        left: function ${op}Left(o, x, yv, o0, len, pa) {
          for (let j = 0; j < len; j++) o[o0 + j] = f(x[pa + j], yv);
        },
        right: function ${op}Right(o, xv, y, o0, len, pb) {
          for (let j = 0; j < len; j++) o[o0 + j] = f(xv, y[pb + j]);
        },
      };`,
    )(BINARY[op].js) as BinaryLoops;
    binaryLoopCache.set(op, loops);
  }
  return loops;
}
