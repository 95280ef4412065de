/**
 * The model zoo by name: `createModel("mambaad" | "wave_mambaad", config)` builds an {@linkcode AnomalyModel}
 * (docs/architecture.md, "Adding a model"), plus the paper-style parameter count used by `deno task info`.
 *
 * @module
 */

import type { Device } from "../autodiff/backend.ts";
import type { Module } from "../nn/module.ts";
import type { AnomalyModel } from "./common/anomaly_model.ts";
import { MAMBAAD_PRESETS, type MambaADConfig } from "./mambaad/config.ts";
import { createMambaAD } from "./mambaad/model.ts";
import { WAVE_PRESETS, type WaveMambaADConfig, type WavePresetName } from "./wave_mambaad/config.ts";
import { createWaveMambaAD } from "./wave_mambaad/model.ts";

/** The registered model names. */
export type ModelName = "mambaad" | "wave_mambaad";

const MODELS: readonly ModelName[] = ["mambaad", "wave_mambaad"];

/** Default variant (preset) of each model. */
const DEFAULT_VARIANT: Record<ModelName, string> = { mambaad: "mambaad", wave_mambaad: "official" };

/** The names {@linkcode createModel} accepts. */
export function modelNames(): ModelName[] {
  return [...MODELS];
}

/** The variants (presets) of a model; the first is the default. */
export function variantNames(name: ModelName): string[] {
  const all = Object.keys(name === "mambaad" ? MAMBAAD_PRESETS : WAVE_PRESETS);
  const d = DEFAULT_VARIANT[name];
  return [d, ...all.filter((v) => v !== d)];
}

function checkName(name: string): ModelName {
  if (!(MODELS as readonly string[]).includes(name)) {
    throw new Error(`createModel: unknown model "${name}" (known models: ${MODELS.join(", ")})`);
  }
  return name as ModelName;
}

/** Options of {@linkcode createModel}. */
export interface CreateModelOptions {
  /** A preset of the model (see {@linkcode variantNames}; default: the official configuration). */
  variant?: string;
  /** Device of the parameters (default: the current default device). */
  device?: Device;
}

/**
 * Builds the model `name` from its preset `opts.variant` with `config` fields applied on top (the fields of
 * `MambaADConfig` or `WaveMambaADConfig`). Throws for an unknown name or variant, listing the known ones.
 */
export async function createModel(
  name: string,
  config: Record<string, unknown> = {},
  opts: CreateModelOptions = {},
): Promise<AnomalyModel> {
  const model = checkName(name);
  const variant = opts.variant ?? DEFAULT_VARIANT[model];
  const known = variantNames(model);
  if (!known.includes(variant)) {
    throw new Error(`createModel: unknown variant "${variant}" of ${model} (known variants: ${known.join(", ")})`);
  }
  if (model === "mambaad") {
    return await createMambaAD({ ...MAMBAAD_PRESETS[variant], ...(config as MambaADConfig) }, opts.device);
  }
  return createWaveMambaAD(variant as WavePresetName, {
    device: opts.device,
    overrides: config as Partial<WaveMambaADConfig>,
  });
}

/** Parameter counts of a model. */
export interface ParamCounts {
  /** Every parameter (the frozen encoder included). */
  total: number;
  /** Parameters with requiresGrad. */
  trainable: number;
  /** The scan-index tables (`index_flat`, `index_flat_inv`), which the official code registers as parameters. */
  scanIndex: number;
  /**
   * The paper's / fvcore's count (docs/paper.md, decision 2): all parameters, frozen encoder and unused conv
   * included, plus the scan-index tables; BatchNorm running statistics excluded.
   */
  paperCount: number;
}

/** Counts the parameters of `model` as {@linkcode ParamCounts} describes. */
export function paramCounts(model: Module): ParamCounts {
  let total = 0, trainable = 0, scanIndex = 0;
  for (const [, p] of model.namedParameters()) {
    total += p.size;
    if (p.requiresGrad) trainable += p.size;
  }
  for (const [k, b] of model.namedBuffers()) {
    if (/(^|\.)index_flat(_inv)?$/.test(k)) scanIndex += b.size;
  }
  return { total, trainable, scanIndex, paperCount: total + scanIndex };
}
