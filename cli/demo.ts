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
import { intFlag, numFlag, parseFlags, printJson, resolveDevice } from "./common.ts";
import { trainRecord } from "./train.ts";

/** Usage text of `demo`. */
export const DEMO_USAGE = `usage: deno task demo [-- options]
  --out DIR               everything goes here (default out/demo)
  --model NAME            (default wave_mambaad)   --variant NAME
  --size N                model input size (default 64: minutes on a CPU; the paper uses 256)
  --epochs N (default 5)  --batch N (default 8)  --lr X (default 0.005)  --seed N (default 42)
  --train-per-class N     synthetic normal training images per class (default 24)
  --test-per-class N      synthetic test images per class: half normal, half spread over the 4 defect kinds
                          (default 20)
  --device cpu|webgpu|auto   (default auto: WebGPU on hardware adapters, else CPU)
  --encoder-weights FILE  torchvision/timm ResNet-34 (.pth/.safetensors): the paper's setup
  --json                  print one JSON object as the last line`;

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
  const { values: v } = parseFlags("demo", args, {
    out: { type: "string" },
    model: { type: "string" },
    variant: { type: "string" },
    size: { type: "string" },
    epochs: { type: "string" },
    batch: { type: "string" },
    lr: { type: "string" },
    seed: { type: "string" },
    "train-per-class": { type: "string" },
    "test-per-class": { type: "string" },
    device: { type: "string" },
    "encoder-weights": { type: "string" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
  if (v.help) {
    console.log(DEMO_USAGE);
    return {};
  }
  const log = (m: string) => console.error(m);
  const out = v.out ?? "out/demo";
  const seed = intFlag("demo", "seed", v.seed, 42, 0);
  const t0 = performance.now();

  const dataRoot = join(out, "data");
  log(`demo: generating the synthetic dataset (MVTec layout) in ${dataRoot}`);
  await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
  await generateSyntheticDataset(dataRoot, {
    seed,
    trainPerClass: intFlag("demo", "train-per-class", v["train-per-class"], 24),
    ...testCounts(intFlag("demo", "test-per-class", v["test-per-class"], 20, 5)),
  });

  const config = resolveConfig({
    model: v.model ?? "wave_mambaad",
    variant: v.variant,
    dataset: "mvtec",
    dataRoot,
    epochs: intFlag("demo", "epochs", v.epochs, 5),
    batchSize: intFlag("demo", "batch", v.batch, 8),
    lr: numFlag("demo", "lr", v.lr, 0.005),
    imageSize: intFlag("demo", "size", v.size, 64),
    seed,
    device: await resolveDevice("demo", v.device, log),
    encoderWeights: v["encoder-weights"],
    outDir: join(out, "run"),
  });
  log(config.encoderWeights ? `demo: encoder weights from ${config.encoderWeights}` : `demo: ${ENCODER_NOTE_RANDOM}`);
  const result = await train(config, { quiet: v.json, log });
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
    await Deno.mkdir(join(out, "overlays"), { recursive: true });
    for (const cls of dataset.classes) {
      const picks = [
        dataset.test.find((x) => x.cls === cls && x.label === 1),
        dataset.test.find((x) => x.cls === cls && x.label === 0),
      ];
      for (const sample of picks) {
        if (!sample) continue;
        const image = await loadImage(sample.path, s);
        const { maps } = await predictBatch(model, image, 1);
        const png = join(out, "overlays", `${cls}_${sample.defect}.png`);
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
