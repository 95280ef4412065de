/**
 * `deno task eval -- --checkpoint FILE --data DIR [options]`: anomaly maps and scores (PAPER.md decision 4) for
 * the test split of every class, the metrics of decision 5 on the chosen path per class and their mean, as a
 * Markdown table on the terminal plus `results_<path>.{md,csv,json}`; `--save-maps DIR` writes every map as
 * float32 `.npy` and `scores.json`.
 *
 * @module
 */

import { dirname } from "node:path";
import { openDataset } from "../anomaly/data/datasets.ts";
import { evaluate } from "../anomaly/engine/evaluate.ts";
import { markdownTable, resultsJson, type RunInfo, writeResults } from "../anomaly/engine/report.ts";
import { loadTrainedModel } from "../anomaly/engine/train.ts";
import {
  classList,
  datasetKind,
  intFlag,
  metricPath,
  parseFlags,
  printJson,
  resolveDevice,
  UsageError,
} from "./common.ts";

/** Usage text of `eval`. */
export const EVAL_USAGE = `usage: deno task eval -- --checkpoint FILE --data DIR [options]
  --checkpoint FILE       a checkpoint written by train (its config rebuilds the model)
  --dataset mvtec|visa|mpdd|folder   (default: the checkpoint's)
  --data DIR              dataset root (default: the checkpoint's)
  --classes a,b,c         subset of classes (default: all)
  --metric-path exact|adeval   (default adeval)
  --batch N               images per forward (default 16)
  --pooling-ks K          average-pool the map (k×k, stride 1) before the max (default: none, as the official code)
  --device cpu|webgpu|auto
  --out DIR               where the results files go (default: the checkpoint's folder)
  --save-maps DIR         write each anomaly map as .npy (S×S float32) plus scores.json
  --skip-bad              skip unreadable images with a warning
  --json                  print one JSON object as the last line`;

/** The `eval` command; returns the printed record. */
export async function evalCommand(args: string[]): Promise<Record<string, unknown>> {
  const { values: v } = parseFlags("eval", args, {
    checkpoint: { type: "string" },
    dataset: { type: "string" },
    data: { type: "string" },
    classes: { type: "string" },
    "metric-path": { type: "string" },
    batch: { type: "string" },
    "pooling-ks": { type: "string" },
    device: { type: "string" },
    out: { type: "string" },
    "save-maps": { type: "string" },
    "skip-bad": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
  if (v.help) {
    console.log(EVAL_USAGE);
    return {};
  }
  if (!v.checkpoint) throw new UsageError("eval: --checkpoint FILE is required");
  const log = (m: string) => console.error(m);
  const device = await resolveDevice("eval", v.device, log);
  const { model, config, epoch } = await loadTrainedModel(v.checkpoint, device);
  try {
    const kind = v.dataset ? datasetKind("eval", v.dataset) : config.dataset;
    const root = v.data ?? config.dataRoot;
    const dataset = await openDataset(kind, root, { classes: classList(v.classes) });
    const res = await evaluate(model, dataset, {
      metricPath: metricPath("eval", v["metric-path"]),
      batchSize: intFlag("eval", "batch", v.batch, 16),
      poolingKs: v["pooling-ks"] ? intFlag("eval", "pooling-ks", v["pooling-ks"], 1) : null,
      saveMapsDir: v["save-maps"],
      skipBad: v["skip-bad"],
      quiet: v.json,
    });
    const run: RunInfo = {
      model: config.model,
      variant: config.variant ?? "official",
      dataset: `${kind} (${root})`,
      epochs: epoch,
      seed: config.seed,
      imageSize: config.imageSize,
      encoder: config.encoderWeights ?? "random (no --encoder-weights at training)",
    };
    const files = await writeResults(v.out ?? dirname(v.checkpoint), run, res);
    (v.json ? console.error : console.log)(markdownTable(run, res));
    console.error(`results: ${files.join(", ")}`);
    const record = { ...resultsJson(run, res), files, maps: v["save-maps"] ?? null };
    if (v.json) printJson(record);
    return record;
  } finally {
    model.dispose();
  }
}
