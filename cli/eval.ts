/**
 * `deno task eval -- --checkpoint FILE --data DIR [options]`: anomaly maps and scores (docs/paper.md, decision 4) for
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
  applyMaxMegapixels,
  classList,
  datasetKind,
  DEVICE_FLAG,
  type FlagTable,
  HELP_FLAG,
  intFlag,
  JSON_FLAG,
  MAX_MEGAPIXELS_FLAG,
  metricPath,
  parseFlags,
  printJson,
  resolveDevice,
  UsageError,
  usageText,
} from "./common.ts";

/** The flags of `eval`, from which its usage text is generated. */
export const EVAL_FLAGS = {
  checkpoint: {
    type: "string",
    arg: "FILE",
    help: "a checkpoint written by train (its config rebuilds the model; required)",
  },
  dataset: { type: "string", arg: "mvtec|visa|mpdd|folder", help: "dataset layout (default: the checkpoint's)" },
  data: { type: "string", arg: "DIR", help: "dataset root (default: the checkpoint's)" },
  classes: { type: "string", arg: "a,b,c", help: "subset of classes (default: all)" },
  "metric-path": { type: "string", arg: "exact|adeval", help: "metric path (default adeval)" },
  batch: { type: "string", arg: "N", help: "images per forward (default 16)" },
  "pooling-ks": {
    type: "string",
    arg: "K",
    help: "average-pool the map (k×k, stride 1) before the max (default: none, as the official code)",
  },
  device: DEVICE_FLAG,
  out: { type: "string", arg: "DIR", help: "where the results files go (default: the checkpoint's folder)" },
  "save-maps": { type: "string", arg: "DIR", help: "write each anomaly map as .npy (S×S float32) plus scores.json" },
  "skip-bad": { type: "boolean", default: false, help: "skip unreadable images with a warning" },
  "max-megapixels": MAX_MEGAPIXELS_FLAG,
  json: JSON_FLAG,
  help: HELP_FLAG,
} as const satisfies FlagTable;

/** Usage text of `eval`, generated from {@linkcode EVAL_FLAGS}. */
export const EVAL_USAGE: string = usageText("usage: deno task eval -- --checkpoint FILE [options]", EVAL_FLAGS);

/** The `eval` command; returns the printed record. */
export async function evalCommand(args: string[]): Promise<Record<string, unknown>> {
  const { values: v } = parseFlags("eval", args, EVAL_FLAGS);
  if (v.help) {
    console.log(EVAL_USAGE);
    return {};
  }
  if (!v.checkpoint) throw new UsageError("eval: --checkpoint FILE is required");
  // every flag is checked before the model is built
  const log = (m: string) => console.error(m);
  const kindFlag = v.dataset ? datasetKind("eval", v.dataset) : undefined;
  const path = metricPath("eval", v["metric-path"]);
  const batchSize = intFlag("eval", "batch", v.batch, 16);
  const poolingKs = v["pooling-ks"] ? intFlag("eval", "pooling-ks", v["pooling-ks"], 1) : null;
  applyMaxMegapixels("eval", v["max-megapixels"]);
  const device = await resolveDevice("eval", v.device, log);
  const { model, config, epoch } = await loadTrainedModel(v.checkpoint, device);
  try {
    const kind = kindFlag ?? config.dataset;
    const root = v.data ?? config.dataRoot;
    const dataset = await openDataset(kind, root, { classes: classList(v.classes) });
    const res = await evaluate(model, dataset, {
      metricPath: path,
      batchSize,
      poolingKs,
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
