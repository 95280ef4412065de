/** Shared test helpers: the devices every op test runs on. */
import type { Device } from "../autodiff/backend.ts";
import { initWebGPU } from "../autodiff/device.ts";

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
