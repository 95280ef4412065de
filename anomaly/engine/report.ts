/**
 * Results tables: Markdown for the terminal, CSV and JSON files. Every table names what it measured (model,
 * variant, dataset, metric path, epochs, seed), as docs/architecture.md, "Contracts", asks; numbers are ×100 with one
 * decimal in the Markdown table (as the papers print them) and raw fractions in CSV and JSON.
 *
 * @module
 */

import { join } from "node:path";
import type { ClassMetrics } from "../metrics/evaluate.ts";
import type { EvaluationResult } from "./evaluate.ts";

/** What a results table is about. */
export interface RunInfo {
  /** Model registry name. */
  model: string;
  /** Model preset. */
  variant: string;
  /** Dataset kind and root, e.g. "mvtec (/data/mvtec)". */
  dataset: string;
  /** Epochs the model was trained for. */
  epochs: number;
  /** Seed of the run. */
  seed: number;
  /** Image size. */
  imageSize: number;
  /** Whether the encoder had real (pretrained) weights. */
  encoder: string;
}

/** The metric columns, in the papers' order, with their short headers. */
export const METRIC_COLUMNS: readonly (readonly [keyof ClassMetrics, string])[] = [
  ["image_auroc", "I-AUROC"],
  ["image_ap", "I-AP"],
  ["image_f1max", "I-F1max"],
  ["pixel_auroc", "P-AUROC"],
  ["pixel_ap", "P-AP"],
  ["pixel_f1max", "P-F1max"],
  ["pixel_aupro", "AU-PRO"],
  ["mad", "mAD"],
];

function title(run: RunInfo, metricPath: string): string {
  return `${run.model} (${run.variant}) on ${run.dataset}, ${run.imageSize}px, ${run.epochs} epochs, seed ${run.seed}, ` +
    `encoder ${run.encoder}, metric path ${metricPath}`;
}

const pct = (v: number) => (Number.isFinite(v) ? (100 * v).toFixed(1) : "n/a");

/** The results as a Markdown table (one row per class and the mean), values ×100. */
export function markdownTable(run: RunInfo, res: EvaluationResult): string {
  const head = ["class", ...METRIC_COLUMNS.map(([, h]) => h)];
  const rows = Object.entries(res.perClass).map(([cls, m]) => [cls, ...METRIC_COLUMNS.map(([k]) => pct(m[k]))]);
  rows.push(["**mean**", ...METRIC_COLUMNS.map(([k]) => `**${pct(res.mean[k])}**`)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [
    `**${title(run, res.metricPath)}**`,
    "",
    line(head),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...rows.map(line),
  ].join("\n");
}

/** The results as CSV: a header comment naming the run, then one row per class and the mean (fractions). */
export function csvTable(run: RunInfo, res: EvaluationResult): string {
  const cols = METRIC_COLUMNS.map(([k]) => k);
  const esc = (s: string) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
  const lines = [
    ["model", "variant", "dataset", "metric_path", "epochs", "seed", "image_size", "class", ...cols].join(","),
  ];
  const prefix = [run.model, run.variant, run.dataset, res.metricPath, String(run.epochs), String(run.seed)]
    .concat(String(run.imageSize)).map(esc);
  for (const [cls, m] of Object.entries(res.perClass)) {
    lines.push([...prefix, esc(cls), ...cols.map((k) => String(m[k]))].join(","));
  }
  lines.push([...prefix, "mean", ...cols.map((k) => String(res.mean[k]))].join(","));
  return lines.join("\n") + "\n";
}

/** The JSON results object: the class means as top-level fractions, the run's description and `per_class`. */
export function resultsJson(run: RunInfo, res: EvaluationResult): Record<string, unknown> {
  return {
    model: run.model,
    variant: run.variant,
    dataset: run.dataset,
    epochs: run.epochs,
    seed: run.seed,
    image_size: run.imageSize,
    encoder: run.encoder,
    ...res.mean,
    metric_path: res.metricPath,
    per_class: res.perClass,
    counts: res.counts,
    skipped: res.skipped,
    eval_images_per_s: res.imagesPerS,
  };
}

/** Writes `results_<metric path>.{md,csv,json}` into `dir`; returns the three paths. */
export async function writeResults(dir: string, run: RunInfo, res: EvaluationResult): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const base = join(dir, `results_${res.metricPath}`);
  await Deno.writeTextFile(`${base}.md`, markdownTable(run, res) + "\n");
  await Deno.writeTextFile(`${base}.csv`, csvTable(run, res));
  await Deno.writeTextFile(`${base}.json`, JSON.stringify(resultsJson(run, res), null, 1) + "\n");
  return [`${base}.md`, `${base}.csv`, `${base}.json`];
}
