/**
 * A lost WebGPU device is reported as one clear error (WebGPUDeviceLostError) by every later read and submit,
 * instead of hanging or returning garbage. The device is destroyed in a process of its own, so nothing the driver
 * does with a destroyed device can touch the suite's process.
 */
import assert from "node:assert/strict";
import { testDevices } from "./util.ts";

const SCRIPT = `
import { requestDevice } from "./autodiff/backends/webgpu/device.ts";
import { Runtime, WebGPUDeviceLostError } from "./autodiff/backends/webgpu/runtime.ts";
const { device } = await requestDevice();
const rt = new Runtime(device);
rt.watchLoss();
const buf = rt.upload(new Float32Array([1, 2, 3]), "float32");
console.log("before", Array.from(await rt.read(buf)).join(","));
device.destroy();
await device.lost;
await new Promise((r) => setTimeout(r, 0)); // let the runtime's lost handler run
try {
  await rt.read(buf);
  console.log("after: no error");
} catch (e) {
  console.log("after", e instanceof WebGPUDeviceLostError, (e as Error).message);
}
`;

Deno.test({
  name: "WebGPU: reads after the device is lost throw WebGPUDeviceLostError",
  ignore: !(await testDevices()).includes("webgpu"),
  fn: async () => {
    const root = new URL("..", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", SCRIPT],
      cwd: root,
      env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, `${text}\n${new TextDecoder().decode(out.stderr)}`);
    assert.match(text, /^before 1,2,3$/m);
    assert.match(text, /^after true WebGPU device lost \(destroyed\)/m);
  },
});
