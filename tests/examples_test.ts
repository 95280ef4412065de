/**
 * The teaching examples run as a newcomer would run them (`deno run -A examples/<name>.ts --out DIR`): each exits
 * with 0 and writes its pictures as valid PNG files, and train_tiny really learns (final loss below half the first)
 * on the CPU and, when an adapter exists, on WebGPU.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Device } from "../autodiff/backend.ts";
import { testDevices } from "./util.ts";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Runs `examples/<name>.ts` with `--out tmp` and `extra` flags; returns stdout, failing on a non-zero exit. */
async function runExample(name: string, out: string, extra: string[] = []): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `examples/${name}.ts`, "--out", out, ...extra],
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout);
  assert.equal(code, 0, `examples/${name}.ts exited with ${code}:\n${text}\n${new TextDecoder().decode(stderr)}`);
  return text;
}

/** A PNG file: the 8-byte signature, an IHDR chunk first, a picture of at least `minSide` pixels a side. */
async function assertPng(path: string, minSide = 200): Promise<void> {
  const bytes = await Deno.readFile(path);
  assert.ok(bytes.length > 10_000, `${path}: only ${bytes.length} bytes, expected a real picture`);
  assert.deepEqual([...bytes.subarray(0, 8)], PNG_SIGNATURE, `${path}: not a PNG (bad signature)`);
  assert.equal(new TextDecoder().decode(bytes.subarray(12, 16)), "IHDR", `${path}: the first chunk is not IHDR`);
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const width = view.getUint32(16), height = view.getUint32(20);
  assert.ok(width >= minSide && height >= minSide, `${path}: ${width}×${height} is too small`);
}

Deno.test("examples/scan_orders.ts draws every scan order and prints the 8×8 sequences", async () => {
  const out = await Deno.makeTempDir();
  const stdout = await runExample("scan_orders", out);
  await assertPng(join(out, "scan_orders.png"));
  // 6 single orders + MambaAD's 8 directions, each followed by 64 indices on 4 lines
  assert.equal(stdout.match(/^MambaAD k\d/gm)?.length, 8, stdout);
  assert.match(stdout, /^row-major — rowMajor\n {3}0 {2}1 {2}2/m);
  await Deno.remove(out, { recursive: true });
});

Deno.test("examples/ssm_response.ts plots the responses, and the gated state holds the written input", async () => {
  const out = await Deno.makeTempDir();
  const stdout = await runExample("ssm_response", out);
  await assertPng(join(out, "ssm_response.png"));
  const writes = [...stdout.matchAll(/u=(-?[\d.]+), held until the next write: y=(-?[\d.]+)/g)];
  assert.equal(writes.length, 4, stdout);
  for (const [, u, y] of writes) assert.ok(Math.abs(Number(u) - Number(y)) < 0.01, `held ${y} for written ${u}`);
  await Deno.remove(out, { recursive: true });
});

Deno.test("examples/wavelet_bands.ts shows the four bands and reconstructs the image", async () => {
  const out = await Deno.makeTempDir();
  const stdout = await runExample("wavelet_bands", out);
  await assertPng(join(out, "wavelet_bands.png"));
  const err = Number(stdout.match(/max abs error (\S+)/)?.[1]);
  assert.ok(err < 1e-5, `iwt(dwt(x)) error ${err}:\n${stdout}`);
  await Deno.remove(out, { recursive: true });
});

Deno.test("examples/custom_variant.ts trains the Hilbert-HH variant next to the default and prints both tables", async () => {
  const out = await Deno.makeTempDir();
  const stdout = await runExample("custom_variant", out, ["--epochs", "1"]); // one epoch: mechanics, not results
  await assertPng(join(out, "custom_variant.png"));
  assert.match(stdout, /RANDOMLY initialised/);
  assert.match(stdout, /^ {2}default: rowMajor, columnMajor, diagonal$/m);
  assert.match(stdout, /^ {2}variant: rowMajor, columnMajor, hilbert /m);
  // both results tables: their titles and one mean row each
  assert.match(stdout, /^\*\*wave_mambaad \(official\) on synthetic/m);
  assert.match(stdout, /^\*\*wave_mambaad \(official \+ hfssScans horizontal\/vertical\/hilbert\) on synthetic/m);
  assert.equal(stdout.match(/^\| \*\*mean\*\* /gm)?.length, 2, stdout);
  // a scan order has no weights: the two parameter counts agree
  const counts = [...stdout.matchAll(/^ {2}(default|variant): ([\d,]+) \/ ([\d,]+)$/gm)].map((m) => `${m[2]}/${m[3]}`);
  assert.equal(counts.length, 2, stdout);
  assert.equal(counts[0], counts[1]);
  await Deno.remove(out, { recursive: true });
});

/** Runs train_tiny on `device` and checks that the printed final loss is below half of the first. */
async function trainTinyLearns(device: Device): Promise<void> {
  const out = await Deno.makeTempDir();
  const stdout = await runExample("train_tiny", out, ["--device", device]);
  const m = stdout.match(/final loss ([\d.]+) \(first ([\d.]+)/);
  assert.ok(m, `no final loss line in:\n${stdout}`);
  const [last, first] = [Number(m[1]), Number(m[2])];
  assert.ok(last < first / 2, `${device}: loss ${first} → ${last}:\n${stdout}`);
  await Deno.remove(out, { recursive: true });
}

Deno.test("examples/train_tiny.ts learns on the CPU: the final loss is below half of the first", async () => {
  await trainTinyLearns("cpu");
});

// the WebGPU run follows testDevices(): skipped with a warning without an adapter, required under CI
Deno.test({
  name: "examples/train_tiny.ts learns on WebGPU: the final loss is below half of the first",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    if (!(await testDevices()).includes("webgpu")) {
      await t.step({ name: "no WebGPU adapter", ignore: true, fn: () => {} });
      return;
    }
    await trainTinyLearns("webgpu");
  },
});
