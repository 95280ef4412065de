/**
 * The CPU backend's WebAssembly kernels (AssemblyScript sources in src/, built by tools/build_wasm.ts into
 * kernels.wasm.ts): one module instance with one linear memory that the host lays operands out in. Where
 * SharedArrayBuffer exists the memory is shared and worker threads (threads.ts) run kernel calls on it too.
 * Everything here is synchronous; a runtime without WebAssembly SIMD gets `null` and the scalar kernels.
 *
 * @module
 */

import { CPU_KERNELS_SHARED_WASM_BASE64, CPU_KERNELS_WASM_BASE64 } from "./kernels.wasm.ts";
import { type KernelCall, startThreads } from "./threads.ts";

/** The exported kernels (byte addresses and sizes are plain numbers). */
export interface CpuWasmExports {
  /** Selective-scan forward of one batch element (src/selective_scan.ts). */
  scanForward(...args: number[]): void;
  /** Selective-scan backward of one batch element (src/selective_scan.ts). */
  scanBackward(...args: number[]): void;
  /** dst = op(src) over n float32 values, n a multiple of 8 (src/elementwise.ts). */
  unary(op: number, src: number, dst: number, n: number): void;
  /** Depthwise conv forward of one image at stride 1 (src/depthwise.ts). */
  dwForward(...args: number[]): void;
  /** Depthwise conv input gradient of one image at stride 1. */
  dwBackwardInput(...args: number[]): void;
  /** Depthwise conv weight gradient of one image at stride 1, added into dw. */
  dwBackwardWeight(...args: number[]): void;
  /** DSE gate dst = gelu(a)·b + gelu(b)·a over n float32 values, n a multiple of 4 (src/elementwise.ts). */
  geluCross(a: number, b: number, dst: number, n: number): void;
  /** Its gradient: da, db from a, b and the output gradient g. */
  geluCrossGrad(a: number, b: number, g: number, da: number, db: number, n: number): void;
  /** Rows [r0, r1) of a broadcast add, sub, mul or div (src/binary.ts). */
  binary(...args: number[]): void;
  /** Rows [r0, r1) of a strided copy (src/copy.ts). */
  copy(...args: number[]): void;
  /** Rows [a0, a1) of a tiled transpose (src/copy.ts). */
  transpose(...args: number[]): void;
  /** Layer norm forward over outer indices [o0, o1) (src/layer_norm.ts). */
  lnForward(...args: number[]): void;
  /** Layer norm backward over outer indices [o0, o1). */
  lnBackward(...args: number[]): void;
  /** Max pooling forward of planes [p0, p1): values and int32 indices (src/pool.ts). */
  maxPoolForward(...args: number[]): void;
  /** indexSelect of rows [r0, r1) (src/gather.ts). */
  gather(...args: number[]): void;
  /** indexSelect's gradient of rows [r0, r1): zeroed, then added into in index order. */
  scatterAdd(...args: number[]): void;
  /** Haar DWT of planes [p0, p1) (src/haar.ts). */
  haarDwt(...args: number[]): void;
  /** Haar IWT of planes [p0, p1). */
  haarIwt(...args: number[]): void;
}

/** The instance and its memory. */
export interface CpuWasm {
  /** The kernels. */
  exports: CpuWasmExports;
  /**
   * Grows the memory to at least `bytes` and returns a float32 view of all of it; null when `bytes` is more
   * than the scratch space below the tensor heap (the caller runs its scalar kernel instead).
   */
  reserve(bytes: number): Float32Array | null;
  /** Runs one kernel call on the calling thread. */
  run(call: KernelCall): void;
}

const decode = (b64: string): Uint8Array<ArrayBuffer> => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));

/** Instantiates a build on `memory`. */
function instantiate(bytes: Uint8Array<ArrayBuffer>, memory: WebAssembly.Memory): CpuWasmExports {
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), {
    env: {
      memory,
      abort: () => {
        throw new Error("CPU wasm kernel: abort");
      },
    },
  }).exports as unknown as CpuWasmExports;
}

/** The shared-memory build and its memory. */
interface SharedBuild {
  exports: CpuWasmExports;
  memory: WebAssembly.Memory;
  bytes: Uint8Array<ArrayBuffer>;
}

let shared: SharedBuild | null | undefined;

/** The shared-memory build on a shared memory (made once), or null where shared memory is unavailable. */
function sharedBuild(): SharedBuild | null {
  if (shared !== undefined) return shared;
  shared = null;
  if (typeof SharedArrayBuffer === "undefined") return shared;
  try {
    const bytes = decode(CPU_KERNELS_SHARED_WASM_BASE64);
    const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    shared = { exports: instantiate(bytes, memory), memory, bytes };
  } catch {
    shared = null;
  }
  return shared;
}

/**
 * The kernels' shared memory, where the CPU backend keeps its large float32 arrays (heap.ts) so the kernels and
 * their worker threads work on them in place; null where shared memory or WebAssembly SIMD is unavailable.
 */
export function sharedMemory(): WebAssembly.Memory | null {
  return sharedBuild()?.memory ?? null;
}

/**
 * Byte address where the tensor heap (heap.ts) begins. Below it is the kernels' scratch space, which every
 * kernel call lays out from address 16 on ({@linkcode WasmLayout}); the address space of a shared memory is
 * reserved up front, so pages of either only cost memory once touched.
 */
export const HEAP_BASE = 1 << 29;

let instance: CpuWasm | null | undefined;
const runs = new Map<string, number>();

/** How many calls of kernel `name` the calling thread ran so far (tests check that a WebAssembly path ran). */
export function wasmKernelRuns(name: string): number {
  return runs.get(name) ?? 0;
}
let enabled = true;

/** The kernels, or null when the runtime lacks WebAssembly SIMD or they were turned off. */
export function cpuWasm(): CpuWasm | null {
  if (!enabled) return null;
  if (instance !== undefined) return instance;
  try {
    const shared = sharedBuild();
    const memory = shared?.memory ?? new WebAssembly.Memory({ initial: 16 });
    const exports = shared?.exports ?? instantiate(decode(CPU_KERNELS_WASM_BASE64), memory);
    if (shared) startThreads(shared.memory, shared.bytes);
    const fns = exports as unknown as Record<string, (...args: number[]) => void>;
    let view = new Float32Array(memory.buffer);
    instance = {
      exports,
      reserve(bytes: number): Float32Array | null {
        if (shared && bytes > HEAP_BASE) return null;
        const have = memory.buffer.byteLength;
        if (bytes > have) memory.grow(Math.ceil((bytes - have) / 65536));
        if (view.buffer !== memory.buffer || view.length * 4 !== memory.buffer.byteLength) {
          view = new Float32Array(memory.buffer);
        }
        return view;
      },
      run(call: KernelCall): void {
        runs.set(call.kernel, (runs.get(call.kernel) ?? 0) + 1);
        fns[call.kernel](...call.args);
      },
    };
  } catch {
    instance = null;
  }
  return instance;
}

/** Turns the WebAssembly kernels on or off (tests compare them with the scalar reference kernels). */
export function setCpuWasmEnabled(on: boolean): void {
  enabled = on;
}

/**
 * Plans a layout of `count` regions (`plan(k)` lays out k), halving the count while it does not fit the scratch
 * space below the tensor heap; reserves it. Null when even one region does not fit.
 */
export function reserveRegions<T extends { lay: WasmLayout }>(
  m: CpuWasm,
  count: number,
  plan: (regions: number) => T,
): (T & { mem: Float32Array }) | null {
  for (let k = count; k >= 1; k = k === 1 ? 0 : Math.ceil(k / 2)) {
    const planned = plan(k), mem = m.reserve(planned.lay.bytes);
    if (mem) return { ...planned, mem };
  }
  return null;
}

/** Byte offsets of regions in the module's memory, each 16-byte aligned; 0 is never handed out ("absent"). */
export class WasmLayout {
  /** Bytes used so far. */
  bytes = 16;
  /** Reserves `floats` float32 slots (a float64 takes two); returns the byte offset, or 0 when `floats` is 0. */
  take(floats: number): number {
    if (floats === 0) return 0;
    const at = this.bytes;
    this.bytes += Math.ceil(floats * 4 / 16) * 16;
    return at;
  }
}
