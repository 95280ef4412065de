/**
 * Weight-file I/O: safetensors read/write, PyTorch `torch.save` (.pth) reading, and the helpers to
 * turn loaded host tensors into {@linkcode Tensor}s on a device.
 *
 * ```ts
 * import { loadSafetensors, saveSafetensors, tensor, toTensors } from "../../mod.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await saveSafetensors(path, new Map([["w", tensor([1, 2, 3])]]), { metadata: { arch: "demo" } });
 * const { tensors, metadata } = await loadSafetensors(path); // Map<string, HostTensor>, { arch: "demo" }
 * const params = toTensors(tensors, { device: "cpu" }); // Map<string, Tensor>
 * // a torchvision checkpoint: `await loadPthStateDict("resnet34-b627a593.pth")` gives the same Map
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
