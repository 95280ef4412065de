/**
 * Training checkpoints: one safetensors file holding the model's state dict (`model.<key>`), the optimiser's
 * state tensors (`optimizer.<param index>.<name>`), and a JSON header entry (`__metadata__.checkpoint`) with
 * the epoch, step, run config, optimiser groups and scalar state, LR schedule, generator state and any
 * data-order state. Written atomically (temp file + rename), so an interrupted save never leaves a broken
 * file; {@linkcode loadCheckpoint} restores everything so a resumed run continues exactly where the
 * interrupted one stopped.
 *
 * @module
 */

import { type Generator, globalGenerator } from "../autodiff/random.ts";
import type { Tensor } from "../autodiff/tensor.ts";
import { toTensors } from "./io/common.ts";
import { sniffWeightsFormat, WeightsFileError } from "./io/common.ts";
import { loadSafetensors, saveSafetensors } from "./io/safetensors.ts";
import type { Module } from "./module.ts";
import type { JsonValue, Optimizer, OptimizerStateDict, ParamState } from "./optim/optimizer.ts";
import type { LRSchedule, LRScheduleStateDict } from "./optim/schedule.ts";

const FORMAT = "wavemamba-checkpoint/1";

/** What a checkpoint holds besides tensors. */
export interface CheckpointMeta {
  /** Completed epochs. */
  epoch: number;
  /** Completed optimiser steps. */
  step: number;
  /** The run's configuration (JSON). */
  config?: JsonValue;
  /** Data-order state (e.g. the sampler's permutation and position), JSON. */
  dataState?: JsonValue;
  /** Anything else worth keeping (JSON). */
  extra?: JsonValue;
}

/** The objects a checkpoint saves and restores. */
export interface CheckpointTargets {
  /** The model (parameters and buffers). */
  model: Module;
  /** Its optimiser, if training. */
  optimizer?: Optimizer;
  /** Its LR schedule. */
  schedule?: LRSchedule;
  /** The generator whose state is saved (default: the global one used by rand/randn and shuffling). */
  generator?: Generator;
}

interface Header extends CheckpointMeta {
  format: string;
  optimizer?: { paramGroups: OptimizerStateDict["paramGroups"]; scalars: Record<string, Record<string, number>> };
  schedule?: LRScheduleStateDict;
  generator: ReturnType<Generator["getState"]>;
}

/** The checkpoint entry of a safetensors `__metadata__` map, parsed and checked; `path` names the file in errors. */
function parseHeader(path: string, raw: string | undefined): Header {
  if (!raw) {
    throw new WeightsFileError(
      path,
      "not a training checkpoint (no __metadata__.checkpoint entry); expected a checkpoint written by train",
    );
  }
  let header: Header;
  try {
    header = JSON.parse(raw);
  } catch (e) {
    throw new WeightsFileError(path, `corrupt checkpoint header (${(e as Error).message})`);
  }
  if (header.format !== FORMAT) {
    throw new WeightsFileError(path, `unsupported checkpoint format "${header.format}" (expected "${FORMAT}")`);
  }
  return header;
}

/** How many keys of each kind a mismatch message lists. */
const SHOW_KEYS = 5;

/** `n` items, the first {@linkcode SHOW_KEYS} of them named. */
function someKeys(kind: string, keys: string[]): string {
  const shown = keys.slice(0, SHOW_KEYS).join(", ");
  return `${keys.length} ${kind} (${shown}${keys.length > SHOW_KEYS ? `, … ${keys.length - SHOW_KEYS} more` : ""})`;
}

/**
 * Refuses a checkpoint whose model tensors do not fit `module` before anything is loaded, in a few lines: the
 * file, the model the checkpoint was written for (from its stored config), the module it was loaded into, and
 * counts of the missing, unexpected and mis-shaped keys with the first few of each.
 */
function checkStateKeys(path: string, header: Header, module: Module, given: Map<string, Tensor>): void {
  const own = module.stateDict();
  const missing = [...own.keys()].filter((k) => !given.has(k));
  const unexpected = [...given.keys()].filter((k) => !own.has(k));
  const misShaped = [...own].filter(([k, t]) => given.has(k) && given.get(k)!.shape.join() !== t.shape.join())
    .map(([k, t]) => `${k}: [${given.get(k)!.shape}] in the file, [${t.shape}] in the model`);
  if (!missing.length && !unexpected.length && !misShaped.length) return;
  const c = (header.config ?? {}) as Record<string, JsonValue>;
  const written = c.model
    ? `${c.model}${c.variant ? ` (${c.variant})` : ""}${c.imageSize ? ` at ${c.imageSize} px` : ""}` +
      (c.modelOverrides ? ` with ${JSON.stringify(c.modelOverrides)}` : "")
    : "a model it does not name";
  const parts = [];
  if (missing.length) parts.push(someKeys("keys of the model missing from the file", missing));
  if (unexpected.length) parts.push(someKeys("keys of the file the model lacks", unexpected));
  if (misShaped.length) parts.push(someKeys("shape mismatches", misShaped));
  throw new WeightsFileError(
    path,
    `the checkpoint was written for ${written} and does not fit this ${module.constructor.name}: ${parts.join("; ")}`,
  );
}

/** Saves model, optimiser, schedule, generator and `meta` to `path` atomically. */
export async function saveCheckpoint(path: string, targets: CheckpointTargets, meta: CheckpointMeta): Promise<void> {
  const tensors = new Map<string, Tensor>();
  for (const [k, t] of targets.model.stateDict()) tensors.set(`model.${k}`, t);
  let optimizer: Header["optimizer"];
  if (targets.optimizer) {
    const sd = targets.optimizer.stateDict();
    const scalars: Record<string, Record<string, number>> = {};
    for (const [idx, st] of Object.entries(sd.state)) {
      for (const [name, v] of Object.entries(st)) {
        if (typeof v === "number") (scalars[idx] ??= {})[name] = v;
        else tensors.set(`optimizer.${idx}.${name}`, v);
      }
    }
    optimizer = { paramGroups: sd.paramGroups, scalars };
  }
  const header: Header = {
    format: FORMAT,
    ...meta,
    optimizer,
    schedule: targets.schedule?.stateDict(),
    generator: (targets.generator ?? globalGenerator).getState(),
  };
  await saveSafetensors(path, tensors, { metadata: { checkpoint: JSON.stringify(header) } });
}

/**
 * Restores a checkpoint written by {@linkcode saveCheckpoint} into `targets` (the model strictly; optimiser,
 * schedule and generator when given) and returns its metadata.
 */
export async function loadCheckpoint(path: string, targets: CheckpointTargets): Promise<CheckpointMeta> {
  const { tensors, metadata } = await loadSafetensors(path);
  const header = parseHeader(path, metadata?.checkpoint);
  const device = targets.model.parameters()[0]?.device;
  const model = new Map<string, Tensor>();
  const optimizerTensors = new Map<string, Tensor>();
  const all = toTensors(tensors, { device });
  try {
    for (const [k, t] of all) {
      if (k.startsWith("model.")) model.set(k.slice(6), t);
      else if (k.startsWith("optimizer.")) optimizerTensors.set(k.slice(10), t);
      else throw new WeightsFileError(path, `unexpected tensor "${k}"`);
    }
    checkStateKeys(path, header, targets.model, model);
    await targets.model.loadStateDict(model);
    if (targets.optimizer) {
      if (!header.optimizer) throw new WeightsFileError(path, "the checkpoint holds no optimizer state");
      const state: Record<number, ParamState> = {};
      for (const [idx, scalars] of Object.entries(header.optimizer.scalars)) state[Number(idx)] = { ...scalars };
      for (const [key, t] of optimizerTensors) {
        const dot = key.indexOf(".");
        const idx = Number(key.slice(0, dot));
        (state[idx] ??= {})[key.slice(dot + 1)] = t;
      }
      targets.optimizer.loadStateDict({ state, paramGroups: header.optimizer.paramGroups });
    }
    if (targets.schedule) {
      if (!header.schedule) throw new WeightsFileError(path, "the checkpoint holds no LR schedule state");
      targets.schedule.loadStateDict(header.schedule);
    }
    (targets.generator ?? globalGenerator).setState(header.generator);
  } finally {
    // the model and optimiser took their own references
    for (const t of all.values()) t.dispose();
  }
  const { epoch, step, config, dataState, extra } = header;
  return { epoch, step, config, dataState, extra };
}

/**
 * The metadata of a checkpoint written by {@linkcode saveCheckpoint} (epoch, step, config, …) read from its
 * header alone, without loading any tensor: what a caller needs to rebuild the model before loading it.
 */
export async function readCheckpointMeta(path: string): Promise<CheckpointMeta> {
  let file: Deno.FsFile;
  try {
    if ((await Deno.stat(path)).isDirectory) {
      throw new WeightsFileError(
        path,
        "is a folder; expected a checkpoint file written by train (OUT/checkpoint.safetensors)",
      );
    }
    file = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof WeightsFileError) throw e;
    if (e instanceof Deno.errors.NotFound) {
      throw new WeightsFileError(path, "no such file; expected a checkpoint written by train");
    }
    throw new WeightsFileError(path, `cannot open the checkpoint (${(e as Error).message})`);
  }
  try {
    const readExactly = async (n: number): Promise<Uint8Array> => {
      const buf = new Uint8Array(n);
      let got = 0;
      while (got < n) {
        const r = await file.read(buf.subarray(got));
        if (r === null) throw new WeightsFileError(path, `truncated: expected ${n} header bytes, got ${got}`);
        got += r;
      }
      return buf;
    };
    const size0 = (await file.stat()).size;
    if (size0 < 8) {
      throw new WeightsFileError(
        path,
        `the file is ${size0} bytes; expected a checkpoint written by train (a safetensors file)`,
      );
    }
    const lenBytes = await readExactly(8);
    if (sniffWeightsFormat(lenBytes) === "pth") {
      throw new WeightsFileError(
        path,
        "is a PyTorch .pth file; expected a checkpoint written by train (a .safetensors file with the run's " +
          "config). ResNet-34 .pth weights go to train's --encoder-weights",
      );
    }
    const dv = new DataView(lenBytes.buffer);
    const headerLen = dv.getUint32(4, true) * 2 ** 32 + dv.getUint32(0, true);
    const size = (await file.stat()).size;
    if (headerLen < 2 || headerLen > size - 8 || headerLen > 100_000_000) {
      throw new WeightsFileError(
        path,
        `not a checkpoint written by train: the first 8 bytes are no safetensors header length (${headerLen} ` +
          `for a file of ${size} bytes); truncated, or another kind of file?`,
      );
    }
    let header: { __metadata__?: { checkpoint?: string } };
    try {
      header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(await readExactly(headerLen)));
    } catch (e) {
      if (e instanceof WeightsFileError) throw e;
      throw new WeightsFileError(path, `the header is not valid JSON (${(e as Error).message})`);
    }
    const { epoch, step, config, dataState, extra } = parseHeader(path, header.__metadata__?.checkpoint);
    return { epoch, step, config, dataState, extra };
  } finally {
    file.close();
  }
}
