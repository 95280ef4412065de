/**
 * GPU execution time per kernel, from timestamp queries: while a timer is attached to the runtime, every dispatch
 * runs in a compute pass of its own whose start and end the GPU stamps. Each submit resolves its stamps into a
 * buffer that is read back asynchronously; {@linkcode GpuTimer.collect} waits for all of them.
 *
 * One pass per dispatch changes the schedule a little (no overlap between dispatches), which is what a
 * per-kernel profile wants. Needs the adapter's `timestamp-query` feature, which `requestDevice` asks for.
 *
 * @module
 */

/** Total GPU milliseconds and dispatches per key. */
export type GpuTimes = Map<string, { dispatches: number; ms: number }>;

const RESOLVE_USAGE = GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC;
const READ_USAGE = GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST;

/** Stamps the passes of one runtime; sums their durations by key. */
export class GpuTimer {
  /** Totals so far (complete after {@linkcode GpuTimer.collect}). */
  readonly totals: GpuTimes = new Map();
  #device: GPUDevice;
  #querySet: GPUQuerySet;
  #capacity: number;
  #keys: string[] = [];
  #reads: Promise<void>[] = [];

  /** A timer for up to `capacity` dispatches per submit. */
  constructor(device: GPUDevice, capacity: number) {
    if (!device.features.has("timestamp-query")) {
      throw new Error("GPU timing needs the adapter's 'timestamp-query' feature, which this device lacks");
    }
    this.#device = device;
    this.#capacity = capacity;
    this.#querySet = device.createQuerySet({ type: "timestamp", count: 2 * capacity });
  }

  /** The timestamp writes for the next pass, which times one dispatch counted under `key`. */
  next(key: string): GPUComputePassTimestampWrites {
    const i = this.#keys.length;
    if (i >= this.#capacity) throw new Error(`GPU timer: more than ${this.#capacity} dispatches in one submit`);
    this.#keys.push(key);
    return { querySet: this.#querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /**
   * Records the resolve of this encoder's stamps; call before `finish()`. Returns what to call after the submit
   * (it starts the read-back), or null when nothing was stamped.
   */
  resolve(encoder: GPUCommandEncoder): (() => void) | null {
    const keys = this.#keys;
    if (keys.length === 0) return null;
    this.#keys = [];
    const bytes = keys.length * 16;
    const resolved = this.#device.createBuffer({ size: bytes, usage: RESOLVE_USAGE });
    const staging = this.#device.createBuffer({ size: bytes, usage: READ_USAGE });
    encoder.resolveQuerySet(this.#querySet, 0, 2 * keys.length, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, staging, 0, bytes);
    return () => {
      this.#reads.push(
        staging.mapAsync(GPUMapMode.READ).then(() => {
          const stamps = new BigUint64Array(staging.getMappedRange().slice(0));
          keys.forEach((key, i) => {
            const ns = Number(stamps[2 * i + 1] - stamps[2 * i]);
            const t = this.totals.get(key) ?? { dispatches: 0, ms: 0 };
            t.dispatches++;
            t.ms += ns / 1e6;
            this.totals.set(key, t);
          });
        }).finally(() => {
          staging.destroy();
          resolved.destroy();
        }),
      );
    };
  }

  /** Waits for every submitted read-back; returns the totals. */
  async collect(): Promise<GpuTimes> {
    const reads = this.#reads;
    this.#reads = [];
    await Promise.all(reads);
    return this.totals;
  }

  /** Frees the query set. */
  destroy(): void {
    this.#querySet.destroy();
  }
}
