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

/** The environment variable through which Deno's WebGPU (wgpu) takes the graphics APIs it may open. */
export const BACKEND_ENV = "DENO_WEBGPU_BACKEND";

/** Where the Vulkan loader looks for driver manifests (ICDs) on Linux, besides its environment variables. */
const VULKAN_ICD_DIRS = ["/usr/share/vulkan/icd.d", "/usr/local/share/vulkan/icd.d", "/etc/vulkan/icd.d"];

/** True where a Vulkan driver is declared: `VK_DRIVER_FILES`/`VK_ICD_FILENAMES`, or a manifest in the standard folders. */
function hasVulkanDriver(): boolean {
  if (Deno.env.get("VK_DRIVER_FILES") || Deno.env.get("VK_ICD_FILENAMES")) return true;
  for (const dir of VULKAN_ICD_DIRS) {
    try {
      for (const e of Deno.readDirSync(dir)) if (e.name.endsWith(".json")) return true;
    } catch {
      // no such folder, or no read permission
    }
  }
  return false;
}

/**
 * On Linux with a Vulkan driver installed, limits Deno's WebGPU to Vulkan (sets `DENO_WEBGPU_BACKEND=vulkan`) unless
 * the variable is already set; returns the value in force, or undefined where wgpu keeps its default (other systems,
 * no Vulkan driver, or no env permission).
 *
 * Why: by default wgpu also opens an EGL/OpenGL instance beside Vulkan, only to list its adapters. On Mesa that loads
 * a second llvmpipe driver (`swrast_dri.so`, through glvnd's `libEGL`) that no compute work uses when Vulkan has an
 * adapter, and its teardown at process exit corrupts the heap now and then: glibc aborts ("double free or
 * corruption", "malloc_consolidate(): invalid chunk size") inside libEGL's destructor after every test has passed.
 * Vulkan alone gives the same adapter (lavapipe, or the hardware GPU's Vulkan driver) and the crash is gone. wgpu
 * reads the variable once, when its instance is made at the first `requestAdapter`, so this runs before that; a
 * machine without a Vulkan driver keeps the default, so EGL's llvmpipe still serves there.
 */
export function preferVulkanOnLinux(): string | undefined {
  if (typeof Deno === "undefined" || Deno.build.os !== "linux") return undefined;
  try {
    const set = Deno.env.get(BACKEND_ENV);
    if (set !== undefined) return set;
    if (!hasVulkanDriver()) return undefined;
    Deno.env.set(BACKEND_ENV, "vulkan");
    return "vulkan";
  } catch {
    return undefined; // no env permission: wgpu keeps its default backends
  }
}

/**
 * Requests an adapter and a device with the adapter's real limits. Throws
 * `Error("WebGPU unavailable: ...")` naming the reason when there is no WebGPU or no adapter. On Linux it asks for
 * Vulkan only, unless `DENO_WEBGPU_BACKEND` says otherwise (see {@linkcode preferVulkanOnLinux}).
 */
export async function requestDevice(options: WebGPUOptions = {}): Promise<DeviceInfo> {
  const backends = preferVulkanOnLinux();
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new Error("WebGPU unavailable: navigator.gpu is not defined in this runtime");
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference });
  } catch (e) {
    throw new Error(`WebGPU unavailable: requestAdapter failed (${(e as Error).message})`);
  }
  if (!adapter) {
    const hint = backends ? ` (${BACKEND_ENV}=${backends})` : "";
    throw new Error(`WebGPU unavailable: navigator.gpu.requestAdapter() returned no adapter${hint}`);
  }
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
