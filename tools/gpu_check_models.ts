/**
 * The model half of the GPU check (tools/gpu_check.sh): for Wave-MambaAD and MambaAD at 256² on WebGPU,
 * inference images/s at batch 1, 8 and 16 with the peak live memory of each, the AdamW training step at batch 16,
 * and the kernel dispatches of one inference pass and one training step at batch 1. Where the adapter has timestamp
 * queries, also the GPU execution time of one inference pass at batch 8 and one training step at batch 16 (summed,
 * and the 15 costliest backend calls/kernels): set against the wall time it says whether the GPU or the host is the
 * bottleneck. Prints one JSON object.
 */
import * as T from "../mod.ts";
import { createModel, type ModelName } from "../models/registry.ts";
import type { WebGPUBackend } from "../autodiff/backends/webgpu/backend.ts";
import { profileGpu } from "../bench/profile.ts";
import { trainStep } from "../bench/passes.ts";

const SIZE = 256;
const REPEATS = Number(Deno.env.get("GPU_CHECK_REPEATS") ?? 3);
const b = await T.initWebGPU() as unknown as WebGPUBackend;
const rt = b.runtime;
const result: Record<string, unknown> = {
  adapter: b.adapterDescription,
  fallback_adapter: b.isFallbackAdapter,
};
const log = (m: string) => console.error(m);

async function median(fn: () => Promise<void>): Promise<number> {
  await fn();
  await b.sync();
  const times: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const t0 = performance.now();
    await fn();
    await b.sync();
    times.push(performance.now() - t0);
  }
  times.sort((x, y) => x - y);
  return times[Math.floor(times.length / 2)];
}

async function measure(name: ModelName, key: string): Promise<void> {
  T.manualSeed(42);
  const model = await createModel(name, { imageSize: SIZE }, { device: "webgpu" });
  for (const batch of [1, 8, 16]) {
    model.eval();
    const x = T.keep(T.randn([batch, 3, SIZE, SIZE], { device: "webgpu" }));
    const infer = async () => {
      const res = T.noGrad(() => T.tidy(() => model.anomalyMap(model.forward(x))));
      await res.score.data();
      res.map.dispose();
      res.score.dispose();
    };
    T.resetPeakMemory();
    rt.resetCounters();
    await infer();
    if (batch === 1) result[`${key}_infer_dispatches_b1_${SIZE}px`] = rt.dispatchCount;
    const ms = await median(infer);
    result[`${key}_infer_b${batch}_${SIZE}px_imgs_per_s`] = Number((1000 * batch / ms).toFixed(2));
    result[`${key}_infer_b${batch}_${SIZE}px_peak_mb`] = Number(
      (T.memoryStats().webgpu!.peakBytes / 2 ** 20).toFixed(1),
    );
    log(`${key} inference batch ${batch}: ${(1000 * batch / ms).toFixed(2)} img/s`);
    if (batch === 8) await gpuTime(`${key}_infer_b8_${SIZE}px`, infer);
    x.dispose();
  }
  for (const batch of [1, 16]) {
    model.train();
    const opt = new T.AdamW(T.decayGroups(model.namedParameters(), 1e-4), { lr: 5e-3 });
    const x = T.keep(T.randn([batch, 3, SIZE, SIZE], { device: "webgpu" }));
    const step = () => trainStep(model, opt, x);
    T.resetPeakMemory();
    rt.resetCounters();
    await step();
    if (batch === 1) {
      result[`${key}_train_dispatches_b1_${SIZE}px`] = rt.dispatchCount;
    } else {
      const ms = await median(step);
      result[`${key}_train_step_b16_${SIZE}px_ms`] = Number(ms.toFixed(1));
      result[`${key}_train_step_b16_${SIZE}px_peak_mb`] = Number(
        (T.memoryStats().webgpu!.peakBytes / 2 ** 20).toFixed(1),
      );
      log(`${key} training step batch 16: ${ms.toFixed(1)} ms`);
      await gpuTime(`${key}_train_step_b16_${SIZE}px`, step);
    }
    x.dispose();
  }
}

/** GPU milliseconds of one run of `fn` (timestamp queries) and its costliest kernels, when the adapter has them. */
async function gpuTime(prefix: string, fn: () => Promise<void>): Promise<void> {
  if (!rt.device.features.has("timestamp-query")) return;
  const prof = await profileGpu(b, fn);
  const entries = Object.entries(prof);
  result[`${prefix}_gpu_ms`] = Number(entries.reduce((s, [, v]) => s + v.ms, 0).toFixed(1));
  result[`${prefix}_gpu_top`] = Object.fromEntries(entries.slice(0, 15));
}

for (const [name, key] of [["wave_mambaad", "wave"], ["mambaad", "mambaad"]] as const) {
  try {
    await measure(name, key);
  } catch (e) {
    result[`${key}_error`] = (e as Error).message;
    log(`${key}: failed: ${(e as Error).message}`);
  }
}
console.log(JSON.stringify(result));
