/**
 * Weight-file I/O: safetensors read/write, PyTorch `torch.save` (.pth) reading, and the helpers to
 * turn loaded host tensors into {@linkcode Tensor}s on a device.
 *
 * ```ts
 * import { loadPthStateDict, loadSafetensors, saveSafetensors, toTensors } from "./nn/io/index.ts";
 * const sd = await loadPthStateDict("resnet34.pth"); // Map<string, HostTensor>
 * const params = toTensors(sd, { device: "cpu" }); // Map<string, Tensor>
 * await saveSafetensors("resnet34.safetensors", params, { metadata: { arch: "resnet34" } });
 * const { tensors, metadata } = await loadSafetensors("resnet34.safetensors");
 * ```
 *
 * @module
 */

export type { Device, DType, HostArray } from "../../autodiff/backend.ts";
export {
  type HostTensor,
  isHostTensor,
  toTensor,
  type ToTensorOptions,
  toTensors,
  WeightsFileError,
} from "./common.ts";
export { atomicWriteFile } from "./atomic.ts";
export {
  isSafetensorsDType,
  loadSafetensors,
  MAX_HEADER_BYTES,
  parseSafetensors,
  type SafetensorsContents,
  type SafetensorsDType,
  saveSafetensors,
  type SaveSafetensorsOptions,
  serializeSafetensors,
  type TensorsByName,
} from "./safetensors.ts";
export {
  findStateDict,
  loadPth,
  type LoadPthOptions,
  loadPthStateDict,
  type LoadPthStateDictOptions,
  parsePth,
} from "./pth.ts";
export { type AllowedGlobal, BASE_GLOBALS, PickleGlobal, PyDict, unpickle, type UnpickleOptions } from "./pickle.ts";
export { crc32, isZip, ZipArchive, type ZipEntry } from "./zip.ts";
