/**
 * `deno task demo`: the whole job on a fresh machine with no data and no weights — generate the synthetic
 * dataset (MVTec layout), train Wave-MambaAD briefly at a size the CPU handles in about ten minutes, evaluate
 * on both metric paths, write the results tables and heat-map overlays.
 *
 * What it shows and what it does not: without `--encoder-weights` the frozen ResNet-34 is random, and a
 * reconstruction-based detector then has little to work with, so its metrics are reported as they come (near
 * chance is expected) and are not the paper's. What it must show is that training converges (the loss falls;
 * `train_loss_first_epoch` and `train_loss_last_epoch` in the JSON). With `--encoder-weights FILE` the same
 * command runs the paper's setup (pretrained encoder), at `--size 256` if you have the time or a GPU.
 *
 * @module
 */

import { join } from "node:path";
import { loadImage, loadMask, writePng } from "../anomaly/data/image.ts";
import { generateSyntheticDataset } from "../anomaly/data/synthetic.ts";
import { evaluate, predictBatch } from "../anomaly/engine/evaluate.ts";
import { markdownTable, resultsJson, type RunInfo, writeResults } from "../anomaly/engine/report.ts";
import { resolveConfig, train } from "../anomaly/engine/train.ts";
import { anomalyFigure } from "../anomaly/viz/heatmap.ts";
import { modelNames } from "../models/registry.ts";
import {
  applyMaxMegapixels,
  checkModelFlags,
  DEVICE_FLAG,
  type FlagTable,
  HELP_FLAG,
  intFlag,
  JSON_FLAG,
  MAX_MEGAPIXELS_FLAG,
  numFlag,
  parseFlags,
  printJson,
  resolveDevice,
  usageChecked,
  usageText,
} from "./common.ts";
import { trainRecord } from "./train.ts";

/**
 * The marker file the demo writes into every folder it creates (`OUT/data`, `OUT/run`). The demo deletes or
 * replaces a folder only when it holds this marker, so `--out .` can never take the user's own `data/`.
 */
export const DEMO_MARKER = ".wavemamba-demo";

/**
 * Makes `out` the demo's own output folder before anything is written: a folder that does not exist is
 * created, an empty one or one holding {@linkcode DEMO_MARKER} is taken; a folder with other contents (say
 * `--out .` in a project) is refused with an error naming it, since the demo writes its results files there.
 * The folder gets the marker. With `dryRun` only the refusal is checked.
 */
export async function claimOutFolder(out: string, opts: { dryRun?: boolean } = {}): Promise<void> {
  let entries: string[] | null = null;
  try {
    entries = [];
    for await (const e of Deno.readDir(out)) entries.push(e.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) entries = null;
    else throw new Error(`demo: --out ${out} is not a folder the demo can use (${(e as Error).message})`);
  }
  if (entries && entries.length > 0 && !entries.includes(DEMO_MARKER)) {
    throw new Error(
      `demo: --out ${out} holds files that the demo did not make (${entries.slice(0, 5).join(", ")}${
        entries.length > 5 ? ", …" : ""
      }; no ${DEMO_MARKER} marker); the demo writes only into a new or empty folder or one of its own. ` +
        `Choose another --out`,
    );
  }
  if (opts.dryRun) return;
  await Deno.mkdir(out, { recursive: true });
  await Deno.writeTextFile(
    join(out, DEMO_MARKER),
    "made by `deno task demo`; a later demo run with the same --out replaces its files here\n",
  );
}

/** The flags of `demo`, from which its usage text is generated. */
export const DEMO_FLAGS = {
  out: {
    type: "string",
    arg: "DIR",
    help:
      `everything goes here (default out/demo); the demo replaces only the folders it made\n(marked by a ${DEMO_MARKER} file)`,
  },
  model: { type: "string", arg: "NAME", help: `${modelNames().join("|")} (default wave_mambaad)` },
  variant: { type: "string", arg: "NAME", help: "model preset (default: official)" },
  size: { type: "string", arg: "N", help: "model input size (default 64: minutes on a CPU; the paper uses 256)" },
  epochs: { type: "string", arg: "N", help: "epochs (default 5)" },
  batch: { type: "string", arg: "N", help: "batch size (default 8)" },
  lr: { type: "string", arg: "X", help: "AdamW learning rate (default 0.005)" },
  seed: { type: "string", arg: "N", help: "random seed (default 42)" },
  "train-per-class": { type: "string", arg: "N", help: "synthetic normal training images per class (default 24)" },
  "test-per-class": {
    type: "string",
    arg: "N",
    help: "synthetic test images per class: half normal, half spread over the 4 defect kinds\n(default 20)",
  },
  device: DEVICE_FLAG,
  "encoder-weights": {
    type: "string",
    arg: "FILE",
    help: "torchvision/timm ResNet-34 (.pth/.safetensors): the paper's setup",
  },
  "max-megapixels": MAX_MEGAPIXELS_FLAG,
  json: JSON_FLAG,
  help: HELP_FLAG,
} as const satisfies FlagTable;

/** Usage text of `demo`, generated from {@linkcode DEMO_FLAGS}. */
export const DEMO_USAGE: string = usageText("usage: deno task demo [-- options]", DEMO_FLAGS);

/**
 * Makes `dir` a fresh, empty folder of the demo's own: a folder that does not exist is created; one that holds
 * {@linkcode DEMO_MARKER} (made by an earlier demo) is deleted and recreated; any other existing path is
 * refused with an error naming it, and nothing is touched. The new folder gets the marker. With `dryRun` only
 * the refusal is checked.
 */
export async function freshDemoFolder(dir: string, opts: { dryRun?: boolean } = {}): Promise<void> {
  let st: Deno.FileInfo | null = null;
  try {
    st = await Deno.lstat(dir);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw new Error(`demo: cannot inspect ${dir} (${(e as Error).message})`);
  }
  if (st) {
    const marked = st.isDirectory && await Deno.lstat(join(dir, DEMO_MARKER)).then(() => true, () => false);
    if (!marked) {
      throw new Error(
        `demo: ${dir} already exists and was not made by the demo (no ${DEMO_MARKER} marker in it); ` +
          `the demo does not delete it. Choose another --out, or move ${dir} away`,
      );
    }
    if (opts.dryRun) return;
    await Deno.remove(dir, { recursive: true });
  }
  if (opts.dryRun) return;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    join(dir, DEMO_MARKER),
    "made by `deno task demo`; the next demo run with the same --out deletes this folder\n",
  );
}

const ENCODER_NOTE_RANDOM = "The frozen ResNet-34 encoder is RANDOMLY initialised (no --encoder-weights given): " +
  "the metrics below say how a reconstruction model does with random features, not what the paper reports. " +
  "The paper's numbers need the ImageNet weights (--encoder-weights resnet34.pth) and the real datasets.";

/** Normal and per-defect test counts for about `n` test images per class (4 defect kinds). */
function testCounts(n: number): { testGoodPerClass: number; testPerDefect: number } {
  const testPerDefect = Math.max(1, Math.round(n / 8));
  return { testGoodPerClass: Math.max(1, n - 4 * testPerDefect), testPerDefect };
}

/** The `demo` command; returns the printed record. */
export async function demoCommand(args: string[]): Promise<Record<string, unknown>> {
  const { values: v } = parseFlags("demo", args, DEMO_FLAGS);
  if (v.help) {
    console.log(DEMO_USAGE);
    return {};
  }
  const log = (m: string) => console.error(m);
  const out = v.out ?? "out/demo";
  const seed = intFlag("demo", "seed", v.seed, 42, 0);
  const t0 = performance.now();

  const modelName = v.model ?? "wave_mambaad";
  const imageSize = intFlag("demo", "size", v.size, 64);
  checkModelFlags("demo", modelName, v.variant, imageSize);
  applyMaxMegapixels("demo", v["max-megapixels"]);
  const trainPerClass = intFlag("demo", "train-per-class", v["train-per-class"], 24);
  const counts = testCounts(intFlag("demo", "test-per-class", v["test-per-class"], 20, 5));
  const dataRoot = join(out, "data"), runDir = join(out, "run");
  const config = usageChecked("demo", () =>
    resolveConfig({
      model: modelName,
      variant: v.variant,
      dataset: "mvtec",
      dataRoot,
      epochs: intFlag("demo", "epochs", v.epochs, 5),
      batchSize: intFlag("demo", "batch", v.batch, 8),
      lr: numFlag("demo", "lr", v.lr, 0.005),
      imageSize,
      seed,
      encoderWeights: v["encoder-weights"],
      outDir: runDir,
    }));
  // every folder is checked before any is touched: a refusal leaves everything as it was
  const overlayDir = join(out, "overlays");
  await claimOutFolder(out, { dryRun: true });
  for (const dir of [dataRoot, runDir, overlayDir]) await freshDemoFolder(dir, { dryRun: true });
  await claimOutFolder(out);
  const device = await resolveDevice("demo", v.device, log);
  log(`demo: generating the synthetic dataset (MVTec layout) in ${dataRoot}`);
  await freshDemoFolder(dataRoot);
  await generateSyntheticDataset(dataRoot, { seed, trainPerClass, ...counts });
  await freshDemoFolder(runDir);
  log(config.encoderWeights ? `demo: encoder weights from ${config.encoderWeights}` : `demo: ${ENCODER_NOTE_RANDOM}`);
  const result = await train({ ...config, device }, { quiet: v.json, log });
  const { model, dataset } = result;
  try {
    const run: RunInfo = {
      model: config.model,
      variant: config.variant ?? "official",
      dataset: `synthetic (${dataRoot})`,
      epochs: config.epochs,
      seed,
      imageSize: config.imageSize,
      encoder: config.encoderWeights ?? "random",
    };
    // one forward pass over the test split, metrics on both paths
    const adeval = await evaluate(model, dataset, {
      metricPath: "adeval",
      alsoPaths: ["exact"],
      batchSize: config.batchSize,
      quiet: v.json,
    });
    const evals = { adeval, exact: adeval.alsoOn.exact! };
    const files: string[] = [];
    for (const res of [evals.adeval, evals.exact]) {
      files.push(...await writeResults(out, run, res));
      (v.json ? console.error : console.log)(markdownTable(run, res) + "\n");
    }
    // overlays: the first defect image of every class, and one normal one
    const overlays: string[] = [];
    const s = config.imageSize;
    await freshDemoFolder(overlayDir);
    for (const cls of dataset.classes) {
      const picks = [
        dataset.test.find((x) => x.cls === cls && x.label === 1),
        dataset.test.find((x) => x.cls === cls && x.label === 0),
      ];
      for (const sample of picks) {
        if (!sample) continue;
        const image = await loadImage(sample.path, s);
        const { maps } = await predictBatch(model, image, 1);
        const png = join(overlayDir, `${cls}_${sample.defect}.png`);
        await writePng(png, anomalyFigure(image, maps, s, await loadMask(sample.maskPath, s)));
        overlays.push(png);
      }
    }
    const record: Record<string, unknown> = {
      ...resultsJson(run, evals.adeval),
      exact: evals.exact.summary,
      ...trainRecord(result),
      dataset: run.dataset,
      encoder_note: config.encoderWeights ? `encoder weights from ${config.encoderWeights}` : ENCODER_NOTE_RANDOM,
      loss_fell: (trainRecord(result).train_loss_last_epoch as number) <
        (trainRecord(result).train_loss_first_epoch as number),
      files,
      overlays,
      seconds: (performance.now() - t0) / 1000,
    };
    log(`demo: ${record.encoder_note}`);
    log(
      `demo: train loss ${(record.train_loss_first_epoch as number).toPrecision(4)} (epoch 1) → ${
        (record.train_loss_last_epoch as number).toPrecision(4)
      } (epoch ${config.epochs}); overlays in ${join(out, "overlays")}; ${(record.seconds as number).toFixed(0)} s`,
    );
    if (v.json) printJson(record);
    return record;
  } finally {
    model.dispose();
  }
}
