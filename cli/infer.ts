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
import { loadImage, loadMask, writePng } from "../anomaly/data/image.ts";
import { predictBatch } from "../anomaly/engine/evaluate.ts";
import { encodeNpy } from "../anomaly/engine/npy.ts";
import { loadTrainedModel } from "../anomaly/engine/train.ts";
import { anomalyFigure } from "../anomaly/viz/heatmap.ts";
import { parseFlags, printJson, resolveDevice, UsageError } from "./common.ts";

/** Usage text of `infer`. */
export const INFER_USAGE = `usage: deno task infer -- --checkpoint FILE [options] IMAGE...
  --checkpoint FILE   a checkpoint written by train
  --masks a,b,...     ground-truth masks, one per image (default: looked up in the MVTec layout)
  --out DIR           where the PNGs (and maps with --save-maps) go (default out/infer)
  --save-maps         also write each map as float32 .npy
  --device cpu|webgpu|auto
  --json              print one JSON object as the last line`;

/** The ground-truth mask of an image in the MVTec layout, if the file exists. */
export function findMask(imagePath: string): string | null {
  const defectDir = dirname(imagePath), testDir = dirname(defectDir);
  if (basename(testDir) !== "test") return null;
  const stem = basename(imagePath).replace(/\.[^.]+$/, "");
  const p = join(dirname(testDir), "ground_truth", basename(defectDir), `${stem}_mask.png`);
  return existsSync(p) ? p : null;
}

/** The `infer` command; returns the printed record. */
export async function inferCommand(args: string[]): Promise<Record<string, unknown>> {
  const { values: v, positionals } = parseFlags("infer", args, {
    checkpoint: { type: "string" },
    masks: { type: "string" },
    out: { type: "string" },
    "save-maps": { type: "boolean", default: false },
    device: { type: "string" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
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
  const out = v.out ?? "out/infer";
  await Deno.mkdir(out, { recursive: true });
  const device = await resolveDevice("infer", v.device, (m) => console.error(m));
  const { model } = await loadTrainedModel(v.checkpoint, device);
  const s = model.imageSize;
  const results: Record<string, unknown>[] = [];
  try {
    for (const [i, path] of positionals.entries()) {
      const image = await loadImage(path, s);
      const { maps, scores } = await predictBatch(model, image, 1);
      const maskPath = masks ? masks[i] : findMask(path);
      const stem = basename(path).replace(/\.[^.]+$/, "");
      const png = join(out, `${String(i).padStart(3, "0")}_${stem}.png`);
      await writePng(png, anomalyFigure(image, maps, s, maskPath ? await loadMask(maskPath, s) : null));
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
