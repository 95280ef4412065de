/**
 * `deno task train -- --data DIR [options]`: trains one model on all classes of a dataset with the recipe of
 * PAPER.md decision 3 (every part a flag), a checkpoint per epoch (atomic), `--resume`, optional evaluation every
 * N epochs, and a JSON Lines log of the loss per iteration (`OUT/train_log.jsonl`).
 *
 * @module
 */

import { DEFAULT_RECIPE } from "../anomaly/engine/recipe.ts";
import { resolveConfig, train, type TrainResult } from "../anomaly/engine/train.ts";
import { modelNames } from "../models/registry.ts";
import {
  classList,
  datasetKind,
  intFlag,
  jsonObjectFlag,
  metricPath,
  numFlag,
  parseFlags,
  printJson,
  resolveDevice,
  UsageError,
} from "./common.ts";

/** Usage text of `train`. */
export const TRAIN_USAGE = `usage: deno task train -- --data DIR [options]
  --model ${modelNames().join("|")}   (default ${DEFAULT_RECIPE.model})
  --variant NAME          model preset (default: official)
  --model-config JSON     model config fields over the preset, e.g. '{"depths":[1,1,1,1]}'
  --dataset mvtec|visa|mpdd|folder   (default mvtec)
  --data DIR              dataset root
  --classes a,b,c         subset of classes (default: all; one model for all of them)
  --epochs N (${DEFAULT_RECIPE.epochs})  --batch N (${DEFAULT_RECIPE.batchSize})  --lr X (${DEFAULT_RECIPE.lr})  --weight-decay X (${DEFAULT_RECIPE.weightDecay})
  --clip X (${DEFAULT_RECIPE.clipGrad})  --lr-decay-at F (${DEFAULT_RECIPE.lrDecayAt})  --size N (${DEFAULT_RECIPE.imageSize})  --seed N (${DEFAULT_RECIPE.seed})
  --device cpu|webgpu|auto   (default auto)
  --encoder-weights FILE  torchvision/timm ResNet-34 .pth or .safetensors (default: random encoder)
  --out DIR               checkpoints and logs (default runs/<model>)
  --resume                continue from OUT/checkpoint.safetensors
  --eval-every N          evaluate on the test split every N epochs (default 0: never)
  --metric-path exact|adeval   (default adeval)
  --max-iters N           iterations per epoch cap (default 0: whole epoch)
  --skip-bad              skip unreadable images with a warning
  --json                  print one JSON object as the last line`;

/** The flags of `train` (shared with `demo`). */
export const TRAIN_FLAGS = {
  model: { type: "string" },
  variant: { type: "string" },
  "model-config": { type: "string" },
  dataset: { type: "string" },
  data: { type: "string" },
  classes: { type: "string" },
  epochs: { type: "string" },
  batch: { type: "string" },
  lr: { type: "string" },
  "weight-decay": { type: "string" },
  clip: { type: "string" },
  "lr-decay-at": { type: "string" },
  size: { type: "string" },
  seed: { type: "string" },
  device: { type: "string" },
  "encoder-weights": { type: "string" },
  out: { type: "string" },
  resume: { type: "boolean", default: false },
  "eval-every": { type: "string" },
  "metric-path": { type: "string" },
  "max-iters": { type: "string" },
  "skip-bad": { type: "boolean", default: false },
  prefetch: { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

/** The JSON record of a finished training run. */
export function trainRecord(r: TrainResult): Record<string, unknown> {
  const losses = r.epochs.map((e) => e.meanLoss);
  return {
    model: r.config.model,
    variant: r.config.variant ?? "official",
    dataset: r.config.dataset,
    data_root: r.config.dataRoot,
    classes: r.dataset.classes,
    epochs: r.config.epochs,
    steps: r.steps,
    seed: r.config.seed,
    image_size: r.config.imageSize,
    batch_size: r.config.batchSize,
    device: r.config.device,
    encoder: r.config.encoderWeights ?? "random",
    train_loss_first_epoch: losses[0] ?? null,
    train_loss_last_epoch: losses[losses.length - 1] ?? null,
    epoch_losses: losses,
    train_images_per_s: r.epochs.length ? r.epochs[r.epochs.length - 1].imagesPerS : null,
    checkpoint: r.checkpoint,
    skipped: r.skipped,
  };
}

/** The `train` command; returns the printed record. */
export async function trainCommand(args: string[]): Promise<Record<string, unknown>> {
  const { values: v } = parseFlags("train", args, TRAIN_FLAGS);
  if (v.help) {
    console.log(TRAIN_USAGE);
    return {};
  }
  if (!v.data) throw new UsageError("train: --data DIR is required");
  const log = (m: string) => console.error(m);
  const model = v.model ?? DEFAULT_RECIPE.model;
  const config = resolveConfig({
    model,
    variant: v.variant,
    modelOverrides: jsonObjectFlag("train", "model-config", v["model-config"]),
    dataset: datasetKind("train", v.dataset),
    dataRoot: v.data,
    classes: classList(v.classes),
    epochs: intFlag("train", "epochs", v.epochs, DEFAULT_RECIPE.epochs),
    batchSize: intFlag("train", "batch", v.batch, DEFAULT_RECIPE.batchSize),
    lr: numFlag("train", "lr", v.lr, DEFAULT_RECIPE.lr),
    weightDecay: numFlag("train", "weight-decay", v["weight-decay"], DEFAULT_RECIPE.weightDecay),
    clipGrad: numFlag("train", "clip", v.clip, DEFAULT_RECIPE.clipGrad),
    lrDecayAt: numFlag("train", "lr-decay-at", v["lr-decay-at"], DEFAULT_RECIPE.lrDecayAt),
    imageSize: intFlag("train", "size", v.size, DEFAULT_RECIPE.imageSize),
    seed: intFlag("train", "seed", v.seed, DEFAULT_RECIPE.seed, 0),
    device: await resolveDevice("train", v.device, log),
    encoderWeights: v["encoder-weights"],
    outDir: v.out ?? `runs/${model}`,
    evalEvery: intFlag("train", "eval-every", v["eval-every"], 0, 0),
    metricPath: metricPath("train", v["metric-path"]),
    maxItersPerEpoch: intFlag("train", "max-iters", v["max-iters"], 0, 0),
    skipBad: v["skip-bad"],
    prefetch: intFlag("train", "prefetch", v.prefetch, DEFAULT_RECIPE.prefetch, 0),
  });
  const result = await train(config, { resume: v.resume, quiet: v.json, log });
  const record = trainRecord(result);
  const last = result.epochs[result.epochs.length - 1]?.evaluation;
  if (last) Object.assign(record, { evaluation: last.summary });
  result.model.dispose();
  if (v.json) printJson(record);
  else console.log(`trained ${record.model}: ${record.steps} steps, checkpoint ${record.checkpoint}`);
  return record;
}
