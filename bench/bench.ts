/**
 * Benchmarks of the core: `deno task bench [-- --json] [--repeats N] [--only key,key] [--models [--profile]]
 * [--histogram]]`. `--only` with the `*_dispatches_b1_256px` keys counts dispatches only (fast).
 * Every timing waits for the result (WebGPU: `sync()`); figures are medians. With `--json` the last
 * line is one JSON object with the keys listed in KEYS.
 */
import { parseArgs } from "node:util";
import * as T from "../mod.ts";
import type { Device } from "../mod.ts";
import { blasAvailable, setBlasEnabled } from "../autodiff/backends/cpu/gemm.ts";
import { resnet34 } from "../models/backbones/resnet.ts";
import { createModel, type ModelName } from "../models/registry.ts";
import { loadPthStateDict } from "../nn/io/pth.ts";
import { selectiveScan, selectiveScanReference } from "../nn/ssm/selective_scan.ts";
import { dwt, iwt } from "../nn/wavelet/haar.ts";
import { formatProfile, profileGpu, profileKernels } from "./profile.ts";
import { modelInferPass, modelTrainStep, trainStep } from "./passes.ts";
import type { Runtime as WebGPURuntime } from "../autodiff/backends/webgpu/runtime.ts";

const args = parseArgs({
  // `deno task bench -- --json` passes the separator through
  args: Deno.args.filter((a) => a !== "--"),
  options: {
    json: { type: "boolean", default: false },
    repeats: { type: "string", default: "5" },
    only: { type: "string" },
    // the whole-model figures take many minutes on a software adapter: opt in
    models: { type: "boolean", default: false },
    // with --models: a per-kernel profile of one pass of each model figure (stderr)
    profile: { type: "boolean", default: false },
    // threads of the CPU backend's WebAssembly kernels (default: every core)
    threads: { type: "string" },
    // with the dispatch counts: a histogram of the counted dispatches by backend call and kernel (stderr)
    histogram: { type: "boolean", default: false },
  },
});
const REPEATS = Number(args.values.repeats);
if (args.values.threads) T.setCpuThreads(Number(args.values.threads));
const only = args.values.only?.split(",");
const log = (msg: string) => console.error(msg);

async function median(device: Device, fn: () => void | Promise<void>, repeats = REPEATS): Promise<number> {
  const backend = T.getBackend(device);
  await fn(); // warm-up: pipelines compiled, pools filled
  await backend.sync();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    await backend.sync();
    times.push(performance.now() - t0);
  }
  return middle(times);
}

/** The median (the mean of the middle two for an even count). */
function middle(times: number[]): number {
  times.sort((a, b) => a - b);
  const h = times.length >> 1;
  return times.length % 2 ? times[h] : (times[h - 1] + times[h]) / 2;
}

function matmulBench(device: Device, n: number): () => void {
  const a = T.keep(T.randn([n, n], { device })), b = T.keep(T.randn([n, n], { device }));
  return () => T.matmul(a, b).dispose();
}

const conv = { b: 8, c: 64, hw: 64 };
const convFlops = 2 * conv.b * conv.c * conv.hw * conv.hw * conv.c * 9;

function convForward(device: Device): () => void {
  const x = T.keep(T.randn([conv.b, conv.c, conv.hw, conv.hw], { device }));
  const w = T.keep(T.randn([conv.c, conv.c, 3, 3], { device }));
  return () => T.tidy(() => T.conv2d(x, w, null, { padding: 1 })).dispose();
}

/** Backward only: the forward is built outside the timed region each repeat. */
async function convBackwardMs(device: Device): Promise<number> {
  const x = T.keep(T.randn([conv.b, conv.c, conv.hw, conv.hw], { device, requiresGrad: true }));
  const w = T.keep(T.randn([conv.c, conv.c, 3, 3], { device, requiresGrad: true }));
  const r = T.keep(T.randn([conv.b, conv.c, conv.hw, conv.hw], { device }));
  const backend = T.getBackend(device);
  const times: number[] = [];
  for (let i = 0; i <= REPEATS; i++) {
    const y = T.tidy(() => T.conv2d(x, w, null, { padding: 1 }));
    await backend.sync();
    const t0 = performance.now();
    y.backward(r);
    await backend.sync();
    if (i > 0) times.push(performance.now() - t0);
    y.dispose();
    x.zeroGrad();
    w.zeroGrad();
  }
  times.sort((a, b) => a - b);
  return middle(times);
}

function dwconvForward(device: Device): () => void {
  const x = T.keep(T.randn([8, 256, 64, 64], { device }));
  const w = T.keep(T.randn([256, 1, 3, 3], { device }));
  return () => T.tidy(() => T.conv2d(x, w, null, { padding: 1, groups: 256 })).dispose();
}

function siluBench(device: Device): () => void {
  const x = T.keep(T.randn([16 * 1024 * 1024], { device }));
  return () => T.silu(x).dispose();
}

/** B8, 3→32→64 channels, 64×64 input, plain SGD: one full step (forward, backward, update). */
function smallCnnStep(device: Device): () => Promise<void> {
  T.manualSeed(0);
  const params = T.tidy(() => [
    T.mul(T.randn([32, 3, 3, 3], { device }), 0.2),
    T.zeros([32], { device }),
    T.mul(T.randn([64, 32, 3, 3], { device }), 0.05),
    T.zeros([64], { device }),
    T.mul(T.randn([10, 64 * 32 * 32], { device }), 0.004),
    T.zeros([10], { device }),
  ]).map((p) => T.keep(p).requiresGrad_(true));
  const [w1, b1, w2, b2, w3, b3] = params;
  const x = T.keep(T.randn([8, 3, 64, 64], { device }));
  const y = T.keep(T.randint(0, 10, [8, 1], { device }));
  return async () => {
    const loss = T.tidy(() => {
      let h = T.relu(T.conv2d(x, w1, b1, { padding: 1 }));
      h = T.relu(T.conv2d(h, w2, b2, { padding: 1 }));
      h = T.maxPool2d(h, 2);
      const logits = T.linear(T.flatten(h, 1), w3, b3);
      return T.neg(T.mean(T.gather(T.logSoftmax(logits, 1), 1, y)));
    });
    loss.backward();
    T.noGrad(() => T.tidy(() => params.forEach((p) => p.assign(T.sub(p, T.mul(p.grad!, 0.01))))));
    params.forEach((p) => p.zeroGrad());
    await loss.item(); // the one readback a training loop does
    loss.dispose();
  };
}

/** ResNet-34 stem..layer3 (the anomaly-detection encoder) on a batch of 8 at 256×256, eval mode. */
function resnetForward(device: Device): () => void {
  const model = resnet34({ features: ["layer1", "layer2", "layer3"], device });
  model.eval();
  const x = T.keep(T.randn([8, 3, 256, 256], { device }));
  return () => {
    const out = T.noGrad(() => T.tidy(() => model.forward(x)));
    for (const t of Object.values(out)) t?.dispose();
  };
}

/**
 * Loading a full torchvision resnet34 state dict (87 MB) from `RESNET34_PTH` or bench/data/resnet34.pth
 * (make it with `/usr/bin/python3 tools/gen_bench_weights.py`; it is not committed).
 */
async function pthLoadMs(): Promise<number> {
  const path = Deno.env.get("RESNET34_PTH") ?? new URL("./data/resnet34.pth", import.meta.url).pathname;
  try {
    await Deno.stat(path);
  } catch {
    throw new Error(`${path} not found: run /usr/bin/python3 tools/gen_bench_weights.py (needs PyTorch)`);
  }
  const times: number[] = [];
  for (let i = 0; i <= REPEATS; i++) {
    const t0 = performance.now();
    const sd = await loadPthStateDict(path);
    const ms = performance.now() - t0;
    if (sd.size !== 218) throw new Error(`${path}: expected 218 entries, got ${sd.size}`);
    if (i > 0) times.push(ms);
  }
  times.sort((a, b) => a - b);
  return middle(times);
}

/** Selective scan at the decoder's widest size: batch b, D = 1024, L = 4096, N = 16, G = 8, D/deltaBias/softplus. */
const sscan = { d: 1024, l: 4096, n: 16, g: 8 };

function sscanInputs(device: Device, b: number, l = sscan.l, requiresGrad = false): T.Tensor[] {
  const { d, n, g } = sscan;
  return T.tidy(() => [
    T.randn([b, d, l], { device }),
    T.mul(T.randn([b, d, l], { device }), 0.5),
    T.neg(T.exp(T.mul(T.randn([d, n], { device }), 0.5))),
    T.randn([b, g, n, l], { device }),
    T.randn([b, g, n, l], { device }),
    T.randn([d], { device }),
    T.mul(T.randn([d], { device }), 0.5),
  ]).map((t) => T.keep(t).requiresGrad_(requiresGrad));
}

function sscanForward(device: Device, b: number, fused = true, l = sscan.l): () => void {
  const [u, delta, A, B, C, D, deltaBias] = sscanInputs(device, b, l);
  const f = fused ? selectiveScan : selectiveScanReference;
  return () => T.noGrad(() => T.tidy(() => f(u, delta, A, B, C, { D, deltaBias, deltaSoftplus: true }))).dispose();
}

function sscanForwardBackward(device: Device, b: number): () => Promise<void> {
  const xs = sscanInputs(device, b, sscan.l, true);
  const [u, delta, A, B, C, D, deltaBias] = xs;
  const r = T.keep(T.randn([b, sscan.d, sscan.l], { device }));
  return async () => {
    const y = T.tidy(() => selectiveScan(u, delta, A, B, C, { D, deltaBias, deltaSoftplus: true }));
    y.backward(r);
    y.dispose();
    await T.getBackend(device).sync();
    xs.forEach((x) => x.zeroGrad());
  };
}

/** With --profile: one more pass of `pass` profiled per kernel (on WebGPU also its GPU execution time). */
async function profilePass(label: string, device: Device, pass: () => Promise<void>): Promise<void> {
  if (!args.values.profile) return;
  const t0 = performance.now();
  const prof = await profileKernels(T.getBackend(device), pass);
  log(`profile of ${label} (${device}${device === "webgpu" ? ": host recording time" : ""}):`);
  log(formatProfile(prof, performance.now() - t0));
  if (device === "webgpu") {
    const g0 = performance.now();
    const gpuProf = await profileGpu(T.getBackend(device), pass);
    log(`profile of ${label} (webgpu: GPU execution time per backend call/kernel, one pass per dispatch):`);
    log(formatProfile(gpuProf, performance.now() - g0));
  }
}

/** Images/s of `pass` over a batch of 8: median of `repeats` passes after a warm-up; with --profile, one more pass profiled. */
async function imagesPerS(label: string, device: Device, pass: () => Promise<void>, repeats = 2): Promise<number> {
  const ms = await median(device, pass, repeats);
  await profilePass(label, device, pass);
  return 8000 / ms;
}

const results: Record<string, number> = {};
async function run(key: string, fn: () => Promise<number>): Promise<void> {
  if (only && !only.includes(key)) return;
  try {
    const v = await fn();
    // four significant figures (0.032 img/s and 130251 ms alike)
    results[key] = Number(Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(4));
    log(`${key}: ${results[key]}`);
  } catch (e) {
    log(`${key}: failed: ${(e as Error).message}`);
    results[key] = NaN;
  }
}

const gflops = (flops: number, ms: number) => flops / (ms * 1e6);
let gpu = false;
try {
  const b = await T.initWebGPU();
  gpu = true;
  log(`webgpu adapter: ${(b as unknown as { adapterName?: string }).adapterName ?? "ok"}`);
} catch (e) {
  log(`webgpu unavailable: ${(e as Error).message}`);
}
log(`openblas: ${blasAvailable() ? "loaded" : "not found"}`);

if (gpu) {
  await run(
    "matmul1024_gflops_webgpu",
    async () => gflops(2 * 1024 ** 3, await median("webgpu", matmulBench("webgpu", 1024))),
  );
}
await run("matmul1024_gflops_cpu", async () => gflops(2 * 1024 ** 3, await median("cpu", matmulBench("cpu", 1024))));
await run("matmul1024_gflops_cpu_noblas", async () => {
  setBlasEnabled(false);
  try {
    return gflops(2 * 1024 ** 3, await median("cpu", matmulBench("cpu", 1024), 3));
  } finally {
    setBlasEnabled(true);
  }
});
if (gpu) {
  await run(
    "conv3x3_b8_c64_64px_fwd_gflops_webgpu",
    async () => gflops(convFlops, await median("webgpu", convForward("webgpu"))),
  );
}
await run("conv3x3_b8_c64_64px_fwd_gflops_cpu", async () => gflops(convFlops, await median("cpu", convForward("cpu"))));
if (gpu) {
  await run("conv3x3_b8_c64_64px_bwd_ms_webgpu", () => convBackwardMs("webgpu"));
  await run("dwconv3x3_b8_c256_64px_fwd_ms_webgpu", () => median("webgpu", dwconvForward("webgpu")));
  await run("dwt_iwt_b8_c64_64px_ms_webgpu", () => {
    const x = T.keep(T.randn([8, 64, 64, 64], { device: "webgpu" }));
    return median("webgpu", () => T.tidy(() => iwt(dwt(x))).dispose());
  });
  await run(
    "silu_16m_gbps_webgpu",
    async () => (2 * 4 * 16 * 1024 * 1024) / ((await median("webgpu", siluBench("webgpu"))) * 1e6),
  );
  await run("smallcnn_train_step_ms_webgpu", () => median("webgpu", smallCnnStep("webgpu")));
}
await run("smallcnn_train_step_ms_cpu", () => median("cpu", smallCnnStep("cpu")));

if (gpu) await run("resnet34_l3_b8_256px_fwd_ms_webgpu", () => median("webgpu", resnetForward("webgpu"), 2));
await run("resnet34_l3_b8_256px_fwd_ms_cpu", () => median("cpu", resnetForward("cpu"), 3));
await run("pth_load_resnet34_ms", pthLoadMs);

if (gpu) {
  await run("sscan_fwd_ms_webgpu", () => median("webgpu", sscanForward("webgpu", 8), 2));
  await run("sscan_fwdbwd_ms_webgpu", () => median("webgpu", sscanForwardBackward("webgpu", 8), 1));
  // The unfused reference materialises (batch, D, L, N) tensors (2 GiB each at batch 8), over the storage
  // binding limit: it runs at batch 1 and L = 512 and the time is scaled by 8 · 8 (linear in batch and L).
  await run("sscan_unfused_fwd_ms_webgpu_estimated", async () => {
    log("sscan_unfused_fwd_ms_webgpu_estimated: measured at batch 1, L = 512 and scaled ×64 (full size does not fit)");
    return 64 * await median("webgpu", sscanForward("webgpu", 1, false, 512), 1);
  });
}
await run("sscan_fwd_ms_cpu_b1", () => median("cpu", sscanForward("cpu", 1), 1));

if (args.values.models) {
  const devices: Device[] = gpu ? ["webgpu", "cpu"] : ["cpu"];
  for (const device of devices) {
    for (const [name, key] of [["wave_mambaad", "wave"], ["mambaad", "mambaad"]] as const) {
      if (device === "webgpu") {
        // a lavapipe training step at 256² takes many minutes: the software adapter keeps the 128² figure
        await run(
          `${key}_train_step_b8_128px_ms_webgpu`,
          async () => {
            const pass = await modelTrainStep(name, device, 128);
            const ms = await median(device, pass, 1);
            await profilePass(`${key} training step b8 128²`, device, pass);
            return ms;
          },
        );
      } else {
        await run(
          `${key}_train_b8_256px_imgs_per_s_cpu`,
          async () => imagesPerS(`${key} training step b8 256²`, device, await modelTrainStep(name, device, 256)),
        );
      }
      await run(`${key}_infer_b8_256px_imgs_per_s_${device}`, async () => {
        T.resetPeakMemory();
        const v = await imagesPerS(`${key} inference b8 256²`, device, await modelInferPass(name, device), 2);
        // the most bytes held by live tensors at any point of the passes (weights and the input included)
        results[`${key}_infer_peak_mb_${device}`] = Number((T.memoryStats()[device]!.peakBytes / 2 ** 20).toFixed(1));
        return v;
      });
      if (device === "cpu") {
        await run(
          `${key}_infer_notidy_b8_256px_imgs_per_s_cpu`,
          async () =>
            imagesPerS(`${key} inference b8 256² without tidy`, device, await modelInferPass(name, device, false), 2),
        );
      }
    }
  }
}

// ---- WebGPU section (issue 12): dispatch counts and host time per dispatch ----------------------------------
/**
 * Median host microseconds to record one dispatch (uniforms, bind group, encoding; `queue.submit` excluded: on a
 * software adapter it runs the kernels) over the dispatches of Wave-MambaAD inference passes at batch 1, 64².
 */
async function webgpuHostUsPerDispatch(): Promise<number> {
  const rt = (T.getBackend("webgpu") as unknown as { runtime: WebGPURuntime }).runtime;
  T.manualSeed(42);
  const model = await createModel("wave_mambaad", { imageSize: 64 }, { device: "webgpu" });
  model.eval();
  const x = T.keep(T.randn([1, 3, 64, 64], { device: "webgpu" }));
  const times: number[] = [];
  for (let r = 0; r < 3; r++) {
    rt.hostTimes = r > 0 ? times : null; // the first pass compiles the pipelines
    const res = T.noGrad(() => T.tidy(() => model.anomalyMap(model.forward(x))));
    await res.score.data();
    res.map.dispose();
    res.score.dispose();
  }
  rt.hostTimes = null;
  x.dispose();
  times.sort((a, b) => a - b);
  return middle(times);
}

/**
 * Tallies the dispatches of `rt` by the backend call that made them and the kernel's label (a lazy input computed
 * by a kernel shows up as `call/fused`): where the dispatches of a model go. Counts restart with `resetCounters`.
 */
function dispatchHistogram(rt: WebGPURuntime): { report(title: string): string; stop(): void } {
  const backend = T.getBackend("webgpu") as unknown as Record<string, unknown>;
  const counts = new Map<string, number>();
  const callCounts = new Map<string, number>();
  const calls: string[] = [];
  const originals = new Map<string, unknown>();
  for (const key of Object.keys(backend)) {
    const f = backend[key];
    if (typeof f !== "function") continue;
    originals.set(key, f);
    backend[key] = (...a: unknown[]) => {
      // elementwise families are split by op, as in the profile
      const name = key === "unary" || key === "binary" || key === "reduce" ? `${key}:${a[0]}` : key;
      calls.push(name);
      callCounts.set(name, (callCounts.get(name) ?? 0) + 1);
      try {
        return (f as (...a: unknown[]) => unknown)(...a);
      } finally {
        calls.pop();
      }
    };
  }
  const dispatch = rt.dispatch;
  rt.dispatch = (d) => {
    if (d.groups.every((g) => g > 0)) {
      const key = `${calls.at(-1) ?? "(outside a kernel call)"}${d.label ? `/${d.label}` : ""}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    dispatch.call(rt, d);
  };
  const resetCounters = rt.resetCounters;
  rt.resetCounters = () => {
    counts.clear();
    callCounts.clear();
    resetCounters.call(rt);
  };
  return {
    report(title) {
      const rows = [...counts].sort((a, b) => b[1] - a[1]);
      const total = rows.reduce((s, [, n]) => s + n, 0);
      const row = ([k, n]: [string, number]) => {
        const c = callCounts.get(k.split("/")[0]);
        return `  ${String(n).padStart(6)}  ${k}${c !== undefined && !k.includes("/") ? ` (${c} calls)` : ""}`;
      };
      return [`dispatches of ${title}: ${total}`, ...rows.map(row)].join("\n");
    },
    stop() {
      for (const [key, f] of originals) backend[key] = f;
      delete (rt as { dispatch?: unknown }).dispatch;
      delete (rt as { resetCounters?: unknown }).resetCounters;
    },
  };
}

/**
 * Kernel dispatches of one inference pass (features + anomaly map) or one AdamW training step (clipping included;
 * the second step, so that work the first left lazy is counted) at batch 1, 256².
 */
async function webgpuDispatches(name: ModelName, train: boolean): Promise<number> {
  const rt = (T.getBackend("webgpu") as unknown as { runtime: WebGPURuntime }).runtime;
  T.manualSeed(42);
  const model = await createModel(name, { imageSize: 256 }, { device: "webgpu" });
  const x = T.keep(T.randn([1, 3, 256, 256], { device: "webgpu" }));
  await rt.sync();
  // counting mode: dispatches are counted, not run (the dispatch list does not depend on the data); kernels are
  // chosen as on a hardware adapter (split scans), which the targets are about, whatever adapter counts them
  rt.countOnly = true;
  const software = rt.software;
  rt.software = false;
  const histogram = args.values.histogram ? dispatchHistogram(rt) : null;
  try {
    rt.resetCounters();
    if (train) {
      model.train();
      const opt = new T.AdamW(T.decayGroups(model.namedParameters(), 1e-4), { lr: 5e-3 });
      // the second step is counted: it also pays for whatever the first step left lazy (optimiser state)
      for (let step = 0; step < 2; step++) {
        rt.resetCounters();
        await trainStep(model, opt, x);
      }
      opt.disposeState();
    } else {
      model.eval();
      const res = T.noGrad(() => T.tidy(() => model.anomalyMap(model.forward(x))));
      await res.score.data();
      res.map.dispose();
      res.score.dispose();
    }
    if (histogram) log(histogram.report(`${name} ${train ? "training step" : "inference"} b1 256²`));
    return rt.dispatchCount;
  } finally {
    histogram?.stop();
    rt.countOnly = false;
    rt.software = software;
    x.dispose();
  }
}

if (gpu) {
  await run("webgpu_host_us_per_dispatch", webgpuHostUsPerDispatch);
  if (args.values.models) {
    for (const [name, key] of [["wave_mambaad", "wave"], ["mambaad", "mambaad"]] as const) {
      await run(`${key}_infer_dispatches_b1_256px`, () => webgpuDispatches(name, false));
      await run(`${key}_train_dispatches_b1_256px`, () => webgpuDispatches(name, true));
    }
  }
}
// ---- end of the WebGPU section --------------------------------------------------------------------------------

if (args.values.json) console.log(JSON.stringify(results));
else for (const [k, v] of Object.entries(results)) console.log(`${k}\t${v}`);
