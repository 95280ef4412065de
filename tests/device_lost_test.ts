/**
 * A lost WebGPU device is reported as one clear error (WebGPUDeviceLostError) by every later read and submit,
 * instead of hanging or returning garbage. Uses a device of its own, so the suite's shared device is untouched.
 */
import assert from "node:assert/strict";
import { requestDevice } from "../autodiff/backends/webgpu/device.ts";
import { Runtime, WebGPUDeviceLostError } from "../autodiff/backends/webgpu/runtime.ts";
import { testDevices } from "./util.ts";

Deno.test({
  name: "WebGPU: reads after the device is lost throw WebGPUDeviceLostError",
  ignore: !(await testDevices()).includes("webgpu"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { device } = await requestDevice();
    const rt = new Runtime(device);
    const buf = rt.upload(new Float32Array([1, 2, 3]), "float32");
    assert.deepEqual(Array.from(await rt.read(buf)), [1, 2, 3]);
    device.destroy();
    await device.lost;
    await new Promise((r) => setTimeout(r, 0)); // let the runtime's lost handler run
    await assert.rejects(
      () => rt.read(buf),
      (e: Error) => e instanceof WebGPUDeviceLostError && /destroyed/.test(e.message),
    );
  },
});
