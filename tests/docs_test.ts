/**
 * Every `ts` code block in the documentation runs: the README, docs/*.md and the doc comments of the library's
 * modules are collected here (any file whose text holds a ```ts fence) and executed with `deno test --doc` in a
 * subprocess, so a new example anywhere is picked up without listing it.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
const SOURCE_DIRS = ["autodiff", "nn", "models", "anomaly", "cli"];

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) yield* walk(p);
    else if (e.isFile) yield p;
  }
}

async function documentedFiles(): Promise<string[]> {
  const files = [join(ROOT, "README.md"), join(ROOT, "mod.ts"), join(ROOT, "main.ts")];
  for await (const p of walk(join(ROOT, "docs"))) if (p.endsWith(".md")) files.push(p);
  for (const d of SOURCE_DIRS) for await (const p of walk(join(ROOT, d))) if (p.endsWith(".ts")) files.push(p);
  const out: string[] = [];
  for (const f of files) if (/```ts\b/.test(await Deno.readTextFile(f))) out.push(relative(ROOT, f));
  return out.sort();
}

Deno.test("every ts code block in the README, docs/ and doc comments runs (deno test --doc)", async () => {
  const files = await documentedFiles();
  assert.ok(files.includes("README.md") && files.includes("mod.ts"), `collected: ${files.join(", ")}`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--doc", ...files],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `deno test --doc ${files.join(" ")} failed:\n${text.slice(-4000)}`);
});
