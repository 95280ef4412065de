/**
 * Batching with decode-ahead: a {@linkcode DataLoader} turns a list of {@linkcode Sample}s into batches of
 * normalised CHW images and {0,1} masks, decoding up to `prefetch` batches ahead of the consumer so the
 * device does not wait on disk. Shuffling is a Fisher–Yates permutation drawn from the project's seeded
 * {@linkcode Generator}, seeded from `(seed, epoch)` only, so resuming at an epoch reproduces its order.
 *
 * @module
 */

import { Generator } from "../../autodiff/random.ts";
import type { Sample } from "./datasets.ts";
import { binarizeResizeMask, ImageFileError, loadImageWithSize, readMask } from "./image.ts";

/** One batch: `B` images and masks at `size`×`size`, in sample order. */
export interface Batch {
  /** `B*3*size*size` float32, ImageNet-normalised CHW per image. */
  images: Float32Array;
  /** `B*size*size` {0,1} masks (all zero for normal images, or when masks are not loaded). */
  masks: Uint8Array;
  /** The samples of the batch, in the same order. */
  samples: Sample[];
  /** Image side length. */
  size: number;
}

/** Options of {@linkcode DataLoader}. */
export interface DataLoaderOptions {
  /** Samples per batch. */
  batchSize: number;
  /** Side of the square model input (256 in the paper). */
  imageSize: number;
  /** Shuffle each epoch (default false). */
  shuffle?: boolean;
  /** Drop the last incomplete batch (default false; the reference trains with true). */
  dropLast?: boolean;
  /** Seed of the shuffle (default 0). */
  seed?: number;
  /** Batches decoded ahead of the consumer (default 2; 0 decodes each batch only when it is asked for). */
  prefetch?: number;
  /** Decode masks (default true); when false `masks` is all zero. */
  withMasks?: boolean;
  /** Skip undecodable files with a warning instead of throwing (default false). */
  skipBad?: boolean;
  /** Files decoded at the same time (default 4). */
  concurrency?: number;
}

/** Options of {@linkcode loadSamples}. */
export interface LoadSamplesOptions {
  /** Decode masks (default true). */
  withMasks?: boolean;
  /** Skip undecodable files with a warning (default false); skipped paths are pushed to `skipped` if given. */
  skipBad?: boolean;
  /** Files decoded at the same time (default 4). */
  concurrency?: number;
  /** Receives the paths of skipped files. */
  skipped?: string[];
}

interface Decoded {
  sample: Sample;
  image: Float32Array;
  mask: Uint8Array;
}

type Outcome = { ok: true; value: Decoded } | { ok: false; error: unknown };

/**
 * Decodes one sample: the image, and when `withMasks` its mask, which must have the image's size (a
 * mismatch is an {@linkcode ImageFileError} naming both files and sizes).
 */
async function decodeSample(s: Sample, size: number, withMasks: boolean): Promise<Decoded> {
  const img = await loadImageWithSize(s.path, size);
  let mask: Uint8Array;
  if (withMasks && s.maskPath !== null) {
    const m = await readMask(s.maskPath);
    if (m.width !== img.width || m.height !== img.height) {
      throw new ImageFileError(
        s.maskPath,
        `mask is ${m.width}x${m.height} but its image ${s.path} is ${img.width}x${img.height}`,
      );
    }
    mask = binarizeResizeMask(m, size);
  } else {
    mask = new Uint8Array(size * size);
  }
  return { sample: s, image: img.tensor, mask };
}

/** Runs at most `n` of the returned function's tasks at once, in call order. */
function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

function assemble(items: Decoded[], size: number): Batch {
  const per = 3 * size * size;
  const images = new Float32Array(items.length * per);
  const masks = new Uint8Array(items.length * size * size);
  items.forEach((d, i) => {
    images.set(d.image, i * per);
    masks.set(d.mask, i * size * size);
  });
  return { images, masks, samples: items.map((d) => d.sample), size };
}

function positiveInt(name: string, v: number, allowZero = false): number {
  if (!Number.isInteger(v) || v < (allowZero ? 0 : 1)) {
    throw new Error(`DataLoader: ${name} must be a ${allowZero ? "non-negative" : "positive"} integer, got ${v}`);
  }
  return v;
}

/** The shuffle seed of an epoch: a 32-bit hash of (seed, epoch), fed to {@linkcode Generator}. */
export function epochSeed(seed: number, epoch: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x5bd1e995, 0x9e3779b1) >>> 0;
  h = (h ^ Math.imul((epoch >>> 0) + 0x7f4a7c15, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  return (h ^ (h >>> 12)) >>> 0;
}

/** A Fisher–Yates permutation of `0..n-1` drawn from `gen` (from the last position down). */
export function shuffledIndices(n: number, gen: Generator): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = gen.int(0, i + 1);
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  return idx;
}

/**
 * Iterates batches of decoded samples: `for await (const batch of loader.epoch(e))`. Decoding runs up to
 * `prefetch` batches ahead (at most `concurrency` files at once); batches come out in sample order.
 * Bad files throw (an {@linkcode ImageFileError} naming the file) unless `skipBad`, in which case they are
 * skipped with a warning, listed in {@linkcode DataLoader.skipped}, and the next good samples fill the
 * batch (so an epoch may then have fewer batches than {@linkcode DataLoader.length}).
 */
export class DataLoader {
  /** The samples, in dataset order. */
  readonly samples: readonly Sample[];
  /** Resolved options. */
  readonly options: Readonly<Required<DataLoaderOptions>>;
  /** Paths of files skipped so far (with `skipBad`), each listed once. */
  readonly skipped: string[] = [];

  /** Creates a loader over `samples`. */
  constructor(samples: readonly Sample[], opts: DataLoaderOptions) {
    this.samples = samples;
    this.options = {
      batchSize: positiveInt("batchSize", opts.batchSize),
      imageSize: positiveInt("imageSize", opts.imageSize),
      shuffle: opts.shuffle ?? false,
      dropLast: opts.dropLast ?? false,
      seed: opts.seed ?? 0,
      prefetch: positiveInt("prefetch", opts.prefetch ?? 2, true),
      withMasks: opts.withMasks ?? true,
      skipBad: opts.skipBad ?? false,
      concurrency: positiveInt("concurrency", opts.concurrency ?? 4),
    };
  }

  /** Batches per epoch (before any skipped files). */
  get length(): number {
    const n = this.samples.length, b = this.options.batchSize;
    return this.options.dropLast ? Math.floor(n / b) : Math.ceil(n / b);
  }

  /** The sample order of an epoch: identity, or the Fisher–Yates shuffle seeded by `(seed, epoch)`. */
  order(epoch: number): number[] {
    const n = this.samples.length;
    if (!this.options.shuffle) return Array.from({ length: n }, (_, i) => i);
    return shuffledIndices(n, new Generator(epochSeed(this.options.seed, epoch)));
  }

  /** The batches of epoch `epoch` (0-based), decoded ahead of the consumer. */
  async *epoch(epoch = 0): AsyncGenerator<Batch, void, undefined> {
    const { batchSize, imageSize, prefetch, withMasks, skipBad, concurrency, dropLast } = this.options;
    const order = this.order(epoch);
    const limit = limiter(concurrency);
    const pending: Promise<Outcome>[] = [];
    let next = 0; // samples started
    let consumed = 0; // samples taken out of `pending`
    let current: Decoded[] = [];
    // Keeps decoding started for the samples of the batch being filled plus `batches` more (counted from the
    // first sample of the batch being filled; a skipped file moves that start on by one).
    const fill = (batches: number) => {
      const limitIndex = consumed - current.length + batches * batchSize;
      while (next < order.length && next < limitIndex) {
        const s = this.samples[order[next++]];
        // Outcomes never reject, so a failure that is not awaited yet is not an unhandled rejection.
        pending.push(
          limit(() => decodeSample(s, imageSize, withMasks)).then(
            (value): Outcome => ({ ok: true, value }),
            (error): Outcome => ({ ok: false, error }),
          ),
        );
      }
    };
    while (pending.length > 0 || next < order.length) {
      fill(prefetch + 1);
      const outcome = await pending.shift()!;
      consumed++;
      if (outcome.ok) current.push(outcome.value);
      else if (skipBad && outcome.error instanceof ImageFileError) this.#skip(outcome.error);
      else throw outcome.error;
      if (current.length === batchSize) {
        const batch = assemble(current, imageSize);
        current = [];
        fill(prefetch); // the next `prefetch` batches decode while the consumer works on this one
        yield batch;
      }
    }
    if (current.length > 0 && !dropLast) yield assemble(current, imageSize);
  }

  #skip(e: ImageFileError): void {
    console.warn(`warning: skipping ${e.path}: ${e.message}`);
    if (!this.skipped.includes(e.path)) this.skipped.push(e.path);
  }
}

/** Decodes a fixed list of samples into one {@linkcode Batch} (skipped files are left out with `skipBad`). */
export async function loadSamples(
  samples: readonly Sample[],
  size: number,
  opts: LoadSamplesOptions = {},
): Promise<Batch> {
  const limit = limiter(opts.concurrency ?? 4);
  const withMasks = opts.withMasks ?? true;
  const outcomes = await Promise.all(
    samples.map((s) =>
      limit(() => decodeSample(s, size, withMasks)).then(
        (value): Outcome => ({ ok: true, value }),
        (error): Outcome => ({ ok: false, error }),
      )
    ),
  );
  const items: Decoded[] = [];
  for (const o of outcomes) {
    if (o.ok) items.push(o.value);
    else if (opts.skipBad && o.error instanceof ImageFileError) {
      console.warn(`warning: skipping ${o.error.path}: ${o.error.message}`);
      opts.skipped?.push(o.error.path);
    } else throw o.error;
  }
  return assemble(items, size);
}
