/**
 * The library imports from anywhere: a script in a temporary folder, outside the project, imports mod.ts by its
 * absolute file URL and runs with `--no-config` (so our deno.json and its import map are not seen), once with the
 * lock file off as well. Every npm package the library uses must therefore be named with a full `npm:` specifier.
 */
import assert from "node:assert/strict";

const MOD = new URL("../mod.ts", import.meta.url).href;

const SCRIPT = `
import * as wm from ${JSON.stringify(MOD)};
const t = wm.tensor([1, 2, 3, 4], { shape: [2, 2] });
const s = wm.sum(wm.mul(t, t));
console.log("sum of squares", await s.item());
// fast-png, from npm without our import map: encode a 2×2 image, decode it back through loadImage
const png = await wm.encodePng({ width: 2, height: 2, data: new Uint8Array(12).fill(128) });
await Deno.writeFile("grey.png", png);
const img = await wm.loadImage("grey.png", 2);
console.log("png pixels", img.length);
`;

async function runOutside(extraArgs: string[]): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "wm_import_" });
  try {
    const script = `${dir}/use_library.ts`;
    await Deno.writeTextFile(script, SCRIPT);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", ...extraArgs, "-A", script],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `deno run --no-config ${extraArgs.join(" ")} from ${dir} failed:\n${text.slice(-4000)}`);
    return text;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("mod.ts imports from a script outside the project (deno run --no-config)", async () => {
  const text = await runOutside([]);
  assert.match(text, /sum of squares 30\b/);
  assert.match(text, /png pixels 12\b/);
});

Deno.test("mod.ts imports from a script outside the project (deno run --no-config --no-lock)", async () => {
  const text = await runOutside(["--no-lock"]);
  assert.match(text, /sum of squares 30\b/);
});
