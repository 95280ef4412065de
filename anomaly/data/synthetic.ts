/**
 * A built-in synthetic anomaly-detection dataset in the MVTec-AD layout, for the demo and for tests
 * (the real datasets cannot be downloaded here).
 *
 * Classes: three textures (`weave`: an oriented thread grid, `granite`: multi-octave value noise with
 * speckles, `carpet`: fine fibrous noise) and two objects (`washer`: a shaded ring on a mottled background,
 * `tile`: a centred rounded square with an inlaid pattern), all with pose, colour and noise jitter so no two
 * normal images are alike. Defects: `scratch` (a thin polyline, lighter or darker), `spot` (a few small
 * irregular blobs), `missing` (a region replaced by what lies behind: background for objects, a dark hole
 * for textures) and `stain` (a soft colour shift). Each defect's mask is exactly the set of pixels whose
 * bytes differ from the defect-free rendering of the same image; a draw that changes fewer than 12 pixels
 * is redrawn. Contrasts are moderate (a scratch changes a few tens of grey levels, on top of noise of
 * similar size), so detection is not trivial.
 *
 * Every image has its own {@linkcode Generator}, seeded by a hash of (seed, class, split, defect, index), so
 * the same options give byte-identical files.
 *
 * @module
 */

import { join } from "node:path";
import { Generator } from "../../autodiff/random.ts";
import type { AnomalyDataset, Sample } from "./datasets.ts";
import { encodeGreyPng, encodePng } from "./image.ts";

/** The classes the generator knows, textures first. */
export const SYNTHETIC_CLASSES: readonly string[] = ["weave", "granite", "carpet", "washer", "tile"];
/** The defect types, each applied to every class. */
export const SYNTHETIC_DEFECTS: readonly string[] = ["scratch", "spot", "missing", "stain"];

/** Options of {@linkcode generateSyntheticDataset}. */
export interface SyntheticOptions {
  /** Seed (default 0). */
  seed?: number;
  /** Classes to generate (default all of {@linkcode SYNTHETIC_CLASSES}). */
  classes?: string[];
  /** Normal training images per class (default 40). */
  trainPerClass?: number;
  /** Normal test images per class (default 10). */
  testGoodPerClass?: number;
  /** Test images per defect type and class (default 6). */
  testPerDefect?: number;
  /** Image side in pixels (default 256). */
  size?: number;
}

/** A float RGB image in [0, 255], HWC. */
interface Canvas {
  s: number;
  px: Float32Array;
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Smooth value noise in [0,1): random values on a grid of `cell`-pixel cells, smoothstep-interpolated. */
function valueNoise(gen: Generator, s: number, cell: number): Float32Array {
  const g = Math.ceil(s / cell) + 2;
  const grid = new Float32Array(g * g);
  for (let i = 0; i < grid.length; i++) grid[i] = gen.uniform();
  const ox = gen.uniform() * cell, oy = gen.uniform() * cell;
  const out = new Float32Array(s * s);
  for (let y = 0; y < s; y++) {
    const fy = (y + oy) / cell, iy = Math.floor(fy);
    let ty = fy - iy;
    ty = ty * ty * (3 - 2 * ty);
    for (let x = 0; x < s; x++) {
      const fx = (x + ox) / cell, ix = Math.floor(fx);
      let tx = fx - ix;
      tx = tx * tx * (3 - 2 * tx);
      const a = grid[iy * g + ix], b = grid[iy * g + ix + 1];
      const c = grid[(iy + 1) * g + ix], d = grid[(iy + 1) * g + ix + 1];
      out[y * s + x] = (a + (b - a) * tx) * (1 - ty) + (c + (d - c) * tx) * ty;
    }
  }
  return out;
}

/**
 * Adds approximately Gaussian pixel noise: the sum of the four bytes of one 32-bit draw (Irwin–Hall, mean
 * 510, standard deviation about 147.8), which is several times cheaper than Box–Muller and looks the same.
 */
function addNoise(c: Canvas, gen: Generator, sigma: number): void {
  const k = sigma / 147.80392;
  for (let i = 0; i < c.px.length; i++) {
    const u = gen.nextU32();
    c.px[i] += k * ((u & 255) + ((u >>> 8) & 255) + ((u >>> 16) & 255) + (u >>> 24) - 510);
  }
}

const SIN_LUT_BITS = 12;
const SIN_LUT = Float32Array.from(
  { length: 1 << SIN_LUT_BITS },
  (_, i) => Math.sin(2 * Math.PI * i / (1 << SIN_LUT_BITS)),
);

/** sin(2π·t) from a table (t in turns); precise enough for textures and much faster than Math.sin. */
function sinTurns(t: number): number {
  return SIN_LUT[Math.floor(t * (1 << SIN_LUT_BITS)) & ((1 << SIN_LUT_BITS) - 1)];
}

function jitterColour(gen: Generator, base: [number, number, number], amount: number): [number, number, number] {
  const shift = (gen.uniform() - 0.5) * amount;
  return [
    base[0] + shift + (gen.uniform() - 0.5) * amount * 0.5,
    base[1] + shift + (gen.uniform() - 0.5) * amount * 0.5,
    base[2] + shift + (gen.uniform() - 0.5) * amount * 0.5,
  ];
}

/** A rendering of a normal image and of what lies "behind" it (used by the `missing` defect). */
interface Rendering {
  img: Canvas;
  /** Rendered on demand (only the `missing` defect needs it); draws from the image's generator. */
  behind: () => Canvas;
  /** Pixels the object covers at least partly (all ones for textures): where defects are centred. */
  object: Uint8Array;
}

function newCanvas(s: number): Canvas {
  return { s, px: new Float32Array(s * s * 3) };
}

function renderWeave(gen: Generator, s: number): Rendering {
  const img = newCanvas(s);
  const col = jitterColour(gen, [150, 135, 105], 30);
  const theta = (gen.uniform() - 0.5) * (6 * Math.PI / 180);
  const period = s / 28 * (0.93 + 0.14 * gen.uniform());
  const phx = gen.uniform(), phy = gen.uniform();
  const slow = valueNoise(gen, s, s / 4);
  const ct = Math.cos(theta), st = Math.sin(theta);
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      // Positions in thread periods (turns) along and across the weave direction.
      const u = (x * ct + y * st) / period + phx;
      const v = (-x * st + y * ct) / period + phy;
      const warp = sinTurns(u) > 0 === sinTurns(v) > 0;
      const thread = warp ? Math.abs(sinTurns(v + 0.25)) : Math.abs(sinTurns(u + 0.25));
      const k = 0.55 + 0.45 * thread + 0.15 * (slow[y * s + x] - 0.5);
      const i = 3 * (y * s + x);
      img.px[i] = col[0] * k;
      img.px[i + 1] = col[1] * k;
      img.px[i + 2] = col[2] * k;
    }
  }
  addNoise(img, gen, 5);
  return { img, behind: () => hole(gen, s, col), object: new Uint8Array(s * s).fill(1) };
}

function renderGranite(gen: Generator, s: number): Rendering {
  const img = newCanvas(s);
  const col = jitterColour(gen, [128, 124, 120], 30);
  const n1 = valueNoise(gen, s, s / 6), n2 = valueNoise(gen, s, s / 20), n3 = valueNoise(gen, s, 3);
  for (let p = 0; p < s * s; p++) {
    const v = 0.5 * n1[p] + 0.3 * n2[p] + 0.2 * n3[p];
    const speck = n3[p] > 0.93 ? -45 : n3[p] < 0.05 ? 35 : 0;
    const k = 0.7 + 0.6 * v;
    img.px[3 * p] = col[0] * k + speck;
    img.px[3 * p + 1] = col[1] * k + speck;
    img.px[3 * p + 2] = col[2] * k + speck * 0.8;
  }
  addNoise(img, gen, 4);
  return { img, behind: () => hole(gen, s, col), object: new Uint8Array(s * s).fill(1) };
}

function renderCarpet(gen: Generator, s: number): Rendering {
  const img = newCanvas(s);
  const col = jitterColour(gen, [140, 60, 55], 30);
  const fib = valueNoise(gen, s, 2.5), fib2 = valueNoise(gen, s, 5), slow = valueNoise(gen, s, s / 3);
  for (let p = 0; p < s * s; p++) {
    const k = 0.55 + 0.5 * fib[p] + 0.3 * (fib2[p] - 0.5) + 0.2 * (slow[p] - 0.5);
    img.px[3 * p] = col[0] * k;
    img.px[3 * p + 1] = col[1] * k;
    img.px[3 * p + 2] = col[2] * k;
  }
  addNoise(img, gen, 7);
  return { img, behind: () => hole(gen, s, col), object: new Uint8Array(s * s).fill(1) };
}

/** The "missing material" look of a texture: a dark, slightly noisy version of its colour. */
function hole(gen: Generator, s: number, col: [number, number, number]): Canvas {
  const c = newCanvas(s);
  const n = valueNoise(gen, s, 6);
  for (let p = 0; p < s * s; p++) {
    const k = 0.3 + 0.12 * n[p];
    c.px[3 * p] = col[0] * k;
    c.px[3 * p + 1] = col[1] * k;
    c.px[3 * p + 2] = col[2] * k;
  }
  addNoise(c, gen, 3);
  return c;
}

function mottledBackground(gen: Generator, s: number, col: [number, number, number]): Canvas {
  const c = newCanvas(s);
  const n = valueNoise(gen, s, s / 5);
  for (let p = 0; p < s * s; p++) {
    const k = 0.85 + 0.3 * n[p];
    c.px[3 * p] = col[0] * k;
    c.px[3 * p + 1] = col[1] * k;
    c.px[3 * p + 2] = col[2] * k;
  }
  return c;
}

function renderWasher(gen: Generator, s: number): Rendering {
  const bgCol = jitterColour(gen, [45, 48, 52], 16);
  const behind = mottledBackground(gen, s, bgCol);
  const img: Canvas = { s, px: behind.px.slice() };
  const object = new Uint8Array(s * s);
  const cx = s / 2 + (gen.uniform() - 0.5) * 0.04 * s, cy = s / 2 + (gen.uniform() - 0.5) * 0.04 * s;
  const rOut = s * (0.36 + 0.02 * (gen.uniform() - 0.5)), rIn = s * (0.16 + 0.02 * (gen.uniform() - 0.5));
  const metal = jitterColour(gen, [175, 172, 165], 24);
  const light = gen.uniform() * 2 * Math.PI;
  const grain = valueNoise(gen, s, 4);
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      const dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      const r = Math.hypot(dx, dy);
      // Anti-aliased edges: coverage of the ring over about one pixel.
      const cov = Math.min(1, Math.max(0, rOut - r + 0.5)) * Math.min(1, Math.max(0, r - rIn + 0.5));
      if (cov <= 0) continue;
      const p = y * s + x;
      object[p] = 1;
      const a = Math.atan2(dy, dx);
      const radial = (r - rIn) / (rOut - rIn);
      const shade = 0.8 + 0.2 * Math.cos(a - light) + 0.12 * Math.sin(Math.PI * radial) + 0.1 * (grain[p] - 0.5);
      for (let c = 0; c < 3; c++) img.px[3 * p + c] = img.px[3 * p + c] * (1 - cov) + metal[c] * shade * cov;
    }
  }
  addNoise(img, gen, 4);
  return { img, behind: () => (addNoise(behind, gen, 4), behind), object };
}

function renderTile(gen: Generator, s: number): Rendering {
  const bgCol = jitterColour(gen, [200, 198, 190], 16);
  const behind = mottledBackground(gen, s, bgCol);
  const img: Canvas = { s, px: behind.px.slice() };
  const object = new Uint8Array(s * s);
  const cx = s / 2 + (gen.uniform() - 0.5) * 0.04 * s, cy = s / 2 + (gen.uniform() - 0.5) * 0.04 * s;
  const half = s * (0.31 + 0.02 * (gen.uniform() - 0.5)), rad = s * 0.07;
  const rot = (gen.uniform() - 0.5) * (8 * Math.PI / 180);
  const tileCol = jitterColour(gen, [70, 110, 150], 24), inlay = jitterColour(gen, [210, 170, 80], 24);
  const cr = Math.cos(rot), sr = Math.sin(rot);
  const glaze = valueNoise(gen, s, s / 8);
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      const dx0 = x + 0.5 - cx, dy0 = y + 0.5 - cy;
      const u = dx0 * cr + dy0 * sr, v = -dx0 * sr + dy0 * cr;
      // Signed distance to a rounded square of half-side `half` and corner radius `rad`.
      const qx = Math.abs(u) - (half - rad), qy = Math.abs(v) - (half - rad);
      const sd = Math.hypot(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0) - rad;
      const cov = Math.min(1, Math.max(0, 0.5 - sd));
      if (cov <= 0) continue;
      const p = y * s + x;
      object[p] = 1;
      // Inlay: a ring and a cross, anti-aliased.
      const r = Math.hypot(u, v);
      const ringCov = Math.min(1, Math.max(0, half * 0.06 - Math.abs(r - half * 0.55) + 0.5));
      const crossCov = Math.min(1, Math.max(0, half * 0.05 - Math.min(Math.abs(u), Math.abs(v)) + 0.5)) *
        (r < half * 0.35 ? 1 : 0);
      const m = Math.max(ringCov, crossCov);
      const k = 0.9 + 0.2 * glaze[p];
      for (let c = 0; c < 3; c++) {
        const col = (tileCol[c] * (1 - m) + inlay[c] * m) * k;
        img.px[3 * p + c] = img.px[3 * p + c] * (1 - cov) + col * cov;
      }
    }
  }
  addNoise(img, gen, 3);
  return { img, behind: () => (addNoise(behind, gen, 3), behind), object };
}

const RENDERERS: Record<string, (gen: Generator, s: number) => Rendering> = {
  weave: renderWeave,
  granite: renderGranite,
  carpet: renderCarpet,
  washer: renderWasher,
  tile: renderTile,
};

function quantize(c: Canvas): Uint8Array {
  const out = new Uint8Array(c.px.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.min(255, Math.max(0, Math.round(c.px[i])));
  return out;
}

/** A point on the object (or anywhere for textures), at least `margin` pixels from the border. */
function pickPoint(gen: Generator, r: Rendering, margin: number): [number, number] {
  const s = r.img.s;
  for (let tries = 0; tries < 1000; tries++) {
    const x = margin + gen.uniform() * (s - 2 * margin), y = margin + gen.uniform() * (s - 2 * margin);
    if (r.object[Math.floor(y) * s + Math.floor(x)]) return [x, y];
  }
  return [s / 2, s / 2];
}

/** An irregular blob: a radius that varies smoothly with angle. Returns the per-pixel weight function. */
function blobInside(cx: number, cy: number, radius: number, gen: Generator): (x: number, y: number) => number {
  const harmonics = [1, 2, 3].map((k) => ({ k, a: 0.25 * gen.uniform() / k, ph: gen.uniform() * 2 * Math.PI }));
  const aspect = 0.6 + 0.8 * gen.uniform(), rot = gen.uniform() * Math.PI;
  const cr = Math.cos(rot), sr = Math.sin(rot);
  return (x, y) => {
    const dx = x - cx, dy = y - cy;
    const u = dx * cr + dy * sr, v = (-dx * sr + dy * cr) * aspect;
    const a = Math.atan2(v, u);
    let rr = radius;
    for (const h of harmonics) rr *= 1 + h.a * Math.sin(h.k * a + h.ph);
    return Math.hypot(u, v) / rr; // < 1 inside
  };
}

function applyScratch(c: Canvas, gen: Generator, r: Rendering): void {
  const s = c.s;
  const [x0, y0] = pickPoint(gen, r, s * 0.15);
  const n = 3 + gen.int(0, 4);
  const total = s * (0.12 + 0.2 * gen.uniform());
  let ang = gen.uniform() * 2 * Math.PI;
  const pts: [number, number][] = [[x0, y0]];
  for (let i = 0; i < n; i++) {
    ang += (gen.uniform() - 0.5) * 0.8;
    const [px, py] = pts[pts.length - 1];
    pts.push([px + Math.cos(ang) * total / n, py + Math.sin(ang) * total / n]);
  }
  const width = 0.6 + 1.2 * gen.uniform();
  const delta = (gen.uniform() < 0.5 ? -1 : 1) * (25 + 35 * gen.uniform());
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x1 = Math.max(0, Math.floor(Math.min(...xs) - 3)), x2 = Math.min(s - 1, Math.ceil(Math.max(...xs) + 3));
  const y1 = Math.max(0, Math.floor(Math.min(...ys) - 3)), y2 = Math.min(s - 1, Math.ceil(Math.max(...ys) + 3));
  for (let y = y1; y <= y2; y++) {
    for (let x = x1; x <= x2; x++) {
      let d = Infinity;
      for (let i = 0; i + 1 < pts.length; i++) d = Math.min(d, segDist(x + 0.5, y + 0.5, pts[i], pts[i + 1]));
      const w = Math.min(1, Math.max(0, width / 2 + 0.5 - d));
      if (w <= 0) continue;
      const p = 3 * (y * s + x);
      for (let k = 0; k < 3; k++) c.px[p + k] += delta * w;
    }
  }
}

function segDist(x: number, y: number, a: [number, number], b: [number, number]): number {
  const vx = b[0] - a[0], vy = b[1] - a[1];
  const t = Math.min(1, Math.max(0, ((x - a[0]) * vx + (y - a[1]) * vy) / (vx * vx + vy * vy || 1)));
  return Math.hypot(x - a[0] - t * vx, y - a[1] - t * vy);
}

function applyRegion(
  c: Canvas,
  gen: Generator,
  r: Rendering,
  radius: number,
  paint: (p: number, w: number) => void,
  count: number,
): void {
  const s = c.s;
  for (let b = 0; b < count; b++) {
    const [cx, cy] = pickPoint(gen, r, radius + 2);
    const inside = blobInside(cx, cy, radius * (0.7 + 0.6 * gen.uniform()), gen);
    const R = Math.ceil(radius * 2.2);
    for (let y = Math.max(0, Math.floor(cy - R)); y <= Math.min(s - 1, Math.ceil(cy + R)); y++) {
      for (let x = Math.max(0, Math.floor(cx - R)); x <= Math.min(s - 1, Math.ceil(cx + R)); x++) {
        const q = inside(x + 0.5, y + 0.5);
        if (q < 1.15) paint(y * s + x, q);
      }
    }
  }
}

function applySpot(c: Canvas, gen: Generator, r: Rendering): void {
  const col = [gen.uniform() * 255, gen.uniform() * 120, gen.uniform() * 120];
  const alpha = 0.45 + 0.4 * gen.uniform();
  applyRegion(c, gen, r, c.s * (0.01 + 0.015 * gen.uniform()), (p, q) => {
    const w = alpha * Math.min(1, Math.max(0, (1.15 - q) / 0.3));
    for (let k = 0; k < 3; k++) c.px[3 * p + k] = c.px[3 * p + k] * (1 - w) + col[k] * w;
  }, 1 + gen.int(0, 3));
}

function applyMissing(c: Canvas, gen: Generator, r: Rendering): void {
  const behind = r.behind();
  applyRegion(c, gen, r, c.s * (0.04 + 0.05 * gen.uniform()), (p, q) => {
    // Hard cut edge; only the object is cut away (for objects, the background around it stays untouched).
    if (q >= 1 || !r.object[p]) return;
    for (let k = 0; k < 3; k++) c.px[3 * p + k] = behind.px[3 * p + k];
  }, 1);
}

function applyStain(c: Canvas, gen: Generator, r: Rendering): void {
  const shift = [gen.uniform() - 0.5, gen.uniform() - 0.5, gen.uniform() - 0.5].map((v) => v * 70);
  const dark = 0.75 + 0.2 * gen.uniform();
  applyRegion(c, gen, r, c.s * (0.05 + 0.05 * gen.uniform()), (p, q) => {
    const w = Math.min(1, Math.max(0, (1.15 - q) / 0.6));
    for (let k = 0; k < 3; k++) c.px[3 * p + k] = c.px[3 * p + k] * (1 - w * (1 - dark)) + shift[k] * w;
  }, 1);
}

const DEFECTS: Record<string, (c: Canvas, gen: Generator, r: Rendering) => void> = {
  scratch: applyScratch,
  spot: applySpot,
  missing: applyMissing,
  stain: applyStain,
};

/**
 * Renders one image of `cls` (and for a defect its mask) with the generator `gen`. Exposed for tests and
 * for demos that want images in memory; {@linkcode generateSyntheticDataset} writes them to disk.
 */
export function renderSyntheticImage(
  cls: string,
  defect: string,
  size: number,
  gen: Generator,
): { rgb: Uint8Array; mask: Uint8Array | null } {
  const render = RENDERERS[cls];
  if (!render) throw new Error(`synthetic: unknown class "${cls}"; known: ${SYNTHETIC_CLASSES.join(", ")}`);
  const r = render(gen, size);
  // Memoise the background so a redrawn defect sees the same one.
  let behind: Canvas | null = null;
  const lazy = r.behind;
  r.behind = () => behind ??= lazy();
  const clean = quantize(r.img);
  if (defect === "good") return { rgb: clean, mask: null };
  const apply = DEFECTS[defect];
  if (!apply) throw new Error(`synthetic: unknown defect "${defect}"; known: ${SYNTHETIC_DEFECTS.join(", ")}`);
  for (let attempt = 0;; attempt++) {
    const c: Canvas = { s: size, px: r.img.px.slice() };
    apply(c, gen, r);
    const rgb = quantize(c);
    const mask = new Uint8Array(size * size);
    let changed = 0;
    for (let p = 0; p < size * size; p++) {
      if (rgb[3 * p] !== clean[3 * p] || rgb[3 * p + 1] !== clean[3 * p + 1] || rgb[3 * p + 2] !== clean[3 * p + 2]) {
        mask[p] = 255;
        changed++;
      }
    }
    if (changed >= 12 || attempt >= 20) return { rgb, mask };
  }
}

function pad3(i: number): string {
  return String(i).padStart(3, "0");
}

/**
 * Writes a synthetic dataset under `root` in the MVTec-AD layout (`<cls>/train/good/000.png`,
 * `<cls>/test/<defect>/000.png`, masks `<cls>/ground_truth/<defect>/000_mask.png` as 0/255 grey PNGs)
 * and returns its listing, as {@linkcode openDataset}`("mvtec", root)` would give for a fresh folder.
 * Existing files with the same names are overwritten; others are left alone.
 */
export async function generateSyntheticDataset(root: string, opts: SyntheticOptions = {}): Promise<AnomalyDataset> {
  const seed = opts.seed ?? 0;
  const size = opts.size ?? 256;
  const classes = opts.classes ?? [...SYNTHETIC_CLASSES];
  const counts = {
    train: opts.trainPerClass ?? 40,
    good: opts.testGoodPerClass ?? 10,
    defect: opts.testPerDefect ?? 6,
  };
  for (const c of classes) {
    if (!SYNTHETIC_CLASSES.includes(c)) {
      throw new Error(`generateSyntheticDataset: unknown class "${c}"; known: ${SYNTHETIC_CLASSES.join(", ")}`);
    }
  }
  if (!Number.isInteger(size) || size < 16) {
    throw new Error(`generateSyntheticDataset: size must be an integer >= 16, got ${size}`);
  }
  const sorted = [...new Set(classes)].sort();
  const train: Sample[] = [];
  const test: Sample[] = [];
  const jobs: { sample: Sample; split: string; index: number }[] = [];
  for (const cls of sorted) {
    for (let i = 0; i < counts.train; i++) {
      const sample: Sample = {
        path: join(root, cls, "train", "good", `${pad3(i)}.png`),
        maskPath: null,
        cls,
        defect: "good",
        label: 0,
      };
      train.push(sample);
      jobs.push({ sample, split: "train", index: i });
    }
    const defects = ["good", ...SYNTHETIC_DEFECTS].sort();
    for (const defect of defects) {
      const n = defect === "good" ? counts.good : counts.defect;
      for (let i = 0; i < n; i++) {
        const sample: Sample = {
          path: join(root, cls, "test", defect, `${pad3(i)}.png`),
          maskPath: defect === "good" ? null : join(root, cls, "ground_truth", defect, `${pad3(i)}_mask.png`),
          cls,
          defect,
          label: defect === "good" ? 0 : 1,
        };
        test.push(sample);
        jobs.push({ sample, split: "test", index: i });
      }
    }
    for (
      const d of ["train/good", "test/good", ...SYNTHETIC_DEFECTS.flatMap((x) => [`test/${x}`, `ground_truth/${x}`])]
    ) {
      await Deno.mkdir(join(root, cls, ...d.split("/")), { recursive: true });
    }
  }
  // Rendering is synchronous TS; encoding and writing overlap with it a few images at a time.
  let inFlight: Promise<void>[] = [];
  for (const job of jobs) {
    const { sample } = job;
    const gen = new Generator(fnv1a(`${seed}/${sample.cls}/${job.split}/${sample.defect}/${job.index}`));
    const { rgb, mask } = renderSyntheticImage(sample.cls, sample.defect, size, gen);
    inFlight.push((async () => {
      await Deno.writeFile(sample.path, await encodePng({ width: size, height: size, data: rgb }));
      if (mask && sample.maskPath) {
        await Deno.writeFile(sample.maskPath, await encodeGreyPng({ width: size, height: size, data: mask }));
      }
    })());
    if (inFlight.length >= 8) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  }
  await Promise.all(inFlight);
  return { kind: "mvtec", root, classes: sorted, train, test };
}
