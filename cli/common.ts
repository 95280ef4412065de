/**
 * What every command shares: flag parsing (node:util parseArgs, strict), the device flag, the dataset flags
 * and the `--json` convention (one JSON object as the last line of stdout).
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import type { Device } from "../autodiff/backend.ts";
import { initDefaultDevice, initWebGPU } from "../autodiff/device.ts";
import type { DatasetKind } from "../anomaly/data/datasets.ts";
import type { MetricPath } from "../anomaly/metrics/evaluate.ts";

/** A CLI usage error: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** parseArgs in strict mode; `deno task x -- …` passes the "--" through, which is dropped here. */
export function parseFlags<O extends Options>(command: string, args: string[], options: O) {
  try {
    return parseArgs({ args: args[0] === "--" ? args.slice(1) : args, options, strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError(`${command}: ${(e as Error).message}`);
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
