/**
 * Picture output shared by the examples: an SVG string or a raw RGB image written as a PNG file (with sharp).
 *
 * @module
 */

// the examples' only npm import, in one place (deno.json has no import map entry for it)
// deno-lint-ignore no-import-prefix
import sharp from "npm:sharp@0.35.5";

/** Renders an SVG document (text included) to a PNG file at `path`. */
export async function renderSvg(svg: string, path: string): Promise<void> {
  await sharp(new TextEncoder().encode(svg)).png().toFile(path);
}

/** Writes an 8-bit RGB image (row-major, channels last: `data[(y·width + x)·3 + c]`) as a PNG file. */
export async function writePng(path: string, img: { width: number; height: number; data: Uint8Array }): Promise<void> {
  if (img.data.length !== img.width * img.height * 3) {
    throw new Error(
      `writePng: ${img.width}×${img.height} RGB needs ${img.width * img.height * 3} bytes, got ${img.data.length}`,
    );
  }
  await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png().toFile(path);
}

/** The PNG encoding of an RGB image as a `data:` URI, to place it inside an SVG with `<image href=...>`. */
export async function pngDataUri(img: { width: number; height: number; data: Uint8Array }): Promise<string> {
  const png = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
  return `data:image/png;base64,${png.toString("base64")}`;
}

/**
 * An image file (PNG, JPEG, ...) decoded to grey values in [0, 1], fitted into `maxSide × maxSide` and cropped to
 * even sides (for 2×2-block transforms).
 */
export async function readGrey(
  path: string,
  maxSide: number,
): Promise<{ width: number; height: number; data: Float32Array }> {
  const { data, info } = await sharp(path).greyscale().resize(maxSide, maxSide, { fit: "inside" }).raw()
    .toBuffer({ resolveWithObject: true });
  const width = info.width & ~1, height = info.height & ~1, ch = info.channels;
  const out = new Float32Array(width * height);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) out[r * width + c] = data[(r * info.width + c) * ch] / 255;
  }
  return { width, height, data: out };
}
