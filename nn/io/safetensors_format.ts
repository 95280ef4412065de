/**
 * The safetensors format (https://github.com/huggingface/safetensors) in memory: parsing bytes and serialising
 * tensors, with no file system (the browser playground bundles it); `safetensors.ts` re-exports it and adds
 * files.
 *
 * Layout: an 8-byte little-endian header length `N`, `N` bytes of UTF-8 JSON
 * (`{"__metadata__": {string: string}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}, ...}`),
 * then the data section; offsets are relative to the data section.
 *
 * Loading converts to the framework's dtypes:
 *
 * | file dtype            | loaded as | notes                                                      |
 * | --------------------- | --------- | ---------------------------------------------------------- |
 * | F32                   | float32   | a view of the file bytes when 4-byte aligned, else a copy  |
 * | F16, BF16, F64        | float32   | F16/BF16 exactly, F64 rounded                              |
 * | I32                   | int32     | a view when aligned                                        |
 * | I64, U32              | int32     | an error names the first value outside the int32 range     |
 * | I16, I8, U16, U8      | int32     | (U8 holds numbers, not truth values: int32, not bool)      |
 * | BOOL                  | bool      | Uint8Array of 0/1                                          |
 *
 * Files are validated like the reference implementation: the header length must fit the file, every
 * tensor's byte range must match its shape and dtype, and the ranges must tile the data section
 * exactly. Nothing is allocated from header sizes before they are checked against the file size.
 *
 * Writing follows the Python library's choices, so that the same tensors and metadata give the same
 * bytes: `__metadata__` first (keys in the given order), tensors ordered by dtype (I64, F64, F32, U32,
 * I32, BF16, F16, U16, I16, I8, U8, BOOL: element size descending, so every tensor is aligned to its
 * element size) then by name (code unit order), compact JSON, header padded with spaces to a multiple
 * of 8 bytes. The output is deterministic.
 *
 * @module
 */

import type { DType, HostArray } from "../../autodiff/backend.ts";
import {
  decodeElements,
  encodeElements,
  fmtShape,
  type HostTensor,
  RAW_ITEM_SIZE,
  RAW_TARGET,
  type RawKind,
  sniffWeightsFormat,
  WeightsFileError,
} from "./common.ts";
import { numel } from "../../autodiff/shape.ts";

/** Element types of the safetensors format this module reads and writes. */
export type SafetensorsDType =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U8"
  | "U16"
  | "U32"
  | "BOOL";

const KIND: Record<SafetensorsDType, RawKind> = {
  F64: "f64",
  F32: "f32",
  F16: "f16",
  BF16: "bf16",
  I64: "i64",
  I32: "i32",
  I16: "i16",
  I8: "i8",
  U8: "u8",
  U16: "u16",
  U32: "u32",
  BOOL: "bool",
};

/**
 * Write order rank of each dtype (the reference implementation sorts by its dtype enum, descending:
 * I64, F64, F32, U32, I32, BF16, F16, U16, I16, I8, U8, BOOL — element size descending).
 */
const WRITE_RANK: Record<SafetensorsDType, number> = {
  BOOL: 0,
  U8: 1,
  I8: 2,
  I16: 3,
  U16: 4,
  F16: 5,
  BF16: 6,
  I32: 7,
  U32: 8,
  F32: 9,
  F64: 10,
  I64: 11,
};

/** The default on-disk dtype for each framework dtype. */
const DEFAULT_FILE_DTYPE: Record<DType, SafetensorsDType> = { float32: "F32", int32: "I32", bool: "BOOL" };

/** Largest header accepted (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/** The contents of a safetensors file. */
export interface SafetensorsContents {
  /** Tensors in file order of their header entries, converted to framework dtypes (`sourceDtype` = file dtype). */
  tensors: Map<string, HostTensor>;
  /** The `__metadata__` map (empty when absent). */
  metadata: Record<string, string>;
}

/** Whether `s` names a safetensors dtype this module supports. */
export function isSafetensorsDType(s: unknown): s is SafetensorsDType {
  return typeof s === "string" && Object.hasOwn(KIND, s);
}

/**
 * Parses safetensors bytes. `file` names the source in errors. F32/I32 data may be views into `bytes`.
 * @throws {WeightsFileError} on a malformed, truncated or unsupported file.
 */
export function parseSafetensors(bytes: Uint8Array, file = "<buffer>"): SafetensorsContents {
  const fail = (problem: string): never => {
    const hint = sniffWeightsFormat(bytes) === "pth"
      ? " (the file is a PyTorch torch.save file, .pth: read it with loadPth, not as safetensors)"
      : "";
    throw new WeightsFileError(file, `invalid safetensors file: ${problem}${hint}`);
  };
  if (bytes.length < 8) fail(`the file is ${bytes.length} bytes, shorter than the 8-byte header length field`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = dv.getUint32(0, true), hi = dv.getUint32(4, true);
  const headerLen = hi * 2 ** 32 + lo;
  if (headerLen > bytes.length - 8) {
    fail(`header length ${headerLen} is larger than the rest of the file (${bytes.length - 8} bytes; truncated?)`);
  }
  if (headerLen > MAX_HEADER_BYTES) fail(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (headerLen < 2) fail(`header length ${headerLen} is too small for a JSON object`);
  let header: unknown;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
    header = JSON.parse(text);
  } catch (e) {
    fail(`the header is not valid UTF-8 JSON (${(e as Error).message}); wrong file type?`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) fail("the header is not a JSON object");
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) fail("__metadata__ is not an object");
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__["${k}"] is not a string (${JSON.stringify(v)})`);
        metadata[k] = v as string;
      }
      continue;
    }
    if (typeof value !== "object" || value === null) fail(`tensor '${name}': header entry is not an object`);
    const info = value as Record<string, unknown>;
    const dtype = info.dtype;
    if (!isSafetensorsDType(dtype)) fail(`tensor '${name}': unsupported dtype ${JSON.stringify(dtype)}`);
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor '${name}': invalid shape ${JSON.stringify(shape)}`);
    }
    const offs = info.data_offsets;
    if (
      !Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) ||
      offs[0] > offs[1]
    ) {
      fail(`tensor '${name}': invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as number[];
    if (end > dataLen) {
      fail(
        `tensor '${name}': data_offsets [${begin}, ${end}] are out of range of the ${dataLen}-byte data section (truncated?)`,
      );
    }
    const want = numel(shape as number[]) * RAW_ITEM_SIZE[KIND[dtype as SafetensorsDType]];
    if (end - begin !== want) {
      fail(
        `tensor '${name}': shape ${fmtShape(shape as number[])} of ${dtype} needs ${want} bytes but data_offsets ` +
          `[${begin}, ${end}] hold ${end - begin}`,
      );
    }
    entries.push({ name, dtype: dtype as SafetensorsDType, shape: shape as number[], begin, end });
  }
  // the byte ranges must tile the data section (no overlaps, no holes)
  const byOffset = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of byOffset) {
    if (e.begin !== pos) {
      fail(
        `tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] ${
          e.begin < pos ? "overlap the previous tensor" : `leave a gap after byte ${pos}`
        }`,
      );
    }
    pos = e.end;
  }
  if (pos !== dataLen) fail(`the tensors cover ${pos} bytes but the data section has ${dataLen} (trailing bytes)`);

  const tensors = new Map<string, HostTensor>();
  for (const e of entries) {
    const kind = KIND[e.dtype];
    const n = numel(e.shape);
    const data = decodeElements(
      bytes.subarray(dataStart + e.begin, dataStart + e.end),
      n,
      kind,
      (p) => fail(`tensor '${e.name}': ${p}`),
    );
    tensors.set(e.name, { dtype: RAW_TARGET[kind], shape: e.shape.slice(), data, sourceDtype: e.dtype });
  }
  return { tensors, metadata };
}

/** Options of {@linkcode serializeSafetensors} / `saveSafetensors`. */
export interface SaveSafetensorsOptions {
  /** Stored as `__metadata__` (string values only). */
  metadata?: Record<string, string>;
  /**
   * On-disk dtype per tensor name (e.g. `{"w": "F16"}`). Default: a host tensor's `sourceDtype` when it
   * is a safetensors dtype (so loaded files save back as they were), else F32 / I32 / BOOL for
   * float32 / int32 / bool. Integer targets require integer values in range.
   */
  dtypes?: Record<string, SafetensorsDType>;
}

/** Tensors to write: a map or record from names to host tensors (or `Tensor`s for the async `saveSafetensors`). */
export type TensorsByName<T> = ReadonlyMap<string, T> | Readonly<Record<string, T>>;

/** The entries of a {@linkcode TensorsByName}. */
export function entriesOf<T>(tensors: TensorsByName<T>): [string, T][] {
  return tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors as Record<string, T>);
}

/**
 * Serialises host tensors (and metadata) to safetensors bytes: deterministic order (dtype rank, i.e.
 * element size descending, then name), header padded with spaces to a multiple of 8 bytes.
 */
export function serializeSafetensors(
  tensors: TensorsByName<HostTensor>,
  opts: SaveSafetensorsOptions = {},
): Uint8Array {
  const fail = (problem: string): never => {
    throw new Error(`serializeSafetensors: ${problem}`);
  };
  const items = entriesOf(tensors).map(([name, h]) => {
    if (name === "__metadata__") fail(`"__metadata__" is reserved and cannot name a tensor`);
    if (!h || !ArrayBuffer.isView(h.data) || !Array.isArray(h.shape)) fail(`'${name}' is not a host tensor`);
    const n = numel(h.shape);
    if (h.data.length !== n) {
      fail(`'${name}': ${h.data.length} values do not match shape ${fmtShape(h.shape)} (${n} elements)`);
    }
    const fileDtype: SafetensorsDType = opts.dtypes?.[name] ??
      (isSafetensorsDType(h.sourceDtype) ? h.sourceDtype : DEFAULT_FILE_DTYPE[h.dtype]);
    if (!isSafetensorsDType(fileDtype)) fail(`'${name}': unknown safetensors dtype ${JSON.stringify(fileDtype)}`);
    return { name, h, fileDtype, rank: WRITE_RANK[fileDtype] };
  });
  for (const name of Object.keys(opts.dtypes ?? {})) {
    if (!items.some((it) => it.name === name)) fail(`dtypes names '${name}', which is not among the tensors`);
  }
  items.sort((a, b) => b.rank - a.rank || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const parts: string[] = [];
  if (opts.metadata) {
    for (const [k, v] of Object.entries(opts.metadata)) {
      if (typeof v !== "string") fail(`metadata["${k}"] must be a string, got ${typeof v}`);
    }
    parts.push(`"__metadata__":${JSON.stringify(opts.metadata)}`);
  }
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const it of items) {
    const blob = encodeElements(it.h.data as HostArray, KIND[it.fileDtype], (p) => fail(`'${it.name}': ${p}`));
    parts.push(
      `${JSON.stringify(it.name)}:${
        JSON.stringify({ dtype: it.fileDtype, shape: it.h.shape, data_offsets: [offset, offset + blob.length] })
      }`,
    );
    blobs.push(blob);
    offset += blob.length;
  }
  let header = new TextEncoder().encode(`{${parts.join(",")}}`);
  if (header.length % 8 !== 0) {
    const padded = new Uint8Array(header.length + 8 - (header.length % 8)).fill(0x20);
    padded.set(header);
    header = padded;
  }
  const out = new Uint8Array(8 + header.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  let pos = 8 + header.length;
  for (const b of blobs) {
    out.set(b, pos);
    pos += b.length;
  }
  return out;
}
