/**
 * Weight-file I/O: every fixture of tests/fixtures/io/ (made by tools/gen_io_fixtures.py with PyTorch
 * and the safetensors package) loads with the expected values, shapes and dtypes; safetensors round
 * trips bit-exactly on every device of `testDevices()`; bad files (truncated, wrong magic, huge header
 * length, offsets out of range, forbidden globals, legacy format, ...) fail fast with an error naming
 * the file and the problem.
 */
import assert from "node:assert/strict";
import { tensor } from "../mod.ts";
import type { DType, HostArray } from "../mod.ts";
import {
  atomicWriteFile,
  crc32,
  findStateDict,
  type HostTensor,
  isHostTensor,
  loadPth,
  loadPthStateDict,
  loadSafetensors,
  parsePth,
  parseSafetensors,
  PyDict,
  type SafetensorsDType,
  saveSafetensors,
  serializeSafetensors,
  toTensors,
  unpickle,
  WeightsFileError,
  ZipArchive,
} from "../nn/io/index.ts";
import { loadResNetWeights, resnet18 } from "../models/backbones/resnet.ts";
import { testDevices } from "./util.ts";

const devices = await testDevices();
const FIX = new URL("./fixtures/io/", import.meta.url);
const fixturePath = (rel: string): string => decodeURIComponent(new URL(rel, FIX).pathname);
// deno-lint-ignore no-explicit-any
const expected: any = JSON.parse(await Deno.readTextFile(fixturePath("expected.json")));

function test(name: string, fn: () => Promise<void> | void): void {
  Deno.test({ name: `io: ${name}`, sanitizeResources: false, sanitizeOps: false, fn });
}

/** A loaded value in the generator's tagged encoding (see tools/gen_io_fixtures.py). */
function encode(v: unknown): unknown {
  if (isHostTensor(v)) {
    const values = Array.from(
      v.data as ArrayLike<number>,
      (x) => Number.isNaN(x) ? "nan" : x === Infinity ? "inf" : x === -Infinity ? "-inf" : x,
    );
    return { $tensor: { dtype: v.dtype, shape: v.shape, source: v.sourceDtype, values } };
  }
  if (v instanceof PyDict) {
    const out: Record<string, unknown> = { $dict: [...v].map(([k, x]) => [encode(k), encode(x)]) };
    if (v.pyClass !== "dict") out.$class = v.pyClass;
    if (Object.keys(v.attributes).length) {
      out.$attrs = Object.fromEntries(Object.entries(v.attributes).map(([k, x]) => [k, encode(x)]));
    }
    return out;
  }
  if (Array.isArray(v)) return v.map(encode);
  if (v instanceof Set) return { $set: [...v].map(encode).sort((a, b) => (a! < b! ? -1 : a! > b! ? 1 : 0)) };
  if (v instanceof Uint8Array) return { $bytes: Array.from(v) };
  if (typeof v === "bigint") return { $int: String(v) };
  if (typeof v === "number" && !Number.isFinite(v)) return { $float: Number.isNaN(v) ? "nan" : v > 0 ? "inf" : "-inf" };
  return v;
}

/** Asserts that `fn` throws a WeightsFileError whose message names `file` and matches `problem`, within `ms`. */
async function assertBadFile(
  fn: () => unknown,
  file: string,
  problem: RegExp,
  ms = 250,
): Promise<WeightsFileError> {
  const t0 = performance.now();
  let err: unknown = null;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  const dt = performance.now() - t0;
  assert.ok(err instanceof WeightsFileError, `${file}: expected a WeightsFileError, got ${err}`);
  assert.ok(err.message.includes(file), `error does not name the file ${file}: ${err.message}`);
  assert.match(err.message, problem);
  assert.ok(dt < ms, `${file}: failing took ${dt.toFixed(1)} ms`);
  return err;
}

// ------------------------------------------------------------------------------------------------
// Fixtures load with the expected values

for (const [rel, want] of Object.entries(expected.pth as Record<string, unknown>)) {
  test(`pth fixture ${rel} loads with the expected values, shapes and dtypes`, async () => {
    const got = await loadPth(fixturePath(rel));
    assert.deepStrictEqual(encode(got), want);
  });
}

for (
  const [rel, want] of Object.entries(expected.safetensors as Record<string, { metadata: unknown; tensors: unknown }>)
) {
  test(`safetensors fixture ${rel} loads with the expected values, shapes, dtypes and metadata`, async () => {
    const { tensors, metadata } = await loadSafetensors(fixturePath(rel));
    assert.deepStrictEqual(metadata, want.metadata);
    assert.deepStrictEqual(Object.fromEntries([...tensors].map(([k, t]) => [k, encode(t)])), want.tensors);
  });

  test(`safetensors fixture ${rel} re-serialises to the Python package's exact bytes`, async () => {
    const bytes = await Deno.readFile(fixturePath(rel));
    const { tensors, metadata } = parseSafetensors(bytes, rel);
    // sourceDtype keeps each tensor's file dtype (F16, BF16, I64, U8, ...), metadata keeps its key order
    const again = serializeSafetensors(tensors, { metadata: Object.keys(metadata).length ? metadata : undefined });
    assert.deepStrictEqual(again, bytes);
  });
}

for (const [rel, problem] of Object.entries(expected.errors as Record<string, string>)) {
  test(`bad fixture ${rel} is refused naming the file and the problem`, async () => {
    const path = fixturePath(rel);
    const load = rel.endsWith(".safetensors") ? () => loadSafetensors(path) : () => loadPth(path);
    await assertBadFile(load, path, new RegExp(problem));
  });
}

for (
  const [name, { b64, value }] of Object.entries(expected.pickles as Record<string, { b64: string; value: unknown }>)
) {
  test(`unpickle reads a plain Python object pickled with ${name}`, () => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    assert.deepStrictEqual(encode(unpickle(bytes, { file: name })), value);
  });
}

test("state dicts: OrderedDict order, _metadata, Parameters, nested checkpoints", async () => {
  const sd = await loadPthStateDict(fixturePath("pth/state_dict.pth"));
  assert.deepStrictEqual([...sd.keys()], [
    "0.weight",
    "0.bias",
    "1.weight",
    "1.bias",
    "1.running_mean",
    "1.running_var",
    "1.num_batches_tracked",
    "4.weight",
    "4.bias",
  ]);
  assert.deepStrictEqual(sd.get("0.weight")!.shape, [3, 2, 3, 3]);
  assert.equal(sd.get("1.num_batches_tracked")!.dtype, "int32");
  assert.deepStrictEqual(Array.from(sd.get("1.num_batches_tracked")!.data), [7]);
  const raw = (await loadPth(fixturePath("pth/state_dict.pth"))) as PyDict;
  assert.equal(raw.pyClass, "collections.OrderedDict");
  const meta = raw.attributes._metadata as PyDict;
  assert.equal((meta.get("1") as PyDict).get("version"), 2);

  const ckpt = (await loadPth(fixturePath("pth/checkpoint.pth"))) as PyDict;
  assert.equal(ckpt.get("epoch"), 3);
  assert.equal(ckpt.get("name"), "smallnet é");
  assert.deepStrictEqual([...findStateDict(ckpt).keys()], [...sd.keys()]);
  const fromCkpt = await loadPthStateDict(fixturePath("pth/checkpoint.pth"));
  assert.deepStrictEqual(fromCkpt.get("4.weight")!.data, sd.get("4.weight")!.data);
  await assertBadFile(
    () => loadPthStateDict(fixturePath("pth/checkpoint.pth"), { key: "optimizer" }),
    fixturePath("pth/checkpoint.pth"),
    /'optimizer' is missing or not a dict of tensors/,
  );
  assert.throws(() => findStateDict(3, "x.pth"), /x\.pth: no state dict found: the checkpoint is not a dict/);

  const params = await loadPthStateDict(fixturePath("pth/parameter.pth"));
  assert.deepStrictEqual(Array.from(params.get("frozen")!.data), [0, 1, 2, 3]);
});

/** A `torch.save` zip archive (stored entries) whose data.pkl is `pickle` (protocol 2). */
function pthArchive(pickle: number[]): Uint8Array {
  const enc = new TextEncoder();
  const files: [string, Uint8Array][] = [
    ["archive/data.pkl", new Uint8Array(pickle)],
    ["archive/version", enc.encode("3\n")],
  ];
  const local: number[] = [], central: number[] = [];
  const u16 = (a: number[], v: number) => a.push(v & 255, v >>> 8);
  const u32 = (a: number[], v: number) => a.push(v & 255, (v >>> 8) & 255, (v >>> 16) & 255, v >>> 24);
  for (const [name, data] of files) {
    const n = enc.encode(name), crc = crc32(data), offset = local.length;
    u32(local, 0x04034b50), u16(local, 20), u16(local, 0), u16(local, 0), u16(local, 0), u16(local, 0);
    u32(local, crc), u32(local, data.length), u32(local, data.length), u16(local, n.length), u16(local, 0);
    local.push(...n, ...data);
    u32(central, 0x02014b50), u16(central, 20), u16(central, 20), u16(central, 0), u16(central, 0);
    u16(central, 0), u16(central, 0), u32(central, crc), u32(central, data.length), u32(central, data.length);
    u16(central, n.length), u16(central, 0), u16(central, 0), u16(central, 0), u16(central, 0), u32(central, 0);
    u32(central, offset);
    central.push(...n);
  }
  const eocd: number[] = [];
  u32(eocd, 0x06054b50), u16(eocd, 0), u16(eocd, 0), u16(eocd, files.length), u16(eocd, files.length);
  u32(eocd, central.length), u32(eocd, local.length), u16(eocd, 0);
  return new Uint8Array([...local, ...central, ...eocd]);
}

test("an empty dict holds no state dict: 'no tensors found' names the file (loadPth still returns {})", async () => {
  // torch.save({}, f): PROTO 2, EMPTY_DICT, STOP
  const path = await Deno.makeTempFile({ suffix: "_empty.pth" });
  // torch.save({"epoch": 3, "state_dict": {}}, f): PROTO 2, EMPTY_DICT, MARK, "epoch" 3 "state_dict" {}, SETITEMS
  const nested = [0x80, 0x02, 0x7d, 0x28, 0x58, 5, 0, 0, 0, ...new TextEncoder().encode("epoch"), 0x4b, 3];
  nested.push(0x58, 10, 0, 0, 0, ...new TextEncoder().encode("state_dict"), 0x7d, 0x75, 0x2e);
  const nestedPath = await Deno.makeTempFile({ suffix: "_nested.pth" });
  try {
    await Deno.writeFile(path, pthArchive([0x80, 0x02, 0x7d, 0x2e]));
    await Deno.writeFile(nestedPath, pthArchive(nested));
    const raw = await loadPth(path);
    assert.ok(raw instanceof Map && raw.size === 0, "loadPth is torch.load: the empty dict itself");
    await assertBadFile(() => loadPthStateDict(path), path, /: no tensors found: the checkpoint is an empty dict$/);
    assert.throws(
      () => findStateDict(new PyDict(), "x.pth"),
      /x\.pth: no tensors found: the checkpoint is an empty dict$/,
    );
    await assertBadFile(
      () => loadPthStateDict(nestedPath),
      nestedPath,
      /: no tensors found: checkpoint entry 'state_dict' is an empty dict$/,
    );
    await assertBadFile(
      () => loadPthStateDict(nestedPath, { key: "state_dict" }),
      nestedPath,
      /: no tensors found: checkpoint entry 'state_dict' is an empty dict$/,
    );
    // --encoder-weights goes through loadResNetWeights: one line naming the file, not 100+ missing keys
    const model = resnet18({ features: ["layer1"] });
    try {
      await assert.rejects(
        () => loadResNetWeights(model, path),
        (e: Error) => {
          assert.match(e.message, /_empty\.pth: no tensors found: the checkpoint is an empty dict/);
          assert.doesNotMatch(e.message, /missing/);
          return true;
        },
      );
    } finally {
      model.dispose();
    }
  } finally {
    await Deno.remove(path);
    await Deno.remove(nestedPath);
  }
});

test("contiguous float32 tensors are views of the file bytes; shared storages are decoded once", async () => {
  const bytes = await Deno.readFile(fixturePath("pth/views.pth"));
  const obj = parsePth(bytes, "views.pth") as PyDict;
  const base = obj.get("base") as HostTensor, row = obj.get("row") as HostTensor;
  assert.equal(base.data.buffer, bytes.buffer);
  assert.equal(row.data.buffer, bytes.buffer);
  assert.equal(row.data.byteOffset, base.data.byteOffset + 12 * 4);
  // a non-contiguous view is materialised into its own array
  assert.notEqual((obj.get("transposed") as HostTensor).data.buffer, bytes.buffer);
  // unaligned records (repacked by hand) are copied, with the same values
  const rbytes = await Deno.readFile(fixturePath("pth/repacked.pth"));
  const r = parsePth(rbytes, "repacked.pth") as PyDict;
  assert.deepStrictEqual((r.get("base") as HostTensor).data, base.data);
  // the archive's top folder differs and zip64 records are read
  assert.ok(new ZipArchive(rbytes, "repacked.pth").has("my_model/data.pkl"));
  assert.ok(new ZipArchive(await Deno.readFile(fixturePath("pth/zip64.pth")), "zip64.pth").has("z64/data.pkl"));
});

test("toTensors makes tensors on every device", async () => {
  const sd = await loadPthStateDict(fixturePath("pth/dtypes.pth"));
  for (const device of devices) {
    const ts = toTensors(sd, { device });
    for (const [k, t] of ts) {
      const h = sd.get(k)!;
      assert.equal(t.device, device);
      assert.equal(t.dtype, h.dtype);
      assert.deepStrictEqual(t.shape, h.shape);
      assert.deepStrictEqual(new Uint8Array((await t.data()).slice().buffer), new Uint8Array(h.data.slice().buffer));
      t.dispose();
    }
  }
});

// ------------------------------------------------------------------------------------------------
// safetensors round trips

function bitsOf(a: HostArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
}

const specialF32 = new Float32Array(
  new Uint32Array([
    0x00000000,
    0x80000000, // -0
    0x7f800000, // inf
    0xff800000, // -inf
    0x7fc00001, // NaN with a payload
    0x00000001, // smallest subnormal
    0x007fffff,
    0x7f7fffff, // max
    0x3f800000,
    0xbfc00000,
    0x3eaaaaab,
    0x12345678,
  ]).buffer,
);

for (const device of devices) {
  test(`safetensors round trip from Tensors is bit-exact and keeps metadata [${device}]`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "io_test_" });
    try {
      const f = tensor(specialF32, { shape: [3, 4], device });
      const i = tensor(new Int32Array([0, 1, -1, 2147483647, -2147483648, 42]), { shape: [2, 3], device });
      const b = tensor([[true, false], [false, true]], { device });
      const s = tensor([7.5], { shape: [], device });
      const e = tensor(new Float32Array(0), { shape: [0, 5], device });
      const path = `${dir}/model.safetensors`;
      const metadata = { format: "pt", epoch: "3", "unicode é": 'ü"x"' };
      await saveSafetensors(path, { "layer.weight": f, ids: i, mask: b, scale: s, empty: e }, { metadata });
      const back = await loadSafetensors(path);
      assert.deepStrictEqual(back.metadata, metadata);
      assert.deepStrictEqual([...back.tensors.keys()], ["empty", "layer.weight", "scale", "ids", "mask"]);
      for (const [name, t] of Object.entries({ "layer.weight": f, ids: i, mask: b, scale: s, empty: e })) {
        const h = back.tensors.get(name)!;
        assert.equal(h.dtype, t.dtype);
        assert.deepStrictEqual(h.shape, t.shape);
        assert.deepStrictEqual(bitsOf(h.data), bitsOf(await t.data()), name);
      }
      // header padded to 8 bytes, deterministic: saving again gives the same bytes
      const bytes = await Deno.readFile(path);
      const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      assert.equal(headerLen % 8, 0);
      await saveSafetensors(`${dir}/again.safetensors`, { mask: b, empty: e, scale: s, ids: i, "layer.weight": f }, {
        metadata,
      });
      assert.deepStrictEqual(await Deno.readFile(`${dir}/again.safetensors`), bytes);
      // loaded back onto the device
      const ts = toTensors(back.tensors, { device });
      assert.deepStrictEqual(bitsOf(await ts.get("layer.weight")!.data()), bitsOf(specialF32));
      for (const t of [f, i, b, s, e, ...ts.values()]) t.dispose();
      // atomic writes leave no temporary files behind
      assert.deepStrictEqual([...Deno.readDirSync(dir)].map((d) => d.name).sort(), [
        "again.safetensors",
        "model.safetensors",
      ]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

test("safetensors writes and reads every file dtype from host arrays", async () => {
  const dir = await Deno.makeTempDir({ prefix: "io_test_" });
  try {
    const cases: [SafetensorsDType, DType, HostArray][] = [
      ["F32", "float32", specialF32],
      [
        "F16",
        "float32",
        new Float32Array([0, -0, 1, -2.5, 65504, -65504, 5.960464477539063e-8, Infinity, NaN, 0.0999755859375]),
      ],
      [
        "BF16",
        "float32",
        new Float32Array([0, -0, 1, -2.5, 3.3895313892515355e38, 9.183549615799121e-41, -Infinity, NaN, 0.10009765625]),
      ],
      ["F64", "float32", specialF32],
      ["I64", "int32", new Int32Array([0, 1, -1, 2147483647, -2147483648])],
      ["I32", "int32", new Int32Array([5, -5])],
      ["I16", "int32", new Int32Array([32767, -32768, 0])],
      ["I8", "int32", new Int32Array([127, -128, 3])],
      ["U8", "int32", new Int32Array([0, 255, 128])],
      ["U16", "int32", new Int32Array([0, 65535])],
      ["U32", "int32", new Int32Array([0, 2147483647])],
      ["BOOL", "bool", new Uint8Array([1, 0, 1])],
    ];
    const host: Record<string, HostTensor> = {};
    const dtypes: Record<string, SafetensorsDType> = {};
    for (const [st, dtype, data] of cases) {
      host[`t_${st}`] = { dtype, shape: [data.length], data };
      dtypes[`t_${st}`] = st;
    }
    await saveSafetensors(`${dir}/all.safetensors`, host, { dtypes });
    const back = (await loadSafetensors(`${dir}/all.safetensors`)).tensors;
    for (const [st, dtype, data] of cases) {
      const h = back.get(`t_${st}`)!;
      assert.equal(h.sourceDtype, st);
      assert.equal(h.dtype, dtype);
      if (st === "F16" || st === "BF16") {
        // exactly representable inputs: the conversion is exact (NaN stays NaN)
        assert.deepStrictEqual(Array.from(h.data), Array.from(data), st);
      } else if (st === "F64") {
        assert.deepStrictEqual(bitsOf(h.data), bitsOf(data));
      } else assert.deepStrictEqual(Array.from(h.data), Array.from(data), st);
    }
    // rounding to float16/bfloat16 is to nearest even
    const r = parseSafetensors(
      serializeSafetensors({
        x: {
          dtype: "float32",
          shape: [4],
          data: new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 70000, 1 + 2 ** -8]),
        },
      }, {
        dtypes: { x: "F16" },
      }),
    );
    assert.deepStrictEqual(Array.from(r.tensors.get("x")!.data), [1, 1 + 2 ** -9, Infinity, 1 + 2 ** -8]);
    const rb = parseSafetensors(
      serializeSafetensors({
        x: { dtype: "float32", shape: [2], data: new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8]) },
      }, {
        dtypes: { x: "BF16" },
      }),
    );
    assert.deepStrictEqual(Array.from(rb.tensors.get("x")!.data), [1, 1 + 2 ** -6]);
    // values that do not fit the chosen integer dtype are refused
    assert.throws(
      () =>
        serializeSafetensors({ x: { dtype: "int32", shape: [1], data: new Int32Array([300]) } }, {
          dtypes: { x: "U8" },
        }),
      /'x': value 300 at element 0 cannot be stored as u8/,
    );
    assert.throws(() => serializeSafetensors({}, { metadata: { a: 1 as unknown as string } }), /metadata\["a"\]/);
    assert.throws(
      () => serializeSafetensors({ x: { dtype: "float32", shape: [3], data: new Float32Array(2) } }),
      /2 values do not match shape \[3\]/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("atomic writes replace files and leave nothing behind on failure", async () => {
  const dir = await Deno.makeTempDir({ prefix: "io_test_" });
  try {
    await atomicWriteFile(`${dir}/a.bin`, new Uint8Array([1, 2, 3]));
    await atomicWriteFile(`${dir}/a.bin`, [new Uint8Array([4]), new Uint8Array([5, 6])]);
    assert.deepStrictEqual(await Deno.readFile(`${dir}/a.bin`), new Uint8Array([4, 5, 6]));
    await assert.rejects(
      () => atomicWriteFile(`${dir}/missing/b.bin`, new Uint8Array(1)),
      /cannot write .*missing\/b\.bin/,
    );
    assert.deepStrictEqual([...Deno.readDirSync(dir)].map((d) => d.name), ["a.bin"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ------------------------------------------------------------------------------------------------
// Bad files

const GOOD_FILES = [
  ...Object.keys(expected.pth),
  ...Object.keys(expected.safetensors),
  ...Object.keys(expected.errors),
];

function parseAny(rel: string, bytes: Uint8Array, name: string): unknown {
  return rel.endsWith(".safetensors") ? parseSafetensors(bytes, name) : parsePth(bytes, name);
}

test("every fixture truncated at several points gives a clear error, fast", async () => {
  for (const rel of GOOD_FILES) {
    const bytes = await Deno.readFile(fixturePath(rel));
    const n = bytes.length;
    // a message that says the file is cut short, or (for the bad fixtures) the file's own problem
    const own = (expected.errors as Record<string, string>)[rel];
    const problem = new RegExp(
      [
        "corrupt zip archive: no end-of-central-directory record \\(truncated file\\?\\)",
        "too short for an end-of-central-directory record",
        "not a PyTorch checkpoint: the file is only \\d+ bytes",
        "invalid safetensors file: the file is \\d+ bytes, shorter than the 8-byte header length field",
        "invalid safetensors file: header length \\d+ is larger than the rest of the file .*truncated\\?",
        "invalid safetensors file: tensor '[^']+': data_offsets .* out of range .*truncated\\?",
        ...(own ? [own] : []),
      ].map((p) => `(?:${p})`).join("|"),
    );
    const cuts = [
      0,
      1,
      3,
      4,
      7,
      8,
      9,
      21,
      30,
      n >> 2,
      n >> 1,
      (3 * n) >> 2,
      n - 100,
      n - 23,
      n - 22,
      n - 21,
      n - 8,
      n - 1,
    ];
    for (const cut of new Set(cuts.filter((c) => c >= 0 && c < n))) {
      const name = `${rel}@${cut}`;
      await assertBadFile(() => parseAny(rel, bytes.subarray(0, cut), name), name, problem);
    }
  }
});

test("wrong magic bytes are refused naming the file", async () => {
  for (const rel of ["pth/dtypes.pth", "pth/views.pth"]) {
    const bytes = (await Deno.readFile(fixturePath(rel))).slice();
    bytes[0] ^= 0xff;
    await assertBadFile(() => parsePth(bytes, rel), rel, /not a PyTorch checkpoint: bad magic bytes af 4b 03 04/);
  }
  const junk = new TextEncoder().encode("hello, this is not a weight file at all");
  await assertBadFile(() => parsePth(junk, "junk.pth"), "junk.pth", /bad magic bytes 68 65 6c 6c/);
  await assertBadFile(
    () => parseSafetensors(junk, "junk.safetensors"),
    "junk.safetensors",
    /header length \d+ is larger/,
  );
  const st = (await Deno.readFile(fixturePath("st/dtypes.safetensors"))).slice();
  st[8] = 0x5b; // '{' → '[' : the header is no longer a JSON object
  await assertBadFile(() => parseSafetensors(st, "flipped.safetensors"), "flipped.safetensors", /not valid UTF-8 JSON/);
});

/** A safetensors file from a header object and a data section. */
function stFile(header: unknown, data: Uint8Array, headerLen?: bigint): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

test("safetensors: huge header length, out-of-range offsets, shape/bytes mismatch, overlaps are refused", async () => {
  const data = new Uint8Array(16);
  const ok = { a: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] } };
  assert.equal(parseSafetensors(stFile(ok, data)).tensors.get("a")!.data.length, 4);
  await assertBadFile(
    () => parseSafetensors(stFile(ok, data, 2n ** 40n), "huge.safetensors"),
    "huge.safetensors",
    /header length 1099511627776 is larger than the rest of the file/,
    50,
  );
  await assertBadFile(
    () =>
      parseSafetensors(
        stFile({ a: { dtype: "F32", shape: [100], data_offsets: [0, 400] } }, data),
        "range.safetensors",
      ),
    "range.safetensors",
    /tensor 'a': data_offsets \[0, 400\] are out of range of the 16-byte data section/,
  );
  await assertBadFile(
    () =>
      parseSafetensors(stFile({ a: { dtype: "F32", shape: [5], data_offsets: [0, 16] } }, data), "shape.safetensors"),
    "shape.safetensors",
    /shape \[5\] of F32 needs 20 bytes but data_offsets \[0, 16\] hold 16/,
  );
  await assertBadFile(
    () =>
      parseSafetensors(
        stFile({ a: { dtype: "F32", shape: [1e9, 1e9], data_offsets: [0, 16] } }, data),
        "giant.safetensors",
      ),
    "giant.safetensors",
    /needs 4000000000000000000 bytes/,
    50,
  );
  await assertBadFile(
    () =>
      parseSafetensors(
        stFile({
          a: { dtype: "F32", shape: [3], data_offsets: [0, 12] },
          b: { dtype: "F32", shape: [2], data_offsets: [8, 16] },
        }, data),
        "overlap.safetensors",
      ),
    "overlap.safetensors",
    /overlap/,
  );
  await assertBadFile(
    () => parseSafetensors(stFile({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, data), "tail.safetensors"),
    "tail.safetensors",
    /trailing bytes/,
  );
  await assertBadFile(
    () =>
      parseSafetensors(stFile({ a: { dtype: "F8_E4M3", shape: [2], data_offsets: [0, 2] } }, data), "f8.safetensors"),
    "f8.safetensors",
    /unsupported dtype "F8_E4M3"/,
  );
  await assertBadFile(
    () => parseSafetensors(stFile({ __metadata__: { a: 1 } }, new Uint8Array(0)), "meta.safetensors"),
    "meta.safetensors",
    /__metadata__\["a"\] is not a string/,
  );
  await assertBadFile(() => loadSafetensors("/nonexistent/x.safetensors"), "/nonexistent/x.safetensors", /cannot read/);
});

/** Offset of the last end-of-central-directory record. */
function eocdOffset(b: Uint8Array): number {
  for (let p = b.length - 22; p >= 0; p--) {
    if (b[p] === 0x50 && b[p + 1] === 0x4b && b[p + 2] === 0x05 && b[p + 3] === 0x06) return p;
  }
  throw new Error("no EOCD");
}

test("pth: corrupt zip directories and out-of-range offsets are refused", async () => {
  for (const rel of ["pth/repacked.pth", "pth/zip64.pth", "pth/dtypes.pth"]) {
    const orig = await Deno.readFile(fixturePath(rel));
    const zip = new ZipArchive(orig, rel);
    const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    // the first central directory entry: locate by signature after the last record's data
    let cd = -1;
    for (let p = 0; p + 4 <= orig.length; p++) {
      if (orig[p] === 0x50 && orig[p + 1] === 0x4b && orig[p + 2] === 0x01 && orig[p + 3] === 0x02) {
        cd = p;
        break;
      }
    }
    assert.ok(cd > 0 && zip.entries.size > 2);
    // bad central directory signature
    let b = orig.slice();
    b[cd] = 0;
    await assertBadFile(() => parsePth(b, rel), rel, /corrupt zip archive: bad central directory entry 0/);
    // a local header offset far out of range (zip64 archives keep it in the extra field)
    b = orig.slice();
    if (rel.includes("zip64")) {
      const extra = cd + 46 + dv(b).getUint16(cd + 28, true);
      dv(b).setBigUint64(extra + 4 + 16, 2n ** 40n, true);
    } else dv(b).setUint32(cd + 42, 0x7ffffff0, true);
    await assertBadFile(() => parsePth(b, rel), rel, /run past the central directory/);
    // an entry count that cannot fit in the directory (plain EOCD only)
    if (!rel.includes("zip64")) {
      b = orig.slice();
      const e = eocdOffset(b);
      if (dv(b).getUint16(e + 10, true) !== 0xffff) {
        dv(b).setUint16(e + 10, 0xfff0, true);
        dv(b).setUint16(e + 8, 0xfff0, true);
        await assertBadFile(() => parsePth(b, rel), rel, /corrupt zip archive/);
      }
    }
    // a central directory offset beyond the file
    b = orig.slice();
    const e = eocdOffset(b);
    if (!rel.includes("zip64") && dv(b).getUint32(e + 16, true) !== 0xffffffff) {
      dv(b).setUint32(e + 16, 0x7fff0000, true);
      await assertBadFile(() => parsePth(b, rel), rel, /central directory .* extends past/);
    }
  }
});

/** Bytes of a string of code points < 256. */
function latin1(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

test("pth: forbidden globals and bad pickles never run anything and name the problem", async () => {
  // a hand-made protocol-2 pickle calling os.system, straight into the interpreter
  const evil = latin1("\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00echoq\x01\x85q\x02Rq\x03.");
  await assertBadFile(() => unpickle(evil, { file: "evil.pkl" }), "evil.pkl", /refusing to load global 'os\.system'/);
  const builtinsEval = latin1(
    "\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x8c\x04eval\x93.",
  );
  await assertBadFile(
    () => unpickle(builtinsEval, { file: "eval.pkl" }),
    "eval.pkl",
    /refusing to load global 'builtins\.eval'/,
  );
  // truncated string length
  const longStr = new Uint8Array([0x80, 0x02, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x61]);
  await assertBadFile(
    () => unpickle(longStr, { file: "long.pkl" }),
    "long.pkl",
    /truncated data: BINUNICODE.*needs 2147483647 bytes/,
    50,
  );
  await assertBadFile(
    () => unpickle(new Uint8Array([0x80, 0x02, 0x69]), { file: "inst.pkl" }),
    "inst.pkl",
    /unsupported opcode INST/,
  );
  await assertBadFile(
    () => unpickle(new Uint8Array([0x80, 0x02, 0x4e]), { file: "nostop.pkl" }),
    "nostop.pkl",
    /no STOP/,
  );
});

const REAL_PTH = "/tmp/resnet34.pth";
const realPth = (() => {
  try {
    return Deno.statSync(REAL_PTH).isFile;
  } catch {
    return false;
  }
})();
Deno.test({
  name: `io: a real-size state dict loads fast` + (realPth ? "" : ` (ignored: ${REAL_PTH} does not exist)`),
  ignore: !realPth,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: realSizeLoad,
});
async function realSizeLoad() {
  const t0 = performance.now();
  const sd = await loadPthStateDict(REAL_PTH);
  const dt = performance.now() - t0;
  let n = 0;
  for (const t of sd.values()) n += t.data.length;
  console.log(`resnet34: ${sd.size} tensors, ${n} values, loaded in ${dt.toFixed(1)} ms`);
  assert.ok(n > 21_000_000);
}
