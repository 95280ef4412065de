/**
 * Device registry: which backend serves each device, and the default device.
 *
 * @module
 */

import type { Backend, Device } from "./backend.ts";
import { cpuBackend } from "./backends/cpu/backend.ts";
import { createWebGPUBackend, type WebGPUOptions } from "./backends/webgpu/backend.ts";

const backends: Partial<Record<Device, Backend>> = { cpu: cpuBackend };
let defaultDevice: Device = "cpu";
let webgpuInit: Promise<Backend> | null = null;

/**
 * Initialises the WebGPU backend (once; later calls return the same backend). Throws a clear error
 * when `navigator.gpu` or an adapter is missing.
 */
export function initWebGPU(options: WebGPUOptions = {}): Promise<Backend> {
  if (!webgpuInit) {
    webgpuInit = createWebGPUBackend(options).then((b) => {
      backends.webgpu = b;
      return b;
    });
    webgpuInit.catch(() => webgpuInit = null);
  }
  return webgpuInit;
}

/**
 * Picks the default device the way users expect: WebGPU when a hardware adapter exists, else CPU.
 * Returns the chosen device.
 */
export async function initDefaultDevice(): Promise<Device> {
  try {
    const b = await initWebGPU();
    defaultDevice = (b as Backend & { isFallbackAdapter?: boolean }).isFallbackAdapter ? "cpu" : "webgpu";
  } catch {
    defaultDevice = "cpu";
  }
  return defaultDevice;
}

/** The backend of a device; throws if it was not initialised. */
export function getBackend(device: Device): Backend {
  const b = backends[device];
  if (!b) {
    if (device === "webgpu") {
      throw new Error('device "webgpu" is not initialised: call `await initWebGPU()` first');
    }
    throw new Error(`unknown device "${device}" (expected "cpu" or "webgpu")`);
  }
  return b;
}

/** The device new tensors are created on when none is given. */
export function getDefaultDevice(): Device {
  return defaultDevice;
}

/** Sets the device new tensors are created on when none is given. */
export function setDefaultDevice(device: Device): void {
  getBackend(device);
  defaultDevice = device;
}
