/**
 * The command line: `deno task <command> -- [options]` (DESIGN.md). This file currently implements `info`:
 *
 *     deno task info -- --model mambaad|wave_mambaad [--variant <preset>] [--size 256] [--json]
 *
 * builds the model through the registry and prints its parameter counts and its fvcore-equivalent MACs at
 * the given image size; with `--json` the last line is one JSON object:
 * `{model, variant, image_size, params_total, params_trainable, params_scan_index, params_paper_count, gflops,
 * gflops_definition, flops_by_op, flops_by_top_level_module}`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { noGrad, tidy } from "./autodiff/tensor.ts";
import { randn } from "./autodiff/ops/creation.ts";
import { countFlops } from "./models/common/flops.ts";
import { createModel, modelNames, paramCounts, variantNames } from "./models/registry.ts";
import type { ModelName } from "./models/registry.ts";

const USAGE = `usage: deno task info -- --model <${modelNames().join("|")}> [--variant <preset>] [--size 256] [--json]`;

/** The `info` command: parameter counts and GFLOPs (MACs / 1e9) of a model; returns the printed record. */
export async function info(args: string[]): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: args[0] === "--" ? args.slice(1) : args, // `deno task info -- …` passes the "--" through
    options: {
      model: { type: "string" },
      variant: { type: "string" },
      size: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return {};
  }
  if (!values.model) throw new Error(`info: --model is required\n${USAGE}`);
  const name = values.model;
  if (!(modelNames() as string[]).includes(name)) {
    throw new Error(`info: unknown model "${name}" (known models: ${modelNames().join(", ")})`);
  }
  const variant = values.variant ?? variantNames(name as ModelName)[0];
  const size = values.size === undefined ? undefined : Number(values.size);
  if (size !== undefined && !(Number.isInteger(size) && size > 0)) {
    throw new Error(`info: --size must be a positive integer, got "${values.size}"`);
  }
  const model = await createModel(name, size === undefined ? {} : { imageSize: size }, { variant });
  try {
    model.eval();
    const counts = paramCounts(model);
    const s = model.imageSize;
    const x = randn([1, 3, s, s]);
    const flops = noGrad(() => countFlops(model, () => tidy(() => model.forward(x))));
    x.dispose();
    const record = {
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
    if (values.json) console.log(JSON.stringify(record));
    else {
      console.log(`${name} (${variant}) at ${s}x${s}`);
      console.log(`  params: ${counts.total} total, ${counts.trainable} trainable, ${counts.scanIndex} scan-index`);
      console.log(`  params (paper count, incl. scan-index tables): ${counts.paperCount}`);
      console.log(`  GFLOPs (MACs / 1e9, fvcore-equivalent): ${(flops.total / 1e9).toFixed(3)}`);
    }
    return record;
  } finally {
    model.dispose();
  }
}

const COMMANDS: Record<string, (args: string[]) => Promise<unknown>> = { info };

if (import.meta.main) {
  const [command, ...rest] = Deno.args;
  const run = command ? COMMANDS[command] : undefined;
  if (!run) {
    console.error(`unknown command "${command ?? ""}" (known commands: ${Object.keys(COMMANDS).join(", ")})`);
    Deno.exit(2);
  }
  try {
    await run(rest);
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(1);
  }
}
