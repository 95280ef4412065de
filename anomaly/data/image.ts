/**
 * Image decoding and encoding for the anomaly-detection pipeline.
 *
 * PNG and JPEG, the formats of MVTec-AD, VisA and MPDD, are decoded and encoded in pure JavaScript (npm:fast-png,
 * npm:jpeg-js), so the training and test processes load no native image library; other formats (BMP, TIFF, WebP,
 * ...) and SVG rendering go through sharp (libvips), imported only when such a file is met. Resizing for the model input follows the reference
 * pipeline (ADer / MambaAD, docs/paper.md §1.10 step 6 and 1.11): `PIL.Image.open(p).convert("RGB")`, torchvision
 * `Resize((S, S), BILINEAR)` on the PIL image, `ToTensor`, `Normalize(ImageNet)`; masks are
 * `convert("L")`, binarised `> 0` to 0/255, resized the same way, `ToTensor`, thresholded `> 0.5`.
 *
 * The pure part (decoding bytes, resizing, normalising, encoding) lives in `pixels.ts`, which the browser playground
 * bundles without this module's file system and native-library imports; everything it exports is re-exported here.
 *
 * @module
 */

import {
  binarizeResizeMask,
  decodeImageBytes,
  encodePng,
  type GreyImage,
  ImageFileError,
  normalizeRgb,
  type RawImage,
  rawToGrey,
  rawToRgb,
  resizePil,
  type RgbImage,
} from "./pixels.ts";

export * from "./pixels.ts";

/** sharp (libvips), loaded on first use only: a native library that the PNG/JPEG path never needs. */
async function loadSharp(): Promise<typeof import("npm:sharp@0.35.5").default> {
  // deno-lint-ignore no-import-prefix
  return (await import("npm:sharp@0.35.5")).default;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new ImageFileError(path, "file not found", { cause: e });
    if (e instanceof Deno.errors.IsADirectory) throw new ImageFileError(path, "is a directory", { cause: e });
    throw new ImageFileError(path, `cannot read file (${errorMessage(e)})`, { cause: e });
  }
}

/** libvips (through sharp) for the formats other than PNG and JPEG. */
async function decodeOther(bytes: Uint8Array, maxPixels: number): Promise<RawImage> {
  const sharp = await loadSharp();
  const { data, info } = await sharp(bytes, { failOn: "warning", limitInputPixels: maxPixels }).toColourspace(
    "srgb",
  ).raw({ depth: "uchar" })
    .toBuffer({ resolveWithObject: true });
  return {
    width: info.width,
    height: info.height,
    channels: info.channels,
    depth: 8,
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

/** Decodes `path` to raw samples; throws {@linkcode ImageFileError} naming the file on any failure. */
async function decodeFile(path: string, given?: Uint8Array): Promise<RawImage> {
  return decodeImageBytes(given ?? await readBytes(path), path, decodeOther);
}

/**
 * Reads an image file (PNG and JPEG in JavaScript; BMP, TIFF, WebP, ... through libvips) as 8-bit RGB.
 * Grey images are replicated to three channels and alpha is dropped, as PIL's `convert("RGB")` does.
 * Throws {@linkcode ImageFileError} naming the file when it is missing, unreadable or not a valid image.
 */
export async function readImage(path: string): Promise<RgbImage> {
  return rawToRgb(await decodeFile(path));
}

/**
 * Reads a mask file as one 8-bit channel, as PIL's `convert("L")`: grey stays as it is, colour becomes
 * ITU-R 601 luma with PIL's fixed-point rounding (`(R*19595 + G*38470 + B*7471 + 0x8000) >> 16`); alpha is
 * ignored; 16-bit grey is clipped to 255 as PIL's `I;16` → `L` does (not rescaled). Throws
 * {@linkcode ImageFileError} naming the file on any read or decode failure.
 */
export async function readMask(path: string): Promise<GreyImage> {
  return rawToGrey(await decodeFile(path));
}

/**
 * Loads an image as the model input: RGB, resized to `size`×`size` bilinear, scaled to [0,1], ImageNet
 * normalised, CHW float32 of length `3*size*size`. The result equals the reference `Resize` + `ToTensor` +
 * `Normalize` bit for bit for lossless inputs (JPEG decoders may differ by a level between jpeg-js and PIL's
 * libjpeg build).
 */
export async function loadImage(path: string, size: number): Promise<Float32Array> {
  return (await loadImageWithSize(path, size)).tensor;
}

/** As {@linkcode loadImage}, also returning the original image size (the loader checks mask sizes against it). */
export async function loadImageWithSize(
  path: string,
  size: number,
): Promise<{ tensor: Float32Array; width: number; height: number }> {
  if (!Number.isInteger(size) || size <= 0) throw new Error(`loadImage: size must be a positive integer, got ${size}`);
  const img = await readImage(path);
  const rgb = resizePil(img.data, img.width, img.height, 3, size, size);
  return { tensor: normalizeRgb(rgb, size, size), width: img.width, height: img.height };
}

/**
 * Loads a ground-truth mask as docs/paper.md §1.10 step 6: binarised `> 0` at the original size, resized to
 * `size`×`size` bilinear (Pillow-exact, see {@linkcode resizePil}; downsampling is therefore antialiased
 * as in PIL), thresholded `> 0.5` → {0,1}. `null` (a normal image) gives all zeros.
 */
export async function loadMask(path: string | null, size: number): Promise<Uint8Array> {
  if (path === null) return new Uint8Array(size * size);
  return binarizeResizeMask(await readMask(path), size);
}

/** Writes an RGB image to `path` as PNG. */
export async function writePng(path: string, img: RgbImage): Promise<void> {
  await Deno.writeFile(path, await encodePng(img));
}

/** Renders an SVG document (plots, tables) to a PNG file at `path`. */
export async function renderSvg(svg: string, path: string): Promise<void> {
  let png: Uint8Array;
  try {
    const sharp = await loadSharp();
    const buf = await sharp(new TextEncoder().encode(svg)).png().toBuffer();
    png = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    throw new Error(`renderSvg: cannot render SVG for ${path} (${errorMessage(e)})`, { cause: e });
  }
  await Deno.writeFile(path, png);
}
