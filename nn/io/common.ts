/**
 * Shared pieces of the weight-file readers and writers: the host-side tensor type, the error type,
 * element conversions (float16/bfloat16/float64/int64 to the framework's dtypes and back) and the
 * bridge from host tensors to {@linkcode Tensor}s.
 *
 * @module
 */

import type { Device, DType, HostArray } from "../../autodiff/backend.ts";
import { tensor } from "../../autodiff/ops/creation.ts";
import type { Tensor } from "../../autodiff/tensor.ts";

/**
 * A tensor held on the host, as read from a weight file: a contiguous row-major typed array in one of
 * the framework's dtypes (`float32` → Float32Array, `int32` → Int32Array, `bool` → Uint8Array of 0/1).
 *
 * `data` may be a view into the bytes the file was read into, or into a storage shared with other
 * tensors of the same file (PyTorch views); copy it before mutating it in place.
 */
export interface HostTensor {
  /** The framework dtype the values were converted to. */
  dtype: DType;
  /** Dimensions, row-major. */
  shape: number[];
  /** `numel(shape)` values, contiguous. */
  data: HostArray;
  /** The element type in the file before conversion (`"F16"`, `"I64"`, `"float64"`, ...), when known. */
  sourceDtype?: string;
}

/** A malformed, truncated, unsupported or unsafe weight file. The message names the file and the problem. */
export class WeightsFileError extends Error {
  /** The file (path or name given by the caller). */
  readonly file: string;
  /** The problem, without the file name. */
  readonly problem: string;
  /** Creates the error; `message` is `"<file>: <problem>"`. */
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = "WeightsFileError";
    this.file = file;
    this.problem = problem;
  }
}

/** Whether the host is little-endian (the typed-array fast paths assume so; otherwise bytes are swapped). */
export const LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** `[a, b, c]` for messages. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** Whether `v` is a {@linkcode HostTensor} (as produced by the readers). */
export function isHostTensor(v: unknown): v is HostTensor {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return Array.isArray(o.shape) && ArrayBuffer.isView(o.data) &&
    (o.dtype === "float32" || o.dtype === "int32" || o.dtype === "bool");
}

// ---------------------------------------------------------------------------------------------
// Element decoding. Every decoder takes the raw little-endian bytes of `n` elements and returns a
// typed array of the framework dtype; it views the input when it can (float32/int32 data aligned to
// 4 bytes), else copies with whole-array typed-array operations where possible.

/** Copies `bytes` into a fresh buffer aligned for any element size (and byte-swaps on big-endian hosts). */
function alignedCopy(bytes: Uint8Array, itemSize: number): ArrayBuffer {
  const copy = bytes.slice();
  if (!LITTLE_ENDIAN && itemSize > 1) {
    for (let i = 0; i < copy.length; i += itemSize) copy.subarray(i, i + itemSize).reverse();
  }
  return copy.buffer;
}

/** Views or copies little-endian 4-byte elements as `Ctor` (no per-element loop on little-endian hosts). */
function view4<T extends Float32Array | Int32Array | Uint32Array>(
  bytes: Uint8Array,
  n: number,
  Ctor: { new (buf: ArrayBufferLike, off: number, len: number): T; new (buf: ArrayBufferLike): T },
): T {
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) return new Ctor(bytes.buffer, bytes.byteOffset, n);
  return new Ctor(alignedCopy(bytes.subarray(0, n * 4), 4));
}

let f16Table: Float32Array | null = null;
/** float16 bit pattern → float32 value, for all 65536 patterns. */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const bits = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    let mant = h & 0x3ff;
    if (exp === 0x1f) bits[h] = sign | 0x7f800000 | (mant << 13); // inf / nan (payload kept)
    else if (exp !== 0) bits[h] = sign | ((exp + 112) << 23) | (mant << 13);
    else if (mant === 0) bits[h] = sign;
    else {
      // subnormal: normalise
      let e = 113;
      while ((mant & 0x400) === 0) {
        mant <<= 1;
        e--;
      }
      bits[h] = sign | (e << 23) | ((mant & 0x3ff) << 13);
    }
  }
  f16Table = new Float32Array(bits.buffer);
  return f16Table;
}

/** Little-endian 2-byte elements as a Uint16Array (view when aligned on a little-endian host). */
function view2(bytes: Uint8Array, n: number): Uint16Array {
  if (LITTLE_ENDIAN && bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  return new Uint16Array(alignedCopy(bytes.subarray(0, n * 2), 2));
}

/** The element kinds the decoders understand (file-format independent). */
export type RawKind =
  | "f64"
  | "f32"
  | "f16"
  | "bf16"
  | "i64"
  | "i32"
  | "i16"
  | "i8"
  | "u8"
  | "u16"
  | "u32"
  | "bool";

/** Bytes per element of each raw kind. */
export const RAW_ITEM_SIZE: Record<RawKind, number> = {
  f64: 8,
  f32: 4,
  f16: 2,
  bf16: 2,
  i64: 8,
  i32: 4,
  i16: 2,
  i8: 1,
  u8: 1,
  u16: 2,
  u32: 4,
  bool: 1,
};

/** The framework dtype each raw kind is loaded as. */
export const RAW_TARGET: Record<RawKind, DType> = {
  f64: "float32",
  f32: "float32",
  f16: "float32",
  bf16: "float32",
  i64: "int32",
  i32: "int32",
  i16: "int32",
  i8: "int32",
  u8: "int32",
  u16: "int32",
  u32: "int32",
  bool: "bool",
};

/**
 * Decodes `n` little-endian elements of `kind` from `bytes` into the framework dtype
 * ({@linkcode RAW_TARGET}). Integer values outside the int32 range throw (via `fail`).
 */
export function decodeElements(
  bytes: Uint8Array,
  n: number,
  kind: RawKind,
  fail: (problem: string) => never,
): HostArray {
  switch (kind) {
    case "f32":
      return view4(bytes, n, Float32Array);
    case "i32":
      return view4(bytes, n, Int32Array);
    case "f64": {
      const src = LITTLE_ENDIAN && bytes.byteOffset % 8 === 0
        ? new Float64Array(bytes.buffer, bytes.byteOffset, n)
        : new Float64Array(alignedCopy(bytes.subarray(0, n * 8), 8));
      return Float32Array.from(src);
    }
    case "f16": {
      const src = view2(bytes, n), table = halfTable(), out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[src[i]];
      return out;
    }
    case "bf16": {
      const src = view2(bytes, n), out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = src[i] << 16;
      return new Float32Array(out.buffer);
    }
    case "i64": {
      // pairs of (low, high) 32-bit words; the value fits int32 iff high is the sign extension of low
      const words = view4(bytes, 2 * n, Int32Array), out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const lo = words[2 * i], hi = words[2 * i + 1];
        if (hi !== (lo >> 31)) {
          const v = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
          fail(`int64 value ${v} at element ${i} does not fit in int32 (int64 tensors are loaded as int32)`);
        }
        out[i] = lo;
      }
      return out;
    }
    case "u32": {
      const src = view4(bytes, n, Uint32Array);
      for (let i = 0; i < n; i++) {
        if (src[i] > 0x7fffffff) {
          fail(`uint32 value ${src[i]} at element ${i} does not fit in int32 (uint32 tensors are loaded as int32)`);
        }
      }
      return new Int32Array(src);
    }
    case "i16":
      return Int32Array.from(
        LITTLE_ENDIAN && bytes.byteOffset % 2 === 0
          ? new Int16Array(bytes.buffer, bytes.byteOffset, n)
          : new Int16Array(alignedCopy(bytes.subarray(0, n * 2), 2)),
      );
    case "u16":
      return Int32Array.from(view2(bytes, n));
    case "i8":
      return Int32Array.from(new Int8Array(bytes.buffer, bytes.byteOffset, n));
    case "u8":
      return Int32Array.from(bytes.subarray(0, n));
    case "bool": {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = bytes[i] !== 0 ? 1 : 0;
      return out;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Element encoding (for writers).

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 value → float16 bits, round to nearest even (NaN stays NaN, overflow → ±inf). */
export function f32ToF16Bits(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // underflows to ±0
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // may carry into the exponent (→ inf): correct
  return sign | h;
}

/** float32 value → bfloat16 bits, round to nearest even (NaN stays a quiet NaN). */
export function f32ToBF16Bits(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * Encodes `src` values as little-endian elements of `kind`. Integer kinds require integer values in
 * range (else `fail`); bool stores nonzero as 1.
 */
export function encodeElements(src: HostArray, kind: RawKind, fail: (problem: string) => never): Uint8Array {
  const n = src.length;
  const out = new Uint8Array(n * RAW_ITEM_SIZE[kind]);
  const dv = new DataView(out.buffer);
  const intRange = (lo: number, hi: number): void => {
    for (let i = 0; i < n; i++) {
      const v = src[i];
      if (!Number.isInteger(v) || v < lo || v > hi) {
        fail(`value ${v} at element ${i} cannot be stored as ${kind}`);
      }
    }
  };
  switch (kind) {
    case "f32":
      if (LITTLE_ENDIAN) new Float32Array(out.buffer).set(src);
      else for (let i = 0; i < n; i++) dv.setFloat32(4 * i, src[i], true);
      break;
    case "f64":
      if (LITTLE_ENDIAN) new Float64Array(out.buffer).set(src);
      else for (let i = 0; i < n; i++) dv.setFloat64(8 * i, src[i], true);
      break;
    case "f16":
      for (let i = 0; i < n; i++) dv.setUint16(2 * i, f32ToF16Bits(src[i]), true);
      break;
    case "bf16":
      for (let i = 0; i < n; i++) dv.setUint16(2 * i, f32ToBF16Bits(src[i]), true);
      break;
    case "i32":
      intRange(-0x80000000, 0x7fffffff);
      if (LITTLE_ENDIAN) new Int32Array(out.buffer).set(src);
      else for (let i = 0; i < n; i++) dv.setInt32(4 * i, src[i], true);
      break;
    case "u32":
      intRange(0, 0xffffffff);
      for (let i = 0; i < n; i++) dv.setUint32(4 * i, src[i], true);
      break;
    case "i64":
      intRange(-0x80000000, 0x7fffffff); // sources are float32/int32: values beyond int32 are not exact anyway
      for (let i = 0; i < n; i++) {
        dv.setInt32(8 * i, src[i], true);
        dv.setInt32(8 * i + 4, src[i] < 0 ? -1 : 0, true);
      }
      break;
    case "i16":
      intRange(-0x8000, 0x7fff);
      for (let i = 0; i < n; i++) dv.setInt16(2 * i, src[i], true);
      break;
    case "u16":
      intRange(0, 0xffff);
      for (let i = 0; i < n; i++) dv.setUint16(2 * i, src[i], true);
      break;
    case "i8":
      intRange(-0x80, 0x7f);
      new Int8Array(out.buffer).set(src);
      break;
    case "u8":
      intRange(0, 0xff);
      out.set(src);
      break;
    case "bool":
      for (let i = 0; i < n; i++) out[i] = src[i] ? 1 : 0;
      break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Host → device.

/** Options of {@linkcode toTensor} / {@linkcode toTensors}. */
export interface ToTensorOptions {
  /** Device of the created tensors (default: the default device). */
  device?: Device;
  /** Mark float32 tensors as requiring gradients. */
  requiresGrad?: boolean;
}

/** Uploads one host tensor (copying its data) to a new {@linkcode Tensor}. */
export function toTensor(h: HostTensor, opts: ToTensorOptions = {}): Tensor {
  return tensor(h.data, {
    shape: h.shape,
    dtype: h.dtype,
    device: opts.device,
    requiresGrad: opts.requiresGrad === true && h.dtype === "float32",
  });
}

/** Uploads every host tensor of a map (e.g. a loaded state dict) to new {@linkcode Tensor}s, same keys and order. */
export function toTensors(
  tensors: ReadonlyMap<string, HostTensor>,
  opts: ToTensorOptions = {},
): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, h] of tensors) out.set(k, toTensor(h, opts));
  return out;
}

/**
 * What the first bytes of a weights file say it is, for error messages that point at the right reader:
 * `"pth"` (a zip archive or a bare pickle, as `torch.save` writes), `"safetensors"` (an 8-byte header length
 * followed by `{`), or `null`.
 */
export function sniffWeightsFormat(bytes: Uint8Array): "pth" | "safetensors" | null {
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) {
    return "pth";
  }
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5) return "pth";
  if (bytes.length >= 9 && bytes[8] === 0x7b) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const len = dv.getUint32(4, true) * 2 ** 32 + dv.getUint32(0, true);
    if (len >= 2 && len <= bytes.length - 8) return "safetensors";
  }
  return null;
}
