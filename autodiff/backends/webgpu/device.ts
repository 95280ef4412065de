/**
 * Adapter and device acquisition for the WebGPU backend.
 *
 * @module
 */

/** Options for creating the WebGPU backend. */
export interface WebGPUOptions {
  /** Passed to `navigator.gpu.requestAdapter`. */
  powerPreference?: GPUPowerPreference;
}

/** A device together with facts about the adapter it came from. */
export interface DeviceInfo {
  /** The logical device. */
  device: GPUDevice;
  /** True for software adapters (lavapipe, llvmpipe, SwiftShader, WARP). */
  isFallbackAdapter: boolean;
  /** Human-readable adapter description. */
  description: string;
}

/** The limits the backend needs, requested at the adapter's real values. */
const REQUESTED_LIMITS = [
  "maxStorageBuffersPerShaderStage",
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxUniformBufferBindingSize",
  "maxBindGroups",
] as const;

/**
 * Requests an adapter and a device with the adapter's real limits. Throws
 * `Error("WebGPU unavailable: ...")` naming the reason when there is no WebGPU or no adapter.
 */
export async function requestDevice(options: WebGPUOptions = {}): Promise<DeviceInfo> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new Error("WebGPU unavailable: navigator.gpu is not defined in this runtime");
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference });
  } catch (e) {
    throw new Error(`WebGPU unavailable: requestAdapter failed (${(e as Error).message})`);
  }
  if (!adapter) throw new Error("WebGPU unavailable: navigator.gpu.requestAdapter() returned no adapter");
  const requiredLimits: Record<string, number> = {};
  const limits = adapter.limits as unknown as Record<string, number>;
  for (const name of REQUESTED_LIMITS) {
    if (typeof limits[name] === "number") requiredLimits[name] = limits[name];
  }
  // timestamp queries serve the GPU timer (bench --profile); asked for only where the adapter has them
  const requiredFeatures: GPUFeatureName[] = adapter.features.has("timestamp-query") ? ["timestamp-query"] : [];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const legacy = (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter;
  return {
    device,
    isFallbackAdapter: Boolean(info?.isFallbackAdapter ?? legacy ?? false),
    description: info?.description || info?.vendor || "unknown adapter",
  };
}
