/**
 * What every command shares: flag parsing (node:util parseArgs, strict), the device flag, the dataset flags
 * and the `--json` convention (one JSON object as the last line of stdout).
 *
 * @module
 */

import "../autodiff/backends/cpu/deno_host.ts"; // OpenBLAS and worker threads for the CPU backend
import { parseArgs, type ParseArgsConfig } from "node:util";
import type { Device } from "../autodiff/backend.ts";
import { initDefaultDevice, initWebGPU } from "../autodiff/device.ts";
import type { DatasetKind } from "../anomaly/data/datasets.ts";
import { DEFAULT_MAX_IMAGE_PIXELS, setMaxImagePixels } from "../anomaly/data/image.ts";
import type { MetricPath } from "../anomaly/metrics/evaluate.ts";
import { type ModelName, modelNames, MODELS, variantNames } from "../models/registry.ts";

/** A CLI usage error: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * One flag of a command: its parseArgs config plus what the usage text says about it. The usage text of every
 * command is generated from its table ({@linkcode usageText}), so a flag cannot be accepted and left
 * undocumented, or documented and rejected.
 */
export type FlagSpec = Options[string] & {
  /** The value's placeholder in the usage text (`DIR`, `N`, ...); none for a boolean flag. */
  arg?: string;
  /** One line (or a few) on what the flag does, its default included. */
  help: string;
};

/** The flags of a command by name (without the leading `--`). */
export type FlagTable = Record<string, FlagSpec>;

/**
 * The usage text of a command: `head` (the synopsis line) and one entry per flag of `flags`, in table order,
 * `--name ARG` padded to a column, then the help text (continuation lines indented to the same column).
 */
export function usageText(head: string, flags: FlagTable): string {
  const col = 28;
  const lines = [head];
  for (const [name, spec] of Object.entries(flags)) {
    const left = `  --${name}${spec.short ? `, -${spec.short}` : ""}${spec.arg ? ` ${spec.arg}` : ""}`;
    const [first, ...rest] = spec.help.split("\n");
    lines.push(left.length < col ? left.padEnd(col) + first : `${left}\n${" ".repeat(col)}${first}`);
    for (const r of rest) lines.push(" ".repeat(col) + r);
  }
  return lines.join("\n");
}

/** The parseArgs options of a flag table (the usage fields dropped). */
function parseOptions(flags: FlagTable): Options {
  const out: Options = {};
  for (const [name, { arg: _arg, help: _help, ...config }] of Object.entries(flags)) out[name] = config;
  return out;
}

/**
 * parseArgs in strict mode over a flag table; `deno task x -- …` passes the "--" through, which is dropped
 * here. An unknown flag or a missing value is a {@linkcode UsageError} naming the command and the flag.
 */
export function parseFlags<O extends FlagTable>(command: string, args: string[], flags: O) {
  try {
    return parseArgs({
      args: args[0] === "--" ? args.slice(1) : args,
      options: parseOptions(flags) as O,
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    throw new UsageError(`${command}: ${(e as Error).message}`);
  }
}

/**
 * The model flags checked before anything is built or read: a known model, a known variant of it, and an image
 * size the model's architecture accepts (Wave-MambaAD: a multiple of 64, the LL band being S/64 at stage 0;
 * MambaAD: a multiple of 32). Each failure is a {@linkcode UsageError} naming the flag.
 */
export function checkModelFlags(
  command: string,
  model: string,
  variant: string | undefined,
  size: number | undefined,
): ModelName {
  const names = modelNames() as string[];
  if (!names.includes(model)) {
    throw new UsageError(`${command}: unknown model "${model}" for --model (known models: ${names.join(", ")})`);
  }
  const name = model as ModelName;
  const variants = variantNames(name);
  if (variant !== undefined && !variants.includes(variant)) {
    throw new UsageError(
      `${command}: unknown variant "${variant}" of ${name} for --variant (known variants: ${variants.join(", ")})`,
    );
  }
  const multiple = MODELS[name].imageSizeMultiple;
  if (size !== undefined && size % multiple !== 0) {
    throw new UsageError(`${command}: --size must be a multiple of ${multiple} for ${name}, got ${size}`);
  }
  return name;
}

/**
 * Runs `check` (a config validation over flag values) and turns what it throws into a {@linkcode UsageError}
 * of `command`: a value that the flags' own parsing let through but the config refuses is still a usage error.
 */
export function usageChecked<T>(command: string, check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${command}: ${(e as Error).message.replace(/^train: /, "")}`);
  }
}

/** A positive integer flag (or the default). */
export function intFlag(command: string, name: string, v: string | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new UsageError(`${command}: --${name} must be an integer ≥ ${min}, got "${v}"`);
  }
  return n;
}

/** A finite number flag (or the default). */
export function numFlag(command: string, name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`${command}: --${name} must be a number, got "${v}"`);
  return n;
}

/**
 * `--device cpu|webgpu|auto` (default auto: WebGPU on a hardware adapter, the CPU when there is none or only a
 * software one such as lavapipe, where the CPU backend is far faster). An explicit `webgpu` without an adapter is
 * an error.
 */
export async function resolveDevice(command: string, v: string | undefined, log: (m: string) => void): Promise<Device> {
  const want = v ?? "auto";
  if (want === "cpu") return "cpu";
  if (want === "webgpu") {
    try {
      await initWebGPU();
      return "webgpu";
    } catch (e) {
      throw new Error(`${command}: no WebGPU adapter: ${(e as Error).message}`);
    }
  }
  if (want !== "auto") throw new UsageError(`${command}: --device must be cpu, webgpu or auto, got "${want}"`);
  const device = await initDefaultDevice();
  if (device === "cpu") log(`${command}: using the CPU (no hardware WebGPU adapter; --device webgpu forces it)`);
  return device;
}

/** `--dataset mvtec|visa|mpdd|folder`. */
export function datasetKind(command: string, v: string | undefined): DatasetKind {
  const kinds = ["mvtec", "visa", "mpdd", "folder"];
  const k = v ?? "mvtec";
  if (!kinds.includes(k)) throw new UsageError(`${command}: --dataset must be one of ${kinds.join(", ")}, got "${k}"`);
  return k as DatasetKind;
}

/** `--metric-path exact|adeval`. */
export function metricPath(command: string, v: string | undefined, dflt: MetricPath = "adeval"): MetricPath {
  const p = v ?? dflt;
  if (p !== "exact" && p !== "adeval") {
    throw new UsageError(`${command}: --metric-path must be exact or adeval, got "${p}"`);
  }
  return p;
}

/** `--classes a,b,c` (undefined: all). */
export function classList(v: string | undefined): string[] | undefined {
  if (!v) return undefined;
  return v.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/** Prints the machine-readable result: one JSON object on one line, the last line of stdout. */
export function printJson(record: unknown): void {
  console.log(JSON.stringify(record, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v)));
}

/** A flag holding a JSON object (undefined when absent). */
export function jsonObjectFlag(
  command: string,
  name: string,
  v: string | undefined,
): Record<string, unknown> | undefined {
  if (v === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch (e) {
    throw new UsageError(`${command}: --${name} is not valid JSON (${(e as Error).message}): ${v}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`${command}: --${name} must be a JSON object, got ${v}`);
  }
  return parsed as Record<string, unknown>;
}

/** `--device`, shared by every command. */
export const DEVICE_FLAG: { type: "string"; arg: string; help: string } = {
  type: "string",
  arg: "cpu|webgpu|auto",
  help: "default auto: WebGPU on a hardware adapter, else the CPU",
};
/** `--json`, shared by every command. */
export const JSON_FLAG: { type: "boolean"; default: false; help: string } = {
  type: "boolean",
  default: false,
  help: "print one JSON object as the last line",
};
/** `--help`, shared by every command. */
export const HELP_FLAG: { type: "boolean"; short: string; default: false; help: string } = {
  type: "boolean",
  short: "h",
  default: false,
  help: "this text",
};
/** `--max-megapixels`, shared by the commands that read images. */
export const MAX_MEGAPIXELS_FLAG: { type: "string"; arg: string; help: string } = {
  type: "string",
  arg: "N",
  help: `refuse images larger than N megapixels, checked from the file header before decoding\n(default ${
    DEFAULT_MAX_IMAGE_PIXELS / 1e6
  })`,
};

/** Applies `--max-megapixels` (when given) to the image readers of this process. */
export function applyMaxMegapixels(command: string, v: string | undefined): void {
  if (v === undefined) return;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    throw new UsageError(`${command}: --max-megapixels must be a number > 0, got "${v}"`);
  }
  setMaxImagePixels(Math.round(n * 1e6));
}
