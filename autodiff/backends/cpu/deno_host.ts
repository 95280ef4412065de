/**
 * What Deno lends the CPU backend beyond typed arrays and WebAssembly: OpenBLAS through FFI for large matrix
 * products (`blas.ts`) and node:worker_threads for the WebAssembly kernels (`wasm/thread.ts`). Importing this module
 * registers both; `mod.ts` and `main.ts` do, so every Deno user gets them. The browser build (`web/`) does not
 * import it, so no FFI or Node module reaches the bundle; it runs the same kernels on the calling thread.
 *
 * @module
 */

import { blasLoaded, cblasSgemm } from "./blas.ts";
import { registerSgemm } from "./gemm.ts";
import { registerKernelWorkers } from "./wasm/threads.ts";

registerSgemm(blasLoaded, cblasSgemm);

registerKernelWorkers((data, onGone) => {
  // imported on first use, as before: a process that never runs a kernel never loads the Node worker module
  import("node:worker_threads").then(({ Worker }) => {
    const w = new Worker(new URL("./wasm/thread.ts", import.meta.url), { workerData: data });
    w.unref();
    w.on("error", onGone);
    w.on("exit", onGone);
  }).catch(() => {
    // no worker threads here: the calling thread does the work
    onGone();
  });
});
