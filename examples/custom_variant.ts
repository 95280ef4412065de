/**
 * A Wave-MambaAD variant of your own: the HFSS block scans its three high-frequency bands [HL, LH, HH] in the
 * official orders (horizontal, vertical, diagonal); here the diagonal HH scan is swapped for MambaAD's Hilbert
 * curve through the `hfssScans` field of the model config (any three official scan types). Both the default and
 * the variant are trained briefly on the built-in synthetic dataset (2 classes, 64 px, depths [1, 1, 1, 1]) with
 * the same seed and data, evaluated on the exact metric path, and their results tables printed, with the scan
 * orders the variant's HFSS blocks really use and both parameter counts (the same: a scan order has no weights).
 * One picture shows the same defect image's anomaly map from both models.
 *
 * A mechanics demo, not a benchmark: the frozen ResNet-34 encoder is RANDOM (no pretrained weights here) and the
 * runs last a few steps, so the metrics say nothing about which scan order detects defects better.
 *
 * Run: `deno run -A examples/custom_variant.ts [--scans horizontal,vertical,hilbert] [--epochs 2]
 * [--device cpu|webgpu] [--out out/examples/]` → `custom_variant.png` (left to right: image, ground-truth mask,
 * default overlay, variant overlay; both heat maps on one colour scale). About a minute on a 2-core CPU.
 * Try: `--scans zigzag,zigzag,zigzag` or `--scans scan,vertical,diagonal` (types: horizontal, vertical, diagonal,
 * hilbert, scan, zigzag, sweep).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { type Device, HFSS, initWebGPU } from "../mod.ts";
import { scanOrderForType } from "../nn/ssm/scan_order.ts";
import { countParams } from "../models/wave_mambaad/model.ts";
import type { AnomalyModel } from "../models/common/anomaly_model.ts";
import type { AnomalyDataset } from "../anomaly/data/datasets.ts";
import { generateSyntheticDataset } from "../anomaly/data/synthetic.ts";
import { loadImage, loadMask, writePng } from "../anomaly/data/image.ts";
import { resolveConfig, train } from "../anomaly/engine/train.ts";
import { evaluate, type EvaluationResult, predictBatch } from "../anomaly/engine/evaluate.ts";
import { markdownTable, type RunInfo } from "../anomaly/engine/report.ts";
import { colorize, denormalize, enlarge, maskToRgb, overlay, sideBySide } from "../anomaly/viz/heatmap.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    scans: { type: "string", default: "horizontal,vertical,hilbert" },
    epochs: { type: "string", default: "2" },
    device: { type: "string", default: "cpu" },
    out: { type: "string", default: "out/examples/" },
  },
});
const outDir = args.out!;
const device = args.device as Device;
if (device !== "cpu" && device !== "webgpu") throw new Error(`--device must be cpu or webgpu, got ${device}`);
if (device === "webgpu") await initWebGPU();
const scans = args.scans!.split(",").map((s) => s.trim());
if (scans.length !== 3) throw new Error(`--scans needs 3 scan types [HL, LH, HH], got "${args.scans}"`);
scans.forEach(scanOrderForType); // fail here, with the list of known types, rather than after the first training
const hfssScans = scans as [string, string, string];
const epochs = Number(args.epochs);

// small enough for about a minute on a CPU: 2 classes, 8 normal training images each, 6 test images each
const SIZE = 64, BATCH = 4, SEED = 42, CLASSES = ["washer", "weave"];
const work = await Deno.makeTempDir({ prefix: "custom_variant_" });
const dataRoot = join(work, "data");
await generateSyntheticDataset(dataRoot, {
  seed: 0,
  classes: CLASSES,
  trainPerClass: 8,
  testGoodPerClass: 2,
  testPerDefect: 1,
  size: SIZE,
});

console.log(
  "NOTE: the frozen ResNet-34 encoder is RANDOMLY initialised and each model trains for a few steps, so the " +
    "metrics below are NOT meaningful detection results; this example shows the mechanics of building, training " +
    "and comparing a variant.\n",
);

interface Trained {
  name: string;
  model: AnomalyModel;
  dataset: AnomalyDataset;
  result: EvaluationResult;
  table: string;
}

/** Trains and evaluates one configuration; `hfssScans` undefined = the official orders. */
async function run(name: string, scanTypes?: [string, string, string]): Promise<Trained> {
  const config = resolveConfig({
    model: "wave_mambaad",
    dataset: "mvtec",
    dataRoot,
    outDir: join(work, name),
    // the same seed for both, so the runs differ only in the scan orders (same init, same data order)
    seed: SEED,
    epochs,
    batchSize: BATCH,
    imageSize: SIZE,
    device,
    metricPath: "exact",
    modelOverrides: {
      depths: [1, 1, 1, 1],
      dropPathRate: 0,
      ...(scanTypes ? { hfssScans: scanTypes } : {}),
    },
  });
  const t0 = performance.now();
  const trained = await train(config, { quiet: true, log: (m) => console.log(`  [${name}] ${m}`) });
  const result = await evaluate(trained.model, trained.dataset, { metricPath: "exact", batchSize: BATCH, quiet: true });
  const losses = trained.epochs.map((e) => e.meanLoss.toPrecision(4)).join(" → ");
  console.log(`  [${name}] mean loss per epoch ${losses}; ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  const info: RunInfo = {
    model: config.model,
    variant: scanTypes ? `official + hfssScans ${scanTypes.join("/")}` : "official",
    dataset: "synthetic",
    epochs,
    seed: SEED,
    imageSize: SIZE,
    encoder: "random",
  };
  return { name, model: trained.model, dataset: trained.dataset, result, table: markdownTable(info, result) };
}

/** The scan-order names of the model's HFSS blocks, [HL, LH, HH] (the same in every stage). */
function hfssOrderNames(model: AnomalyModel): string[] {
  const blocks = model.modules().filter((m): m is HFSS => m instanceof HFSS);
  const names = blocks.map((b) => b.orders.map((o) => o.name).join(", "));
  if (new Set(names).size !== 1) throw new Error(`HFSS blocks disagree on their scan orders: ${names.join(" | ")}`);
  return blocks[0].orders.map((o) => o.name);
}

const runs: Trained[] = [];
try {
  runs.push(await run("default"));
  runs.push(await run("variant", hfssScans));
  const [base, variant] = runs;

  console.log(`HFSS scan orders [HL, LH, HH]:`);
  console.log(`  default: ${hfssOrderNames(base.model).join(", ")}`);
  console.log(`  variant: ${hfssOrderNames(variant.model).join(", ")}  (from hfssScans ${JSON.stringify(scans)})`);
  console.log(`parameter counts (every parameter, frozen encoder included / trainable):`);
  for (const r of runs) {
    const c = countParams(r.model);
    console.log(`  ${r.name}: ${c.withoutIndex.toLocaleString("en")} / ${c.trainable.toLocaleString("en")}`);
  }
  console.log();
  for (const r of runs) console.log(`${r.name} (random encoder, not a detection result):\n${r.table}\n`);

  // the same defect image through both models, heat maps on one shared scale so they can be compared
  const sample = base.dataset.test.find((s) => s.label === 1)!;
  const image = await loadImage(sample.path, SIZE);
  const maps = await Promise.all(runs.map(async (r) => (await predictBatch(r.model, image, 1)).maps));
  const all = maps.flatMap((m) => [...m]);
  const range = { min: Math.min(...all), max: Math.max(...all) };
  const rgb = denormalize(image, SIZE);
  const panels = [
    rgb,
    maskToRgb(await loadMask(sample.maskPath, SIZE), SIZE, SIZE),
    ...maps.map((m) => overlay(rgb, colorize(m, SIZE, SIZE, range), 0.5)),
  ].map((p) => enlarge(p, 4));
  await Deno.mkdir(outDir, { recursive: true });
  const path = join(outDir, "custom_variant.png");
  await writePng(path, sideBySide(panels, 8));
  const score = (r: Trained) => r.result.scores.find((s) => s.path === sample.path)?.score.toFixed(4);
  console.log(`${sample.cls}/${sample.defect} image score: default ${score(base)}, variant ${score(variant)}`);
  console.log(
    `wrote ${path} (image | mask | default overlay | variant overlay; jet scale ` +
      `${range.min.toFixed(3)}–${range.max.toFixed(3)} shared)`,
  );
} finally {
  for (const r of runs) r.model.dispose();
  await Deno.remove(work, { recursive: true });
}
