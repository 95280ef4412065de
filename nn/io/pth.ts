/**
 * Reader for PyTorch checkpoints written by `torch.save` (PyTorch ≥ 1.6 zip format).
 *
 * The archive holds `<top>/data.pkl` (a pickle of the saved object; the top folder name varies) and one
 * record per storage, `<top>/data/<key>`, 64-byte aligned by PyTorch. The pickle is run by the
 * restricted interpreter of `pickle.ts` with an allow-list of globals: `collections.OrderedDict`,
 * `torch._utils._rebuild_tensor_v2` / `_rebuild_tensor` / `_rebuild_parameter` /
 * `_rebuild_parameter_with_state`, `torch._tensor._rebuild_from_type_v2` (for `torch.Tensor` and
 * `torch.nn.parameter.Parameter`), the storage classes below, `torch.Size`, `torch.device` and
 * plain containers. Anything else (modules, `os.system`, numpy, ...) is refused with an error naming
 * the global; no code is executed.
 *
 * Tensors become {@linkcode HostTensor}s, converted to the framework's dtypes:
 *
 * | storage            | loaded as | notes                                           |
 * | ------------------ | --------- | ----------------------------------------------- |
 * | FloatStorage       | float32   | a view of the file bytes when contiguous        |
 * | Double/Half/BFloat16 | float32 | double rounded; half/bfloat16 exact             |
 * | LongStorage        | int32     | an error names the first value outside int32    |
 * | Int/Short/Char/Byte | int32    | uint8 holds numbers, so int32 (not bool)        |
 * | BoolStorage        | bool      |                                                 |
 *
 * Several tensors may view one storage (shared storage), at any offset and with any (non-negative)
 * strides: each storage is decoded once, contiguous views are typed-array subarrays, other views are
 * materialised into fresh contiguous arrays. Non-tensor values come back as plain JavaScript values
 * (see `pickle.ts`: dicts are {@linkcode PyDict} Maps, whose `attributes` hold e.g. `_metadata`).
 *
 * Legacy (pre-1.6, non-zip) files are refused with a message saying how to re-save them.
 *
 * @module
 */

import type { HostArray } from "../../autodiff/backend.ts";
import {
  decodeElements,
  fmtShape,
  type HostTensor,
  isHostTensor,
  RAW_ITEM_SIZE,
  RAW_TARGET,
  type RawKind,
  sniffWeightsFormat,
  WeightsFileError,
} from "./common.ts";
import { readWholeFile } from "./read_file.ts";
import { numel } from "../../autodiff/shape.ts";
import { type AllowedGlobal, PickleGlobal, unpickle } from "./pickle.ts";
import { isZip, ZipArchive } from "./zip.ts";

/** Storage classes accepted in persistent ids, with their element kind and torch dtype name. */
const STORAGES: Record<string, [RawKind, string]> = {
  "torch.FloatStorage": ["f32", "float32"],
  "torch.DoubleStorage": ["f64", "float64"],
  "torch.HalfStorage": ["f16", "float16"],
  "torch.BFloat16Storage": ["bf16", "bfloat16"],
  "torch.LongStorage": ["i64", "int64"],
  "torch.IntStorage": ["i32", "int32"],
  "torch.ShortStorage": ["i16", "int16"],
  "torch.CharStorage": ["i8", "int8"],
  "torch.ByteStorage": ["u8", "uint8"],
  "torch.BoolStorage": ["bool", "bool"],
};

/** The message for pre-1.6 files. */
const LEGACY_MESSAGE = "unsupported legacy format (PyTorch < 1.6, not a zip archive): re-save it with a current " +
  "PyTorch (torch.save(obj, path) in torch >= 1.6)";

/** Options of {@linkcode parsePth} / {@linkcode loadPth}. */
export interface LoadPthOptions {
  /** Check each record's CRC-32 (one extra pass over the data; off by default). */
  verifyChecksums?: boolean;
}

class Storage {
  #data: HostArray | null = null;
  constructor(
    readonly kind: RawKind,
    readonly torchDtype: string,
    readonly key: string,
    readonly numel: number,
    readonly load: () => HostArray,
  ) {}
  get data(): HostArray {
    return this.#data ??= this.load();
  }
}

function isIntArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/** Materialises a (possibly strided) view of `st` as a contiguous host tensor. */
function rebuildTensor(file: string, st: unknown, offset: unknown, size: unknown, stride: unknown): HostTensor {
  const fail = (p: string): never => {
    throw new WeightsFileError(file, p);
  };
  if (!(st instanceof Storage)) return fail(`tensor rebuild without a storage (got ${typeof st})`);
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) fail(`invalid storage offset ${String(offset)}`);
  if (!isIntArray(size)) return fail(`invalid tensor size ${JSON.stringify(size)}`);
  if (!isIntArray(stride) || stride.length !== size.length) {
    return fail(`invalid strides ${JSON.stringify(stride)} for size ${fmtShape(size)}`);
  }
  const off = offset as number;
  const shape = size.slice();
  const n = numel(shape);
  const Ctor = RAW_TARGET[st.kind] === "float32"
    ? Float32Array
    : RAW_TARGET[st.kind] === "int32"
    ? Int32Array
    : Uint8Array;
  const base = { dtype: RAW_TARGET[st.kind], shape, sourceDtype: st.torchDtype };
  if (n === 0) return { ...base, data: new Ctor(0) };
  let last = off;
  for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * stride[i];
  if (last >= st.numel) {
    fail(
      `tensor of shape ${fmtShape(shape)}, offset ${off}, strides ${fmtShape(stride)} reaches element ${last} ` +
        `of storage '${st.key}', which has ${st.numel} elements`,
    );
  }
  let contiguous = true;
  for (let i = shape.length - 1, expect = 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expect) contiguous = false;
    expect *= shape[i];
  }
  const src = st.data;
  if (contiguous) return { ...base, data: src.subarray(off, off + n) };
  // gather: odometer over all but the last dimension, a strided inner loop over the last
  const out = new Ctor(n);
  const nd = shape.length;
  const inner = shape[nd - 1], innerStride = stride[nd - 1];
  const idx = new Array<number>(nd).fill(0);
  let srcPos = off;
  for (let o = 0; o < n; o += inner) {
    for (let j = 0, p = srcPos; j < inner; j++, p += innerStride) out[o + j] = src[p];
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]++;
      srcPos += stride[d];
      if (idx[d] < shape[d]) break;
      srcPos -= idx[d] * stride[d];
      idx[d] = 0;
    }
  }
  return { ...base, data: out };
}

function detectFormat(bytes: Uint8Array, file: string): void {
  if (isZip(bytes)) return;
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] <= 5) {
    // a bare pickle: the legacy torch.save format starts with the pickled magic number 0x1950a86a20f9469cfc6c
    throw new WeightsFileError(file, LEGACY_MESSAGE);
  }
  if (bytes.length >= 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === "ustar") {
    throw new WeightsFileError(file, LEGACY_MESSAGE);
  }
  const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
  throw new WeightsFileError(
    file,
    bytes.length < 4
      ? `not a PyTorch checkpoint: the file is only ${bytes.length} bytes`
      : `not a PyTorch checkpoint: bad magic bytes ${head} (expected a zip archive, 50 4b 03 04)` +
        (sniffWeightsFormat(bytes) === "safetensors"
          ? "; the file is a safetensors file: read it with loadSafetensors"
          : ""),
  );
}

/**
 * Parses the bytes of a `torch.save` file. Returns the saved object with tensors as
 * {@linkcode HostTensor}s. Float32 data may be views of `bytes`.
 * @throws {WeightsFileError} naming `file` and the problem.
 */
export function parsePth(bytes: Uint8Array, file = "<buffer>", opts: LoadPthOptions = {}): unknown {
  detectFormat(bytes, file);
  const zip = new ZipArchive(bytes, file);
  const pkls = [...zip.entries.keys()].filter((n) => /^([^/]+\/)?data\.pkl$/.test(n));
  if (pkls.length === 0) {
    throw new WeightsFileError(file, "zip archive has no <folder>/data.pkl record: not a torch.save checkpoint");
  }
  if (pkls.length > 1) throw new WeightsFileError(file, `zip archive has several data.pkl records: ${pkls.join(", ")}`);
  const prefix = pkls[0].slice(0, -"data.pkl".length);
  let bigEndian = false;
  if (zip.has(`${prefix}byteorder`)) {
    const order = new TextDecoder().decode(zip.read(`${prefix}byteorder`)).trim();
    if (order !== "little" && order !== "big") throw new WeightsFileError(file, `unknown byteorder record '${order}'`);
    bigEndian = order === "big";
  }
  const verify = opts.verifyChecksums ?? false;
  const storages = new Map<string, Storage>();

  const persistentLoad = (pid: unknown): unknown => {
    if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length < 5) {
      throw new WeightsFileError(file, `unsupported persistent id ${JSON.stringify(pid)} (expected a storage)`);
    }
    const [, type, key, , numel] = pid;
    if (!(type instanceof PickleGlobal) || !Object.hasOwn(STORAGES, type.fullName)) {
      throw new WeightsFileError(
        file,
        `unsupported storage type ${type instanceof PickleGlobal ? type.fullName : type}`,
      );
    }
    if (typeof key !== "string" || !Number.isSafeInteger(numel) || numel < 0) {
      throw new WeightsFileError(file, `invalid storage id ${JSON.stringify([key, numel])}`);
    }
    const known = storages.get(key);
    if (known) return known;
    const [kind, torchDtype] = STORAGES[type.fullName];
    const record = `${prefix}data/${key}`;
    const st = new Storage(kind, torchDtype, key, numel, () => {
      let raw = zip.read(record, verify);
      const want = numel * RAW_ITEM_SIZE[kind];
      if (raw.length !== want) {
        throw new WeightsFileError(
          file,
          `storage record '${record}' has ${raw.length} bytes but ${numel} ${torchDtype} elements need ${want}`,
        );
      }
      const size = RAW_ITEM_SIZE[kind];
      if (bigEndian && size > 1) {
        raw = raw.slice();
        for (let i = 0; i < raw.length; i += size) raw.subarray(i, i + size).reverse();
      }
      return decodeElements(raw, numel, kind, (p) => {
        throw new WeightsFileError(file, `storage '${key}': ${p}`);
      });
    });
    if (!zip.has(record)) throw new WeightsFileError(file, `storage record '${record}' is missing from the archive`);
    storages.set(key, st);
    return st;
  };

  const rebuildV2: AllowedGlobal = {
    call: (a) => rebuildTensor(file, a[0], a[1], a[2], a[3]),
  };
  const passFirst: AllowedGlobal = {
    call: (a) => {
      if (!isHostTensor(a[0])) throw new Error("expected a tensor");
      return a[0];
    },
  };
  const typeOnly: AllowedGlobal = {};
  const globals: Record<string, AllowedGlobal> = {
    "torch._utils._rebuild_tensor_v2": rebuildV2,
    "torch._utils._rebuild_tensor": rebuildV2,
    "torch._utils._rebuild_parameter": passFirst,
    "torch._utils._rebuild_parameter_with_state": passFirst,
    "torch._tensor._rebuild_from_type_v2": {
      call: (a) => {
        const [fn, type, args] = a;
        if (
          !(type instanceof PickleGlobal) ||
          (type.fullName !== "torch.Tensor" && type.fullName !== "torch.nn.parameter.Parameter")
        ) {
          throw new Error(`unsupported tensor type ${type instanceof PickleGlobal ? type.fullName : String(type)}`);
        }
        if (!(fn instanceof PickleGlobal) || !fn.impl.call || !Array.isArray(args)) {
          throw new Error("malformed arguments");
        }
        return fn.impl.call(args);
      },
    },
    "torch.Tensor": typeOnly,
    "torch.nn.parameter.Parameter": typeOnly,
    "torch.Size": { call: (a) => (Array.isArray(a[0]) ? a[0].slice() : []) },
    "torch.device": { call: (a) => a.map(String).join(":") },
  };
  for (const name of Object.keys(STORAGES)) globals[name] = typeOnly;
  return unpickle(zip.read(pkls[0], verify), { file, globals, persistentLoad });
}

/**
 * Loads a `torch.save` checkpoint (one `Deno.readFile`): the saved object with tensors as
 * {@linkcode HostTensor}s and other values as plain JavaScript values.
 * @throws {WeightsFileError} naming the file and the problem.
 */
export async function loadPth(path: string | URL, opts: LoadPthOptions = {}): Promise<unknown> {
  return parsePth(await readWholeFile(path), String(path), opts);
}

const STATE_DICT_KEYS = ["state_dict", "model_state_dict", "model", "net", "module"];

function asTensorMap(v: unknown): Map<string, HostTensor> | null {
  if (!(v instanceof Map)) return null;
  const out = new Map<string, HostTensor>();
  for (const [k, t] of v) {
    if (typeof k !== "string" || !isHostTensor(t)) return null;
    out.set(k, t);
  }
  return out;
}

/**
 * Picks the state dict (names → tensors) out of a loaded checkpoint: the object itself when it is a
 * dict of tensors, else `obj[key]`, else the first of `state_dict`, `model_state_dict`, `model`, `net`,
 * `module` that is a dict of tensors.
 *
 * A state dict holds at least one tensor: an empty dict (`torch.save({}, f)`, or an empty `state_dict`
 * entry) is refused with "no tensors found", naming the file, rather than returned as an empty state dict
 * that a strict load would then reject by listing every key of the model as missing. {@linkcode loadPth}
 * still returns the empty dict itself, as `torch.load` does.
 * @throws {WeightsFileError} listing the top-level keys when none is found, or when the dict is empty.
 */
export function findStateDict(obj: unknown, file = "<checkpoint>", key?: string): Map<string, HostTensor> {
  if (key !== undefined) {
    const v = obj instanceof Map ? obj.get(key) : undefined;
    const sd = asTensorMap(v);
    if (!sd) throw new WeightsFileError(file, `checkpoint entry '${key}' is missing or not a dict of tensors`);
    if (!sd.size) throw new WeightsFileError(file, `no tensors found: checkpoint entry '${key}' is an empty dict`);
    return sd;
  }
  const direct = asTensorMap(obj);
  if (direct) {
    if (!direct.size) throw new WeightsFileError(file, "no tensors found: the checkpoint is an empty dict");
    return direct;
  }
  if (obj instanceof Map) {
    let empty: string | null = null;
    for (const k of STATE_DICT_KEYS) {
      const sd = asTensorMap(obj.get(k));
      if (sd?.size) return sd;
      if (sd) empty ??= k;
    }
    if (empty !== null) {
      throw new WeightsFileError(file, `no tensors found: checkpoint entry '${empty}' is an empty dict`);
    }
    const keys = [...obj.keys()].map((k) => JSON.stringify(k)).join(", ");
    throw new WeightsFileError(file, `no state dict found: the checkpoint is a dict with keys ${keys}; pass its key`);
  }
  throw new WeightsFileError(file, `no state dict found: the checkpoint is not a dict`);
}

/** Options of {@linkcode loadPthStateDict}. */
export interface LoadPthStateDictOptions extends LoadPthOptions {
  /** Key of the state dict inside a checkpoint dict (default: see {@linkcode findStateDict}). */
  key?: string;
}

/**
 * Loads the state dict (parameter name → host tensor, in file order) from a `torch.save` file that
 * holds either a state dict or a checkpoint dict containing one.
 */
export async function loadPthStateDict(
  path: string | URL,
  opts: LoadPthStateDictOptions = {},
): Promise<Map<string, HostTensor>> {
  return findStateDict(await loadPth(path, opts), String(path), opts.key);
}
