/**
 * The command line (docs/architecture.md): `deno task <command> -- [options]`, one module per command in `cli/`.
 *
 *     deno task train -- --data DIR [--model wave_mambaad] [--epochs 100] … [--json]
 *     deno task eval  -- --checkpoint FILE [--metric-path adeval|exact] [--save-maps DIR] [--json]
 *     deno task infer -- --checkpoint FILE IMAGE... [--json]
 *     deno task info  -- --model wave_mambaad|mambaad [--variant V] [--size 256] [--json]
 *     deno task demo  [-- --json]
 *
 * With `--json` the last line of stdout is one JSON object. Errors print one clear message and exit non-zero:
 * 2 for a usage error (an unknown command, flag, model or variant, a bad flag value such as a size the model
 * cannot take), 1 for anything else (a missing or unreadable file, an earlier run in the way, a failed run).
 * Every command's usage text is generated from its flag table (`cli/common.ts` `usageText`).
 *
 * @module
 */

import { UsageError } from "./cli/common.ts";
import { demoCommand } from "./cli/demo.ts";
import { evalCommand } from "./cli/eval.ts";
import { inferCommand } from "./cli/infer.ts";
import { infoCommand } from "./cli/info.ts";
import { trainCommand } from "./cli/train.ts";

/** The `info` command (kept under this name for library users). */
export const info: (args: string[]) => Promise<Record<string, unknown>> = infoCommand;

/** Every command by name. */
export const COMMANDS: Record<string, (args: string[]) => Promise<Record<string, unknown>>> = {
  train: trainCommand,
  eval: evalCommand,
  infer: inferCommand,
  info: infoCommand,
  demo: demoCommand,
};

/** Runs `command` with `args`; returns the exit code (errors are printed, not thrown). */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  const run = command ? COMMANDS[command] : undefined;
  if (!run) {
    console.error(`unknown command "${command ?? ""}" (known commands: ${Object.keys(COMMANDS).join(", ")})`);
    return 2;
  }
  try {
    await run(rest);
    return 0;
  } catch (e) {
    const err = e as Error;
    console.error(`error: ${err.message}`);
    if (Deno.env.get("WAVEMAMBA_DEBUG")) console.error(err.stack);
    if (!(err instanceof UsageError)) return 1;
    console.error(`(deno task ${command} -- --help lists the options)`);
    return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
