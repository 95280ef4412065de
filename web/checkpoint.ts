/**
 * A trained model from the bytes of a checkpoint written by `deno task train` (a file the user picked in the page,
 * or the built-in one), the way `loadTrainedModel` rebuilds it from a path: the run's config from the header,
 * `manualSeed(config.seed)`, `createModel`, the weights, eval mode. Runs in the browser and in Deno.
 *
 * A checkpoint whose header says `extra.encoder = "seeded"` (the built-in one, tools/gen_playground_checkpoint.ts)
 * may leave out the frozen random encoder: the seeded `createModel` rebuilds it bit for bit.
 *
 * @module
 */

import type { Device } from "../autodiff/backend.ts";
import { manualSeed } from "../autodiff/random.ts";
import type { Tensor } from "../autodiff/tensor.ts";
import { toTensors, WeightsFileError } from "../nn/io/common.ts";
import { parseSafetensors } from "../nn/io/safetensors_format.ts";
import type { AnomalyModel } from "../models/common/anomaly_model.ts";
import { createModel, modelNames } from "../models/registry.ts";

const FORMAT = "wavemamba-checkpoint/1";
const EXPECTED = "expected a checkpoint written by `deno task train` (OUT/checkpoint.safetensors)";

/** What the panel shows about a loaded checkpoint. */
export interface LoadedCheckpoint {
  /** The model, in eval mode, on the device asked for. */
  model: AnomalyModel;
  /** Model name, variant and image size, e.g. "wave_mambaad (official) at 64 px". */
  description: string;
  /** Completed epochs. */
  epoch: number;
  /** Whether the frozen encoder was rebuilt from the seed instead of read from the file. */
  seededEncoder: boolean;
}

interface TrainHeader {
  format?: string;
  epoch?: number;
  config?: {
    model?: string;
    variant?: string;
    imageSize?: number;
    seed?: number;
    modelOverrides?: Record<string, unknown>;
  };
  extra?: { encoder?: string };
}

/**
 * Builds the model a checkpoint was trained as and loads its weights. `name` (the file name) appears in every
 * error, and each error says what was expected: a safetensors file, written by train, for a known model.
 */
export async function loadCheckpointBytes(bytes: Uint8Array, name: string, device: Device): Promise<LoadedCheckpoint> {
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 3 && bytes[3] === 4) {
    throw new WeightsFileError(name, `is a zip / PyTorch .pth file; ${EXPECTED}`);
  }
  const image = bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47
    ? "PNG"
    : bytes[0] === 0xff && bytes[1] === 0xd8
    ? "JPEG"
    : null;
  if (image) throw new WeightsFileError(name, `is a ${image} image, not a checkpoint; ${EXPECTED}`);
  let parsed;
  try {
    parsed = parseSafetensors(bytes, name);
  } catch (e) {
    const why = (e as Error).message.replace(`${name}: `, "");
    throw new WeightsFileError(name, `is not a safetensors file (${why}); ${EXPECTED}`);
  }
  const raw = parsed.metadata?.checkpoint;
  if (!raw) throw new WeightsFileError(name, `is a safetensors file without a training header; ${EXPECTED}`);
  let header: TrainHeader;
  try {
    header = JSON.parse(raw);
  } catch (e) {
    throw new WeightsFileError(name, `corrupt checkpoint header (${(e as Error).message}); ${EXPECTED}`);
  }
  if (header.format !== FORMAT) {
    throw new WeightsFileError(name, `unsupported checkpoint format "${header.format}" (expected "${FORMAT}")`);
  }
  const c = header.config;
  if (!c?.model || !c.imageSize || c.seed === undefined) {
    throw new WeightsFileError(name, `the checkpoint does not record its model config; ${EXPECTED}`);
  }
  if (!(modelNames() as string[]).includes(c.model)) {
    throw new WeightsFileError(name, `unknown model "${c.model}" (expected one of ${modelNames().join(", ")})`);
  }
  const seededEncoder = header.extra?.encoder === "seeded";
  manualSeed(c.seed);
  const model = await createModel(c.model, { ...c.modelOverrides, imageSize: c.imageSize }, {
    variant: c.variant,
    device,
  });
  const weights = new Map<string, Tensor>();
  const all = toTensors(parsed.tensors, { device });
  try {
    for (const [k, t] of all) {
      if (k.startsWith("model.")) weights.set(k.slice(6), t);
    }
    const own = [...model.stateDict().keys()];
    const missing = own.filter((k) => !weights.has(k) && !(seededEncoder && k.startsWith("net_t.")));
    if (missing.length) {
      model.dispose();
      throw new WeightsFileError(
        name,
        `${missing.length} weights of ${c.model} are missing (${missing.slice(0, 3).join(", ")}, …); ${EXPECTED}`,
      );
    }
    await model.loadStateDict(weights, { strict: !seededEncoder });
  } finally {
    for (const t of all.values()) t.dispose();
  }
  model.eval();
  return {
    model,
    description: `${c.model}${c.variant ? ` (${c.variant})` : ""} at ${c.imageSize} px`,
    epoch: header.epoch ?? 0,
    seededEncoder,
  };
}
