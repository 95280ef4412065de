/**
 * The WebGPU backend: implements {@linkcode Backend} on one `GPUDevice`, with a size-class buffer
 * pool, a pipeline cache keyed by WGSL source, and one batched command encoder (see `runtime.ts`).
 * Kernels are generated from the typed templates in this folder.
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
  SelectiveScanGrads,
  SelectiveScanInputs,
  SelectiveScanParams,
  UnaryOp,
} from "../../backend.ts";
import { requestDevice, type WebGPUOptions } from "./device.ts";
import { type GPUBuf, Runtime, WebGPUDeviceLostError } from "./runtime.ts";
import * as ew from "./elementwise.ts";
import { cumsum, reduce } from "./reduce.ts";
import { matmul } from "./matmul.ts";
import { col2im, im2col } from "./conv.ts";
import { depthwiseConv2d, depthwiseConv2dBackwardInput, depthwiseConv2dBackwardWeight } from "./depthwise.ts";
import { gather, scatterAddInto } from "./gather.ts";
import { maxPool2d, maxPool2dBackward } from "./pool.ts";
import { selectiveScanBackward, selectiveScanForward } from "./selective_scan.ts";
import { haarDwt, haarIwt } from "./wavelet.ts";
import { layerNorm, layerNormBackward } from "./layer_norm.ts";

export type { WebGPUOptions } from "./device.ts";

/** The WebGPU backend object, with adapter facts beyond {@linkcode Backend}. */
export interface WebGPUBackend extends Backend {
  /** True when the adapter is a software fallback (e.g. lavapipe). */
  readonly isFallbackAdapter: boolean;
  /** Adapter description. */
  readonly adapterDescription: string;
  /** The runtime (device, pools, pipeline cache); for diagnostics and benchmarks. */
  readonly runtime: Runtime;
}

/** Widens host data to 4-byte elements of `dtype` (bool → u32 0/1). */
function widen(data: HostArray, dtype: DType): Float32Array | Int32Array | Uint32Array {
  if (dtype === "float32") return data instanceof Float32Array ? data : Float32Array.from(data);
  if (dtype === "int32") return data instanceof Int32Array ? data : Int32Array.from(data, (v) => Math.trunc(v));
  const out = new Uint32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] !== 0 ? 1 : 0;
  return out;
}

/**
 * Creates the WebGPU backend. Throws `Error("WebGPU unavailable: ...")` when `navigator.gpu` or an
 * adapter is missing.
 */
export async function createWebGPUBackend(options: WebGPUOptions = {}): Promise<WebGPUBackend> {
  const info = await requestDevice(options);
  const rt = new Runtime(info.device);
  rt.software = info.isFallbackAdapter;
  // kernels compute lazy inputs first (`check`); elementwise ones fuse them instead (`own`)
  const c = (b: BackendBuffer): GPUBuf => rt.check(b);
  const e = (b: BackendBuffer): GPUBuf => rt.own(b);
  return {
    device: "webgpu",
    isFallbackAdapter: info.isFallbackAdapter,
    adapterDescription: info.description,
    runtime: rt,
    alloc: (length: number, dtype: DType): BackendBuffer => rt.alloc(length, dtype),
    free: (buf: BackendBuffer): void => rt.free(buf),
    upload: (data: HostArray, dtype: DType): BackendBuffer => rt.upload(widen(data, dtype), dtype),
    read: (buf: BackendBuffer): Promise<HostArray> => rt.read(buf),
    hostView: (): null => null,
    watchDeviceLoss: (): void => rt.watchLoss(),
    isDeviceLost: (error: unknown): boolean => error instanceof WebGPUDeviceLostError,
    sync: (): Promise<void> => rt.sync(),
    memory: (): MemoryInfo => rt.memory(),
    resetPeakMemory: (): void => rt.resetPeakMemory(),
    fill: (length: number, value: number, dtype: DType): BackendBuffer => ew.fill(rt, length, value, dtype),
    cast: (x: BackendBuffer, dtype: DType): BackendBuffer => ew.cast(rt, e(x), dtype),
    unary: (op: UnaryOp, x: BackendBuffer): BackendBuffer => ew.unary(rt, op, e(x)),
    binary: (
      op: BinaryOp,
      a: BackendBuffer,
      b: BackendBuffer,
      shape: readonly number[],
      stridesA: readonly number[],
      stridesB: readonly number[],
    ): BackendBuffer => ew.binary(rt, op, e(a), e(b), shape, stridesA, stridesB),
    where: (
      cond: BackendBuffer,
      a: BackendBuffer,
      b: BackendBuffer,
      shape: readonly number[],
      stridesCond: readonly number[],
      stridesA: readonly number[],
      stridesB: readonly number[],
    ): BackendBuffer => ew.where(rt, e(cond), e(a), e(b), shape, stridesCond, stridesA, stridesB),
    clamp: (x: BackendBuffer, lo: number, hi: number): BackendBuffer => ew.clamp(rt, e(x), lo, hi),
    affine: (x: BackendBuffer, scale: number, shift: number): BackendBuffer => ew.affine(rt, e(x), scale, shift),
    stridedCopyInto: (
      src: BackendBuffer,
      srcOffset: number,
      srcStrides: readonly number[],
      dst: BackendBuffer,
      dstOffset: number,
      dstStrides: readonly number[],
      shape: readonly number[],
    ): void => ew.stridedCopyInto(rt, e(src), srcOffset, srcStrides, e(dst), dstOffset, dstStrides, shape),
    reduce: (op: ReduceOp, x: BackendBuffer, outer: number, size: number, inner: number): BackendBuffer =>
      reduce(rt, op, e(x), outer, size, inner),
    cumsum: (x: BackendBuffer, outer: number, size: number, inner: number): BackendBuffer =>
      cumsum(rt, c(x), outer, size, inner),
    matmul: (a: BackendBuffer, b: BackendBuffer, p: MatmulParams): BackendBuffer => matmul(rt, e(a), e(b), p),
    im2col: (x: BackendBuffer, p: Im2colParams, padValue: number): BackendBuffer => im2col(rt, e(x), p, padValue),
    col2im: (cols: BackendBuffer, p: Im2colParams): BackendBuffer => col2im(rt, e(cols), p),
    depthwiseConv2d: (x: BackendBuffer, w: BackendBuffer, p: Im2colParams): BackendBuffer =>
      depthwiseConv2d(rt, e(x), e(w), p),
    depthwiseConv2dBackwardInput: (gy: BackendBuffer, w: BackendBuffer, p: Im2colParams): BackendBuffer =>
      depthwiseConv2dBackwardInput(rt, e(gy), e(w), p),
    depthwiseConv2dBackwardWeight: (x: BackendBuffer, gy: BackendBuffer, p: Im2colParams): BackendBuffer =>
      depthwiseConv2dBackwardWeight(rt, e(x), e(gy), p),
    maxPool2d: (x: BackendBuffer, p: Im2colParams): { out: BackendBuffer; indices: BackendBuffer } =>
      maxPool2d(rt, c(x), p),
    maxPool2dBackward: (gy: BackendBuffer, indices: BackendBuffer, p: Im2colParams): BackendBuffer =>
      maxPool2dBackward(rt, c(gy), c(indices), p),
    layerNorm: (
      x: BackendBuffer,
      weight: BackendBuffer | null,
      bias: BackendBuffer | null,
      outer: number,
      size: number,
      inner: number,
      eps: number,
    ): { y: BackendBuffer; mean: BackendBuffer; rstd: BackendBuffer } =>
      layerNorm(rt, e(x), weight && e(weight), bias && e(bias), outer, size, inner, eps),
    layerNormBackward: (
      gy: BackendBuffer,
      x: BackendBuffer,
      weight: BackendBuffer | null,
      mean: BackendBuffer,
      rstd: BackendBuffer,
      outer: number,
      size: number,
      inner: number,
      want: { dx: boolean; dWeight: boolean; dBias: boolean },
    ): { dx: BackendBuffer | null; dWeight: BackendBuffer | null; dBias: BackendBuffer | null } =>
      layerNormBackward(rt, e(gy), e(x), weight && e(weight), e(mean), e(rstd), outer, size, inner, want),
    haarDwt: (x: BackendBuffer, batch: number, channels: number, height: number, width: number): BackendBuffer =>
      haarDwt(rt, e(x), batch, channels, height, width),
    haarIwt: (y: BackendBuffer, batch: number, channels: number, height: number, width: number): BackendBuffer =>
      haarIwt(rt, e(y), batch, channels, height, width),
    selectiveScanForward: (
      x: SelectiveScanInputs,
      p: SelectiveScanParams,
      returnLastState: boolean,
    ): { out: BackendBuffer; lastState?: BackendBuffer; chunkStates: BackendBuffer } =>
      selectiveScanForward(rt, x, p, returnLastState),
    selectiveScanBackward: (
      x: SelectiveScanInputs,
      chunkStates: BackendBuffer,
      dout: BackendBuffer,
      p: SelectiveScanParams,
    ): SelectiveScanGrads => selectiveScanBackward(rt, x, c(chunkStates), e(dout), p),
    gather: (
      x: BackendBuffer,
      xShape: readonly number[],
      axis: number,
      index: BackendBuffer,
      indexShape: readonly number[],
    ): BackendBuffer => gather(rt, e(x), xShape, axis, e(index), indexShape),
    scatterAddInto: (
      dst: BackendBuffer,
      dstShape: readonly number[],
      axis: number,
      index: BackendBuffer,
      src: BackendBuffer,
      indexShape: readonly number[],
    ): void => scatterAddInto(rt, c(dst), dstShape, axis, e(index), e(src), indexShape),
  };
}
