/**
 * The WebGPU runtime: buffers, the batched command encoder, per-dispatch uniforms, uploads and reads.
 *
 * Dispatches are recorded into one command encoder (one compute pass) that is submitted only when
 * data is needed (`read`, `sync`) or after {@linkcode MAX_BATCH} dispatches. Buffers freed while an
 * unsubmitted command references them wait on a pending list and go back to the pool after submit.
 *
 * @module
 */

import type { BackendBuffer, DType, HostArray, MemoryInfo } from "../../backend.ts";
import { BufferPool } from "./buffer_pool.ts";
import { type BindingKind, PipelineCache } from "./pipeline_cache.ts";
import type { Uniforms } from "./templates.ts";
import { type FusedNode, realize } from "./fusion.ts";
import { GpuTimer } from "./gpu_timer.ts";
import { BindGroupCache, type BoundBuffer } from "./bind_group_cache.ts";

/** The GPU timer's default key: the dispatch's label. */
const byLabel = (d: Dispatch): string => d.label ?? "kernel";

/** Dispatches recorded before the encoder is submitted regardless. */
export const MAX_BATCH = 128;
/** Bytes of the per-batch uniform staging area. */
const UNIFORM_CAPACITY = 64 * 1024;

const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const UNIFORM_USAGE = GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST;
const READ_USAGE = GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST;

/**
 * A WebGPU buffer of 4-byte elements. Its `GPUBuffer` is taken from the pool when a kernel first binds it. A
 * buffer may be lazy (`expr` set): the result of an elementwise expression over other buffers (its `leaves`),
 * not computed until a kernel other than an elementwise one, or a read, needs it (see `fusion.ts`).
 */
export class GPUBuf implements BackendBuffer {
  /** Number of elements. */
  readonly length: number;
  /** Element type. */
  readonly dtype: DType;
  /** The underlying buffer (at least 4 bytes, size-class rounded) once bound; null before. */
  phys: GPUBuffer | null = null;
  /** Encoder epoch that last referenced this buffer (-1: none). */
  epoch: number = -1;
  /** Set once freed. */
  freed: boolean = false;
  /** Never written yet (a fresh allocation). */
  fresh: boolean = true;
  /** The pending elementwise expression of a lazy buffer; null once computed (or for ordinary buffers). */
  expr: FusedNode | null = null;
  /** The buffers a lazy buffer's expression reads. */
  leaves: GPUBuf[] = [];
  /** Lazy buffers whose expressions read this buffer: they are computed before it is written or released. */
  readonly consumers: Set<GPUBuf> = new Set();

  /** A buffer of `length` elements of `dtype`; `buffer` if it already has one. */
  constructor(length: number, dtype: DType, buffer: GPUBuffer | null = null) {
    this.length = length;
    this.dtype = dtype;
    this.phys = buffer;
  }

  /** The underlying buffer; throws before the buffer has one. */
  get buffer(): GPUBuffer {
    if (!this.phys) throw new Error("WebGPU buffer has no storage yet (lazy or never bound)");
    return this.phys;
  }

  /** Bytes to bind: the data rounded up to 16 so `vec4` views validate (the size class always covers it). */
  get bindSize(): number {
    return Math.max(16, Math.ceil(this.length / 4) * 16);
  }
}

/** A kernel ready to dispatch: WGSL (entry `main`), its binding kinds, buffers and grid. */
export interface Dispatch {
  /** WGSL source. */
  code: string;
  /** Uniform block at binding 0, if any. */
  uniforms?: Uniforms;
  /** Storage buffers bound at 1.. (or 0.. without uniforms), with their access. */
  buffers: readonly (readonly [GPUBuf, "read" | "rw"])[];
  /** Workgroups in x, y, z. */
  groups: readonly [number, number, number];
  /** A short name for profiles (default: taken from the source). */
  label?: string;
}

/** The WebGPU device was lost: nothing computed on it can be trusted or read back. */
export class WebGPUDeviceLostError extends Error {
  /** `GPUDeviceLostInfo.reason` ("destroyed" or "unknown"). */
  readonly reason: string;
  /** Creates the error from the lost-info fields. */
  constructor(reason: string, message: string) {
    super(`WebGPU device lost (${reason}): ${message || "no message from the driver"}`);
    this.name = "WebGPUDeviceLostError";
    this.reason = reason;
  }
}

/** Owns the device, pools, pipeline cache and the open command encoder. */
export class Runtime {
  /** The device. */
  readonly device: GPUDevice;
  /** Storage/uniform/readback buffer pool. */
  readonly pool: BufferPool;
  /** Compiled kernels. */
  readonly pipelines: PipelineCache;
  /** Bind groups reused across dispatches. */
  readonly bindGroups: BindGroupCache;
  /** The adapter is a CPU implementation (lavapipe/llvmpipe): kernels pick shapes tuned for it. */
  software = false;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #dispatches = 0;
  #epoch = 0;
  #pending: GPUBuffer[] = [];
  #uniformBuf: GPUBuffer | null = null;
  #uniformStage = new Uint8Array(UNIFORM_CAPACITY);
  #uniformUsed = 0;
  #uniformAlign: number;
  #liveBytes = 0;
  #liveBuffers = 0;
  #peakBytes = 0;
  #error: Error | null = null;
  /** Dispatches recorded since the runtime started (or since {@linkcode Runtime.resetCounters}). */
  dispatchCount = 0;
  /**
   * Counting mode: dispatches are counted (and validated for shape) but neither encoded nor run, and reads
   * return zeros. Results are meaningless; the dispatch list a program makes is exact as long as it does not
   * branch on data it reads. For counting dispatches of large models on slow adapters.
   */
  countOnly = false;
  /** When set, dispatches are tallied by kernel here (key: the WGSL source's first distinctive line). */
  profile: Map<string, number> | null = null;

  /**
   * When set, the host time of recording each dispatch (µs: uniforms, bind group, encoding; submits excluded)
   * is appended here.
   */
  hostTimes: number[] | null = null;
  #submitMs = 0;
  #timer: GpuTimer | null = null;
  #timerKey: (d: Dispatch) => string = byLabel;

  /**
   * Starts timing every dispatch on the GPU (timestamp queries; one pass per dispatch), keyed by `key` (default:
   * the dispatch's label). {@linkcode Runtime.stopGpuTimer} ends it and returns the totals.
   */
  startGpuTimer(key?: (d: Dispatch) => string): void {
    this.flush();
    // one stamp pair per dispatch of a submit, which holds at most MAX_BATCH
    this.#timer = new GpuTimer(this.device, MAX_BATCH);
    this.#timerKey = key ?? byLabel;
  }

  /** Submits pending work, waits for its stamps and returns GPU milliseconds per key; timing stops. */
  async stopGpuTimer(): Promise<Map<string, { dispatches: number; ms: number }>> {
    const timer = this.#timer;
    if (!timer) throw new Error("the GPU timer was not started");
    this.flush();
    this.#timer = null;
    const totals = await timer.collect();
    timer.destroy();
    return totals;
  }

  /** Zeroes {@linkcode Runtime.dispatchCount}. */
  resetCounters(): void {
    this.dispatchCount = 0;
  }

  /** A runtime on `device`. */
  constructor(device: GPUDevice) {
    this.device = device;
    this.pool = new BufferPool(device);
    this.pipelines = new PipelineCache(device);
    this.bindGroups = new BindGroupCache(device);
    this.#uniformAlign = device.limits.minUniformBufferOffsetAlignment ?? 256;
    device.addEventListener("uncapturederror", (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      this.#error ??= new Error(`WebGPU error: ${err.message}`);
    });
  }

  #watching = false;

  /**
   * Starts watching for device loss (driver reset, out of memory, destroy()): afterwards every submit and read
   * throws one clear {@linkcode WebGPUDeviceLostError}. Opt-in (the training engine calls it) because a pending
   * `device.lost` subscription is torn down together with the device at process exit, which the software
   * adapters used in CI did not always survive.
   */
  watchLoss(): void {
    if (this.#watching) return;
    this.#watching = true;
    this.device.lost.then((info) => {
      this.lost = new WebGPUDeviceLostError(info.reason ?? "unknown", info.message);
    });
  }

  /** Set once the device is lost; every later submit and read throws it. */
  lost: WebGPUDeviceLostError | null = null;

  /** Live memory held by callers, plus idle pooled bytes. */
  memory(): MemoryInfo {
    return {
      bytes: this.#liveBytes,
      buffers: this.#liveBuffers,
      pooledBytes: this.pool.pooledBytes,
      peakBytes: this.#peakBytes,
    };
  }

  /** Restarts the peak at the bytes live now. */
  resetPeakMemory(): void {
    this.#peakBytes = this.#liveBytes;
  }

  /** A new uninitialised buffer (its storage is taken from the pool when first bound). */
  alloc(length: number, dtype: DType): GPUBuf {
    if (!Number.isInteger(length) || length < 0) throw new Error(`invalid buffer length ${length}`);
    const buf = new GPUBuf(length, dtype);
    this.#liveBytes += length * 4;
    this.#liveBuffers++;
    if (this.#liveBytes > this.#peakBytes) this.#peakBytes = this.#liveBytes;
    return buf;
  }

  /** The storage of `buf`, taken from the pool on first use. */
  #phys(buf: GPUBuf): GPUBuffer {
    return buf.phys ??= this.pool.acquire(Math.max(4, buf.length * 4), STORAGE_USAGE);
  }

  /**
   * Releases a buffer: to the pool now, or after the next submit if unsubmitted work uses it. A lazy buffer is
   * dropped without being computed; a buffer that pending lazy expressions still read is released after them.
   */
  free(b: BackendBuffer): void {
    const buf = this.own(b);
    buf.freed = true;
    this.#liveBytes -= buf.length * 4;
    this.#liveBuffers--;
    if (buf.expr) this.unlink(buf);
    if (buf.consumers.size === 0) this.#release(buf);
  }

  #release(buf: GPUBuf): void {
    const phys = buf.phys;
    if (!phys) return;
    buf.phys = null;
    if (buf.epoch === this.#epoch && this.#encoder) this.#pending.push(phys);
    else this.pool.release(phys);
  }

  /** Drops a lazy buffer's expression: its leaves forget it (and are released if they were freed meanwhile). */
  unlink(buf: GPUBuf): void {
    buf.expr = null;
    for (const leaf of buf.leaves) {
      leaf.consumers.delete(buf);
      if (leaf.freed && leaf.consumers.size === 0) this.#release(leaf);
    }
    buf.leaves = [];
  }

  /** Casts a caller's buffer to {@linkcode GPUBuf}, rejecting foreign or freed buffers; a lazy one is computed. */
  check(b: BackendBuffer): GPUBuf {
    const buf = this.own(b);
    if (buf.expr) realize(this, buf);
    return buf;
  }

  /** Like {@linkcode Runtime.check} but leaves a lazy buffer lazy (for elementwise kernels, which fuse). */
  own(b: BackendBuffer): GPUBuf {
    if (!(b instanceof GPUBuf)) throw new Error("buffer does not belong to the WebGPU backend");
    if (b.freed) throw new Error("use of a freed WebGPU buffer");
    return b;
  }

  /** Computes every lazy buffer that reads `buf`, so that `buf` can be written. */
  beforeWrite(buf: GPUBuf): void {
    for (const c of [...buf.consumers]) realize(this, c);
  }

  /** Uploads host data (already widened to 4-byte elements) into a fresh or pooled buffer. */
  upload(data: Float32Array | Int32Array | Uint32Array, dtype: DType): GPUBuf {
    const buf = this.alloc(data.length, dtype);
    // The buffer is fresh or came from the pool, so no unsubmitted command references it.
    buf.fresh = false;
    if (data.length > 0) this.device.queue.writeBuffer(this.#phys(buf), 0, data as BufferSource);
    return buf;
  }

  /** Records one dispatch. */
  dispatch(d: Dispatch): void {
    if (d.groups[0] === 0 || d.groups[1] === 0 || d.groups[2] === 0) return;
    this.dispatchCount++;
    if (this.profile) {
      const key = d.label ?? d.code.slice(d.code.lastIndexOf("fn main"), d.code.lastIndexOf("fn main") + 400);
      this.profile.set(key, (this.profile.get(key) ?? 0) + 1);
    }
    for (const [buf, kind] of d.buffers) {
      if (buf.expr) realize(this, buf); // a kernel's own temporaries (e.g. a fill) may be lazy
      if (kind === "rw") {
        if (buf.consumers.size > 0) this.beforeWrite(buf);
        buf.fresh = false;
      }
    }
    if (this.countOnly) return;
    const t0 = this.hostTimes ? performance.now() : 0;
    const s0 = this.#submitMs;
    this.#record(d);
    if (this.hostTimes) this.hostTimes.push((performance.now() - t0 - (this.#submitMs - s0)) * 1000);
  }

  #record(d: Dispatch): void {
    const kinds: BindingKind[] = d.uniforms ? ["uniform"] : [];
    for (const [, kind] of d.buffers) kinds.push(kind);
    const { pipeline, layout } = this.pipelines.get(d.code, kinds);
    const bound: BoundBuffer[] = [];
    let offsets: number[] | null = null;
    if (d.uniforms) {
      const bytes = d.uniforms.data.byteLength;
      if (this.#uniformUsed + bytes > UNIFORM_CAPACITY) this.flush();
      this.#open();
      const offset = this.#uniformUsed;
      this.#uniformStage.set(new Uint8Array(d.uniforms.data), offset);
      this.#uniformUsed = Math.ceil((offset + bytes) / this.#uniformAlign) * this.#uniformAlign;
      // bound at a dynamic offset: the bind group does not depend on where this dispatch's block sits
      bound.push([this.#uniformBuf!, bytes]);
      offsets = [offset];
    } else {
      this.#open();
    }
    for (const [buf, kind] of d.buffers) {
      buf.epoch = this.#epoch;
      if (kind === "rw") buf.fresh = false;
      bound.push([this.#phys(buf), buf.bindSize]);
    }
    const bindGroup = this.bindGroups.get(layout, bound);
    if (this.#timer) {
      this.#pass!.end();
      this.#pass = this.#encoder!.beginComputePass({ timestampWrites: this.#timer.next(this.#timerKey(d)) });
    }
    const pass = this.#pass!;
    pass.setPipeline(pipeline);
    if (offsets) pass.setBindGroup(0, bindGroup, offsets);
    else pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(d.groups[0], d.groups[1], d.groups[2]);
    if (this.#timer) {
      pass.end();
      this.#pass = null;
    }
    if (++this.#dispatches >= MAX_BATCH) this.flush();
  }

  #open(): void {
    if (!this.#encoder) {
      this.#encoder = this.device.createCommandEncoder();
      this.#uniformBuf = this.pool.acquire(UNIFORM_CAPACITY, UNIFORM_USAGE);
      this.#uniformUsed = 0;
    }
    if (!this.#pass) this.#pass = this.#encoder.beginComputePass();
  }

  /** Submits the open encoder (if any) and recycles buffers that waited for it. */
  flush(): void {
    if (!this.#encoder) return;
    this.#pass?.end();
    this.#pass = null;
    if (this.#uniformUsed > 0) {
      this.device.queue.writeBuffer(this.#uniformBuf!, 0, this.#uniformStage.buffer, 0, this.#uniformUsed);
    }
    const stamped = this.#timer?.resolve(this.#encoder);
    const commands = this.#encoder.finish();
    const t0 = this.hostTimes ? performance.now() : 0;
    this.device.queue.submit([commands]);
    stamped?.();
    if (this.hostTimes) this.#submitMs += performance.now() - t0;
    this.#encoder = null;
    this.#dispatches = 0;
    this.#epoch++;
    // Everything queued later runs after this submit, so waiting buffers can be reused now.
    this.pool.release(this.#uniformBuf!);
    this.#uniformBuf = null;
    for (const b of this.#pending) this.pool.release(b);
    this.#pending = [];
    if (this.lost) throw this.lost;
    if (this.#error) {
      const e = this.#error;
      this.#error = null;
      throw e;
    }
  }

  /** Reads a buffer back as a typed array of its dtype. */
  async read(b: BackendBuffer): Promise<HostArray> {
    if (this.lost) throw this.lost;
    const buf = this.check(b);
    const n = buf.length;
    if (this.countOnly) {
      return buf.dtype === "float32"
        ? new Float32Array(n)
        : buf.dtype === "int32"
        ? new Int32Array(n)
        : new Uint8Array(n);
    }
    if (n === 0) {
      return buf.dtype === "float32"
        ? new Float32Array(0)
        : buf.dtype === "int32"
        ? new Int32Array(0)
        : new Uint8Array(0);
    }
    this.#open();
    this.#pass!.end();
    this.#pass = null;
    const staging = this.pool.acquire(n * 4, READ_USAGE);
    this.#encoder!.copyBufferToBuffer(this.#phys(buf), 0, staging, 0, n * 4);
    buf.epoch = this.#epoch;
    this.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, n * 4);
    } catch (e) {
      staging.destroy();
      throw e;
    }
    const bytes = staging.getMappedRange(0, n * 4).slice(0);
    staging.unmap();
    this.pool.release(staging);
    if (buf.dtype === "float32") return new Float32Array(bytes);
    if (buf.dtype === "int32") return new Int32Array(bytes);
    return Uint8Array.from(new Uint32Array(bytes));
  }

  /** Submits pending work and waits for the queue to drain. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
  }
}
