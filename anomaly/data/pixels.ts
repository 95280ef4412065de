/**
 * The pure half of image handling: PNG and JPEG decoding from bytes (npm:fast-png, npm:jpeg-js), the pixel limit,
 * Pillow-exact resizing and torchvision normalisation, PNG encoding. No file system and no native library, so the
 * browser playground (`web/`) bundles it as it is; `image.ts` adds files and other formats (sharp) on top and
 * re-exports everything here.
 *
 * PIL's bilinear resize is not the textbook one: it is a separable convolution with a triangle filter
 * whose support grows with the downscale factor (so downsampling is antialiased), computed in 22-bit
 * fixed point with the intermediate (horizontal-pass) image rounded to 8 bits. {@linkcode resizePil}
 * reproduces that algorithm (Pillow `libImaging/Resample.c`) bit for bit in TypeScript (checked against
 * PIL/torchvision by `tests/fixtures/masks.json`).
 *
 * @module
 */

// Full npm: specifiers (the versions of deno.json's import map), so that mod.ts also imports from a script outside
// this project, without our deno.json (tests/import_test.ts).
// deno-lint-ignore no-import-prefix
import { decode as decodePngBytes, encode as encodePngBytes } from "npm:fast-png@8.0.0";
// deno-lint-ignore no-import-prefix
import jpeg from "npm:jpeg-js@0.4.4";

/** An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC). */
export interface RgbImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `height * width * 3` bytes, HWC RGB. */
  data: Uint8Array;
}

/** A one-channel 8-bit image (a mask or a grey image), rows top to bottom. */
export interface GreyImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `height * width` bytes. */
  data: Uint8Array;
}

/** ImageNet mean used by torchvision's `Normalize` (RGB). */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
/** ImageNet standard deviation used by torchvision's `Normalize` (RGB). */
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/** A missing, unreadable, truncated or non-image file. The message names the file and the cause. */
export class ImageFileError extends Error {
  /** The file involved. */
  readonly path: string;
  /** Creates the error for `path`; `reason` says what is wrong. */
  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super(`image file ${path}: ${reason}`, options);
    this.name = "ImageFileError";
    this.path = path;
  }
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function isPng(b: Uint8Array): boolean {
  return b.length >= 8 && PNG_SIGNATURE.every((v, i) => b[i] === v);
}

function isJpeg(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}

/**
 * The default pixel limit of the image readers: 64 megapixels (8000×8000). The datasets the models are trained on
 * hold images of at most about 2 megapixels (VisA 1500×1000, MVTec-AD 1024²); a 16,000² PNG of 249 KB would
 * decode to gigabytes. The size is read from the file header, so a larger image is refused before any pixel is
 * decoded. Raise it with {@linkcode setMaxImagePixels} (the CLI's `--max-megapixels`).
 */
export const DEFAULT_MAX_IMAGE_PIXELS = 64_000_000;

let maxImagePixels = DEFAULT_MAX_IMAGE_PIXELS;

/** Sets the pixel limit of the decoders (`readImage`, `readMask` and the loaders above them; this process). */
export function setMaxImagePixels(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`setMaxImagePixels: a positive integer, got ${n}`);
  maxImagePixels = n;
}

/** The pixel limit now in force (see {@linkcode DEFAULT_MAX_IMAGE_PIXELS}). */
export function getMaxImagePixels(): number {
  return maxImagePixels;
}

/**
 * Width and height from a PNG's IHDR or a JPEG's start-of-frame marker, without decoding any pixel; `null` for
 * other formats (those are limited by libvips' own `limitInputPixels`) or a header too short to say.
 */
export function imageHeaderSize(b: Uint8Array): { width: number; height: number } | null {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (isPng(b)) {
    if (b.length < 24) return null;
    return { width: dv.getUint32(16), height: dv.getUint32(20) };
  }
  if (isJpeg(b)) {
    let i = 2;
    while (i + 9 < b.length) {
      if (b[i] !== 0xff) return null;
      const marker = b[i + 1];
      if (marker === 0xff) {
        i++; // fill byte
        continue;
      }
      // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): frame header holds height then width
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { width: dv.getUint16(i + 7), height: dv.getUint16(i + 5) };
      }
      if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
        i += 2;
        continue;
      }
      i += 2 + dv.getUint16(i + 2);
    }
  }
  return null;
}

/** Refuses an image whose header declares more pixels than the limit (or a zero size), naming the file. */
function checkPixelLimit(path: string, bytes: Uint8Array): void {
  const size = imageHeaderSize(bytes);
  if (!size) return;
  const { width, height } = size;
  if (width === 0 || height === 0) {
    throw new ImageFileError(path, `the header declares an empty ${width}x${height} image`);
  }
  if (width * height > maxImagePixels) {
    throw new ImageFileError(
      path,
      `${width}x${height} = ${(width * height / 1e6).toFixed(1)} megapixels is over the limit of ${
        maxImagePixels / 1e6
      } megapixels (refused before decoding; raise it with --max-megapixels)`,
    );
  }
}

/** A decoded image before conversion: 8- or 16-bit samples, 1-4 channels. */
export interface RawImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Samples per pixel (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA). */
  channels: number;
  /** Bits per sample: 8 or 16. */
  depth: number;
  /** `width * height * channels` samples, interleaved, rows top to bottom. */
  data: Uint8Array | Uint16Array;
}

/** PNG through fast-png: palettes expanded; any bit depth below 8 widened to 8 bits as PIL does. */
function decodePng(bytes: Uint8Array): RawImage {
  const png = decodePngBytes(bytes);
  const { width, height } = png;
  if (png.palette) {
    const pal = png.palette, idx = png.data as Uint8Array, n = width * height;
    const data = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) {
      const c = pal[idx[i]];
      if (!c) throw new Error(`palette index ${idx[i]} out of range`);
      data[3 * i] = c[0];
      data[3 * i + 1] = c[1];
      data[3 * i + 2] = c[2];
    }
    return { width, height, channels: 3, depth: 8, data };
  }
  if (png.depth < 8) {
    // grey 1/2/4-bit: fast-png unpacks the samples; scale them to 0..255 (PIL's "L" for 1-bit masks is 0/255)
    const max = (1 << png.depth) - 1, src = png.data as Uint8Array;
    return {
      width,
      height,
      channels: png.channels,
      depth: 8,
      data: Uint8Array.from(src, (v) => Math.round(v * 255 / max)),
    };
  }
  return { width, height, channels: png.channels, depth: png.depth, data: png.data as Uint8Array | Uint16Array };
}

/** Decodes PNG or JPEG bytes in JavaScript; `null` for any other format. */
function decodePngOrJpeg(bytes: Uint8Array): RawImage | null {
  if (isPng(bytes)) return decodePng(bytes);
  if (isJpeg(bytes)) {
    const j = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      maxMemoryUsageInMB: 2048,
      maxResolutionInMP: Math.ceil(maxImagePixels / 1e6),
    });
    const channels = j.data.length / (j.width * j.height);
    if (channels !== 3) throw new Error(`unexpected JPEG decode of ${channels} channels`);
    return { width: j.width, height: j.height, channels: 3, depth: 8, data: j.data };
  }
  return null;
}

/** A decoder for the formats other than PNG and JPEG (image.ts passes libvips through sharp). */
export type OtherFormatDecoder = (bytes: Uint8Array, maxPixels: number) => Promise<RawImage>;

/**
 * Decodes image bytes to raw samples: PNG and JPEG in JavaScript, any other format through `other` (without it,
 * such a file is refused as "expected a PNG or JPEG image"). `name` (a path or a file name) names the file in the
 * {@linkcode ImageFileError} thrown on any failure; the pixel limit is checked from the header first.
 */
export async function decodeImageBytes(bytes: Uint8Array, name: string, other?: OtherFormatDecoder): Promise<RawImage> {
  if (bytes.length === 0) throw new ImageFileError(name, "file is empty");
  checkPixelLimit(name, bytes);
  let raw: RawImage | null;
  try {
    raw = decodePngOrJpeg(bytes);
    if (!raw && other) raw = await other(bytes, maxImagePixels);
  } catch (e) {
    throw new ImageFileError(name, `cannot decode image (${errorMessage(e)})`, { cause: e });
  }
  if (!raw) throw new ImageFileError(name, "not a PNG or JPEG image (expected a .png or .jpg file)");
  if (raw.data.length !== raw.width * raw.height * raw.channels || raw.channels < 1 || raw.channels > 4) {
    throw new ImageFileError(name, `cannot decode image (unexpected ${raw.channels} channels / size)`);
  }
  return raw;
}

/** 16-bit samples to 8 bits as PIL does for RGB(A) images (the high byte). */
function to8(raw: RawImage): Uint8Array {
  if (raw.depth === 8) return raw.data as Uint8Array;
  return Uint8Array.from(raw.data as Uint16Array, (v) => v >> 8);
}

/**
 * Raw samples as 8-bit RGB, as PIL's `convert("RGB")`: grey images are replicated to three channels and alpha is
 * dropped.
 */
export function rawToRgb(raw: RawImage): RgbImage {
  const d = to8(raw), n = raw.width * raw.height, c = raw.channels;
  if (c === 3) return { width: raw.width, height: raw.height, data: d };
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    // grey (+alpha) is replicated, alpha dropped: PIL's convert("RGB")
    const grey = c <= 2;
    data[3 * i] = d[c * i];
    data[3 * i + 1] = d[c * i + (grey ? 0 : 1)];
    data[3 * i + 2] = d[c * i + (grey ? 0 : 2)];
  }
  return { width: raw.width, height: raw.height, data };
}

/**
 * Raw samples as one 8-bit channel, as PIL's `convert("L")`: grey stays as it is, colour becomes ITU-R 601 luma
 * with PIL's fixed-point rounding (`(R*19595 + G*38470 + B*7471 + 0x8000) >> 16`); alpha is ignored; 16-bit grey
 * is clipped to 255 as PIL's `I;16` → `L` does (not rescaled).
 */
export function rawToGrey(raw: RawImage): GreyImage {
  const n = raw.width * raw.height, c = raw.channels;
  const data = new Uint8Array(n);
  if (c <= 2) {
    // grey: 16-bit is clipped to 255 as PIL's I;16 → L (not rescaled, so small non-zero values stay non-zero)
    const d = raw.data;
    for (let i = 0; i < n; i++) data[i] = Math.min(255, d[c * i]);
    return { width: raw.width, height: raw.height, data };
  }
  const d = to8(raw);
  for (let i = 0; i < n; i++) {
    data[i] = (d[c * i] * 19595 + d[c * i + 1] * 38470 + d[c * i + 2] * 7471 + 0x8000) >>> 16;
  }
  return { width: raw.width, height: raw.height, data };
}

/** Decodes PNG or JPEG bytes as 8-bit RGB (see {@linkcode decodeImageBytes} and {@linkcode rawToRgb}). */
export async function decodeRgb(bytes: Uint8Array, name: string): Promise<RgbImage> {
  return rawToRgb(await decodeImageBytes(bytes, name));
}

const PRECISION_BITS = 22;

/** Pillow's `precompute_coeffs` for the bilinear (triangle, support 1) filter, then 8-bit fixed point. */
function pilCoeffs(inSize: number, outSize: number): { bounds: Int32Array; kk: Float64Array; ksize: number } {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Float64Array(outSize * ksize);
  const ss = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      const w = t < 1 ? 1 - t : 0;
      kk[xx * ksize + x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? kk[xx * ksize + x] / ww : kk[xx * ksize + x];
      // normalize_coeffs_8bpc: round half away from zero to 22-bit fixed point.
      kk[xx * ksize + x] = k < 0
        ? Math.trunc(-0.5 + k * (1 << PRECISION_BITS))
        : Math.trunc(0.5 + k * (1 << PRECISION_BITS));
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { bounds, kk, ksize };
}

function clip8(v: number): number {
  if (v >= 256 * (1 << PRECISION_BITS)) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / (1 << PRECISION_BITS));
}

/**
 * Resizes an 8-bit image with `channels` interleaved channels exactly as Pillow 9's
 * `Image.resize(size, Image.BILINEAR)` (what torchvision's `Resize` calls on PIL images): triangle filter
 * with support scaled by the downscale factor (antialiased downsampling, plain half-pixel bilinear with
 * clamped edges when upsampling), 22-bit fixed-point weights, horizontal pass first, intermediate rounded
 * to 8 bits. Returns a new `outH * outW * channels` array.
 */
export function resizePil(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outW: number,
  outH: number,
): Uint8Array {
  if (src.length !== width * height * channels) {
    throw new Error(
      `resizePil: expected ${width}x${height}x${channels} = ${width * height * channels} bytes, got ${src.length}`,
    );
  }
  if (outW === width && outH === height) return src.slice();
  const half = 1 << (PRECISION_BITS - 1);
  let cur = src;
  // Pillow only processes the rows the vertical pass needs; the result is identical to processing all.
  if (outW !== width) {
    const { bounds, kk, ksize } = pilCoeffs(width, outW);
    const tmp = new Uint8Array(height * outW * channels);
    for (let y = 0; y < height; y++) {
      const rowIn = y * width * channels;
      const rowOut = y * outW * channels;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[2 * xx], xmax = bounds[2 * xx + 1], k0 = xx * ksize;
        if (channels === 3) {
          // The common case, all three channels in one pass over the taps.
          let s0 = half, s1 = half, s2 = half;
          let q = rowIn + xmin * 3;
          for (let x = 0; x < xmax; x++, q += 3) {
            const k = kk[k0 + x];
            s0 += src[q] * k;
            s1 += src[q + 1] * k;
            s2 += src[q + 2] * k;
          }
          const o = rowOut + xx * 3;
          tmp[o] = clip8(s0);
          tmp[o + 1] = clip8(s1);
          tmp[o + 2] = clip8(s2);
          continue;
        }
        for (let c = 0; c < channels; c++) {
          let ss0 = half;
          for (let x = 0; x < xmax; x++) ss0 += src[rowIn + (x + xmin) * channels + c] * kk[k0 + x];
          tmp[rowOut + xx * channels + c] = clip8(ss0);
        }
      }
    }
    cur = tmp;
  }
  if (outH === height) return cur;
  const { bounds, kk, ksize } = pilCoeffs(height, outH);
  const out = new Uint8Array(outH * outW * channels);
  const stride = outW * channels;
  const acc = new Float64Array(stride);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[2 * yy], ymax = bounds[2 * yy + 1], k0 = yy * ksize;
    acc.fill(half);
    // Taps outside, pixels inside: rows are read contiguously. Sums of integers below 2^31 are exact in
    // float64, so the order does not change the result.
    for (let y = 0; y < ymax; y++) {
      const k = kk[k0 + y], row = (y + ymin) * stride;
      for (let i = 0; i < stride; i++) acc[i] += cur[row + i] * k;
    }
    const rowOut = yy * stride;
    for (let i = 0; i < stride; i++) out[rowOut + i] = clip8(acc[i]);
  }
  return out;
}

/** Converts 8-bit HWC RGB to normalised CHW float32 exactly as torchvision `ToTensor` + `Normalize` (float32). */
export function normalizeRgb(rgb: Uint8Array, height: number, width: number): Float32Array {
  const n = height * width;
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(IMAGENET_MEAN[c]), s = Math.fround(IMAGENET_STD[c]);
    // One float32 value per byte value: v/255, minus mean, divided by std, each rounded to float32 as torch does.
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / s);
    const base = c * n;
    for (let i = 0; i < n; i++) out[base + i] = lut[rgb[3 * i + c]];
  }
  return out;
}

/**
 * The reference mask transform on an already decoded one-channel mask: binarise `> 0` at the original size
 * (to 0/255), Pillow-exact bilinear resize to `size`×`size`, then `v/255 > 0.5`, i.e. `v >= 128` → {0,1}.
 */
export function binarizeResizeMask(mask: GreyImage, size: number): Uint8Array {
  const bin = new Uint8Array(mask.data.length);
  for (let i = 0; i < bin.length; i++) bin[i] = mask.data[i] > 0 ? 255 : 0;
  const r = resizePil(bin, mask.width, mask.height, 1, size, size);
  const out = new Uint8Array(size * size);
  for (let i = 0; i < out.length; i++) out[i] = r[i] >= 128 ? 1 : 0;
  return out;
}

/** Encodes an RGB image as PNG bytes. */
export function encodePng(img: RgbImage): Promise<Uint8Array> {
  if (img.data.length !== img.width * img.height * 3) {
    throw new Error(`encodePng: expected ${img.width}x${img.height}x3 bytes, got ${img.data.length}`);
  }
  return Promise.resolve(
    encodePngBytes({ width: img.width, height: img.height, data: img.data, depth: 8, channels: 3 }),
  );
}

/** Encodes a one-channel image as a grey PNG (masks are written as 0/255). */
export function encodeGreyPng(img: GreyImage): Promise<Uint8Array> {
  if (img.data.length !== img.width * img.height) {
    throw new Error(`encodeGreyPng: expected ${img.width}x${img.height} bytes, got ${img.data.length}`);
  }
  return Promise.resolve(
    encodePngBytes({ width: img.width, height: img.height, data: img.data, depth: 8, channels: 1 }),
  );
}
