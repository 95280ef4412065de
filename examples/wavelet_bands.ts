/**
 * The Haar wavelet transform Wave-MambaAD uses to split features into frequency bands. `dwt` maps an image
 * (B, C, H, W) to its four half-size sub-bands [LL; HL; LH; HH] on the batch axis: LL is the 2×2 average (a smaller
 * copy), HL the change from left to right (vertical edges), LH the change from top to bottom (horizontal edges),
 * HH the change along both (diagonals, checkerboards). `iwt` puts them back together exactly.
 *
 * The synthetic image has one pattern per quadrant (vertical stripes, horizontal stripes, a one-pixel checkerboard,
 * a disk) so each band lights up in its own place. The picture shows the input, the four bands (LL scaled to
 * [0, 1]; the detail bands with grey = 0, scaled by their largest magnitude) and the reconstruction
 * `iwt(dwt(x))`, whose largest error is printed.
 *
 * Run: `deno run -A examples/wavelet_bands.ts [--image photo.jpg] [--out out/examples/]` → `wavelet_bands.png`
 * (an image file is converted to grey and fitted into 256×256).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { dwt, iwt, tensor } from "../mod.ts";
import { encodePng, readImage, renderSvg, resizePil, type RgbImage } from "../anomaly/data/image.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: { out: { type: "string", default: "out/examples/" }, image: { type: "string" } },
});
const outDir = args.out!;

/** A grey image with values in [0, 1], row-major. */
interface Grey {
  width: number;
  height: number;
  data: Float32Array;
}

/** 128×128: stripes across (top left), stripes down (top right), a checkerboard (bottom left), a disk. */
function synthetic(): Grey {
  const n = 128, data = new Float32Array(n * n);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      const top = r < n / 2, left = c < n / 2;
      let v = 0.25 + 0.35 * (r + c) / (2 * n); // a smooth ramp: only LL sees it
      if (top && left && r > 8 && r < 56 && c > 8 && c < 56) v = Math.floor(c / 3) % 2 ? 0.9 : 0.1;
      if (top && !left && r > 8 && r < 56 && c > 72 && c < 120) v = Math.floor(r / 3) % 2 ? 0.9 : 0.1;
      if (!top && left && r > 72 && r < 120 && c > 8 && c < 56) v = (r + c) % 2 ? 0.85 : 0.15;
      if (Math.hypot(r - 96, c - 96) < 22) v = 0.95;
      data[r * n + c] = v;
    }
  }
  return { width: n, height: n, data };
}

/** An image file as grey (ITU-R 601 luma), shrunk to fit 256×256 and cropped to even sides (2×2 blocks). */
async function load(path: string): Promise<Grey> {
  let { width, height, data } = await readImage(path);
  const f = Math.min(1, 256 / Math.max(width, height));
  if (f < 1) {
    const w = Math.max(2, Math.round(width * f)), h = Math.max(2, Math.round(height * f));
    data = resizePil(data, width, height, 3, w, h);
    [width, height] = [w, h];
  }
  const W = width & ~1, H = height & ~1, out = new Float32Array(W * H);
  for (let r = 0; r < H; r++) {
    for (let c = 0; c < W; c++) {
      const i = (r * width + c) * 3;
      out[r * W + c] = (0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2]) / 255;
    }
  }
  return { width: W, height: H, data: out };
}

/** An RGB image as a PNG `data:` URI, to place it in the SVG sheet with `<image href=...>`. */
async function pngDataUri(img: RgbImage): Promise<string> {
  const png = await encodePng(img);
  let bin = "";
  for (let i = 0; i < png.length; i += 0x8000) bin += String.fromCharCode(...png.subarray(i, i + 0x8000));
  return `data:image/png;base64,${btoa(bin)}`;
}

const img = args.image ? await load(args.image) : synthetic();
const { width: W, height: H } = img;

// the library's transform: (1, 1, H, W) → (4, 1, H/2, W/2), bands on the batch axis
const x = tensor(img.data, { shape: [1, 1, H, W] });
const bands = dwt(x);
const recon = iwt(bands);
const bandData = await bands.data() as Float32Array;
const reconData = await recon.data() as Float32Array;
let maxErr = 0;
for (let i = 0; i < img.data.length; i++) maxErr = Math.max(maxErr, Math.abs(reconData[i] - img.data[i]));
for (const t of [x, bands, recon]) t.dispose();

const names = ["LL", "HL", "LH", "HH"];
const h2 = H / 2, w2 = W / 2, bandSize = h2 * w2;
const band = (k: number) => bandData.subarray(k * bandSize, (k + 1) * bandSize);

/** Grey values mapped to 8-bit RGB through `f` (clamped), upscaled by `s` with nearest neighbour. */
function toRgb(v: Float32Array, w: number, h: number, f: (x: number) => number, s: number) {
  const data = new Uint8Array(w * s * h * s * 3);
  for (let r = 0; r < h * s; r++) {
    for (let c = 0; c < w * s; c++) {
      const g = Math.round(255 * Math.min(1, Math.max(0, f(v[Math.floor(r / s) * w + Math.floor(c / s)]))));
      data.fill(g, (r * w * s + c) * 3, (r * w * s + c) * 3 + 3);
    }
  }
  return { width: w * s, height: h * s, data };
}

const S = 300; // display size of the long side of every panel
const scale = S / Math.max(W, H), pw = W * scale, ph = H * scale;
const up = Math.max(1, Math.round(S / Math.max(w2, h2)));
const panels: { title: string; note: string; uri: string }[] = [];
console.log(`image ${W}×${H} → four ${w2}×${h2} bands`);
for (let k = 0; k < 4; k++) {
  const v = band(k);
  let lo = Infinity, hi = -Infinity, maxAbs = 0;
  for (const a of v) [lo, hi, maxAbs] = [Math.min(lo, a), Math.max(hi, a), Math.max(maxAbs, Math.abs(a))];
  // LL = 2 × the block mean, so /2 puts it back in [0, 1]; details are signed: grey is 0
  const f = k === 0 ? (a: number) => a / 2 : (a: number) => 0.5 + a / (2 * (maxAbs || 1));
  const note = k === 0 ? "shown as LL / 2" : `grey 0, white +${maxAbs.toFixed(2)}, black −${maxAbs.toFixed(2)}`;
  console.log(`${names[k]}: min ${lo.toFixed(3)}, max ${hi.toFixed(3)}`);
  panels.push({ title: "", note, uri: await pngDataUri(toRgb(v, w2, h2, f, up)) });
}
panels[0].title = "LL: 2×2 average";
panels[1].title = "HL: left→right change";
panels[2].title = "LH: top→bottom change";
panels[3].title = "HH: diagonal change";
const upFull = Math.max(1, Math.round(S / Math.max(W, H)));
const inputUri = await pngDataUri(toRgb(img.data, W, H, (a) => a, upFull));
const reconUri = await pngDataUri(toRgb(reconData, W, H, (a) => a, upFull));
console.log(`reconstruction iwt(dwt(x)): max abs error ${maxErr.toExponential(2)}`);

// layout: input and reconstruction on the left, the 2×2 band grid on the right
const M = 40, G = 30, TOP = 70, LABEL = 40;
const gridX = M + pw + 2 * G;
const width = gridX + 2 * pw + G + M, height = TOP + 2 * (ph + LABEL) + G + 20;
const image = (x0: number, y0: number, uri: string) =>
  `<image x="${x0}" y="${y0}" width="${pw}" height="${ph}" preserveAspectRatio="none" ` +
  `style="image-rendering:pixelated" href="${uri}"/><rect x="${x0}" y="${y0}" width="${pw}" height="${ph}" ` +
  `fill="none" stroke="#888"/>`;
const label = (x0: number, y0: number, title: string, note: string) =>
  `<text x="${x0}" y="${y0 - 22}" font-size="14" font-weight="bold">${title}</text>` +
  `<text x="${x0}" y="${y0 - 7}" font-size="11" fill="#555">${note}</text>`;
const body = [
  `<rect width="${width}" height="${height}" fill="white"/>`,
  `<text x="${width / 2}" y="34" font-size="22" font-weight="bold" text-anchor="middle">` +
  `Haar DWT (dwt): one image → four half-size bands; iwt puts them back</text>`,
  label(M, TOP + LABEL, "input x", `${W}×${H}`),
  image(M, TOP + LABEL, inputUri),
  label(M, TOP + 2 * LABEL + ph + G, "iwt(dwt(x))", `max |error| = ${maxErr.toExponential(1)}`),
  image(M, TOP + 2 * LABEL + ph + G, reconUri),
  `<line x1="${gridX - G}" y1="${TOP + 10}" x2="${gridX - G}" y2="${height - 20}" stroke="#ccc"/>`,
];
panels.forEach((p, k) => {
  const x0 = gridX + (k % 2) * (pw + G), y0 = TOP + LABEL + Math.floor(k / 2) * (ph + LABEL + G);
  body.push(label(x0, y0, p.title, `${w2}×${h2}, ${p.note}`), image(x0, y0, p.uri));
});
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
  `font-family="DejaVu Sans, sans-serif">\n${body.join("\n")}\n</svg>`;

await Deno.mkdir(outDir, { recursive: true });
const path = join(outDir, "wavelet_bands.png");
await renderSvg(svg, path);
console.log(`wrote ${path}`);
