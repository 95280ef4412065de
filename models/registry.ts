/**
 * The model zoo by name, built from one table: {@linkcode MODELS} maps each name to its presets, its default
 * preset and its factory. `createModel("mambaad" | "wave_mambaad", config)` builds an {@linkcode AnomalyModel}
 * (docs/architecture.md, "Adding a model"); {@linkcode paramCounts} gives the paper-style parameter count used by
 * `deno task info`.
 *
 * @module
 */

import type { Device } from "../autodiff/backend.ts";
import type { ModelFactoryOptions } from "./common/ad_model.ts";
import type { AnomalyModel } from "./common/anomaly_model.ts";
import { MAMBAAD_PRESETS } from "./mambaad/config.ts";
import { createMambaAD } from "./mambaad/model.ts";
import { WAVE_PRESETS } from "./wave_mambaad/config.ts";
import { createWaveMambaAD } from "./wave_mambaad/model.ts";

export { type ParamCounts, paramCounts } from "./common/ad_model.ts";

/** One row of {@linkcode MODELS}: everything the registry, the engine and the CLI need to know about a model. */
export interface ModelEntry {
  /** Named configurations (presets) of the model; each is a partial config of the model's factory. */
  readonly presets: Readonly<Record<string, unknown>>;
  /** The preset built when none is asked for (the official configuration). */
  readonly defaultVariant: string;
  /** The image sizes the model accepts are the multiples of this (checked by the CLI's `--size`). */
  readonly imageSizeMultiple: number;
  /** The model's factory: a preset name, and the device and config fields to apply on top. */
  readonly create: (preset: string, opts: FactoryOptions) => AnomalyModel;
}

/** The options the registry passes to a factory: the device, and config fields as plain JSON-like values. */
export type FactoryOptions = ModelFactoryOptions<Record<string, unknown>>;

/** The registered models; adding a row is all it takes to add a model to the registry, the engine and the CLI. */
export const MODELS = {
  mambaad: {
    presets: MAMBAAD_PRESETS,
    defaultVariant: "mambaad",
    imageSizeMultiple: 32,
    create: (preset: string, opts: FactoryOptions): AnomalyModel => createMambaAD(preset, opts),
  },
  wave_mambaad: {
    presets: WAVE_PRESETS,
    defaultVariant: "official",
    imageSizeMultiple: 64,
    create: (preset: string, opts: FactoryOptions): AnomalyModel =>
      createWaveMambaAD(preset as keyof typeof WAVE_PRESETS, opts),
  },
} as const satisfies Record<string, ModelEntry>;

/** The registered model names. */
export type ModelName = keyof typeof MODELS;

/** The names {@linkcode createModel} accepts. */
export function modelNames(): ModelName[] {
  return Object.keys(MODELS) as ModelName[];
}

/** The variants (presets) of a model; the first is the default. */
export function variantNames(name: ModelName): string[] {
  const { presets, defaultVariant } = MODELS[name] as ModelEntry;
  return [defaultVariant, ...Object.keys(presets).filter((v) => v !== defaultVariant)];
}

function checkName(name: string): ModelName {
  if (!Object.hasOwn(MODELS, name)) {
    throw new Error(`createModel: unknown model "${name}" (known models: ${modelNames().join(", ")})`);
  }
  return name as ModelName;
}

/** Options of {@linkcode createModel}. */
export interface CreateModelOptions {
  /** A preset of the model (see {@linkcode variantNames}; default: the official configuration). */
  variant?: string;
  /** Device of the parameters (default: the current default device). */
  device?: Device;
  /** ResNet-34 weights (`.pth` or `.safetensors`) to load into the frozen encoder (default: none, random init). */
  encoderWeights?: string;
}

/**
 * Builds the model `name` from its preset `opts.variant` with `config` fields applied on top (the fields of
 * `MambaADConfig` or `WaveMambaADConfig`), and loads `opts.encoderWeights` when given. Throws for an unknown name or
 * variant, listing the known ones.
 */
export async function createModel(
  name: string,
  config: Record<string, unknown> = {},
  opts: CreateModelOptions = {},
): Promise<AnomalyModel> {
  const model = checkName(name);
  const variant = opts.variant ?? MODELS[model].defaultVariant;
  const known = variantNames(model);
  if (!known.includes(variant)) {
    throw new Error(`createModel: unknown variant "${variant}" of ${model} (known variants: ${known.join(", ")})`);
  }
  const m = (MODELS[model] as ModelEntry).create(variant, { device: opts.device, overrides: config });
  if (opts.encoderWeights) {
    try {
      await m.loadEncoderWeights(opts.encoderWeights);
    } catch (e) {
      m.dispose();
      throw e;
    }
  }
  return m;
}
