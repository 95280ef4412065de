/**
 * A/B of OpenBLAS's `OPENBLAS_THREAD_TIMEOUT` (how long its idle threads spin before they sleep, 2^N cycles) on the
 * CPU backend's Wave-MambaAD passes, in one process: the library is read once at load, so two copies of it are
 * loaded, each under its own setting, and the passes alternate between them (A B, B A, ...). Alternating in one
 * process is what makes the comparison hold on a machine whose speed drifts by ±15 % from one run to the next.
 *
 *   deno run -A bench/blas_timeout.ts --a 20 --b 28 --mode infer --pairs 6
 *
 * Prints one JSON line: both settings, every pass time in ms and their medians.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { copyFileSync, mkdtempSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { registerSgemm } from "../autodiff/backends/cpu/gemm.ts";
import { modelInferPass, modelTrainStep } from "./passes.ts";

const { values } = parseArgs({
  options: {
    a: { type: "string", default: "20" },
    b: { type: "string", default: "28" },
    mode: { type: "string", default: "infer" },
    pairs: { type: "string", default: "6" },
    library: { type: "string", default: "/usr/lib/x86_64-linux-gnu/libopenblas.so.0" },
  },
});
const mode = values.mode === "train" ? "train" : "infer";

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
} as const;

/** A private copy of the library (its own threads and settings) loaded under `timeout`. */
function loadCopy(timeout: string): Deno.DynamicLibrary<typeof SYMBOLS> {
  const path = join(mkdtempSync(join(tmpdir(), "blas-")), "libopenblas.so");
  copyFileSync(realpathSync(values.library), path);
  Deno.env.set("OPENBLAS_THREAD_TIMEOUT", timeout);
  return Deno.dlopen(path, SYMBOLS);
}

const libs = [loadCopy(values.a), loadCopy(values.b)];
let current = libs[0];
registerSgemm(() => true, (tA, tB, m, n, k, alpha, a, offA, lda, b, offB, ldb, beta, c, offC, ldc) => {
  if (lda < Math.max(1, tA ? m : k) || ldb < Math.max(1, tB ? k : n) || ldc < Math.max(1, n)) return false;
  const at = (x: Float32Array, off: number) => (off ? x.subarray(off) : x);
  current.symbols.cblas_sgemm(
    101,
    tA ? 112 : 111,
    tB ? 112 : 111,
    m,
    n,
    k,
    alpha,
    at(a, offA),
    lda,
    at(b, offB),
    ldb,
    beta,
    at(c, offC),
    ldc,
  );
  return true;
});

const pass = mode === "train"
  ? await modelTrainStep("wave_mambaad", "cpu", 256)
  : await modelInferPass("wave_mambaad", "cpu");

const times: number[][] = [[], []];
for (const lib of libs) {
  current = lib;
  await pass(); // warm-up on each
}
for (let i = 0; i < Number(values.pairs); i++) {
  for (const k of i % 2 ? [1, 0] : [0, 1]) {
    current = libs[k];
    await new Promise((r) => setTimeout(r, 150)); // the other copy's threads reach their timeout and sleep
    const t0 = performance.now();
    await pass();
    times[k].push(Math.round(performance.now() - t0));
  }
}
const median = (v: number[]) => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)];
console.log(JSON.stringify({
  mode,
  timeout_a: Number(values.a),
  timeout_b: Number(values.b),
  pass_ms_a: times[0],
  pass_ms_b: times[1],
  median_ms_a: median(times[0]),
  median_ms_b: median(times[1]),
}));
Deno.exit(0);
