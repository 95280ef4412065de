/**
 * Loaders for the published anomaly-detection dataset layouts (MVTec-AD, VisA, MPDD) and a generic folder
 * layout. They only list files and pair images with masks; decoding happens in `image.ts` / `loader.ts`.
 *
 * Layouts:
 * - **MVTec-AD** and **MPDD**: `<root>/<cls>/train/good/*.png`, `<root>/<cls>/test/<defect>/*.png` (`good`
 *   for normal test images), masks `<root>/<cls>/ground_truth/<defect>/<name>_mask.png`; every defect image
 *   must have its mask.
 * - **VisA**: `<root>/split_csv/1cls.csv` (from VisA's `prepare_data.py`) with header
 *   `object,split,label,image,mask`, paths relative to `<root>`, label `normal`/`anomaly`, split
 *   `train`/`test`; images under `<cls>/Data/Images/{Normal,Anomaly}/`, masks under
 *   `<cls>/Data/Masks/Anomaly/`. The defect name of every VisA anomaly is `"anomaly"`.
 * - **folder** (your own data): `<root>/<cls>/train/good/*`, `<root>/<cls>/test/good/*` and
 *   `<root>/<cls>/test/<defect>/*`. Masks are optional: when `<root>/<cls>/ground_truth/<defect>/` exists,
 *   the mask of `test/<defect>/<stem>.<ext>` is the image file in that folder named `<stem>_mask.<ext>`, else
 *   `<stem>.<ext>`, else the first (by name) `<stem>_*.<ext>` (any image extension); a defect image without a
 *   match there is an error. When that folder does not exist, the defect images have `maskPath: null`.
 *
 * Image files are those ending in png, jpg, jpeg, bmp, tif or tiff (any case); hidden files are ignored and
 * every listing is sorted by name, so sample order is deterministic.
 *
 * @module
 */

import { join } from "node:path";

/** The dataset layouts {@linkcode openDataset} understands. */
export type DatasetKind = "mvtec" | "visa" | "mpdd" | "folder";

/** One image of a dataset. */
export interface Sample {
  /** Path of the image file. */
  path: string;
  /** Path of its ground-truth mask, or null (normal images, or defects without masks in the folder layout). */
  maskPath: string | null;
  /** Class (object/texture) name. */
  cls: string;
  /** Defect type; `"good"` for normal images. */
  defect: string;
  /** 0 normal, 1 anomalous. */
  label: 0 | 1;
}

/** A listed dataset: its classes and the train (normal only) and test samples of all of them. */
export interface AnomalyDataset {
  /** Layout it was read with. */
  kind: DatasetKind;
  /** Root folder. */
  root: string;
  /** Class names, sorted. */
  classes: string[];
  /** Training samples (class by class, files by name). */
  train: Sample[];
  /** Test samples (class by class, defect folders and files by name). */
  test: Sample[];
}

/** Options of {@linkcode openDataset}. */
export interface OpenDatasetOptions {
  /** Only these classes (default: all). Unknown names are an error listing the available ones. */
  classes?: string[];
}

/** The 15 MVTec-AD classes. */
export const MVTEC_CLASSES: readonly string[] = [
  "bottle",
  "cable",
  "capsule",
  "carpet",
  "grid",
  "hazelnut",
  "leather",
  "metal_nut",
  "pill",
  "screw",
  "tile",
  "toothbrush",
  "transistor",
  "wood",
  "zipper",
];

/** The 6 MPDD classes. */
export const MPDD_CLASSES: readonly string[] = [
  "bracket_black",
  "bracket_brown",
  "bracket_white",
  "connector",
  "metal_plate",
  "tubes",
];

/** The 12 VisA classes. */
export const VISA_CLASSES: readonly string[] = [
  "candle",
  "capsules",
  "cashew",
  "chewinggum",
  "fryum",
  "macaroni1",
  "macaroni2",
  "pcb1",
  "pcb2",
  "pcb3",
  "pcb4",
  "pipe_fryum",
];

/** The known class names of a published dataset (empty for `"folder"`). */
export function knownClasses(kind: DatasetKind): readonly string[] {
  return kind === "mvtec" ? MVTEC_CLASSES : kind === "mpdd" ? MPDD_CLASSES : kind === "visa" ? VISA_CLASSES : [];
}

/** A dataset folder or split file that does not follow the expected layout. */
export class DatasetError extends Error {
  /** Creates the error; the message names the path involved. */
  constructor(message: string) {
    super(message);
    this.name = "DatasetError";
  }
}

const IMAGE_EXT = /\.(png|jpe?g|bmp|tiff?)$/i;

/** True when `name` has one of the image extensions the loaders accept. */
export function isImageFile(name: string): boolean {
  return IMAGE_EXT.test(name) && !name.startsWith(".");
}

function stemOf(name: string): string {
  const i = name.lastIndexOf(".");
  return i > 0 ? name.slice(0, i) : name;
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    throw new DatasetError(`cannot access ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

async function isDir(path: string): Promise<boolean> {
  return (await statOrNull(path))?.isDirectory ?? false;
}

async function listDir(path: string, want: "dirs" | "images"): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(path)) {
      if (e.name.startsWith(".")) continue;
      if (want === "dirs") {
        if (e.isDirectory || (e.isSymlink && await isDir(join(path, e.name)))) names.push(e.name);
      } else if ((e.isFile || e.isSymlink) && isImageFile(e.name)) {
        names.push(e.name);
      }
    }
  } catch (e) {
    throw new DatasetError(`cannot list ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return names.sort(compareNames);
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function selectClasses(kind: DatasetKind, root: string, available: string[], wanted?: string[]): string[] {
  if (!wanted || wanted.length === 0) return available;
  const missing = wanted.filter((c) => !available.includes(c));
  if (missing.length > 0) {
    const known = knownClasses(kind);
    const hint = known.length > 0 ? ` (the published ${kind} classes are: ${known.join(", ")})` : "";
    throw new DatasetError(
      `unknown class${missing.length > 1 ? "es" : ""} ${
        missing.map((c) => `"${c}"`).join(", ")
      } in ${kind} dataset at ` +
        `${root}; available: ${available.join(", ")}${hint}`,
    );
  }
  return [...new Set(wanted)].sort(compareNames);
}

/**
 * Lists a dataset of the given layout under `root` (see the module doc for the layouts). Throws
 * {@linkcode DatasetError} naming the path when the root is missing, a class lacks `train/good` or `test`,
 * a class has no training images, a defect image has no mask (MVTec/MPDD), the VisA CSV is missing or
 * malformed (file and line), or a requested class does not exist (listing the available ones).
 */
export async function openDataset(
  kind: DatasetKind,
  root: string,
  opts: OpenDatasetOptions = {},
): Promise<AnomalyDataset> {
  if (!["mvtec", "visa", "mpdd", "folder"].includes(kind)) {
    throw new DatasetError(`unknown dataset kind "${kind}"; expected mvtec, visa, mpdd or folder`);
  }
  const st = await statOrNull(root);
  if (!st) throw new DatasetError(`dataset root ${root} does not exist`);
  if (!st.isDirectory) throw new DatasetError(`dataset root ${root} is not a directory`);
  return kind === "visa" ? await openVisa(root, opts) : await openFolderLayout(kind, root, opts);
}

async function openFolderLayout(kind: DatasetKind, root: string, opts: OpenDatasetOptions): Promise<AnomalyDataset> {
  const available: string[] = [];
  for (const d of await listDir(root, "dirs")) {
    if (await isDir(join(root, d, "train"))) available.push(d);
  }
  if (available.length === 0) {
    throw new DatasetError(
      `no class folders under ${root}: expected ${root}/<class>/train/good and ` +
        `${root}/<class>/test/<defect> (${kind} layout)`,
    );
  }
  const classes = selectClasses(kind, root, available, opts.classes);
  const train: Sample[] = [];
  const test: Sample[] = [];
  for (const cls of classes) {
    const clsDir = join(root, cls);
    const trainDir = join(clsDir, "train", "good");
    if (!(await isDir(trainDir))) throw new DatasetError(`class "${cls}": missing folder ${trainDir}`);
    const testDir = join(clsDir, "test");
    if (!(await isDir(testDir))) throw new DatasetError(`class "${cls}": missing folder ${testDir}`);
    const trainFiles = await listDir(trainDir, "images");
    if (trainFiles.length === 0) throw new DatasetError(`class "${cls}" is empty: no training images in ${trainDir}`);
    for (const f of trainFiles) train.push({ path: join(trainDir, f), maskPath: null, cls, defect: "good", label: 0 });
    for (const defect of await listDir(testDir, "dirs")) {
      const dir = join(testDir, defect);
      const files = await listDir(dir, "images");
      if (defect === "good") {
        for (const f of files) test.push({ path: join(dir, f), maskPath: null, cls, defect, label: 0 });
        continue;
      }
      const gtDir = join(clsDir, "ground_truth", defect);
      if (kind === "folder") {
        const gtFiles = (await isDir(gtDir)) ? await listDir(gtDir, "images") : null;
        for (const f of files) {
          let maskPath: string | null = null;
          if (gtFiles) {
            const m = matchMaskByStem(stemOf(f), gtFiles);
            if (m === null) {
              throw new DatasetError(
                `class "${cls}": defect image ${join(dir, f)} has no mask in ${gtDir} ` +
                  `(looked for ${stemOf(f)}_mask.*, ${stemOf(f)}.* and ${stemOf(f)}_*.*)`,
              );
            }
            maskPath = join(gtDir, m);
          }
          test.push({ path: join(dir, f), maskPath, cls, defect, label: 1 });
        }
      } else {
        for (const f of files) {
          const maskPath = join(gtDir, `${stemOf(f)}_mask.png`);
          if (!((await statOrNull(maskPath))?.isFile ?? false)) {
            throw new DatasetError(`class "${cls}": defect image ${join(dir, f)} has no mask: ${maskPath} not found`);
          }
          test.push({ path: join(dir, f), maskPath, cls, defect, label: 1 });
        }
      }
    }
  }
  return { kind, root, classes, train, test };
}

/** The folder layout's mask rule: `<stem>_mask.*`, else `<stem>.*`, else the first `<stem>_*.*` by name. */
function matchMaskByStem(stem: string, gtFiles: string[]): string | null {
  const stems = gtFiles.map(stemOf);
  let i = stems.indexOf(`${stem}_mask`);
  if (i < 0) i = stems.indexOf(stem);
  if (i < 0) i = stems.findIndex((s) => s.startsWith(`${stem}_`));
  return i < 0 ? null : gtFiles[i];
}

/** Parses CSV text (RFC 4180: quoted fields with `""` escapes and embedded commas/newlines; LF or CRLF). */
export function parseCsv(text: string, file = "<csv>"): { fields: string[]; line: number }[] {
  const rows: { fields: string[]; line: number }[] = [];
  let fields: string[] = [];
  let field = "";
  let inQuotes = false;
  let line = 1;
  let rowLine = 1;
  let fieldStarted = false;
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inQuotes) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else inQuotes = false;
      } else {
        if (ch === "\n") line++;
        field += ch;
      }
      continue;
    }
    if (ch === '"') {
      if (field.length > 0) throw new DatasetError(`${file} line ${line}: stray quote inside an unquoted field`);
      inQuotes = true;
      fieldStarted = true;
    } else if (ch === ",") {
      fields.push(field);
      field = "";
      fieldStarted = true;
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      if (fieldStarted || field.length > 0 || fields.length > 0) {
        fields.push(field);
        rows.push({ fields, line: rowLine });
      }
      fields = [];
      field = "";
      fieldStarted = false;
      line++;
      rowLine = line;
    } else {
      field += ch;
      fieldStarted = true;
    }
  }
  if (inQuotes) throw new DatasetError(`${file} line ${rowLine}: unterminated quoted field`);
  if (fieldStarted || field.length > 0 || fields.length > 0) {
    fields.push(field);
    rows.push({ fields, line: rowLine });
  }
  return rows;
}

async function openVisa(root: string, opts: OpenDatasetOptions): Promise<AnomalyDataset> {
  const csvPath = join(root, "split_csv", "1cls.csv");
  let text: string;
  try {
    text = await Deno.readTextFile(csvPath);
  } catch (e) {
    throw new DatasetError(
      `VisA split file ${csvPath} not found or unreadable (${e instanceof Error ? e.message : String(e)}); ` +
        `create it with VisA's prepare_data.py (split type 1cls)`,
    );
  }
  const rows = parseCsv(text, csvPath);
  if (rows.length === 0) throw new DatasetError(`${csvPath}: empty file`);
  const header = rows[0].fields.map((h) => h.trim());
  const want = ["object", "split", "label", "image", "mask"];
  const col = want.map((h) => header.indexOf(h));
  if (col.some((c) => c < 0)) {
    throw new DatasetError(
      `${csvPath} line ${rows[0].line}: header must contain ${want.join(",")}, got "${header.join(",")}"`,
    );
  }
  const all: (Sample & { split: string })[] = [];
  for (const r of rows.slice(1)) {
    if (r.fields.length === 1 && r.fields[0].trim() === "") continue;
    if (r.fields.length !== header.length) {
      throw new DatasetError(`${csvPath} line ${r.line}: expected ${header.length} fields, got ${r.fields.length}`);
    }
    const [object, split, label, image, mask] = col.map((c) => r.fields[c].trim());
    if (split !== "train" && split !== "test") {
      throw new DatasetError(`${csvPath} line ${r.line}: split must be "train" or "test", got "${split}"`);
    }
    if (label !== "normal" && label !== "anomaly") {
      throw new DatasetError(`${csvPath} line ${r.line}: label must be "normal" or "anomaly", got "${label}"`);
    }
    if (object === "" || image === "") throw new DatasetError(`${csvPath} line ${r.line}: empty object or image field`);
    if (label === "anomaly" && mask === "") {
      throw new DatasetError(`${csvPath} line ${r.line}: anomaly ${image} has no mask`);
    }
    all.push({
      split,
      cls: object,
      path: join(root, image),
      maskPath: label === "anomaly" ? join(root, mask) : null,
      defect: label === "anomaly" ? "anomaly" : "good",
      label: label === "anomaly" ? 1 : 0,
    });
  }
  const available = [...new Set(all.map((s) => s.cls))].sort(compareNames);
  if (available.length === 0) throw new DatasetError(`${csvPath}: no samples listed`);
  const classes = selectClasses("visa", root, available, opts.classes);
  const chosen = all.filter((s) => classes.includes(s.cls));
  // Check that the listed files exist (a few thousand stats, done concurrently in chunks).
  const paths = chosen.flatMap((s) => s.maskPath ? [s.path, s.maskPath] : [s.path]);
  for (let i = 0; i < paths.length; i += 256) {
    const chunk = paths.slice(i, i + 256);
    const st = await Promise.all(chunk.map(statOrNull));
    const j = st.findIndex((s) => !s?.isFile);
    if (j >= 0) throw new DatasetError(`VisA file ${chunk[j]} listed in ${csvPath} does not exist`);
  }
  const strip = (s: Sample & { split: string }): Sample => ({
    path: s.path,
    maskPath: s.maskPath,
    cls: s.cls,
    defect: s.defect,
    label: s.label,
  });
  const byClass = (a: Sample, b: Sample) => compareNames(a.cls, b.cls);
  const train = chosen.filter((s) => s.split === "train").map(strip).sort(byClass);
  const test = chosen.filter((s) => s.split === "test").map(strip).sort(byClass);
  for (const cls of classes) {
    if (!train.some((s) => s.cls === cls)) {
      throw new DatasetError(`class "${cls}" is empty: no training images in ${csvPath}`);
    }
  }
  return { kind: "visa", root, classes, train, test };
}

/** Counts of one class. */
export interface ClassSummary {
  /** Class name. */
  cls: string;
  /** Training images. */
  train: number;
  /** Normal test images. */
  testGood: number;
  /** Anomalous test images per defect type (sorted by name). */
  testDefects: Record<string, number>;
  /** Total anomalous test images. */
  testDefectTotal: number;
}

/** Per-class counts: train, test good, test defects per defect type. */
export function datasetSummary(ds: AnomalyDataset): ClassSummary[] {
  return ds.classes.map((cls) => {
    const testDefects: Record<string, number> = {};
    let testGood = 0;
    let testDefectTotal = 0;
    for (const s of ds.test) {
      if (s.cls !== cls) continue;
      if (s.label === 0) testGood++;
      else {
        testDefects[s.defect] = (testDefects[s.defect] ?? 0) + 1;
        testDefectTotal++;
      }
    }
    const sorted: Record<string, number> = {};
    for (const k of Object.keys(testDefects).sort(compareNames)) sorted[k] = testDefects[k];
    return { cls, train: ds.train.filter((s) => s.cls === cls).length, testGood, testDefects: sorted, testDefectTotal };
  });
}

/** A plain-text table of {@linkcode datasetSummary}, with a total row. */
export function formatSummary(ds: AnomalyDataset): string {
  const sum = datasetSummary(ds);
  const rows = [["class", "train", "test good", "test defect", "defect types"]];
  for (const s of sum) {
    rows.push([
      s.cls,
      String(s.train),
      String(s.testGood),
      String(s.testDefectTotal),
      Object.entries(s.testDefects).map(([k, v]) => `${k} ${v}`).join(", "),
    ]);
  }
  const total = (f: (s: ClassSummary) => number) => String(sum.reduce((a, s) => a + f(s), 0));
  rows.push(["total", total((s) => s.train), total((s) => s.testGood), total((s) => s.testDefectTotal), ""]);
  const widths = rows[0].map((_, j) => Math.max(...rows.map((r) => r[j].length)));
  const fmt = (r: string[]) =>
    r.map((c, j) => (j === 0 || j === r.length - 1 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join("  ").trimEnd();
  const sep = widths.map((w) => "-".repeat(w)).join("  ");
  const lines = [`${ds.kind} dataset at ${ds.root}: ${ds.classes.length} classes`, fmt(rows[0]), sep];
  for (const r of rows.slice(1, -1)) lines.push(fmt(r));
  lines.push(sep, fmt(rows[rows.length - 1]));
  return lines.join("\n");
}
