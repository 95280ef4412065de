/**
 * Anomaly-map visualisation on plain typed arrays: the jet colormap (matplotlib's, byte for byte),
 * alpha overlay on the input image, ground-truth masks as images, inverse ImageNet normalisation, and a
 * side-by-side strip (image | map | overlay | ground truth, as in the paper's Figure 5). Encode the result
 * with `writePng` from `anomaly/data/image.ts`.
 *
 * @module
 */

import type { RgbImage } from "../data/pixels.ts";
import { IMAGENET_MEAN, IMAGENET_STD } from "../data/pixels.ts";

/** matplotlib's `_jet_data` segment anchors: (x, y) per channel (jet is continuous, so y0 = y1). */
const JET_SEGMENTS: readonly (readonly [number, number][])[] = [
  [[0, 0], [0.35, 0], [0.66, 1], [0.89, 1], [1, 0.5]],
  [[0, 0], [0.125, 0], [0.375, 1], [0.64, 1], [0.91, 0], [1, 0]],
  [[0, 0.5], [0.11, 1], [0.34, 1], [0.65, 0], [1, 0]],
];

/**
 * The 256-entry jet table as matplotlib builds it (`colors._create_lookup_table` with the same
 * floating-point operations) and converts it to bytes (`(lut * 255).astype(uint8)`, i.e. truncation).
 */
function buildJetLut(): Uint8Array {
  const n = 256;
  const lut = new Uint8Array(n * 3);
  const step = 1 / (n - 1);
  for (let c = 0; c < 3; c++) {
    const seg = JET_SEGMENTS[c];
    const x = seg.map((p) => p[0] * (n - 1));
    for (let i = 0; i < n; i++) {
      let v: number;
      if (i === 0) v = seg[0][1];
      else if (i === n - 1) v = seg[seg.length - 1][1];
      else {
        const xind = (n - 1) * (i * step);
        let ind = 0;
        while (ind < x.length && x[ind] < xind) ind++; // numpy searchsorted, side "left"
        const distance = (xind - x[ind - 1]) / (x[ind] - x[ind - 1]);
        v = distance * (seg[ind][1] - seg[ind - 1][1]) + seg[ind - 1][1];
      }
      v = Math.min(1, Math.max(0, v));
      lut[i * 3 + c] = Math.trunc(v * 255);
    }
  }
  return lut;
}

/** matplotlib's jet colormap as 256 RGB byte triples. */
export const JET_LUT: Uint8Array = buildJetLut();

/** Value range of {@linkcode colorize}. */
export interface ColorizeRange {
  /** Value mapped to the first colour (default: the map's minimum). */
  min?: number;
  /** Value mapped to the last colour (default: the map's maximum). */
  max?: number;
}

/**
 * Colours an `h`×`w` map with jet as matplotlib does: t = (v - min) / (max - min), clipped to [0, 1],
 * table index `min(255, floor(256 t))`. Without `min`/`max` the map's own range is used; a constant map is
 * all the first colour. NaN values are drawn black.
 */
export function colorize(map: Float32Array, h: number, w: number, range: ColorizeRange = {}): RgbImage {
  if (map.length !== h * w) throw new Error(`colorize: map has ${map.length} values, expected ${h}x${w} = ${h * w}`);
  let lo = range.min, hi = range.max;
  if (lo === undefined || hi === undefined) {
    let mn = Infinity, mx = -Infinity;
    for (const v of map) {
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    lo ??= mn;
    hi ??= mx;
  }
  const span = hi - lo;
  const data = new Uint8Array(h * w * 3);
  for (let i = 0; i < h * w; i++) {
    const v = map[i];
    if (Number.isNaN(v)) continue;
    const t = span > 0 ? (v - lo) / span : 0;
    const k = t <= 0 ? 0 : t >= 1 ? 255 : Math.min(255, Math.floor(t * 256));
    data[3 * i] = JET_LUT[3 * k];
    data[3 * i + 1] = JET_LUT[3 * k + 1];
    data[3 * i + 2] = JET_LUT[3 * k + 2];
  }
  return { width: w, height: h, data };
}

/** Blends `heat` over `image`: `(1 - alpha) * image + alpha * heat`, rounded. Both must have the same size. */
export function overlay(image: RgbImage, heat: RgbImage, alpha = 0.5): RgbImage {
  if (image.width !== heat.width || image.height !== heat.height) {
    throw new Error(`overlay: image is ${image.width}x${image.height} but heat map is ${heat.width}x${heat.height}`);
  }
  const data = new Uint8Array(image.data.length);
  for (let i = 0; i < data.length; i++) data[i] = Math.round((1 - alpha) * image.data[i] + alpha * heat.data[i]);
  return { width: image.width, height: image.height, data };
}

/**
 * Places images left to right with `gap` white pixels between them, top-aligned (shorter ones padded white).
 * The paper's Figure 5 order is image | anomaly map | overlay | ground truth.
 */
export function sideBySide(images: RgbImage[], gap = 4): RgbImage {
  if (images.length === 0) throw new Error("sideBySide: no images");
  const height = Math.max(...images.map((im) => im.height));
  const width = images.reduce((a, im) => a + im.width, 0) + gap * (images.length - 1);
  const data = new Uint8Array(width * height * 3).fill(255);
  let x0 = 0;
  for (const im of images) {
    for (let y = 0; y < im.height; y++) {
      data.set(im.data.subarray(y * im.width * 3, (y + 1) * im.width * 3), (y * width + x0) * 3);
    }
    x0 += im.width + gap;
  }
  return { width, height, data };
}

/** A {0,1} (or 0/255, any non-zero counts) `h`×`w` mask as a black-and-white RGB image. */
export function maskToRgb(mask: Uint8Array, h: number, w: number): RgbImage {
  if (mask.length !== h * w) throw new Error(`maskToRgb: mask has ${mask.length} values, expected ${h}x${w}`);
  const data = new Uint8Array(h * w * 3);
  for (let i = 0; i < h * w; i++) {
    const v = mask[i] ? 255 : 0;
    data[3 * i] = v;
    data[3 * i + 1] = v;
    data[3 * i + 2] = v;
  }
  return { width: w, height: h, data };
}

/** Undoes the ImageNet normalisation of a `3*size*size` CHW tensor: `round(255 * clamp(x*std + mean, 0, 1))`. */
export function denormalize(chw: Float32Array, size: number): RgbImage {
  const n = size * size;
  if (chw.length !== 3 * n) {
    throw new Error(`denormalize: expected 3x${size}x${size} = ${3 * n} values, got ${chw.length}`);
  }
  const data = new Uint8Array(n * 3);
  for (let c = 0; c < 3; c++) {
    const m = IMAGENET_MEAN[c], s = IMAGENET_STD[c];
    for (let i = 0; i < n; i++) {
      const v = chw[c * n + i] * s + m;
      data[3 * i + c] = Math.round(255 * Math.min(1, Math.max(0, v)));
    }
  }
  return { width: size, height: size, data };
}

/** Nearest-neighbour enlargement by an integer factor `k` (small maps are easier to look at). */
export function enlarge(img: RgbImage, k: number): RgbImage {
  if (!Number.isInteger(k) || k < 1) throw new Error(`enlarge: the factor must be a positive integer, got ${k}`);
  if (k === 1) return img;
  const width = img.width * k, height = img.height * k;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const src = (Math.floor(y / k) * img.width + Math.floor(x / k)) * 3, dst = (y * width + x) * 3;
      data.set(img.data.subarray(src, src + 3), dst);
    }
  }
  return { width, height, data };
}

/** The enlargement factor that brings a `size`-pixel panel to at least 256 pixels (1 when already there). */
export function displayScale(size: number): number {
  return Math.max(1, Math.ceil(256 / size));
}

/**
 * The paper's Figure 5 row for one image: the image (from its normalised CHW tensor), the jet-coloured anomaly map,
 * their overlay and, when given, the ground-truth mask, side by side and enlarged to at least 256 px per panel.
 */
export function anomalyFigure(
  imageChw: Float32Array,
  map: Float32Array,
  size: number,
  mask?: Uint8Array | null,
): RgbImage {
  const rgb = denormalize(imageChw, size);
  const heat = colorize(map, size, size);
  const panels = [rgb, heat, overlay(rgb, heat, 0.5)];
  if (mask) panels.push(maskToRgb(mask, size, size));
  return sideBySide(panels.map((p) => enlarge(p, displayScale(size))));
}
