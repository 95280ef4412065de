/**
 * `deno task info -- --model NAME [--variant V] [--size 256] [--batch 1] [--device D] [--skip-speed] [--json]`:
 * the paper's Table 2 columns for a model — parameters (total, trainable, the paper's count), GFLOPs
 * (fvcore-equivalent MACs of one image), and, unless `--skip-speed`, inference images/s and peak device memory
 * of one batch (forward + anomaly maps, no gradient; one warm-up pass, then the median of `--iters` passes).
 *
 * @module
 */

import type { Device } from "../autodiff/backend.ts";
import { getBackend } from "../autodiff/device.ts";
import { memoryStats, resetPeakMemory } from "../autodiff/memory.ts";
import { randn } from "../autodiff/ops/creation.ts";
import { keep, noGrad, tidy } from "../autodiff/tensor.ts";
import type { AnomalyModel } from "../models/common/anomaly_model.ts";
import { countFlops } from "../models/common/flops.ts";
import { createModel, modelNames, paramCounts, variantNames } from "../models/registry.ts";
import {
  checkModelFlags,
  DEVICE_FLAG,
  type FlagTable,
  HELP_FLAG,
  intFlag,
  JSON_FLAG,
  parseFlags,
  printJson,
  resolveDevice,
  UsageError,
  usageText,
} from "./common.ts";

/** The flags of `info`, from which its usage text is generated. */
export const INFO_FLAGS = {
  model: { type: "string", arg: "NAME", help: `${modelNames().join("|")} (required)` },
  variant: { type: "string", arg: "NAME", help: "model preset (default: official)" },
  size: { type: "string", arg: "N", help: "image size (default 256)" },
  batch: { type: "string", arg: "N", help: "batch of the speed measurement (default 1)" },
  iters: { type: "string", arg: "N", help: "timed passes (default 1, after one warm-up)" },
  device: DEVICE_FLAG,
  "skip-speed": { type: "boolean", default: false, help: "parameters and FLOPs only" },
  json: JSON_FLAG,
  help: HELP_FLAG,
} as const satisfies FlagTable;

/** Usage text of `info`, generated from {@linkcode INFO_FLAGS}. */
export const INFO_USAGE: string = usageText("usage: deno task info -- --model NAME [options]", INFO_FLAGS);

/** Images/s and peak memory of inference (features + maps) on a batch of `batch` random images. */
export async function measureInference(
  model: AnomalyModel,
  device: Device,
  batch: number,
  iters: number,
): Promise<{ imagesPerS: number; peakMb: number; msPerBatch: number }> {
  const s = model.imageSize;
  const x = keep(randn([batch, 3, s, s], { device }));
  const backend = getBackend(device);
  const pass = async () => {
    const r = noGrad(() => tidy(() => model.anomalyMap(model.forward(x))));
    await r.score.data();
    r.map.dispose();
    r.score.dispose();
  };
  try {
    await pass(); // warm-up: kernels compiled, pools filled
    await backend.sync();
    resetPeakMemory();
    const times: number[] = [];
    for (let i = 0; i < iters; i++) {
      const t0 = performance.now();
      await pass();
      await backend.sync();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const ms = times[Math.floor(times.length / 2)];
    // peak live bytes of the device during the timed passes: weights + activations (pooled spares excluded)
    const peak = memoryStats()[device]?.peakBytes ?? 0;
    return { imagesPerS: (1000 * batch) / ms, peakMb: peak / 2 ** 20, msPerBatch: ms };
  } finally {
    x.dispose();
  }
}

/** The `info` command; returns the printed record. */
export async function infoCommand(args: string[]): Promise<Record<string, unknown>> {
  const { values } = parseFlags("info", args, INFO_FLAGS);
  if (values.help) {
    console.log(INFO_USAGE);
    return {};
  }
  if (!values.model) throw new UsageError(`info: --model NAME is required (${modelNames().join(", ")})`);
  const size = values.size === undefined ? undefined : intFlag("info", "size", values.size, 256);
  const name = checkModelFlags("info", values.model, values.variant, size);
  const variant = values.variant ?? variantNames(name)[0];
  const batch = intFlag("info", "batch", values.batch, 1);
  const iters = intFlag("info", "iters", values.iters, 1);
  const speed = !values["skip-speed"];
  const device = speed ? await resolveDevice("info", values.device, (m) => console.error(m)) : "cpu";
  const model = await createModel(name, size === undefined ? {} : { imageSize: size }, { variant, device });
  try {
    model.eval();
    const counts = paramCounts(model);
    const s = model.imageSize;
    const x = randn([1, 3, s, s], { device });
    const flops = noGrad(() => countFlops(model, () => tidy(() => model.forward(x))));
    x.dispose();
    const record: Record<string, unknown> = {
      model: name,
      variant,
      image_size: s,
      params_total: counts.total,
      params_trainable: counts.trainable,
      params_scan_index: counts.scanIndex,
      params_paper_count: counts.paperCount,
      gflops: flops.total / 1e9,
      gflops_definition:
        "macs: fvcore-0.1.5-equivalent count of one 1x3xSxS forward in eval mode (1 FLOP = 1 MAC; selective scan 0)",
      flops_by_op: flops.byOp,
      flops_by_top_level_module: flops.byTopLevelModule,
    };
    if (speed) {
      const r = await measureInference(model, device, batch, iters);
      Object.assign(record, {
        device,
        batch,
        infer_images_per_s: r.imagesPerS,
        infer_ms_per_batch: r.msPerBatch,
        peak_memory_mb: r.peakMb,
        peak_memory_definition: "most bytes held by live tensors during a timed inference pass (weights included)",
      });
    }
    if (values.json) printJson(record);
    else {
      console.log(`${name} (${variant}) at ${s}x${s}`);
      console.log(`  params: ${counts.total} total, ${counts.trainable} trainable, ${counts.scanIndex} scan-index`);
      console.log(`  params (paper count, incl. scan-index tables): ${counts.paperCount}`);
      console.log(`  GFLOPs (MACs / 1e9, fvcore-equivalent): ${(flops.total / 1e9).toFixed(3)}`);
      if (speed) {
        console.log(
          `  inference on ${device}, batch ${batch}: ${(record.infer_images_per_s as number).toFixed(3)} images/s, ` +
            `peak memory ${(record.peak_memory_mb as number).toFixed(1)} MB`,
        );
      }
    }
    return record;
  } finally {
    model.dispose();
  }
}
