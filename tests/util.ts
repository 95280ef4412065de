/** Shared test helpers: the devices every op test runs on. */
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

/**
 * The devices the suite runs on: always "cpu", plus "webgpu". Under CI (env CI set) a missing
 * adapter is a failure; elsewhere the WebGPU half is skipped with a warning.
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
        return ["cpu"] as Device[];
      }
    })();
  }
  return devices;
}
