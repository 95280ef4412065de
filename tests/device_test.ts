/** Device selection: clear errors when WebGPU is asked for but missing, and the default device rule. */
import assert from "node:assert/strict";
import { createWebGPUBackend } from "../autodiff/backends/webgpu/backend.ts";
import { BACKEND_ENV, preferVulkanOnLinux } from "../autodiff/backends/webgpu/device.ts";
import { getBackend, getDefaultDevice, initDefaultDevice, setDefaultDevice, tensor } from "../mod.ts";
import { testDevices } from "./util.ts";

/** Runs `fn` with `navigator.gpu` replaced by `gpu`, restoring it afterwards. */
async function withGpu(gpu: unknown, fn: () => Promise<void>): Promise<void> {
  const desc = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(navigator), "gpu") ??
    Object.getOwnPropertyDescriptor(navigator, "gpu");
  Object.defineProperty(navigator, "gpu", { value: gpu, configurable: true });
  try {
    await fn();
  } finally {
    delete (navigator as unknown as Record<string, unknown>).gpu;
    if (desc && !Object.getOwnPropertyDescriptor(Object.getPrototypeOf(navigator), "gpu")) {
      Object.defineProperty(navigator, "gpu", desc);
    }
  }
}

Deno.test({
  name: "webgpu: no adapter gives a clear error",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await withGpu({ requestAdapter: () => Promise.resolve(null) }, async () => {
      await assert.rejects(createWebGPUBackend(), /WebGPU unavailable: .*returned no adapter/);
    });
    await withGpu(undefined, async () => {
      await assert.rejects(createWebGPUBackend(), /WebGPU unavailable: navigator\.gpu is not defined/);
    });
  },
});

const hasWebGPU = (await testDevices()).includes("webgpu");

Deno.test({
  name: "webgpu: without an adapter the default device is the CPU" +
    (hasWebGPU ? " (ignored: this machine has an adapter)" : ""),
  ignore: hasWebGPU,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    assert.equal(await initDefaultDevice(), "cpu");
    assert.equal(getDefaultDevice(), "cpu");
  },
});

Deno.test({
  name: "webgpu: the default device is the CPU unless the adapter is a hardware one" +
    (hasWebGPU ? "" : " (ignored: no WebGPU adapter)"),
  ignore: !hasWebGPU,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const chosen = await initDefaultDevice();
    const backend = getBackend("webgpu") as unknown as { isFallbackAdapter: boolean };
    assert.equal(chosen, backend.isFallbackAdapter ? "cpu" : "webgpu");
    assert.equal(getDefaultDevice(), chosen);
    // an explicit choice wins, and tensors follow it
    setDefaultDevice("webgpu");
    try {
      assert.equal(tensor([1, 2]).device, "webgpu");
    } finally {
      setDefaultDevice("cpu");
    }
    assert.equal(tensor([1, 2]).device, "cpu");
  },
});

Deno.test({
  name: "webgpu on Linux: Vulkan only, no EGL/GL driver loaded beside it (its teardown aborted processes at exit)" +
    (hasWebGPU && Deno.build.os === "linux" ? "" : " (ignored: no WebGPU adapter, or not Linux)"),
  ignore: !hasWebGPU || Deno.build.os !== "linux",
  fn: () => {
    // testDevices() above made the device through requestDevice, which chose the backends; this returns that choice
    const chosen = preferVulkanOnLinux();
    if (chosen !== "vulkan") {
      // CI installs mesa-vulkan-drivers: there Vulkan must have been chosen
      assert.ok(!Deno.env.get("CI"), `${BACKEND_ENV} is ${chosen} under CI, expected vulkan`);
      console.warn(`no Vulkan driver here (${BACKEND_ENV}=${chosen}): wgpu keeps its default backends`);
      return;
    }
    const libs = Deno.readTextFileSync("/proc/self/maps").split("\n").map((l) => l.split(/\s+/)[5] ?? "");
    const gl = [...new Set(libs.filter((p) => /lib(EGL|GLX)[^/]*\.so|_dri\.so/.test(p)))];
    assert.deepEqual(gl, [], "GL libraries loaded with Vulkan alone");
    assert.ok(libs.some((p) => /libvulkan/.test(p)), "the Vulkan loader is loaded");
  },
});
