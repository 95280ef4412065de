/**
 * The CPU backend's tensor heap: large float32 arrays live in the WebAssembly kernels' shared memory, above
 * {@linkcode HEAP_BASE}, so the kernels (and their worker threads) read and write tensors where they are instead
 * of copying blocks in and out. The arrays are ordinary Float32Array views (a shared memory never detaches
 * them when it grows), so every TypeScript kernel works on them unchanged.
 *
 * Blocks come from a {@linkcode BlockAllocator}, the memory growing when the top passes its end. Where shared memory is unavailable
 * (browsers without cross-origin isolation), when the heap is turned off, or when the 4 GiB address space is
 * full, {@linkcode heapArray} returns null and the caller makes an ordinary array.
 *
 * @module
 */

import { type CpuWasm, HEAP_BASE, sharedMemory, WasmLayout } from "./module.ts";

/** Block alignment in bytes (a cache line; SIMD loads need 16). */
const ALIGN = 64;
/** The end of a shared memory's address space (65,536 pages). */
const HEAP_END = 2 ** 32;

/** A free block: byte address and size. */
interface Block {
  at: number;
  size: number;
}

/**
 * Hands out blocks of the address range [base, end): best fit among the free blocks (kept in address order,
 * neighbours merged), else from the top; a free block that reaches the top lowers it. Pure bookkeeping: the
 * caller owns the memory.
 */
export class BlockAllocator {
  /** The free blocks below the top, in address order. */
  readonly free: Block[] = [];
  /** The first address never handed out. */
  top: number;
  constructor(readonly base: number, readonly end: number) {
    this.top = base;
  }

  /** The address of a block of `size` bytes, or 0 when none is left. */
  take(size: number): number {
    const free = this.free;
    let best = -1;
    for (let i = 0; i < free.length; i++) {
      const s = free[i].size;
      if (s >= size && (best < 0 || s < free[best].size)) {
        best = i;
        if (s === size) break;
      }
    }
    if (best >= 0) {
      const b = free[best], at = b.at;
      if (b.size === size) free.splice(best, 1);
      else {
        b.at += size;
        b.size -= size;
      }
      return at;
    }
    if (this.top + size > this.end) return 0;
    const at = this.top;
    this.top += size;
    return at;
  }

  /** Gives back the block of `size` bytes at `at`. */
  release(at: number, size: number): void {
    const free = this.free;
    let lo = 0, hi = free.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (free[mid].at < at) lo = mid + 1;
      else hi = mid;
    }
    const prev = free[lo - 1], next = free[lo];
    if (prev && prev.at + prev.size === at) {
      prev.size += size;
      if (next && at + size === next.at) {
        prev.size += next.size;
        free.splice(lo, 1);
      }
    } else if (next && at + size === next.at) {
      next.at = at;
      next.size += size;
    } else free.splice(lo, 0, { at, size });
    const last = free[free.length - 1];
    if (last && last.at + last.size === this.top) {
      this.top = last.at;
      free.pop();
    }
  }

  /** Bytes handed out and not given back, and the top's distance from the base. */
  stats(): { usedBytes: number; topBytes: number } {
    const freeBytes = this.free.reduce((s, b) => s + b.size, 0);
    return { usedBytes: this.top - this.base - freeBytes, topBytes: this.top - this.base };
  }
}

const blocks = new BlockAllocator(HEAP_BASE, HEAP_END);
let enabled = true;
/** The memory's current buffer (a new object after each growth), whose views we hand out. */
let buffer: ArrayBufferLike | null = null;
/** Every buffer object we handed views on: membership tells a heap array from an ordinary one. */
const ours = new WeakSet<ArrayBufferLike>();

/** Turns the heap on or off for arrays made from now on (tests and benchmarks compare both). */
export function setCpuHeapEnabled(on: boolean): void {
  enabled = on;
}

/** Whether `a` lives in the heap (its byte address is `a.byteOffset`). */
export function onHeap(a: ArrayBufferView): boolean {
  return ours.has(a.buffer);
}

/** Bytes of the heap in use (blocks handed out, alignment included) and its top's distance from its base. */
export function heapStats(): { usedBytes: number; topBytes: number } {
  return blocks.stats();
}

const blockSize = (length: number) => Math.ceil(length * 4 / ALIGN) * ALIGN;

/** A float32 array of `length` elements in the heap (contents unspecified), or null (make an ordinary one). */
export function heapArray(length: number): Float32Array | null {
  if (!enabled) return null;
  const memory = sharedMemory();
  if (!memory) return null;
  const size = blockSize(length);
  const at = blocks.take(size);
  if (at === 0) return null;
  const have = memory.buffer.byteLength;
  if (at + size > have) {
    try {
      memory.grow(Math.ceil((at + size - have) / 65536));
    } catch {
      // the host would not commit more: give the block back, the caller makes an ordinary array
      blocks.release(at, size);
      return null;
    }
  }
  if (!buffer || buffer.byteLength < at + size) {
    buffer = memory.buffer;
    ours.add(buffer);
  }
  return new Float32Array(buffer, at, length);
}

/** Returns a heap array's block (the array must not be used again). */
export function heapFree(a: Float32Array): void {
  blocks.release(a.byteOffset, blockSize(a.length));
}

/** The most floats an operand outside the heap may have to be copied through the scratch space. */
const MAX_STAGED = 1 << 16;

/**
 * The addresses of one kernel call's operands: arrays in the heap as they are, small ones outside it (weights,
 * biases, statistics: at most 65,536 floats) through slots of the scratch space, copied in by {@linkcode stage}
 * and out by {@linkcode collect}. `ok` turns false when an operand can be neither.
 */
export class KernelOperands {
  /** Whether every operand got an address. */
  ok = true;
  private readonly lay = new WasmLayout();
  private readonly ins: [Float32Array, number][] = [];
  private readonly outs: [Float32Array, number][] = [];

  private place(a: Float32Array | null, list: [Float32Array, number][]): number {
    if (!a) return 0;
    if (onHeap(a)) return a.byteOffset;
    if (a.length > MAX_STAGED) {
      this.ok = false;
      return 0;
    }
    const at = this.lay.take(a.length);
    list.push([a, at]);
    return at;
  }
  /** An input's address (0 for null). */
  input(a: Float32Array | null): number {
    return this.place(a, this.ins);
  }
  /** An output's address (0 for null). */
  output(a: Float32Array | null): number {
    return this.place(a, this.outs);
  }
  /** A scratch slot of `floats` floats (a float64 takes two). */
  scratch(floats: number): number {
    return this.lay.take(floats);
  }
  /** Reserves the scratch space and copies the staged inputs in; null when not `ok` or it does not fit. */
  stage(m: CpuWasm): Float32Array | null {
    const mem = this.ok ? m.reserve(this.lay.bytes) : null;
    if (mem) { for (const [a, at] of this.ins) mem.set(a, at >> 2); }
    return mem;
  }
  /** Copies the staged outputs back, after the calls ran. */
  collect(mem: Float32Array): void {
    for (const [a, at] of this.outs) a.set(mem.subarray(at >> 2, (at >> 2) + a.length));
  }
}
