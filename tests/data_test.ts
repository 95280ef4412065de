/**
 * The anomaly data layer: dataset layouts (built in temp folders in exactly the published layouts), error
 * messages that name the file, the reference transforms against PIL/torchvision fixtures
 * (`tools/gen_mask_fixtures.py`), the prefetching loader, the synthetic generator and the jet colormap.
 *
 * @module
 */

import { encode as encodePngBytes } from "fast-png";
import jpeg from "jpeg-js";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type AnomalyDataset,
  binarizeResizeMask,
  DataLoader,
  datasetSummary,
  encodeGreyPng,
  encodePng,
  formatSummary,
  generateSyntheticDataset,
  ImageFileError,
  loadImage,
  loadMask,
  loadSamples,
  normalizeRgb,
  openDataset,
  parseCsv,
  readImage,
  readMask,
  renderSvg,
  resizePil,
  type Sample,
  SYNTHETIC_DEFECTS,
  writePng,
} from "../anomaly/data/mod.ts";
import { colorize, denormalize, JET_LUT, maskToRgb, overlay, sideBySide } from "../anomaly/viz/heatmap.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

interface MaskCase {
  name: string;
  height: number;
  width: number;
  size: number;
  data: number[];
  resized: number[];
  expected: number[];
}
interface ImageCase {
  height: number;
  width: number;
  size: number;
  data: number[];
  resized: number[];
  tensor: number[];
}
const fixtures = JSON.parse(await Deno.readTextFile(new URL("./fixtures/masks.json", import.meta.url))) as {
  masks: MaskCase[];
  images: ImageCase[];
  jet: { matplotlib: string; lut: number[][]; x: number[]; rgb: number[][] };
};

/** A w×h RGB image whose pixel (x, y) is (seed + x*7 + y*13, ...) mod 256: distinct per image and position. */
function pattern(w: number, h: number, seed: number): Uint8Array {
  const d = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) d[3 * (y * w + x) + c] = (seed * 31 + x * 7 + y * 13 + c * 50) & 255;
    }
  }
  return d;
}

async function png(path: string, w = 8, h = 6, seed = 0): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await writePng(path, { width: w, height: h, data: pattern(w, h, seed) });
}

async function maskPng(
  path: string,
  w = 8,
  h = 6,
  on: (x: number, y: number) => boolean = (x) => x < 3,
): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  const data = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = on(x, y) ? 255 : 0;
  await Deno.writeFile(path, await encodeGreyPng({ width: w, height: h, data }));
}

/** Writes an MVTec/MPDD-layout class: train/good, test/good and defects with `<name>_mask.png` masks. */
async function mvtecClass(root: string, cls: string, train: number, good: number, defects: Record<string, number>) {
  for (let i = 0; i < train; i++) await png(join(root, cls, "train", "good", `${String(i).padStart(3, "0")}.png`));
  for (let i = 0; i < good; i++) {
    await png(join(root, cls, "test", "good", `${String(i).padStart(3, "0")}.png`), 8, 6, 1);
  }
  for (const [d, n] of Object.entries(defects)) {
    for (let i = 0; i < n; i++) {
      const name = String(i).padStart(3, "0");
      await png(join(root, cls, "test", d, `${name}.png`), 8, 6, 2);
      await maskPng(join(root, cls, "ground_truth", d, `${name}_mask.png`));
    }
  }
}

async function rejects(p: Promise<unknown>, ...parts: (string | RegExp)[]): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof Error);
    for (const part of parts) {
      if (typeof part === "string") {
        assert.ok(e.message.includes(part), `message "${e.message}" should include "${part}"`);
      } else assert.match(e.message, part);
    }
    return e;
  }
  throw new assert.AssertionError({ message: `expected a rejection mentioning ${parts.join(", ")}` });
}

const tmp = await Deno.makeTempDir({ prefix: "data_test_" });
addEventListener("unload", () => {
  try {
    Deno.removeSync(tmp, { recursive: true });
  } catch {
    // already gone
  }
});

Deno.test("MVTec layout: classes, counts, labels, mask pairing, sorting, non-images ignored", opts, async () => {
  const root = join(tmp, "mvtec");
  await mvtecClass(root, "cable", 3, 2, { bent_wire: 2, cable_swap: 1 });
  await mvtecClass(root, "bottle", 2, 1, { broken_large: 1 });
  await png(join(root, "bottle", "train", "good", "010.PNG")); // upper-case extension counts
  await Deno.writeTextFile(join(root, "bottle", "train", "good", "notes.txt"), "not an image");
  await Deno.writeTextFile(join(root, "bottle", "train", "good", ".hidden.png"), "hidden");
  await Deno.mkdir(join(root, "license_folder"), { recursive: true }); // no train/: not a class
  await Deno.writeTextFile(join(root, "readme.txt"), "MVTec");
  const ds = await openDataset("mvtec", root);
  assert.deepEqual(ds.classes, ["bottle", "cable"]);
  assert.equal(ds.train.length, 6);
  assert.deepEqual(ds.train.filter((s) => s.cls === "bottle").map((s) => s.path.slice(root.length)), [
    "/bottle/train/good/000.png",
    "/bottle/train/good/001.png",
    "/bottle/train/good/010.PNG",
  ]);
  assert.ok(ds.train.every((s) => s.label === 0 && s.maskPath === null && s.defect === "good"));
  const cable = ds.test.filter((s) => s.cls === "cable");
  assert.deepEqual(cable.map((s) => [s.defect, s.label]), [
    ["bent_wire", 1],
    ["bent_wire", 1],
    ["cable_swap", 1],
    ["good", 0],
    ["good", 0],
  ]);
  for (const s of ds.test) {
    if (s.label === 0) assert.equal(s.maskPath, null);
    else {assert.equal(
        s.maskPath,
        join(root, s.cls, "ground_truth", s.defect, s.path.split("/").pop()!.replace(".png", "_mask.png")),
      );}
  }
  const sum = datasetSummary(ds);
  assert.deepEqual(sum[1], {
    cls: "cable",
    train: 3,
    testGood: 2,
    testDefects: { bent_wire: 2, cable_swap: 1 },
    testDefectTotal: 3,
  });
  const table = formatSummary(ds);
  assert.match(table, /cable\s+3\s+2\s+3\s+bent_wire 2, cable_swap 1/);
  assert.match(table, /total\s+6\s+3\s+4/);
  // Subset of classes; unknown class lists the available ones and the published names.
  assert.deepEqual((await openDataset("mvtec", root, { classes: ["cable"] })).classes, ["cable"]);
  await rejects(openDataset("mvtec", root, { classes: ["cabel"] }), '"cabel"', "available: bottle, cable", "metal_nut");
});

Deno.test("MPDD layout reads like MVTec", opts, async () => {
  const root = join(tmp, "mpdd");
  await mvtecClass(root, "bracket_black", 2, 1, { hole: 1, scratches: 2 });
  await mvtecClass(root, "tubes", 1, 1, { anomalous: 1 });
  const ds = await openDataset("mpdd", root);
  assert.equal(ds.kind, "mpdd");
  assert.deepEqual(ds.classes, ["bracket_black", "tubes"]);
  assert.equal(ds.test.length, 6);
  assert.deepEqual(datasetSummary(ds)[0].testDefects, { hole: 1, scratches: 2 });
  assert.ok(ds.test.filter((s) => s.label === 1).every((s) => s.maskPath?.endsWith("_mask.png")));
});

Deno.test("VisA layout from split_csv/1cls.csv (CRLF, quoted fields)", opts, async () => {
  const root = join(tmp, "visa");
  const rows = ["object,split,label,image,mask"];
  for (const cls of ["pcb1", "candle"]) {
    for (let i = 0; i < 3; i++) {
      const img = `${cls}/Data/Images/Normal/${String(i).padStart(4, "0")}.JPG`;
      await Deno.mkdir(join(root, cls, "Data", "Images", "Normal"), { recursive: true });
      await Deno.writeFile(join(root, img), await encodePng({ width: 8, height: 6, data: pattern(8, 6, i) }));
      rows.push(`${cls},${i < 2 ? "train" : "test"},normal,${img},`);
    }
    const img = `${cls}/Data/Images/Anomaly/000.JPG`, mask = `${cls}/Data/Masks/Anomaly/000.png`;
    await png(join(root, img));
    await maskPng(join(root, mask));
    rows.push(`"${cls}",test,"anomaly","${img}",${mask}`);
  }
  await Deno.mkdir(join(root, "split_csv"), { recursive: true });
  await Deno.writeTextFile(join(root, "split_csv", "1cls.csv"), rows.join("\r\n") + "\r\n");
  const ds = await openDataset("visa", root);
  assert.deepEqual(ds.classes, ["candle", "pcb1"]);
  assert.equal(ds.train.length, 4);
  assert.equal(ds.test.length, 4);
  const anomalies = ds.test.filter((s) => s.label === 1);
  assert.deepEqual(anomalies.map((s) => [s.cls, s.defect, s.maskPath]), [
    ["candle", "anomaly", join(root, "candle/Data/Masks/Anomaly/000.png")],
    ["pcb1", "anomaly", join(root, "pcb1/Data/Masks/Anomaly/000.png")],
  ]);
  assert.ok(ds.test.filter((s) => s.label === 0).every((s) => s.defect === "good" && s.maskPath === null));
  // The JPG-named files are PNGs inside: decoding goes by content, not by name.
  assert.equal((await readImage(ds.train[0].path)).width, 8);

  // Malformed CSVs name the file and the line.
  const csv = join(root, "split_csv", "1cls.csv");
  await Deno.writeTextFile(csv, rows.slice(0, 3).join("\n") + "\npcb1,validation,normal,x.png,\n");
  await rejects(openDataset("visa", root), csv, "line 4", '"validation"');
  await Deno.writeTextFile(csv, rows.slice(0, 3).join("\n") + "\npcb1,train,normal\n");
  await rejects(openDataset("visa", root), csv, "line 4", "expected 5 fields, got 3");
  await Deno.writeTextFile(csv, "obj,split,label,image,mask\n");
  await rejects(openDataset("visa", root), csv, "line 1", "header");
  await Deno.writeTextFile(
    csv,
    rows.slice(0, 2).join("\n") + "\npcb1,test,anomaly,pcb1/Data/Images/Anomaly/nope.JPG,m.png\n",
  );
  await rejects(openDataset("visa", root), "nope.JPG", "does not exist");
  await Deno.remove(csv);
  await rejects(openDataset("visa", root), csv, "prepare_data");
});

Deno.test("parseCsv: quotes, escaped quotes, embedded commas and newlines, CRLF, line numbers", () => {
  const rows = parseCsv('a,b\r\n"x, y","say ""hi"""\n"multi\nline",z\n\nlast,');
  assert.deepEqual(rows.map((r) => r.fields), [["a", "b"], ["x, y", 'say "hi"'], ["multi\nline", "z"], ["last", ""]]);
  assert.deepEqual(rows.map((r) => r.line), [1, 2, 3, 6]);
  assert.throws(() => parseCsv('a,"open\n', "f.csv"), /f\.csv line 1: unterminated/);
});

Deno.test("generic folder layout: masks matched by stem, optional ground truth", opts, async () => {
  const root = join(tmp, "folder");
  await png(join(root, "widget", "train", "good", "a.jpg"));
  await png(join(root, "widget", "test", "good", "g.png"));
  await png(join(root, "widget", "test", "dent", "d1.png"));
  await png(join(root, "widget", "test", "dent", "d2.bmp"));
  await png(join(root, "widget", "test", "dent", "d3.png"));
  await maskPng(join(root, "widget", "ground_truth", "dent", "d1_mask.png"));
  await maskPng(join(root, "widget", "ground_truth", "dent", "d1.png")); // `_mask` wins over the bare stem
  await maskPng(join(root, "widget", "ground_truth", "dent", "d2.tif"));
  await maskPng(join(root, "widget", "ground_truth", "dent", "d3_gt.png"));
  await png(join(root, "widget", "test", "smudge", "s1.png")); // no ground_truth/smudge: maskPath null
  const ds = await openDataset("folder", root);
  const gt = join(root, "widget", "ground_truth", "dent");
  assert.deepEqual(ds.test.map((s) => [s.defect, s.label, s.maskPath]), [
    ["dent", 1, join(gt, "d1_mask.png")],
    ["dent", 1, join(gt, "d2.tif")],
    ["dent", 1, join(gt, "d3_gt.png")],
    ["good", 0, null],
    ["smudge", 1, null],
  ]);
  await Deno.remove(join(gt, "d3_gt.png"));
  await rejects(openDataset("folder", root), join(root, "widget", "test", "dent", "d3.png"), "has no mask");
});

Deno.test("dataset errors name the path", opts, async () => {
  await rejects(openDataset("mvtec", join(tmp, "nowhere")), join(tmp, "nowhere"), "does not exist");
  const root = join(tmp, "bad");
  await Deno.mkdir(join(root, "empty", "train", "good"), { recursive: true });
  await Deno.mkdir(join(root, "empty", "test", "good"), { recursive: true });
  await rejects(openDataset("mvtec", root), '"empty" is empty', join(root, "empty", "train", "good"));
  await Deno.remove(join(root, "empty"), { recursive: true });
  await Deno.mkdir(join(root, "nogood", "train"), { recursive: true });
  await rejects(openDataset("mvtec", root), "missing folder", join(root, "nogood", "train", "good"));
  await png(join(root, "nogood", "train", "good", "0.png"));
  await rejects(openDataset("mvtec", root), "missing folder", join(root, "nogood", "test"));
  await png(join(root, "nogood", "test", "crack", "005.png"));
  await rejects(
    openDataset("mvtec", root),
    join(root, "nogood", "test", "crack", "005.png"),
    join(root, "nogood", "ground_truth", "crack", "005_mask.png"),
  );
  await rejects(openDataset("mvtec", join(tmp, "mvtec", "bottle", "train", "good")), "no class folders");
});

Deno.test(
  "image errors: missing, empty, non-image and truncated files throw ImageFileError naming the file",
  opts,
  async () => {
    const dir = join(tmp, "broken");
    await Deno.mkdir(dir, { recursive: true });
    const missing = join(dir, "missing.png");
    let e = await rejects(readImage(missing), missing, "not found");
    assert.ok(e instanceof ImageFileError);
    const empty = join(dir, "empty.png");
    await Deno.writeFile(empty, new Uint8Array());
    e = await rejects(loadImage(empty, 4), empty, "empty");
    assert.ok(e instanceof ImageFileError);
    const text = join(dir, "text.png");
    await Deno.writeTextFile(text, "this is not a PNG at all");
    e = await rejects(loadImage(text, 4), text, "cannot decode");
    assert.ok(e instanceof ImageFileError);
    const truncated = join(dir, "truncated.png");
    const full = await encodePng({ width: 64, height: 64, data: pattern(64, 64, 3) });
    await Deno.writeFile(truncated, full.subarray(0, Math.floor(full.length / 2)));
    for (
      const f of [
        () => readImage(truncated),
        () => loadMask(truncated, 4),
        () => loadImage(truncated, 4),
      ]
    ) {
      e = await rejects(f(), truncated, "cannot decode");
      assert.ok(e instanceof ImageFileError);
    }
    await rejects(readImage(dir), dir);
  },
);

Deno.test("readImage: grey and RGBA become RGB; PNG round trip is lossless", opts, async () => {
  const dir = join(tmp, "modes");
  await Deno.mkdir(dir, { recursive: true });
  const rgb = pattern(5, 3, 9);
  await writePng(join(dir, "rgb.png"), { width: 5, height: 3, data: rgb });
  assert.deepEqual(await readImage(join(dir, "rgb.png")), { width: 5, height: 3, data: rgb });
  const grey = Uint8Array.from({ length: 15 }, (_, i) => i * 17);
  await Deno.writeFile(join(dir, "grey.png"), await encodeGreyPng({ width: 5, height: 3, data: grey }));
  const g = await readImage(join(dir, "grey.png"));
  assert.deepEqual(Array.from(g.data.subarray(0, 6)), [0, 0, 0, 17, 17, 17]);
  assert.deepEqual((await readMask(join(dir, "grey.png"))).data, grey);
  // Colour masks become PIL "L" luma: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
  const m = await readMask(join(dir, "rgb.png"));
  assert.equal(m.data[0], (rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >>> 16);
  const rgba = new Uint8Array(4 * 4).map((_, i) => (i % 4 === 3 ? 10 : i * 9));
  await Deno.writeFile(
    join(dir, "rgba.png"),
    encodePngBytes({ width: 2, height: 2, data: rgba, depth: 8, channels: 4 }),
  );
  assert.deepEqual(Array.from((await readImage(join(dir, "rgba.png"))).data), [
    0,
    9,
    18,
    36,
    45,
    54,
    72,
    81,
    90,
    108,
    117,
    126,
  ]);
  // 16-bit grey masks: PIL opens them as "I;16" and convert("L") clips (0, 19789, 65535, 771 -> 0, 255, 255, 255,
  // printed by Pillow 9.4), so small values stay foreground.
  const g16 = new Uint16Array([0, 19789, 65535, 771]);
  await Deno.writeFile(
    join(dir, "grey16.png"),
    encodePngBytes({ width: 2, height: 2, data: g16, depth: 16, channels: 1 }),
  );
  assert.deepEqual(Array.from((await readMask(join(dir, "grey16.png"))).data), [0, 255, 255, 255]);
  // JPEG (jpeg-js): a flat colour survives compression within a level or two
  const flat = new Uint8Array(16 * 16 * 4).map((_, i) => [200, 40, 90, 255][i % 4]);
  await Deno.writeFile(join(dir, "flat.jpg"), jpeg.encode({ width: 16, height: 16, data: flat }, 95).data);
  const j = await readImage(join(dir, "flat.jpg"));
  assert.equal(j.width, 16);
  for (const [i, want] of [200, 40, 90].entries()) assert.ok(Math.abs(j.data[i] - want) <= 2, `jpeg channel ${i}`);
});

Deno.test("Pillow-exact bilinear resize and mask transform match PIL/torchvision fixtures", opts, async () => {
  for (const c of fixtures.masks) {
    const bin = new Uint8Array(c.data.map((v) => (v > 0 ? 255 : 0)));
    assert.deepEqual(Array.from(resizePil(bin, c.width, c.height, 1, c.size, c.size)), c.resized, c.name);
    const m = binarizeResizeMask({ width: c.width, height: c.height, data: new Uint8Array(c.data) }, c.size);
    assert.deepEqual(Array.from(m), c.expected, c.name);
  }
  for (const c of fixtures.images) {
    const r = resizePil(new Uint8Array(c.data), c.width, c.height, 3, c.size, c.size);
    assert.deepEqual(Array.from(r), c.resized);
    assert.deepEqual(Array.from(normalizeRgb(r, c.size, c.size)), c.tensor.map(Math.fround));
    // Through the file path too: PNG on disk -> loadImage.
    const path = join(tmp, `fixture_${c.width}x${c.height}.png`);
    await writePng(path, { width: c.width, height: c.height, data: new Uint8Array(c.data) });
    assert.deepEqual(Array.from(await loadImage(path, c.size)), c.tensor.map(Math.fround));
  }
});

Deno.test("loadMask by hand: 4x4 -> 8x8 and 2x2 (threshold at 128/255), 0/1 output, null is zeros", opts, async () => {
  // Centre 2x2 block on. Upsampling x2: output pixel i samples input (i+0.5)/2-0.5, so output 1 sees 0.25
  // of the block (64 -> 0) and output 2 sees 0.75 (191 -> 1).
  const path = join(tmp, "mask4.png");
  await maskPng(path, 4, 4, (x, y) => x >= 1 && x <= 2 && y >= 1 && y <= 2);
  const up = await loadMask(path, 8);
  const row = [0, 0, 1, 1, 1, 1, 0, 0];
  const expected = [0, 0, 1, 1, 1, 1, 0, 0].flatMap((r) => row.map((v) => v & r));
  assert.deepEqual(Array.from(up), expected);
  // Downsampling by 2 with PIL's antialiased triangle (support 2 input pixels): each output pixel is
  // (1/8)(1*0 + 3*x1 + 3*x2 + 1*x3)... with clamping at the border: 0.3255 of 255 -> 83 < 128 -> all 0.
  assert.deepEqual(Array.from(await loadMask(path, 2)), [0, 0, 0, 0]);
  assert.deepEqual(Array.from(await loadMask(null, 3)), new Array(9).fill(0));
  // A tie: 2x2 with the left column on, to 1x1, averages to exactly 127.5; PIL's fixed point gives 128,
  // and 128/255 > 0.5, so the pixel is on (a float resize thresholded at > 0.5 would say off).
  const tie = join(tmp, "tie.png");
  await maskPng(tie, 2, 2, (x) => x === 0);
  assert.deepEqual(Array.from(await loadMask(tie, 1)), [1]);
  // Any non-zero value is foreground (binarised before resizing).
  const faint = join(tmp, "faint.png");
  await Deno.writeFile(faint, await encodeGreyPng({ width: 2, height: 2, data: new Uint8Array([1, 0, 0, 0]) }));
  assert.deepEqual(Array.from(await loadMask(faint, 2)), [1, 0, 0, 0]);
});

Deno.test("loadImage of a constant colour: exact torchvision values", opts, async () => {
  const path = join(tmp, "const.png");
  const data = new Uint8Array(7 * 5 * 3);
  for (let i = 0; i < 35; i++) data.set([255, 0, 128], 3 * i);
  await writePng(path, { width: 7, height: 5, data });
  // Values printed by torchvision 0.14 (Resize((4,4)), ToTensor, Normalize) on the same image.
  const expected = [2.248908281326294, -2.0357141494750977, 0.4264925718307495];
  const t = await loadImage(path, 4);
  assert.equal(t.length, 48);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < 16; i++) assert.equal(t[c * 16 + i], Math.fround(expected[c]));
  }
  assert.deepEqual(denormalize(await loadImage(path, 4), 4).data.subarray(0, 3), new Uint8Array([255, 0, 128]));
});

function samplesOf(root: string, n: number): Sample[] {
  return Array.from({ length: n }, (_, i) => ({
    path: join(root, `${String(i).padStart(2, "0")}.png`),
    maskPath: i % 3 === 2 ? join(root, `${String(i).padStart(2, "0")}_mask.png`) : null,
    cls: "c",
    defect: i % 3 === 2 ? "d" : "good",
    label: (i % 3 === 2 ? 1 : 0) as 0 | 1,
  }));
}

async function writeSamples(root: string, n: number): Promise<Sample[]> {
  const samples = samplesOf(root, n);
  for (const [i, s] of samples.entries()) {
    await png(s.path, 8, 6, i);
    if (s.maskPath) await maskPng(s.maskPath);
  }
  return samples;
}

Deno.test(
  "DataLoader: batches, dropLast, deterministic shuffle per (seed, epoch), prefetch keeps order",
  opts,
  async () => {
    const root = join(tmp, "loader");
    const samples = await writeSamples(root, 11);
    const collect = async (l: DataLoader, epoch: number) => {
      const out: { paths: string[]; images: Float32Array; masks: Uint8Array }[] = [];
      for await (const b of l.epoch(epoch)) {
        out.push({
          paths: b.samples.map((s) => s.path),
          images: b.images,
          masks: b.masks,
        });
      }
      return out;
    };
    const plain = new DataLoader(samples, { batchSize: 4, imageSize: 4 });
    assert.equal(plain.length, 3);
    const batches = await collect(plain, 0);
    assert.deepEqual(batches.map((b) => b.paths.length), [4, 4, 3]);
    assert.deepEqual(batches.flatMap((b) => b.paths), samples.map((s) => s.path));
    // Contents: each slot holds exactly loadImage/loadMask of its sample.
    const one = await loadImage(samples[5].path, 4);
    assert.deepEqual(batches[1].images.subarray(48, 96), one);
    assert.deepEqual(batches[0].masks.subarray(32, 48), await loadMask(samples[2].maskPath, 4));
    assert.equal(batches[0].masks.subarray(32, 48).reduce((a, v) => a + v, 0), 4 * 2); // x < 3 of 8 -> 2 of 4 columns
    assert.ok(batches[0].masks.subarray(0, 32).every((v) => v === 0));

    const dropped = new DataLoader(samples, { batchSize: 4, imageSize: 4, dropLast: true });
    assert.equal(dropped.length, 2);
    assert.deepEqual((await collect(dropped, 0)).map((b) => b.paths.length), [4, 4]);

    const shuf = (seed: number, prefetch = 2) =>
      new DataLoader(samples, { batchSize: 4, imageSize: 4, shuffle: true, seed, prefetch, concurrency: 3 });
    const e0 = (await collect(shuf(7), 0)).flatMap((b) => b.paths);
    const e1 = (await collect(shuf(7), 1)).flatMap((b) => b.paths);
    assert.deepEqual([...e0].sort(), samples.map((s) => s.path)); // a permutation
    assert.notDeepEqual(e0, e1); // epochs differ
    assert.notDeepEqual(e0, samples.map((s) => s.path));
    assert.deepEqual((await collect(shuf(7), 1)).flatMap((b) => b.paths), e1); // resuming at epoch 1 repeats it
    assert.notDeepEqual(shuf(8).order(0), shuf(7).order(0));
    assert.deepEqual(shuf(7).order(0), shuf(7).order(0));
    // Prefetch depth does not change what comes out, nor its order.
    const a = await collect(shuf(7, 0), 3), b = await collect(shuf(7, 5), 3);
    assert.deepEqual(a, b);

    const batch = await loadSamples(samples.slice(0, 3), 4);
    assert.equal(batch.images.length, 3 * 48);
    assert.deepEqual(batch.images.subarray(0, 48), batches[0].images.subarray(0, 48));
  },
);

Deno.test("DataLoader: decoding runs `prefetch` batches ahead of the consumer, and no further", opts, async () => {
  const samples = await writeSamples(join(tmp, "ahead"), 12);
  const loader = new DataLoader(samples, { batchSize: 2, imageSize: 4, prefetch: 2, withMasks: false });
  const it = loader.epoch(0);
  assert.equal((await it.next()).value?.samples[0].path, samples[0].path);
  // While the consumer holds batch 0, batches 1 and 2 (samples 2..5) are decoded; sample 6 is not started.
  await new Promise((r) => setTimeout(r, 1500));
  for (const s of samples.slice(2, 7)) await Deno.remove(s.path);
  assert.equal((await it.next()).value?.samples[0].path, samples[2].path);
  assert.equal((await it.next()).value?.samples[0].path, samples[4].path);
  await rejects(it.next(), samples[6].path, "not found");
});

Deno.test("DataLoader: bad files throw naming the file, or are skipped and counted with skipBad", opts, async () => {
  const root = join(tmp, "skip");
  const samples = await writeSamples(root, 7);
  const full = await encodePng({ width: 8, height: 6, data: pattern(8, 6, 1) });
  await Deno.writeFile(samples[1].path, full.subarray(0, full.length >> 1)); // truncated
  await maskPng(samples[5].maskPath!, 9, 6); // mask 9x6 for an 8x6 image
  const strict = new DataLoader(samples, { batchSize: 3, imageSize: 4 });
  const drain = async (l: DataLoader) => {
    const got: string[] = [];
    for await (const b of l.epoch(0)) got.push(...b.samples.map((s) => s.path));
    return got;
  };
  const e = await rejects(drain(strict), samples[1].path, "cannot decode");
  assert.ok(e instanceof ImageFileError);
  const noTruncated = samples.filter((_, i) => i !== 1);
  await rejects(
    drain(new DataLoader(noTruncated, { batchSize: 3, imageSize: 4 })),
    samples[5].maskPath!,
    "9x6",
    samples[5].path,
    "8x6",
  );
  const origWarn = console.warn;
  const warnings: string[] = [];
  console.warn = (msg: string) => warnings.push(msg);
  try {
    const lenient = new DataLoader(samples, { batchSize: 3, imageSize: 4, skipBad: true });
    const got = await drain(lenient);
    assert.deepEqual(got, samples.filter((_, i) => i !== 1 && i !== 5).map((s) => s.path));
    assert.deepEqual(lenient.skipped, [samples[1].path, samples[5].maskPath]);
    assert.equal(warnings.length, 2);
    assert.ok(warnings[0].includes(samples[1].path));
    const skipped: string[] = [];
    const batch = await loadSamples(samples, 4, { skipBad: true, skipped });
    assert.equal(batch.samples.length, 5);
    assert.deepEqual(skipped, [samples[1].path, samples[5].maskPath]);
  } finally {
    console.warn = origWarn;
  }
});

async function filesOf(root: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) await walk(p);
      else out.set(p.slice(root.length), await Deno.readFile(p));
    }
  };
  await walk(root);
  return out;
}

Deno.test("synthetic dataset: MVTec layout, deterministic by seed, masks exactly for defect images", opts, async () => {
  const o = {
    classes: ["washer", "weave", "granite"],
    trainPerClass: 2,
    testGoodPerClass: 2,
    testPerDefect: 2,
    size: 64,
  };
  const a = join(tmp, "syn_a"), b = join(tmp, "syn_b"), c = join(tmp, "syn_c");
  const ds: AnomalyDataset = await generateSyntheticDataset(a, { ...o, seed: 3 });
  await generateSyntheticDataset(b, { ...o, seed: 3 });
  await generateSyntheticDataset(c, { ...o, seed: 4 });
  const fa = await filesOf(a), fb = await filesOf(b), fc = await filesOf(c);
  assert.equal(fa.size, 3 * (2 + 2 + 4 * 2 * 2));
  assert.deepEqual([...fa.keys()].sort(), [...fb.keys()].sort());
  for (const [k, v] of fa) assert.deepEqual(v, fb.get(k), k);
  let differ = 0;
  for (const [k, v] of fa) {
    if (!fc.has(k) || fc.get(k)!.length !== v.length || fc.get(k)!.some((x, i) => x !== v[i])) differ++;
  }
  assert.equal(differ, fa.size, "a different seed changes every file");

  const listed = await openDataset("mvtec", a);
  assert.deepEqual(listed, { ...ds, root: a });
  assert.deepEqual(listed.classes, ["granite", "washer", "weave"]);
  assert.deepEqual(datasetSummary(listed)[1].testDefects, Object.fromEntries(SYNTHETIC_DEFECTS.map((d) => [d, 2])));
  for (const s of listed.test) {
    if (s.label === 0) continue;
    const m = await readMask(s.maskPath!);
    assert.equal(m.width, 64);
    const on = m.data.reduce((n, v) => n + (v === 255 ? 1 : 0), 0);
    assert.ok(m.data.every((v) => v === 0 || v === 255), s.maskPath!);
    assert.ok(on >= 12 && on < 64 * 64 * 0.5, `${s.maskPath}: ${on} mask pixels`);
  }
  // Normal images differ from one another (jitter and noise), even within a class.
  const n0 = await readImage(listed.train[0].path), n1 = await readImage(listed.train[1].path);
  assert.notDeepEqual(n0.data, n1.data);
  await rejects(generateSyntheticDataset(join(tmp, "syn_x"), { classes: ["marble"] }), '"marble"', "washer");
});

Deno.test("heatmap: jet equals matplotlib's table; overlay, sideBySide, maskToRgb", () => {
  // matplotlib 3.6.3 cm.jet(x, bytes=True) at 0, 0.25, 0.5, 0.75, 1 (also in the fixture).
  const known = [[0, 0, 127], [0, 128, 255], [124, 255, 121], [255, 148, 0], [127, 0, 0]];
  assert.deepEqual(fixtures.jet.rgb, known);
  const img = colorize(new Float32Array([0, 0.25, 0.5, 0.75, 1]), 1, 5, { min: 0, max: 1 });
  assert.deepEqual(Array.from(img.data), known.flat());
  assert.deepEqual(Array.from(JET_LUT), fixtures.jet.lut.flat());
  // Default range is the map's own; values outside [min, max] clip.
  assert.deepEqual(Array.from(colorize(new Float32Array([2, 4]), 1, 2).data), [0, 0, 127, 127, 0, 0]);
  assert.deepEqual(Array.from(colorize(new Float32Array([-1, 9]), 1, 2, { min: 0, max: 1 }).data), [
    0,
    0,
    127,
    127,
    0,
    0,
  ]);
  // (1 - 0.5) * image + 0.5 * heat, rounded half up: 127.5 -> 128.
  const o = overlay({ width: 1, height: 1, data: new Uint8Array([100, 0, 255]) }, {
    width: 1,
    height: 1,
    data: new Uint8Array([0, 255, 1]),
  });
  assert.deepEqual(Array.from(o.data), [50, 128, 128]);
  const m = maskToRgb(new Uint8Array([0, 1, 0, 255]), 2, 2);
  assert.deepEqual(Array.from(m.data), [0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255]);
  const strip = sideBySide([m, { width: 3, height: 1, data: new Uint8Array(9) }], 4);
  assert.equal(strip.width, 2 + 4 + 3);
  assert.equal(strip.height, 2);
  assert.deepEqual(Array.from(strip.data.subarray(0, 3 * 9)), [
    0,
    0,
    0,
    255,
    255,
    255,
    ...new Array(12).fill(255),
    ...new Array(9).fill(0),
  ]);
  assert.deepEqual(Array.from(strip.data.subarray(3 * 15)), new Array(9).fill(255)); // padding under the 3x1 image
  assert.throws(() => colorize(new Float32Array(3), 2, 2), /3 values, expected 2x2/);
});

Deno.test("renderSvg and encodePng write PNGs", opts, async () => {
  const path = join(tmp, "plot.png");
  await renderSvg(
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20" fill="red"/>' +
      '<text x="2" y="15" font-size="12">AUROC</text></svg>',
    path,
  );
  const img = await readImage(path);
  assert.equal(img.width, 40);
  assert.equal(img.height, 20);
  assert.deepEqual(Array.from(img.data.subarray(3 * 39, 3 * 40)), [255, 0, 0]);
  await rejects(renderSvg("<svg", join(tmp, "bad.png")), "bad.png");
});
