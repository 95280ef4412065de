/**
 * `deno task infer -- --checkpoint FILE IMAGE...`: the anomaly map and score of each image, and a PNG per image
 * with the image, the map, the overlay and (when a mask exists) the ground truth side by side, as the paper's
 * Figure 5. A mask is taken from `--masks` (comma-separated, one per image) or found in the MVTec layout
 * (`<cls>/test/<defect>/<name>.png` → `<cls>/ground_truth/<defect>/<name>_mask.png`).
 *
 * @module
 */

import { existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { binarizeResizeMask, ImageFileError, loadImage, readImage, readMask, writePng } from "../anomaly/data/image.ts";
import { predictBatch } from "../anomaly/engine/evaluate.ts";
import { encodeNpy } from "../anomaly/engine/npy.ts";
import { loadTrainedModel } from "../anomaly/engine/train.ts";
import { anomalyFigure } from "../anomaly/viz/heatmap.ts";
import {
  applyMaxMegapixels,
  DEVICE_FLAG,
  type FlagTable,
  HELP_FLAG,
  JSON_FLAG,
  MAX_MEGAPIXELS_FLAG,
  parseFlags,
  printJson,
  resolveDevice,
  UsageError,
  usageText,
} from "./common.ts";

/** The flags of `infer`, from which its usage text is generated. */
export const INFER_FLAGS = {
  checkpoint: { type: "string", arg: "FILE", help: "a checkpoint written by train (required)" },
  masks: {
    type: "string",
    arg: "a,b,...",
    help: "ground-truth masks, one per image, each of its image's size\n(default: looked up in the MVTec layout)",
  },
  out: { type: "string", arg: "DIR", help: "where the PNGs (and maps with --save-maps) go (default out/infer)" },
  "save-maps": { type: "boolean", default: false, help: "also write each map as float32 .npy" },
  device: DEVICE_FLAG,
  "max-megapixels": MAX_MEGAPIXELS_FLAG,
  json: JSON_FLAG,
  help: HELP_FLAG,
} as const satisfies FlagTable;

/** Usage text of `infer`, generated from {@linkcode INFER_FLAGS}. */
export const INFER_USAGE: string = usageText(
  "usage: deno task infer -- --checkpoint FILE [options] IMAGE...",
  INFER_FLAGS,
);

/** The ground-truth mask of an image in the MVTec layout, if the file exists. */
export function findMask(imagePath: string): string | null {
  const defectDir = dirname(imagePath), testDir = dirname(defectDir);
  if (basename(testDir) !== "test") return null;
  const stem = basename(imagePath).replace(/\.[^.]+$/, "");
  const p = join(dirname(testDir), "ground_truth", basename(defectDir), `${stem}_mask.png`);
  return existsSync(p) ? p : null;
}

/**
 * Checks an input of `infer` before any model is built: the image is a readable file, and its mask (when there
 * is one) has the image's size, as eval's loader requires; a mask of another size is refused, not resized.
 * Throws {@linkcode ImageFileError} naming the file.
 */
export async function checkImageAndMask(path: string, maskPath: string | null): Promise<void> {
  if (!maskPath) {
    const st = await Deno.stat(path).catch(() => null);
    if (!st) throw new ImageFileError(path, "file not found");
    if (!st.isFile) throw new ImageFileError(path, "is not a file");
    return;
  }
  const [img, m] = [await readImage(path), await readMask(maskPath)];
  if (m.width !== img.width || m.height !== img.height) {
    throw new ImageFileError(
      maskPath,
      `mask is ${m.width}x${m.height} but its image ${path} is ${img.width}x${img.height}`,
    );
  }
}

/** The `infer` command; returns the printed record. */
export async function inferCommand(args: string[]): Promise<Record<string, unknown>> {
  const { values: v, positionals } = parseFlags("infer", args, INFER_FLAGS);
  if (v.help) {
    console.log(INFER_USAGE);
    return {};
  }
  if (!v.checkpoint) throw new UsageError("infer: --checkpoint FILE is required");
  if (positionals.length === 0) throw new UsageError("infer: give at least one image file");
  const masks = v.masks ? v.masks.split(",") : null;
  if (masks && masks.length !== positionals.length) {
    throw new UsageError(`infer: ${positionals.length} images but ${masks.length} --masks`);
  }
  applyMaxMegapixels("infer", v["max-megapixels"]);
  const out = v.out ?? "out/infer";
  const maskPaths = positionals.map((path, i) => masks ? masks[i] : findMask(path));
  // before the model is built: every image is there, and every mask has its image's size (as eval's loader)
  for (const [i, path] of positionals.entries()) await checkImageAndMask(path, maskPaths[i]);
  const device = await resolveDevice("infer", v.device, (m) => console.error(m));
  const { model } = await loadTrainedModel(v.checkpoint, device);
  const s = model.imageSize;
  const results: Record<string, unknown>[] = [];
  try {
    for (const [i, path] of positionals.entries()) {
      const image = await loadImage(path, s);
      const maskPath = maskPaths[i];
      const mask = maskPath ? binarizeResizeMask(await readMask(maskPath), s) : null;
      const { maps, scores } = await predictBatch(model, image, 1);
      const stem = basename(path).replace(/\.[^.]+$/, "");
      await Deno.mkdir(out, { recursive: true });
      const png = join(out, `${String(i).padStart(3, "0")}_${stem}.png`);
      await writePng(png, anomalyFigure(image, maps, s, mask));
      const rec: Record<string, unknown> = { path, score: scores[0], overlay: png, mask: maskPath };
      if (v["save-maps"]) {
        const npy = join(out, `${String(i).padStart(3, "0")}_${stem}.npy`);
        await Deno.writeFile(npy, encodeNpy(maps, [s, s]));
        rec.map = npy;
      }
      results.push(rec);
      if (!v.json) console.log(`${path}\tscore ${scores[0].toPrecision(5)}\t${png}`);
    }
  } finally {
    model.dispose();
  }
  const record = { checkpoint: v.checkpoint, image_size: s, images: results };
  if (v.json) printJson(record);
  return record;
}
