/**
 * A worker thread of the CPU backend's WebAssembly kernels (started through node:worker_threads by ../deno_host.ts,
 * which threads.ts asks for workers): it instantiates the shared-memory build on the main thread's memory, says it
 * is ready, then runs one kernel call at a time as the control words in `ctrl` ask (see threads.ts for the protocol).
 *
 * @module
 */
import { workerData } from "node:worker_threads";
import { ARGS, FAILED, IDLE, JOB, KERNELS } from "./protocol.ts";

const { memory, bytes, ctrl } = workerData as {
  memory: WebAssembly.Memory;
  bytes: Uint8Array<ArrayBuffer>;
  ctrl: Int32Array;
};
const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
  env: {
    memory,
    abort: () => {
      throw new Error("CPU wasm kernel: abort");
    },
  },
}).exports as Record<string, (...args: number[]) => void>;
const fns = KERNELS.map((name) => exports[name]);

Atomics.store(ctrl, 0, IDLE);
Atomics.notify(ctrl, 0);
for (;;) {
  Atomics.wait(ctrl, 0, IDLE);
  if (Atomics.load(ctrl, 0) !== JOB) continue;
  try {
    for (let k = 0, at = ARGS; k < ctrl[1]; k++) {
      const n = ctrl[at + 1];
      fns[ctrl[at]](...Array.from(ctrl.subarray(at + 2, at + 2 + n)));
      at += 2 + n;
    }
    Atomics.store(ctrl, 0, IDLE);
  } catch {
    Atomics.store(ctrl, 0, FAILED);
  }
  Atomics.notify(ctrl, 0);
}
