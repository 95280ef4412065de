/**
 * safetensors reading and writing (https://github.com/huggingface/safetensors format).
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
 * of 8 bytes. The output is deterministic; files are replaced atomically.
 *
 * The format itself (parse, serialise) is `safetensors_format.ts`, re-exported here; this module adds files.
 *
 * @module
 */

import { Tensor } from "../../autodiff/tensor.ts";
import { atomicWriteFile } from "./atomic.ts";
import type { HostTensor } from "./common.ts";
import { readWholeFile } from "./read_file.ts";
import {
  entriesOf,
  parseSafetensors,
  type SafetensorsContents,
  type SaveSafetensorsOptions,
  serializeSafetensors,
  type TensorsByName,
} from "./safetensors_format.ts";

export {
  isSafetensorsDType,
  MAX_HEADER_BYTES,
  parseSafetensors,
  type SafetensorsContents,
  type SafetensorsDType,
  type SaveSafetensorsOptions,
  serializeSafetensors,
  type TensorsByName,
} from "./safetensors_format.ts";

/**
 * Reads a safetensors file (one `Deno.readFile`).
 * @throws {WeightsFileError} naming the file and the problem.
 */
export async function loadSafetensors(path: string | URL): Promise<SafetensorsContents> {
  return parseSafetensors(await readWholeFile(path), String(path));
}

/**
 * Writes tensors to a safetensors file, atomically (temporary file in the same directory, then
 * rename). {@linkcode Tensor}s are read back from their device first.
 */
export async function saveSafetensors(
  path: string | URL,
  tensors: TensorsByName<Tensor | HostTensor>,
  opts: SaveSafetensorsOptions = {},
): Promise<void> {
  const host = new Map<string, HostTensor>();
  for (const [name, t] of entriesOf(tensors)) {
    if (t instanceof Tensor) host.set(name, { dtype: t.dtype, shape: t.shape.slice(), data: await t.data() });
    else host.set(name, t);
  }
  await atomicWriteFile(path, serializeSafetensors(host, opts));
}
