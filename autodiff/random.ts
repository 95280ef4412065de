/**
 * The one seeded generator. Values are drawn on the host and uploaded, so a seed gives bit-identical
 * tensors on every backend.
 *
 * @module
 */

/** xoshiro128** state, seeded through splitmix32. */
export class Generator {
  #s = new Uint32Array(4);
  #spare: number | null = null;

  /** Creates a generator seeded with `seed`. */
  constructor(seed = 0) {
    this.seed(seed);
  }

  /** Re-seeds the generator. */
  seed(seed: number): void {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.#s.every((v) => v === 0)) this.#s[0] = 1;
    this.#spare = null;
  }

  /** The state, for checkpoints: four words and the cached second normal draw (or null). */
  getState(): { words: number[]; spare: number | null } {
    return { words: Array.from(this.#s), spare: this.#spare };
  }

  /** Restores a state saved by {@linkcode Generator.getState}. */
  setState(state: { words: readonly number[]; spare: number | null }): void {
    if (state.words.length !== 4) throw new Error(`Generator.setState: expected 4 words, got ${state.words.length}`);
    this.#s.set(state.words);
    this.#spare = state.spare;
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A uniform float in [0, 1) with 32 random bits. */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /** A standard normal draw (Box–Muller, using both halves of each pair). */
  normal(): number {
    if (this.#spare !== null) {
      const v = this.#spare;
      this.#spare = null;
      return v;
    }
    let u = this.uniform();
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** A uniform integer in [low, high). */
  int(low: number, high: number): number {
    return low + Math.floor(this.uniform() * (high - low));
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The global generator used by rand/randn/randint, init and data shuffling. */
export const globalGenerator: Generator = new Generator(0);

/** Seeds the global generator (like `torch.manual_seed`). */
export function manualSeed(seed: number): void {
  globalGenerator.seed(seed);
}
