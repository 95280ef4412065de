/**
 * A size-class pool of `GPUBuffer`s: sizes are rounded up to classes (powers of two with four
 * sub-steps each) and released buffers are reused by class and usage.
 *
 * @module
 */

/** Smallest class in bytes. */
const MIN_CLASS = 256;

/** Rounds a byte size up to its size class: 256, then 2^k · {1, 1.25, 1.5, 1.75}. */
export function sizeClass(bytes: number): number {
  if (bytes <= MIN_CLASS) return MIN_CLASS;
  const p = 2 ** Math.floor(Math.log2(bytes));
  const step = p / 4;
  return Math.ceil(bytes / step) * step;
}

/** Reuses GPU buffers by (usage, size class). */
export class BufferPool {
  #free = new Map<string, GPUBuffer[]>();
  #ids = new WeakMap<GPUBuffer, number>();
  #created = 0;
  #pooledBytes = 0;
  #device: GPUDevice;
  #maxPooledBytes: number;

  /** A pool on `device` that keeps at most `maxPooledBytes` of idle buffers. */
  constructor(device: GPUDevice, maxPooledBytes: number = 1 << 30) {
    this.#device = device;
    this.#maxPooledBytes = maxPooledBytes;
  }

  /** Bytes held by idle buffers. */
  get pooledBytes(): number {
    return this.#pooledBytes;
  }

  /** A buffer of at least `bytes` bytes (its `size` is the class size). */
  acquire(bytes: number, usage: GPUBufferUsageFlags): GPUBuffer {
    const size = sizeClass(bytes);
    const list = this.#free.get(`${usage}:${size}`);
    const hit = list?.pop();
    if (hit) {
      this.#pooledBytes -= size;
      return hit;
    }
    const buf = this.#device.createBuffer({ size, usage });
    this.#ids.set(buf, this.#created++);
    return buf;
  }

  /** Returns a buffer for reuse. The caller guarantees no unsubmitted command references it. */
  release(buf: GPUBuffer): void {
    if (this.#pooledBytes + buf.size > this.#maxPooledBytes) {
      buf.destroy();
      return;
    }
    const key = `${buf.usage}:${buf.size}`;
    let list = this.#free.get(key);
    if (!list) this.#free.set(key, list = []);
    // kept sorted by creation, oldest last: acquire hands out the oldest idle buffer of a class, whatever order
    // buffers came back in, so a repeated program gets the same buffers each time (and the same bind groups)
    const id = this.#ids.get(buf) ?? -1;
    let lo = 0, hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#ids.get(list[mid]) ?? -1) > id) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, buf);
    this.#pooledBytes += buf.size;
  }

  /** Destroys every idle buffer. */
  clear(): void {
    for (const list of this.#free.values()) for (const b of list) b.destroy();
    this.#free.clear();
    this.#pooledBytes = 0;
  }
}
