/**
 * A committed corpus of bad and odd inputs, run through the real entry points: the CLI (`deno run -A main.ts`
 * subprocesses, only cases that fail before a model is built), the weight readers (safetensors, `.pth`,
 * training checkpoints), the image readers and the dataset folders (in process). For every case it asserts the
 * exit code or the error class, that the message names the file or the flag, that nothing on disk changed
 * (a hash of the whole fixture folder before and after), and that the case took under 2 s. The counts per
 * entry point are printed at the end.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatasetError, openDataset } from "../anomaly/data/datasets.ts";
import { claimOutFolder, DEMO_MARKER, freshDemoFolder } from "../cli/demo.ts";
import {
  DEFAULT_MAX_IMAGE_PIXELS,
  encodeGreyPng,
  encodePng,
  getMaxImagePixels,
  ImageFileError,
  readImage,
  readMask,
  setMaxImagePixels,
} from "../anomaly/data/image.ts";
import { loadCheckpoint, readCheckpointMeta, saveCheckpoint } from "../nn/checkpoint.ts";
import { WeightsFileError } from "../nn/io/common.ts";
import { loadPth } from "../nn/io/pth.ts";
import { loadSafetensors, saveSafetensors } from "../nn/io/safetensors.ts";
import { crc32 } from "../nn/io/zip.ts";
import { Linear } from "../nn/layers/linear.ts";
import { Sequential } from "../nn/layers/container.ts";
import { ones } from "../autodiff/ops/creation.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const MAIN = new URL("../main.ts", import.meta.url).pathname;
const LIMIT_MS = 2000;
const root = await Deno.makeTempDir({ prefix: "bad_input_test_" });
const counts: Record<string, number> = {};

// ---------------------------------------------------------------------------------------------------------------
// fixtures: small files of every kind, all under `root` (the folder whose hash must not change)

const p = (...parts: string[]) => join(root, ...parts);
const enc = new TextEncoder();

/** A PNG chunk with its CRC. */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  out.set(enc.encode(type), 4);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** A PNG whose header declares `w`×`h` 8-bit grey pixels, with no pixel data (a decoder would allocate w·h). */
function pngHeaderOnly(w: number, h: number): Uint8Array {
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, w);
  dv.setUint32(4, h);
  ihdr.set([8, 0, 0, 0, 0], 8);
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr)];
  parts.push(chunk("IEND", new Uint8Array(0)));
  const out = new Uint8Array(parts.reduce((n, b) => n + b.length, 0));
  let o = 0;
  for (const b of parts) {
    out.set(b, o);
    o += b.length;
  }
  return out;
}

/** A JPEG start (SOI, APP0, SOF0) declaring `w`×`h`, cut after the frame header. */
function jpegHeaderOnly(w: number, h: number): Uint8Array {
  const app0 = [0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0, 0];
  const sof = [
    0xff,
    0xc0,
    0x00,
    0x11,
    0x08,
    h >> 8,
    h & 255,
    w >> 8,
    w & 255,
    0x03,
    1,
    0x11,
    0,
    2,
    0x11,
    0,
    3,
    0x11,
    0,
  ];
  return new Uint8Array([0xff, 0xd8, ...app0, ...sof]);
}

const rgb = (w: number, h: number) => encodePng({ width: w, height: h, data: new Uint8Array(w * h * 3).fill(90) });
const fakePth = new Uint8Array([0x50, 0x4b, 0x03, 0x04, ...enc.encode("archive/data.pkl not really a zip")]);

await Deno.mkdir(p("folder.safetensors"));
await Deno.mkdir(p("ckdir"));
await Deno.writeFile(p("weights.pth"), fakePth);
await Deno.writeFile(p("empty.bin"), new Uint8Array(0));
await Deno.writeFile(p("tiny.safetensors"), new Uint8Array([1, 2, 3]));
await Deno.writeTextFile(p("notes.txt"), "these are notes, not weights\n");
const hugeLen = new Uint8Array(16);
new DataView(hugeLen.buffer).setUint32(0, 0xffffff00, true);
hugeLen[8] = 0x7b;
await Deno.writeFile(p("huge_header.safetensors"), hugeLen);
const notJson = new Uint8Array(8 + 6);
new DataView(notJson.buffer).setUint32(0, 6, true);
notJson.set(enc.encode("{nope]"), 8);
await Deno.writeFile(p("not_json.safetensors"), notJson);
await saveSafetensors(p("plain.safetensors"), { a: ones([2]) });
await Deno.writeFile(p("cut.pth"), new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00]));
// a checkpoint written by a 12-layer model, for a model of another architecture
const big = new Sequential(...Array.from({ length: 12 }, () => new Linear(2, 2)));
await saveCheckpoint(p("other_arch.safetensors"), { model: big }, {
  epoch: 3,
  step: 30,
  config: { model: "mambaad", variant: "mambaad", imageSize: 256 },
});
const ckptBytes = await Deno.readFile(p("other_arch.safetensors"));
await Deno.writeFile(p("cut_ckpt.safetensors"), ckptBytes.subarray(0, 20));

await Deno.writeFile(p("huge.png"), pngHeaderOnly(16000, 16000));
await Deno.writeFile(p("huge.jpg"), jpegHeaderOnly(20000, 20000));
await Deno.writeFile(p("zero.png"), pngHeaderOnly(0, 10));
await Deno.writeFile(p("text.png"), enc.encode("not an image at all"));
const good = await rgb(100, 100);
await Deno.writeFile(p("good.png"), good);
await Deno.writeFile(p("cut.png"), good.subarray(0, 60));
await Deno.writeFile(p("mask_small.png"), await encodeGreyPng({ width: 10, height: 10, data: new Uint8Array(100) }));

// dataset folders
await Deno.writeTextFile(p("file_root"), "a file, not a folder");
await Deno.mkdir(p("ds_empty"));
await Deno.mkdir(p("ds_notest", "c", "train", "good"), { recursive: true });
await Deno.writeFile(p("ds_notest", "c", "train", "good", "0.png"), good);
await Deno.mkdir(p("ds_notrain", "c", "train", "good"), { recursive: true });
await Deno.mkdir(p("ds_notrain", "c", "test", "good"), { recursive: true });
await Deno.mkdir(p("ds_nomask", "c", "train", "good"), { recursive: true });
await Deno.mkdir(p("ds_nomask", "c", "test", "crack"), { recursive: true });
await Deno.writeFile(p("ds_nomask", "c", "train", "good", "0.png"), good);
await Deno.writeFile(p("ds_nomask", "c", "test", "crack", "000.png"), good);
await Deno.mkdir(p("ds_visa", "candle"), { recursive: true });

// runs and demo folders
await Deno.mkdir(p("run_done"));
await Deno.writeFile(p("run_done", "checkpoint.safetensors"), ckptBytes);
await Deno.writeTextFile(p("run_done", "train_log.jsonl"), '{"epoch":0,"iter":0,"step":1,"loss":1}\n');
await Deno.mkdir(p("run_logonly"));
await Deno.writeTextFile(p("run_logonly", "train_log.jsonl"), '{"epoch":0,"iter":0,"step":1,"loss":1}\n');
await Deno.mkdir(p("project", "data", "mine"), { recursive: true });
await Deno.writeTextFile(p("project", "data", "mine", "precious.txt"), "the user's own data\n");
await Deno.mkdir(p("old_demo", "data"), { recursive: true });
await Deno.writeTextFile(p("old_demo", ".wavemamba-demo"), "marker\n");
await Deno.writeTextFile(p("old_demo", "data", "mine.txt"), "data/ here was not made by the demo\n");

// ---------------------------------------------------------------------------------------------------------------
// the harness

/** sha-256 of every file under `dir` with its relative path (and every folder's path): any change shows. */
async function treeHash(dir: string): Promise<string> {
  const lines: string[] = [];
  async function walk(d: string, rel: string): Promise<void> {
    const entries = [];
    for await (const e of Deno.readDir(d)) entries.push(e);
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) {
        lines.push(`d ${r}`);
        await walk(join(d, e.name), r);
      } else {
        const h = new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(join(d, e.name))));
        lines.push(`f ${r} ${Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("")}`);
      }
    }
  }
  await walk(dir, "");
  return lines.join("\n");
}

/** Runs one case: the disk is hashed before and after, the time is measured, and the count is kept. */
async function runCase(entry: string, name: string, fn: () => Promise<void>): Promise<void> {
  const before = await treeHash(root);
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  assert.ok(ms < LIMIT_MS, `${entry} / ${name}: took ${ms.toFixed(0)} ms (limit ${LIMIT_MS})`);
  assert.equal(await treeHash(root), before, `${entry} / ${name}: the files on disk changed`);
  counts[entry] = (counts[entry] ?? 0) + 1;
}

/** Runs the CLI in `root` (so that default output folders would land in the hashed folder). */
async function cli(args: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    cwd: root,
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stderr: dec.decode(out.stderr), stdout: dec.decode(out.stdout) };
}

/** A CLI case: exit code `code`, stderr matching every pattern in `names` (the flag or file it must name). */
interface CliCase {
  name: string;
  args: string[];
  code: 1 | 2;
  names: (string | RegExp)[];
}

function includesOrMatches(text: string, want: string | RegExp): boolean {
  return typeof want === "string" ? text.includes(want) : want.test(text);
}

const CLI_CASES: CliCase[] = [
  { name: "unknown command", args: ["trian"], code: 2, names: ['"trian"', "known commands"] },
  { name: "train: unknown flag", args: ["train", "--bogus", "--data", "x"], code: 2, names: ["--bogus"] },
  { name: "train: --data missing", args: ["train"], code: 2, names: ["--data"] },
  {
    name: "train: unknown model",
    args: ["train", "--data", p("ds_empty"), "--model", "padim"],
    code: 2,
    names: ["--model", '"padim"'],
  },
  {
    name: "train: unknown variant",
    args: ["train", "--data", p("ds_empty"), "--variant", "tiny"],
    code: 2,
    names: ["--variant", '"tiny"'],
  },
  {
    name: "train: size not a multiple of 64",
    args: ["train", "--data", p("ds_empty"), "--size", "100"],
    code: 2,
    names: ["--size", "100"],
  },
  {
    name: "train: --epochs 0",
    args: ["train", "--data", p("ds_empty"), "--epochs", "0"],
    code: 2,
    names: ["--epochs"],
  },
  {
    name: "train: --lr not a number",
    args: ["train", "--data", p("ds_empty"), "--lr", "fast"],
    code: 2,
    names: ["--lr"],
  },
  {
    name: "train: --model-config not JSON",
    args: ["train", "--data", p("ds_empty"), "--model-config", "{depths:1"],
    code: 2,
    names: ["--model-config"],
  },
  {
    name: "train: unknown --dataset",
    args: ["train", "--data", p("ds_empty"), "--dataset", "coco"],
    code: 2,
    names: ["--dataset", '"coco"'],
  },
  {
    name: "train: --max-megapixels 0",
    args: ["train", "--data", p("ds_empty"), "--max-megapixels", "0"],
    code: 2,
    names: ["--max-megapixels"],
  },
  {
    name: "train: --resume with --overwrite",
    args: ["train", "--data", p("ds_empty"), "--resume", "--overwrite"],
    code: 2,
    names: ["--resume", "--overwrite"],
  },
  {
    name: "train: --out holds an earlier run (checkpoint and log)",
    args: ["train", "--data", p("ds_nomask"), "--out", p("run_done"), "--device", "cpu"],
    code: 1,
    names: [p("run_done", "checkpoint.safetensors"), p("run_done", "train_log.jsonl"), "--overwrite"],
  },
  {
    name: "train: --out holds a loss log",
    args: ["train", "--data", p("ds_nomask"), "--out", p("run_logonly"), "--device", "cpu"],
    code: 1,
    names: [p("run_logonly", "train_log.jsonl"), "--resume"],
  },
  {
    name: "train: --resume without a checkpoint",
    args: ["train", "--data", p("ds_nomask"), "--out", p("run_logonly"), "--resume", "--device", "cpu"],
    code: 1,
    names: [p("run_logonly", "checkpoint.safetensors"), "no checkpoint"],
  },
  {
    name: "train: --resume into a folder that does not exist",
    args: ["train", "--data", p("ds_nomask"), "--out", p("nowhere"), "--resume", "--device", "cpu"],
    code: 1,
    names: [p("nowhere", "checkpoint.safetensors")],
  },
  {
    name: "train: missing dataset root (no folder left behind)",
    args: ["train", "--data", p("no_data"), "--out", p("fresh_run"), "--device", "cpu"],
    code: 1,
    names: [p("no_data")],
  },
  {
    name: "demo: --out holds the user's own files",
    args: ["demo", "--out", p("project"), "--device", "cpu"],
    code: 1,
    names: [p("project"), ".wavemamba-demo"],
  },
  {
    name: "demo: OUT/data not made by the demo",
    args: ["demo", "--out", p("old_demo"), "--device", "cpu"],
    code: 1,
    names: [p("old_demo", "data"), ".wavemamba-demo"],
  },
  { name: "demo: bad size", args: ["demo", "--out", p("d1"), "--size", "65"], code: 2, names: ["--size"] },
  { name: "demo: unknown model", args: ["demo", "--out", p("d1"), "--model", "x"], code: 2, names: ["--model"] },
  { name: "demo: unknown flag", args: ["demo", "--outt", p("d1")], code: 2, names: ["--outt"] },
  { name: "eval: --checkpoint missing", args: ["eval"], code: 2, names: ["--checkpoint"] },
  { name: "eval: unknown flag", args: ["eval", "--checkpoint", "x", "--maps"], code: 2, names: ["--maps"] },
  {
    name: "eval: --checkpoint is a folder",
    args: ["eval", "--checkpoint", p("ckdir"), "--device", "cpu"],
    code: 1,
    names: [p("ckdir"), "is a folder"],
  },
  {
    name: "eval: --checkpoint is a .pth",
    args: ["eval", "--checkpoint", p("weights.pth"), "--device", "cpu"],
    code: 1,
    names: [p("weights.pth"), ".pth", "--encoder-weights"],
  },
  {
    name: "eval: --checkpoint does not exist",
    args: ["eval", "--checkpoint", p("none.safetensors"), "--device", "cpu"],
    code: 1,
    names: [p("none.safetensors")],
  },
  {
    name: "eval: --checkpoint is plain weights",
    args: ["eval", "--checkpoint", p("plain.safetensors"), "--device", "cpu"],
    code: 1,
    names: [p("plain.safetensors"), "not a training checkpoint"],
  },
  {
    name: "eval: --checkpoint is a text file",
    args: ["eval", "--checkpoint", p("notes.txt"), "--device", "cpu"],
    code: 1,
    names: [p("notes.txt"), "not a checkpoint"],
  },
  {
    name: "eval: --checkpoint truncated",
    args: ["eval", "--checkpoint", p("cut_ckpt.safetensors"), "--device", "cpu"],
    code: 1,
    names: [p("cut_ckpt.safetensors")],
  },
  {
    name: "eval: unknown --metric-path",
    args: ["eval", "--checkpoint", p("other_arch.safetensors"), "--metric-path", "fast"],
    code: 2,
    names: ["--metric-path"],
  },
  {
    name: "eval: --batch 0",
    args: ["eval", "--checkpoint", p("other_arch.safetensors"), "--batch", "0"],
    code: 2,
    names: ["--batch"],
  },
  { name: "infer: no image", args: ["infer", "--checkpoint", p("ckdir")], code: 2, names: ["image"] },
  {
    name: "infer: --masks count differs",
    args: ["infer", "--checkpoint", p("ckdir"), "--masks", "a.png,b.png", p("good.png")],
    code: 2,
    names: ["--masks"],
  },
  {
    name: "infer: a mask of another size than its image",
    args: ["infer", "--checkpoint", p("ckdir"), "--masks", p("mask_small.png"), "--out", p("inf"), p("good.png")],
    code: 1,
    names: [p("mask_small.png"), p("good.png"), "10x10", "100x100"],
  },
  {
    name: "infer: a missing image",
    args: ["infer", "--checkpoint", p("ckdir"), "--out", p("inf"), p("none.png")],
    code: 1,
    names: [p("none.png"), "not found"],
  },
  {
    name: "infer: --checkpoint is a folder",
    args: ["infer", "--checkpoint", p("ckdir"), "--device", "cpu", "--out", p("inf"), p("good.png")],
    code: 1,
    names: [p("ckdir")],
  },
  { name: "info: --model missing", args: ["info"], code: 2, names: ["--model"] },
  { name: "info: unknown model", args: ["info", "--model", "padim"], code: 2, names: ["--model", '"padim"'] },
  { name: "info: bad size", args: ["info", "--model", "mambaad", "--size", "48"], code: 2, names: ["--size"] },
  { name: "info: unknown flag", args: ["info", "--model", "mambaad", "--sizes", "48"], code: 2, names: ["--sizes"] },
];

Deno.test("bad input: the CLI (subprocesses)", opts, async (t) => {
  for (const c of CLI_CASES) {
    await t.step(c.name, async () => {
      await runCase("cli", c.name, async () => {
        const r = await cli(c.args);
        assert.equal(r.code, c.code, `${c.name}: exit ${r.code}, stderr:\n${r.stderr}`);
        for (const want of c.names) {
          assert.ok(includesOrMatches(r.stderr, want), `${c.name}: stderr does not name ${want}:\n${r.stderr}`);
        }
        assert.ok(r.stderr.split("\n").filter((l) => l.trim()).length <= 4, `${c.name}: a short message:\n${r.stderr}`);
      });
    });
  }
});

/** An in-process case: `fn` must throw an instance of `cls` whose message names every entry of `names`. */
async function throwsCase(
  entry: string,
  name: string,
  fn: () => Promise<unknown>,
  cls: new (...a: never[]) => Error,
  names: (string | RegExp)[],
): Promise<void> {
  await runCase(entry, name, async () => {
    let err: unknown = null;
    try {
      await fn();
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof cls, `${entry} / ${name}: expected a ${cls.name}, got ${String(err)}`);
    for (const want of names) {
      assert.ok(
        includesOrMatches(err.message, want),
        `${entry} / ${name}: message does not name ${want}: ${err.message}`,
      );
    }
  });
}

Deno.test("bad input: safetensors and .pth readers", opts, async (t) => {
  const cases: [string, () => Promise<unknown>, (string | RegExp)[]][] = [
    ["safetensors: a folder", () => loadSafetensors(p("folder.safetensors")), [p("folder.safetensors"), "folder"]],
    ["safetensors: missing file", () => loadSafetensors(p("none.safetensors")), [p("none.safetensors"), "no such"]],
    ["safetensors: a .pth file", () => loadSafetensors(p("weights.pth")), [p("weights.pth"), "loadPth"]],
    ["safetensors: empty", () => loadSafetensors(p("empty.bin")), [p("empty.bin"), "8-byte"]],
    ["safetensors: 3 bytes", () => loadSafetensors(p("tiny.safetensors")), [p("tiny.safetensors"), "3 bytes"]],
    [
      "safetensors: header length past the end",
      () => loadSafetensors(p("huge_header.safetensors")),
      [p("huge_header.safetensors"), "header length"],
    ],
    [
      "safetensors: header not JSON",
      () => loadSafetensors(p("not_json.safetensors")),
      [p("not_json.safetensors"), "JSON"],
    ],
    ["safetensors: a text file", () => loadSafetensors(p("notes.txt")), [p("notes.txt")]],
    ["pth: a safetensors file", () => loadPth(p("plain.safetensors")), [p("plain.safetensors"), "loadSafetensors"]],
    ["pth: a folder", () => loadPth(p("ckdir")), [p("ckdir"), "folder"]],
    ["pth: empty", () => loadPth(p("empty.bin")), [p("empty.bin"), "0 bytes"]],
    ["pth: a text file", () => loadPth(p("notes.txt")), [p("notes.txt"), "magic bytes"]],
    ["pth: truncated zip", () => loadPth(p("cut.pth")), [p("cut.pth"), "zip"]],
    ["pth: missing file", () => loadPth(p("none.pth")), [p("none.pth")]],
  ];
  for (const [name, fn, names] of cases) {
    await t.step(name, () => throwsCase("weights readers", name, fn, WeightsFileError, names));
  }
});

Deno.test("bad input: training checkpoints", opts, async (t) => {
  const cases: [string, () => Promise<unknown>, (string | RegExp)[]][] = [
    ["meta: a folder", () => readCheckpointMeta(p("ckdir")), [p("ckdir"), "is a folder", "checkpoint"]],
    ["meta: a .pth file", () => readCheckpointMeta(p("weights.pth")), [p("weights.pth"), ".pth", "--encoder-weights"]],
    ["meta: plain weights", () => readCheckpointMeta(p("plain.safetensors")), [
      p("plain.safetensors"),
      "not a training",
    ]],
    ["meta: 3 bytes", () => readCheckpointMeta(p("tiny.safetensors")), [p("tiny.safetensors"), "3 bytes"]],
    ["meta: missing file", () => readCheckpointMeta(p("none.safetensors")), [p("none.safetensors"), "no such file"]],
    [
      "load: another architecture",
      () => loadCheckpoint(p("other_arch.safetensors"), { model: new Linear(2, 2) }),
      [
        p("other_arch.safetensors"),
        "written for mambaad (mambaad) at 256 px",
        "24 keys of the file the model lacks (0.bias, 0.weight, 1.bias, 1.weight, 10.bias, … 19 more)",
        "2 keys of the model missing from the file (weight, bias)",
      ],
    ],
  ];
  for (const [name, fn, names] of cases) {
    await t.step(name, () => throwsCase("checkpoints", name, fn, WeightsFileError, names));
  }
  // the architecture message stays short however many keys differ
  const e = await loadCheckpoint(p("other_arch.safetensors"), { model: new Linear(2, 2) }).catch((e) => e as Error);
  assert.ok(e instanceof WeightsFileError && e.message.length < 600, `message of ${String(e).length} characters`);
});

Deno.test("bad input: image files", opts, async (t) => {
  const cases: [string, () => Promise<unknown>, (string | RegExp)[]][] = [
    ["a 16000² PNG is refused from its header", () => readImage(p("huge.png")), [
      p("huge.png"),
      "16000x16000",
      "--max-megapixels",
    ]],
    ["a 20000² JPEG is refused from its header", () => readImage(p("huge.jpg")), [
      p("huge.jpg"),
      "20000x20000",
      "megapixels",
    ]],
    ["a 16000² PNG mask too", () => readMask(p("huge.png")), [p("huge.png"), "megapixels"]],
    ["a PNG declaring 0x10", () => readImage(p("zero.png")), [p("zero.png"), "0x10"]],
    ["missing file", () => readImage(p("none.png")), [p("none.png"), "not found"]],
    ["a folder", () => readImage(p("ckdir")), [p("ckdir"), "directory"]],
    ["empty file", () => readImage(p("empty.bin")), [p("empty.bin"), "empty"]],
    ["text named .png", () => readImage(p("text.png")), [p("text.png"), "cannot decode"]],
    ["truncated PNG", () => readImage(p("cut.png")), [p("cut.png"), "cannot decode"]],
    ["a .pth as a mask", () => readMask(p("weights.pth")), [p("weights.pth")]],
    ["over a lowered limit", async () => {
      setMaxImagePixels(5000);
      try {
        return await readImage(p("good.png"));
      } finally {
        setMaxImagePixels(DEFAULT_MAX_IMAGE_PIXELS);
      }
    }, [p("good.png"), "100x100", "0.005 megapixels"]],
  ];
  for (const [name, fn, names] of cases) {
    await t.step(name, () => throwsCase("image readers", name, fn, ImageFileError, names));
  }
  assert.equal(getMaxImagePixels(), DEFAULT_MAX_IMAGE_PIXELS);
  // the limit is a limit, not a ban: the same image reads under the default
  assert.equal((await readImage(p("good.png"))).width, 100);
  assert.equal((await readMask(p("mask_small.png"))).width, 10);
});

Deno.test("bad input: dataset folders", opts, async (t) => {
  const cases: [string, () => Promise<unknown>, (string | RegExp)[]][] = [
    ["missing root", () => openDataset("mvtec", p("no_data")), [p("no_data"), "does not exist"]],
    ["root is a file", () => openDataset("mvtec", p("file_root")), [p("file_root"), "not a directory"]],
    ["no class folders", () => openDataset("mvtec", p("ds_empty")), [p("ds_empty"), "train/good"]],
    ["class without test/", () => openDataset("mvtec", p("ds_notest")), [p("ds_notest", "c", "test")]],
    ["class without training images", () => openDataset("folder", p("ds_notrain")), [
      p("ds_notrain", "c", "train", "good"),
    ]],
    ["defect image without mask", () => openDataset("mvtec", p("ds_nomask")), [
      p("ds_nomask", "c", "test", "crack", "000.png"),
      "_mask.png",
    ]],
    ["unknown class", () => openDataset("mvtec", p("ds_nomask"), { classes: ["bottle"] }), [
      '"bottle"',
      p("ds_nomask"),
    ]],
    ["VisA without its split file", () => openDataset("visa", p("ds_visa")), [p("ds_visa")]],
    ["unknown kind", () => openDataset("coco" as "mvtec", p("ds_nomask")), ['"coco"']],
  ];
  for (const [name, fn, names] of cases) {
    await t.step(name, () => throwsCase("dataset folders", name, fn, DatasetError, names));
  }
});

Deno.test("demo folders: only a folder with the demo's marker is replaced", opts, async () => {
  const dir = await Deno.makeTempDir({ prefix: "demo_folders_" });
  try {
    const out = join(dir, "out");
    await claimOutFolder(out);
    await freshDemoFolder(join(out, "data"));
    await Deno.writeTextFile(join(out, "data", "generated.png"), "x");
    assert.ok((await Deno.stat(join(out, DEMO_MARKER))).isFile, "the output folder is marked");
    // a second demo run: its own folders are replaced, fresh and marked
    await claimOutFolder(out);
    await freshDemoFolder(join(out, "data"));
    assert.deepEqual([...Deno.readDirSync(join(out, "data"))].map((e) => e.name), [DEMO_MARKER]);
    // a user's folder in its place is refused and kept
    await Deno.remove(join(out, "data", DEMO_MARKER));
    await Deno.writeTextFile(join(out, "data", "mine.txt"), "mine");
    await assert.rejects(
      () => freshDemoFolder(join(out, "data")),
      /out\/data already exists and was not made by the demo/,
    );
    assert.equal(await Deno.readTextFile(join(out, "data", "mine.txt")), "mine");
    // an empty folder may become the demo's; a non-empty unmarked one may not
    await Deno.mkdir(join(dir, "empty"));
    await claimOutFolder(join(dir, "empty"));
    await assert.rejects(
      () => claimOutFolder(join(dir, "out", "data")),
      /holds files that the demo did not make \(mine\.txt/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad input: corpus counts", () => {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  console.log(
    `bad-input corpus: ${total} cases — ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(", ")}`,
  );
  assert.ok(total >= 40, `${total} cases ran`);
  assert.equal(counts.cli, CLI_CASES.length);
});

globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(root, { recursive: true });
  } catch { /* already gone */ }
});
