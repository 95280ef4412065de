/**
 * `deno task train -- --data DIR [options]`: trains one model on all classes of a dataset with the recipe of
 * docs/paper.md, decision 3 (every part a flag), a checkpoint per epoch (atomic), `--resume`, optional evaluation every
 * N epochs, and a JSON Lines log of the loss per iteration (`OUT/train_log.jsonl`).
 *
 * @module
 */

import { DEFAULT_RECIPE } from "../anomaly/engine/recipe.ts";
import { CHECKPOINT_FILE, LOSS_LOG_FILE, resolveConfig, train, type TrainResult } from "../anomaly/engine/train.ts";
import { modelNames } from "../models/registry.ts";
import {
  applyMaxMegapixels,
  checkModelFlags,
  classList,
  datasetKind,
  DEVICE_FLAG,
  type FlagTable,
  HELP_FLAG,
  intFlag,
  JSON_FLAG,
  jsonObjectFlag,
  MAX_MEGAPIXELS_FLAG,
  metricPath,
  numFlag,
  parseFlags,
  printJson,
  resolveDevice,
  usageChecked,
  UsageError,
  usageText,
} from "./common.ts";

/** The flags of `train`, from which its usage text is generated. */
export const TRAIN_FLAGS = {
  model: { type: "string", arg: "NAME", help: `${modelNames().join("|")} (default ${DEFAULT_RECIPE.model})` },
  variant: { type: "string", arg: "NAME", help: "model preset (default: official)" },
  "model-config": {
    type: "string",
    arg: "JSON",
    help: `model config fields over the preset, e.g. '{"depths":[1,1,1,1]}'`,
  },
  dataset: { type: "string", arg: "mvtec|visa|mpdd|folder", help: "dataset layout (default mvtec)" },
  data: { type: "string", arg: "DIR", help: "dataset root (required)" },
  classes: { type: "string", arg: "a,b,c", help: "subset of classes (default: all; one model for all of them)" },
  epochs: { type: "string", arg: "N", help: `epochs (default ${DEFAULT_RECIPE.epochs})` },
  batch: { type: "string", arg: "N", help: `batch size (default ${DEFAULT_RECIPE.batchSize})` },
  lr: { type: "string", arg: "X", help: `AdamW learning rate (default ${DEFAULT_RECIPE.lr})` },
  "weight-decay": { type: "string", arg: "X", help: `AdamW weight decay (default ${DEFAULT_RECIPE.weightDecay})` },
  clip: { type: "string", arg: "X", help: `global gradient-norm clip (default ${DEFAULT_RECIPE.clipGrad})` },
  "lr-decay-at": {
    type: "string",
    arg: "F",
    help:
      `the LR falls ×${DEFAULT_RECIPE.lrDecayRate} after this fraction of the epochs (default ${DEFAULT_RECIPE.lrDecayAt})`,
  },
  size: { type: "string", arg: "N", help: `model input size in pixels (default ${DEFAULT_RECIPE.imageSize})` },
  seed: { type: "string", arg: "N", help: `random seed (default ${DEFAULT_RECIPE.seed})` },
  device: DEVICE_FLAG,
  "encoder-weights": {
    type: "string",
    arg: "FILE",
    help: "torchvision/timm ResNet-34 .pth or .safetensors (default: random encoder)",
  },
  out: { type: "string", arg: "DIR", help: "checkpoints and logs (default runs/<model>)" },
  resume: {
    type: "boolean",
    default: false,
    help: `continue from OUT/${CHECKPOINT_FILE} (refused when there is none);\n` +
      "a larger --epochs extends the run, the LR decay step recomputed for the new total",
  },
  overwrite: {
    type: "boolean",
    default: false,
    help:
      `start afresh in an OUT that holds an earlier run (its ${CHECKPOINT_FILE} and\n${LOSS_LOG_FILE} are replaced); without it such an OUT is refused`,
  },
  "eval-every": { type: "string", arg: "N", help: "evaluate on the test split every N epochs (default 0: never)" },
  "metric-path": { type: "string", arg: "exact|adeval", help: "metric path of those evaluations (default adeval)" },
  "max-iters": { type: "string", arg: "N", help: "iterations per epoch cap (default 0: whole epoch)" },
  "skip-bad": { type: "boolean", default: false, help: "skip unreadable images with a warning" },
  prefetch: {
    type: "string",
    arg: "N",
    help: `batches decoded ahead of the training step (default ${DEFAULT_RECIPE.prefetch})`,
  },
  "max-megapixels": MAX_MEGAPIXELS_FLAG,
  json: JSON_FLAG,
  help: HELP_FLAG,
} as const satisfies FlagTable;

/** Usage text of `train`, generated from {@linkcode TRAIN_FLAGS}. */
export const TRAIN_USAGE: string = usageText("usage: deno task train -- --data DIR [options]", TRAIN_FLAGS);

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
  const dataRoot = v.data;
  if (!dataRoot) throw new UsageError("train: --data DIR is required");
  if (v.resume && v.overwrite) throw new UsageError("train: --resume and --overwrite exclude each other");
  const log = (m: string) => console.error(m);
  const model = v.model ?? DEFAULT_RECIPE.model;
  const imageSize = intFlag("train", "size", v.size, DEFAULT_RECIPE.imageSize);
  checkModelFlags("train", model, v.variant, imageSize);
  applyMaxMegapixels("train", v["max-megapixels"]);
  const config = usageChecked("train", () =>
    resolveConfig({
      model,
      variant: v.variant,
      modelOverrides: jsonObjectFlag("train", "model-config", v["model-config"]),
      dataset: datasetKind("train", v.dataset),
      dataRoot,
      classes: classList(v.classes),
      epochs: intFlag("train", "epochs", v.epochs, DEFAULT_RECIPE.epochs),
      batchSize: intFlag("train", "batch", v.batch, DEFAULT_RECIPE.batchSize),
      lr: numFlag("train", "lr", v.lr, DEFAULT_RECIPE.lr),
      weightDecay: numFlag("train", "weight-decay", v["weight-decay"], DEFAULT_RECIPE.weightDecay),
      clipGrad: numFlag("train", "clip", v.clip, DEFAULT_RECIPE.clipGrad),
      lrDecayAt: numFlag("train", "lr-decay-at", v["lr-decay-at"], DEFAULT_RECIPE.lrDecayAt),
      imageSize,
      seed: intFlag("train", "seed", v.seed, DEFAULT_RECIPE.seed, 0),
      encoderWeights: v["encoder-weights"],
      outDir: v.out ?? `runs/${model}`,
      evalEvery: intFlag("train", "eval-every", v["eval-every"], 0, 0),
      metricPath: metricPath("train", v["metric-path"]),
      maxItersPerEpoch: intFlag("train", "max-iters", v["max-iters"], 0, 0),
      skipBad: v["skip-bad"],
      prefetch: intFlag("train", "prefetch", v.prefetch, DEFAULT_RECIPE.prefetch, 0),
    }));
  const device = await resolveDevice("train", v.device, log);
  const result = await train({ ...config, device }, {
    resume: v.resume,
    overwrite: v.overwrite,
    quiet: v.json,
    log,
  });
  const record = trainRecord(result);
  const last = result.epochs[result.epochs.length - 1]?.evaluation;
  if (last) Object.assign(record, { evaluation: last.summary });
  result.model.dispose();
  if (v.json) printJson(record);
  else console.log(`trained ${record.model}: ${record.steps} steps, checkpoint ${record.checkpoint}`);
  return record;
}
