/** Shared test helpers: the devices every op test runs on. */
import "../autodiff/backends/cpu/deno_host.ts"; // OpenBLAS and worker threads, as mod.ts registers them
import type { Device } from "../autodiff/backend.ts";
import { blasLoaded } from "../autodiff/backends/cpu/blas.ts";
import { initWebGPU } from "../autodiff/device.ts";
import { Generator } from "../autodiff/random.ts";

// OpenBLAS (FFI) is opened lazily and kept open: open it before any test so that Deno's resource
// sanitizer does not report it against whichever test multiplies first.
blasLoaded();

/** `n` standard normals from a generator seeded with `seed` (deterministic test inputs). */
export function normals(n: number, seed: number): Float32Array {
  const g = new Generator(seed);
  return Float32Array.from({ length: n }, () => g.normal());
}

let devices: Promise<Device[]> | null = null;

/** Where a test name carries its device: `… [cpu]`, `… (cpu)` or `… on cpu` (the suite's conventions). */
const CPU_LABEL = /\[cpu\]|\(cpu\)|\bon cpu$/;

/**
 * The name of the WebGPU twin of a CPU test, or null when `name` carries no device label.
 * `webgpuTwinName("add [cpu]", "why")` is `"add [webgpu] (ignored: why)"`.
 */
export function webgpuTwinName(name: string, reason: string): string | null {
  let last: RegExpExecArray | null = null;
  for (const m of name.matchAll(new RegExp(CPU_LABEL, "g"))) last = m as RegExpExecArray;
  if (!last) return null;
  const label = last[0].replace("cpu", "webgpu");
  return `${name.slice(0, last.index)}${label}${name.slice(last.index + last[0].length)} (ignored: ${reason})`;
}

/**
 * Without an adapter (outside CI) the WebGPU variants are not run; so that the summary still shows them,
 * every test registered afterwards whose name carries the CPU label gets an ignored WebGPU twin.
 */
function registerIgnoredWebGPUTwins(reason: string): void {
  const test = Deno.test;
  const withTwins = (...args: unknown[]) => {
    (test as (...a: unknown[]) => void)(...args);
    const first = args[0];
    const name = typeof first === "string"
      ? first
      : typeof first === "function"
      ? first.name
      : (first as { name?: string } | undefined)?.name ?? (args[1] as { name?: string } | undefined)?.name;
    const twin = name ? webgpuTwinName(name, reason) : null;
    if (twin) test({ name: twin, ignore: true, fn() {} });
  };
  Object.assign(withTwins, test); // Deno.test.ignore / .only
  (Deno as { test: unknown }).test = withTwins;
}

/**
 * The devices the suite runs on: always "cpu", plus "webgpu". Under CI (env CI set) a missing
 * adapter is a failure; elsewhere the WebGPU half is skipped with a warning and registered as ignored
 * (each CPU test named `… [cpu]`, `… (cpu)` or `… on cpu` gets an ignored `[webgpu]` twin).
 */
export function testDevices(): Promise<Device[]> {
  if (!devices) {
    devices = (async () => {
      try {
        await initWebGPU();
        return ["cpu", "webgpu"] as Device[];
      } catch (e) {
        if (Deno.env.get("CI")) throw new Error(`WebGPU is required in CI: ${(e as Error).message}`);
        console.warn(`skipping the WebGPU half: ${(e as Error).message}`);
        registerIgnoredWebGPUTwins("no WebGPU adapter");
        return ["cpu"] as Device[];
      }
    })();
  }
  return devices;
}

/**
 * |actual − ref| ≤ tol·max|ref| over the whole array (the criterion of the selective-scan goldens and the
 * official fixtures: a tolerance relative to the tensor's scale, not to each element).
 */
export function assertCloseToMax(actual: ArrayLike<number>, ref: ArrayLike<number>, what: string, tol = 1e-4): void {
  if (actual.length !== ref.length) throw new Error(`${what}: length ${actual.length} != ${ref.length}`);
  let scale = 0, worst = 0, at = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(actual[i] - ref[i]);
    if (!(e <= worst)) {
      worst = e;
      at = i;
    }
  }
  if (!(worst <= tol * Math.max(scale, 1e-30))) {
    throw new Error(`${what}: max|a-b| = ${worst} at ${at} (${actual[at]} vs ${ref[at]}) > ${tol}·${scale}`);
  }
}

/**
 * Asserts that `out` is `src` (row-major, `shape`) permuted by `dims`, element by element, by index arithmetic done
 * here on the host (an independent reference for every permute/copy kernel).
 */
export function assertPermuted(
  out: ArrayLike<number>,
  src: ArrayLike<number>,
  shape: readonly number[],
  dims: readonly number[],
): void {
  const outShape = dims.map((d) => shape[d]);
  const srcStrides = shape.map((_, k) => shape.slice(k + 1).reduce((a, b) => a * b, 1));
  const idx = new Array(outShape.length).fill(0);
  for (let i = 0; i < src.length; i++) {
    let at = 0;
    for (let k = 0; k < dims.length; k++) at += idx[k] * srcStrides[dims[k]];
    if (out[i] !== src[at]) throw new Error(`element ${i} (index [${idx}]) is ${out[i]}, want ${src[at]}`);
    for (let k = outShape.length - 1; k >= 0 && ++idx[k] === outShape[k]; k--) idx[k] = 0;
  }
}
