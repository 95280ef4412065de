/**
 * The training engine (docs/architecture.md): one model for all classes of a dataset, trained on normal images
 * only with the recipe of docs/paper.md, decision 3. One step: decoded batch (host) → device tensor → frozen encoder
 * (noGrad, eval) → bottleneck → decoder → loss → backward → global-norm clip → AdamW → StepLR, all inside a
 * scope that is released before the next step.
 *
 * Safety: the loss and the gradient norm are read back every step, and a NaN or infinite value stops the run
 * before the optimiser touches the weights ({@linkcode TrainingDivergedError}); a lost WebGPU device stops it
 * the same way. Checkpoints are written atomically at the end of every epoch, so the last good one is always
 * intact, and `resume` continues exactly where it stopped (model, optimiser, schedule, generator; the data
 * order is a function of (seed, epoch)).
 *
 * @module
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Device } from "../../autodiff/backend.ts";
import { getBackend } from "../../autodiff/device.ts";
import { tensor } from "../../autodiff/ops/creation.ts";
import { Generator, globalGenerator, manualSeed } from "../../autodiff/random.ts";
import { type Tensor, tidy } from "../../autodiff/tensor.ts";
import { loadCheckpoint, readCheckpointMeta, saveCheckpoint } from "../../nn/checkpoint.ts";
import type { JsonValue } from "../../nn/optim/optimizer.ts";
import { AdamW } from "../../nn/optim/adamw.ts";
import { clipGradNorm } from "../../nn/optim/clip.ts";
import { decayGroups } from "../../nn/optim/param_groups.ts";
import { TimmStepLR } from "../../nn/optim/schedule.ts";
import type { AnomalyModel } from "../../models/common/anomaly_model.ts";
import { createModel } from "../../models/registry.ts";
import { type AnomalyDataset, formatSummary, openDataset } from "../data/datasets.ts";
import { DataLoader } from "../data/loader.ts";
import { evaluate, type EvaluationResult } from "./evaluate.ts";
import { ProgressBar } from "./progress.ts";
import { DEFAULT_RECIPE, type TrainConfig, validateConfig } from "./recipe.ts";

/** The checkpoint file name inside `outDir`. */
export const CHECKPOINT_FILE = "checkpoint.safetensors";
/** The per-iteration loss log (JSON Lines) inside `outDir`. */
export const LOSS_LOG_FILE = "train_log.jsonl";

/** A NaN or infinite loss or gradient norm: the run stopped before the update; the last checkpoint is intact. */
export class TrainingDivergedError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "TrainingDivergedError";
  }
}

/** One line of the loss log. */
export interface IterationRecord {
  /** Epoch (0-based). */
  epoch: number;
  /** Iteration within the epoch (0-based). */
  iter: number;
  /** Optimiser steps done after this one. */
  step: number;
  /** The loss of this iteration's batch (before the update). */
  loss: number;
  /** The learning rate used for the update. */
  lr: number;
  /** The global gradient L2 norm before clipping. */
  grad_norm: number;
}

/** Per-epoch summary. */
export interface EpochRecord {
  /** Epoch (0-based). */
  epoch: number;
  /** Mean loss over the epoch's iterations. */
  meanLoss: number;
  /** Training throughput, images per second (decode overlapped). */
  imagesPerS: number;
  /** Seconds the epoch took. */
  seconds: number;
  /** Evaluation after this epoch, when `evalEvery` asked for one. */
  evaluation?: EvaluationResult;
}

/** What {@linkcode train} returns. */
export interface TrainResult {
  /** The trained model (in eval mode). */
  model: AnomalyModel;
  /** The dataset it was trained on (the test split is what `evaluate` uses). */
  dataset: AnomalyDataset;
  /** The full config of the run. */
  config: TrainConfig;
  /** The epochs run in this call (a resumed run starts after the checkpoint's epoch). */
  epochs: EpochRecord[];
  /** Optimiser steps in all (including those before a resume). */
  steps: number;
  /** Path of the final checkpoint. */
  checkpoint: string;
  /** Images skipped as unreadable (with `skipBad`). */
  skipped: string[];
}

/** Callbacks; all optional. */
export interface TrainHooks {
  /** Status lines (default: stderr). */
  log?: (msg: string) => void;
  /** After every iteration. */
  onIteration?: (r: IterationRecord, model: AnomalyModel) => void;
  /** After every epoch (and its checkpoint). */
  onEpoch?: (r: EpochRecord, model: AnomalyModel) => void;
  /** No progress bar (e.g. under `--json`). */
  quiet?: boolean;
  /**
   * Continue from `outDir`'s checkpoint; refused ({@linkcode OutDirError}) when there is none. A larger
   * `config.epochs` than the checkpoint's run extends it (see {@linkcode train}).
   */
  resume?: boolean;
  /** Start afresh even though `outDir` holds an earlier run (its checkpoint and loss log are replaced). */
  overwrite?: boolean;
}

/** An output folder that would lose an earlier run, or a resume with nothing to resume: nothing was written. */
export class OutDirError extends Error {
  /** Creates the error; the message names the folder and the files involved. */
  constructor(message: string) {
    super(message);
    this.name = "OutDirError";
  }
}

/**
 * What {@linkcode train} checks before it writes anything into `outDir`: without `resume` or `overwrite`, a
 * folder holding an earlier run (its checkpoint or its loss log) is refused, naming those files; with `resume`,
 * a folder without a checkpoint is refused. Throws {@linkcode OutDirError}; returns the files of an earlier run
 * (empty when there is none).
 */
export function checkOutDir(outDir: string, opts: { resume?: boolean; overwrite?: boolean } = {}): string[] {
  const ckpt = join(outDir, CHECKPOINT_FILE);
  const earlier = [ckpt, join(outDir, LOSS_LOG_FILE)].filter((p) => existsSync(p));
  if (opts.resume && opts.overwrite) throw new OutDirError("train: resume and overwrite exclude each other");
  if (opts.resume && !existsSync(ckpt)) {
    throw new OutDirError(
      `train --resume: there is no checkpoint to resume from: ${ckpt} does not exist` +
        (earlier.length
          ? ` (only ${earlier.join(", ")}); use --overwrite to start afresh`
          : "; drop --resume to start a new run"),
    );
  }
  if (!opts.resume && !opts.overwrite && earlier.length > 0) {
    throw new OutDirError(
      `train: ${outDir} holds an earlier run (${earlier.join(", ")}); --resume continues it, --overwrite replaces ` +
        `it, or choose another --out`,
    );
  }
  return earlier;
}

/**
 * The config fields that must agree between a checkpoint and a resumed run (`epochs` may grow: a resume with more
 * epochs extends the run).
 */
const RESUME_KEYS = [
  "model",
  "variant",
  "imageSize",
  "dataset",
  "batchSize",
  "seed",
  "modelOverrides",
] as const;

/** The full config: the recipe's defaults under `partial`. */
export function resolveConfig(
  partial: Partial<TrainConfig> & Pick<TrainConfig, "dataset" | "dataRoot" | "outDir">,
): TrainConfig {
  const device: Device = partial.device ?? "cpu";
  const c = { ...DEFAULT_RECIPE, ...partial, device } as TrainConfig;
  validateConfig(c);
  return c;
}

/**
 * The StepLR decay step of ADER: int(lrDecayAt · epochs) · itersPerEpoch. When that is 0 (runs shorter than
 * 1/(1 − lrDecayAt) epochs, where timm would divide by zero) the decay happens after lrDecayAt of all iterations.
 */
export function decayStep(c: TrainConfig, itersPerEpoch: number): number {
  return Math.floor(c.lrDecayAt * c.epochs) * itersPerEpoch ||
    Math.max(1, Math.floor(c.lrDecayAt * c.epochs * itersPerEpoch));
}

/** Builds a model for `c` (seeded), with the encoder weights if given. */
export async function buildModel(c: TrainConfig): Promise<AnomalyModel> {
  manualSeed(c.seed);
  const model = await createModel(c.model, { ...c.modelOverrides, imageSize: c.imageSize }, {
    variant: c.variant,
    device: c.device,
  });
  if (c.encoderWeights) await model.loadEncoderWeights(c.encoderWeights);
  return model;
}

/** Drops log lines past `step` (the iterations of an epoch that a crash interrupted and a resume redoes). */
async function truncateLog(path: string, step: number): Promise<void> {
  if (!existsSync(path)) return;
  const kept = (await Deno.readTextFile(path)).split("\n").filter((line) => {
    if (!line.trim()) return false;
    try {
      return (JSON.parse(line) as IterationRecord).step <= step;
    } catch {
      return false; // a line torn by the crash
    }
  });
  await Deno.writeTextFile(path, kept.map((l) => l + "\n").join(""));
}

/** The loss and gradient norm of one step. */
export interface StepResult {
  /** The batch's loss before the update. */
  loss: number;
  /** Global gradient L2 norm before clipping. */
  gradNorm: number;
}

/**
 * One optimisation step on a batch of normalised images: loss (read back and checked), backward, global-norm
 * clip, AdamW step; every intermediate is released. A NaN or infinite loss or gradient norm throws
 * {@linkcode TrainingDivergedError} before the weights change; a lost WebGPU device is reported with the last
 * good checkpoint. `where` and `checkpoint` only go into those messages.
 */
export async function trainStep(
  model: AnomalyModel,
  opt: AdamW,
  images: Tensor,
  clipGrad: number,
  where = "this step",
  checkpoint: string | null = null,
): Promise<StepResult> {
  const last = `The last good checkpoint is ${checkpoint ?? "(none yet)"}`;
  try {
    const loss = tidy(() => model.loss(model.forward(images)));
    try {
      const value = await loss.item();
      if (!Number.isFinite(value)) {
        throw new TrainingDivergedError(
          `train: the loss is ${value} at ${where}; stopped before the update. ${last}; try a lower --lr`,
        );
      }
      loss.backward();
      const trainable = model.parameters().filter((p) => p.requiresGrad);
      const norm = clipGradNorm(trainable, clipGrad);
      const gradNorm = await norm.item();
      norm.dispose();
      if (!Number.isFinite(gradNorm)) {
        opt.zeroGrad();
        throw new TrainingDivergedError(
          `train: the gradient norm is ${gradNorm} at ${where}; stopped before the update. ${last}`,
        );
      }
      opt.step();
      opt.zeroGrad();
      return { loss: value, gradNorm };
    } finally {
      loss.dispose();
    }
  } catch (e) {
    if (images.backend.isDeviceLost(e)) {
      throw new Error(`train: ${(e as Error).message} at ${where}. ${last}; rerun with --resume`, { cause: e });
    }
    throw e;
  }
}

/**
 * Trains `config.model` on the normal training images of every class of the dataset (multi-class), writing
 * `checkpoint.safetensors` (atomic) after every epoch and `train_log.jsonl` (one {@linkcode IterationRecord}
 * per line) into `config.outDir`.
 */
export async function train(config: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  validateConfig(config);
  const log = hooks.log ?? ((m: string) => console.error(m));
  // before anything is written: an earlier run is never replaced silently, a resume needs a checkpoint
  const earlier = checkOutDir(config.outDir, hooks);
  const ckptPath = join(config.outDir, CHECKPOINT_FILE);
  const logPath = join(config.outDir, LOSS_LOG_FILE);

  const dataset = await openDataset(config.dataset, config.dataRoot, { classes: config.classes });
  // made once the dataset is known to be there: a run refused for its data leaves no empty folder behind
  await Deno.mkdir(config.outDir, { recursive: true });
  // a lost GPU stops the run with a clear message instead of a hang (the last checkpoint stays intact)
  getBackend(config.device).watchDeviceLoss();
  const model = await buildModel(config);
  const loader = new DataLoader(dataset.train, {
    batchSize: config.batchSize,
    imageSize: config.imageSize,
    shuffle: true,
    dropLast: true,
    seed: config.seed,
    prefetch: config.prefetch,
    withMasks: false,
    skipBad: config.skipBad,
  });
  if (loader.length === 0) {
    throw new Error(
      `train: ${dataset.train.length} training images in ${config.dataRoot} make no full batch of ${config.batchSize}`,
    );
  }
  const itersPerEpoch = config.maxItersPerEpoch > 0 ? Math.min(loader.length, config.maxItersPerEpoch) : loader.length;
  const opt = new AdamW(decayGroups(model.namedParameters(), config.weightDecay), {
    lr: config.lr,
    betas: config.betas,
    eps: 1e-8,
  });
  const schedule = new TimmStepLR(opt, { decayT: decayStep(config, itersPerEpoch), decayRate: config.lrDecayRate });

  let startEpoch = 0, step = 0;
  // the last good checkpoint named in error messages; known here, so the step loop does no file-system call
  let lastGood: string | null = hooks.resume ? ckptPath : null;
  if (lastGood) {
    // the run must be the same run: check the stored config before loading anything
    const saved = ((await readCheckpointMeta(ckptPath)).config ?? {}) as Record<string, JsonValue>;
    for (const k of RESUME_KEYS) {
      const want = JSON.stringify(config[k] ?? null), got = JSON.stringify(saved[k] ?? null);
      if (want !== got) {
        throw new Error(`train --resume: ${ckptPath} was written with ${k} = ${got}, this run has ${want}`);
      }
    }
    const savedEpochs = Number(saved.epochs);
    const { epoch: done } = await readCheckpointMeta(ckptPath);
    if (config.epochs < done) {
      throw new Error(
        `train --resume: ${ckptPath} has ${done} epochs done, more than --epochs ${config.epochs}; ` +
          `give --epochs ${done} or more to continue it (its run was for ${savedEpochs} epochs)`,
      );
    }
    const meta = await loadCheckpoint(ckptPath, { model, optimizer: opt, schedule, generator: globalGenerator });
    startEpoch = meta.epoch;
    step = meta.step;
    await truncateLog(logPath, step);
    log(`resumed from ${ckptPath}: ${startEpoch} epochs and ${step} steps done`);
    if (config.epochs !== savedEpochs) {
      // the stored schedule decays at lrDecayAt of the old total: recompute it for the new total
      const sd = schedule.stateDict();
      const oldT = sd.options.decayT as number, newT = decayStep(config, itersPerEpoch);
      schedule.loadStateDict({ ...sd, options: { ...sd.options, decayT: newT } });
      log(
        `train --resume: the run was for ${savedEpochs} epochs and is now for ${config.epochs}; the LR decay ` +
          `(×${config.lrDecayRate} at ${config.lrDecayAt} of the epochs) is recomputed for the new total: step ` +
          `${newT} instead of ${oldT}, so the LR from step ${step + 1} on is ${opt.paramGroups[0].lr}`,
      );
    }
  } else {
    if (earlier.length) log(`train --overwrite: replacing the earlier run (${earlier.join(", ")})`);
    await Deno.writeTextFile(logPath, "");
  }
  log(formatSummary(dataset));
  log(
    `training ${config.model}${config.variant ? ` (${config.variant})` : ""} on ${dataset.kind} ${
      dataset.classes.join(",")
    }: ${dataset.train.length} images, ${itersPerEpoch} iterations × ${config.epochs} epochs, batch ${config.batchSize}, ${config.imageSize}px, ${config.device}` +
      (config.encoderWeights ? `, encoder ${config.encoderWeights}` : ", RANDOM encoder (no --encoder-weights)"),
  );

  const s = config.imageSize, b = config.batchSize;
  const epochs: EpochRecord[] = [];
  for (let epoch = startEpoch; epoch < config.epochs; epoch++) {
    model.train();
    const bar = new ProgressBar(itersPerEpoch, {
      label: `epoch ${epoch + 1}/${config.epochs}`,
      unit: "img",
      itemsPerStep: b,
      quiet: hooks.quiet,
    });
    const t0 = performance.now();
    let sum = 0, iter = 0;
    for await (const batch of loader.epoch(epoch)) {
      if (iter >= itersPerEpoch) break;
      const lr = opt.paramGroups[0].lr;
      const x = tensor(batch.images, { shape: [batch.samples.length, 3, s, s], device: config.device });
      try {
        const where = `epoch ${epoch + 1}, iteration ${iter + 1} (step ${step + 1})`;
        const r = await trainStep(model, opt, x, config.clipGrad, where, lastGood);
        schedule.step();
        step++;
        sum += r.loss;
        const rec: IterationRecord = { epoch, iter, step, loss: r.loss, lr, grad_norm: r.gradNorm };
        // appended as it happens, so a crashed run's log shows where it stopped (a resume trims the redone part)
        Deno.writeTextFileSync(logPath, JSON.stringify(rec) + "\n", { append: true });
        hooks.onIteration?.(rec, model);
        bar.tick({ loss: r.loss });
      } finally {
        x.dispose();
      }
      iter++;
    }
    const seconds = (performance.now() - t0) / 1000;
    const record: EpochRecord = { epoch, meanLoss: sum / Math.max(1, iter), imagesPerS: (iter * b) / seconds, seconds };
    await saveCheckpoint(ckptPath, { model, optimizer: opt, schedule, generator: globalGenerator }, {
      epoch: epoch + 1,
      step,
      config: configJson(config),
      extra: { meanLoss: record.meanLoss },
    });
    lastGood = ckptPath;
    if (config.evalEvery > 0 && ((epoch + 1) % config.evalEvery === 0 || epoch + 1 === config.epochs)) {
      record.evaluation = await evaluate(model, dataset, {
        metricPath: config.metricPath,
        batchSize: b,
        skipBad: config.skipBad,
        quiet: hooks.quiet,
      });
      await Deno.writeTextFile(
        join(config.outDir, `eval_epoch_${epoch + 1}.json`),
        JSON.stringify(record.evaluation.summary, null, 1),
      );
    }
    epochs.push(record);
    log(
      `epoch ${epoch + 1}/${config.epochs}: mean loss ${record.meanLoss.toPrecision(5)}, ${
        record.imagesPerS.toFixed(2)
      } img/s, checkpoint ${ckptPath}`,
    );
    hooks.onEpoch?.(record, model);
  }
  model.eval();
  return { model, dataset, config, epochs, steps: step, checkpoint: ckptPath, skipped: loader.skipped };
}

/** The config as stored in checkpoints (JSON; `undefined` fields dropped). */
export function configJson(c: TrainConfig): JsonValue {
  return JSON.parse(JSON.stringify(c)) as JsonValue;
}

/**
 * Rebuilds the model a checkpoint was trained as (from the config stored in it) and loads its weights, for
 * `eval` and `infer`. `device` overrides the stored device.
 */
export async function loadTrainedModel(
  path: string,
  device?: Device,
): Promise<{ model: AnomalyModel; config: TrainConfig; epoch: number }> {
  if (!existsSync(path)) throw new Error(`no checkpoint at ${path}`);
  // the architecture depends on the stored config: read it from the header before building the model
  const header = await readCheckpointMeta(path) as unknown as { config?: TrainConfig; epoch: number };
  if (!header.config?.model) throw new Error(`${path}: the checkpoint does not record its model config`);
  // the encoder's weights are in the checkpoint: `encoderWeights` only records where they came from
  const config: TrainConfig = { ...header.config, device: device ?? header.config.device };
  manualSeed(config.seed);
  const model = await createModel(config.model, { ...config.modelOverrides, imageSize: config.imageSize }, {
    variant: config.variant,
    device: config.device,
  });
  await loadCheckpoint(path, { model, generator: new Generator(0) }); // leave the global generator alone
  model.eval();
  return { model, config, epoch: header.epoch };
}
