/**
 * Bind groups reused across dispatches. Creating one costs tens of microseconds of host time in Deno's WebGPU
 * (about as much as recording the dispatch itself), while a training step binds the same pooled buffers in the
 * same pattern again and again. A bind group is keyed by its layout and, per binding, the buffer's identity and
 * bound size; the uniform block is bound with a dynamic offset, so its position in the per-submit uniform buffer
 * is not part of the key.
 *
 * Buffers get ids that are never reused, so an entry that names a buffer the pool has since destroyed can never
 * be hit again; such entries age out of the bounded, least-recently-used map.
 *
 * @module
 */

/** One binding of a bind group: the buffer and the bytes bound from offset 0. */
export type BoundBuffer = readonly [buffer: GPUBuffer, size: number];

/** Entries kept; a Wave-MambaAD training step at 256² binds about 3,000 distinct groups. */
const CAPACITY = 8192;

/** Caches bind groups of one device. */
export class BindGroupCache {
  #device: GPUDevice;
  #groups = new Map<string, GPUBindGroup>();
  #ids = new WeakMap<object, number>();
  #nextId = 0;
  /** Lookups served from the cache. */
  hits = 0;
  /** Bind groups created. */
  misses = 0;

  /** A cache on `device`. */
  constructor(device: GPUDevice) {
    this.#device = device;
  }

  #id(o: object): number {
    let id = this.#ids.get(o);
    if (id === undefined) {
      id = this.#nextId++;
      this.#ids.set(o, id);
    }
    return id;
  }

  /** The bind group of `layout` over `buffers`, bound at 0, 1, … in order. */
  get(layout: GPUBindGroupLayout, buffers: readonly BoundBuffer[]): GPUBindGroup {
    let key = String(this.#id(layout));
    for (const [buffer, size] of buffers) key += `,${this.#id(buffer)}:${size}`;
    const hit = this.#groups.get(key);
    if (hit) {
      this.hits++;
      // most recently used last, so the first key is the one to evict
      this.#groups.delete(key);
      this.#groups.set(key, hit);
      return hit;
    }
    this.misses++;
    const group = this.#device.createBindGroup({
      layout,
      entries: buffers.map(([buffer, size], binding) => ({ binding, resource: { buffer, offset: 0, size } })),
    });
    if (this.#groups.size >= CAPACITY) this.#groups.delete(this.#groups.keys().next().value!);
    this.#groups.set(key, group);
    return group;
  }

  /** Number of cached bind groups. */
  get size(): number {
    return this.#groups.size;
  }
}
