/**
 * A typed tensor/autodiff framework for Deno with CPU and WebGPU backends.
 *
 * ```ts
 * import { tensor, matmul, sum } from "./mod.ts";
 * const a = tensor([[1, 2], [3, 4]], { requiresGrad: true });
 * const loss = sum(matmul(a, a));
 * loss.backward();
 * console.log(await a.grad!.array());
 * ```
 *
 * @module
 */

// Deno's OpenBLAS (FFI) and worker threads for the CPU backend; the browser build leaves this module out.
import "./autodiff/backends/cpu/deno_host.ts";

export type {
  AdamStepScalars,
  Backend,
  BackendBuffer,
  BinaryOp,
  Device,
  DType,
  HostArray,
  Im2colParams,
  IndexSelectParams,
  MatmulParams,
  MemoryInfo,
  ReduceOp,
  SelectiveScanGrads,
  SelectiveScanInputs,
  SelectiveScanParams,
  UnaryOp,
} from "./autodiff/backend.ts";
export { getBackend, getDefaultDevice, initDefaultDevice, initWebGPU, setDefaultDevice } from "./autodiff/device.ts";
export type { WebGPUOptions } from "./autodiff/backends/webgpu/backend.ts";
export { Generator, globalGenerator, manualSeed } from "./autodiff/random.ts";
export {
  type GradNode,
  isGradEnabled,
  keep,
  noGrad,
  record,
  Storage,
  Tensor,
  tidy,
  withGradMode,
} from "./autodiff/tensor.ts";
export * from "./autodiff/ops/index.ts";
export { gradcheck, type GradcheckOptions, type GradcheckResult } from "./autodiff/gradcheck.ts";
export { type MemoryStats, memoryStats, resetPeakMemory } from "./autodiff/memory.ts";
export { cpuThreads, setCpuThreads } from "./autodiff/backends/cpu/wasm/threads.ts";
export { setCpuHeapEnabled } from "./autodiff/backends/cpu/wasm/heap.ts";
export * from "./nn/index.ts";
export * from "./nn/optim/index.ts";
export * from "./nn/io/index.ts";
export { type CheckpointMeta, type CheckpointTargets, loadCheckpoint, saveCheckpoint } from "./nn/checkpoint.ts";
export * from "./models/backbones/resnet.ts";
export * from "./nn/ssm/index.ts";
export { DWT, dwt, IWT, iwt } from "./nn/wavelet/haar.ts";
export * from "./models/common/mff_oce.ts";
export * from "./models/common/patch_expand.ts";
export * from "./models/mambaad/hss.ts";
export * from "./models/mambaad/lss.ts";
export * from "./models/wave_mambaad/dse.ts";
export { HFSS, type HFSSOptions, hfssScanOrders, type HfssScanSet } from "./models/wave_mambaad/hfss.ts";
export * from "./models/wave_mambaad/lfss.ts";
export * from "./models/wave_mambaad/wdss.ts";
export * from "./models/registry.ts";
export type * from "./models/common/anomaly_model.ts";
export * from "./models/common/anomaly_map.ts";
export { countFlops, einsumMacs, type FlopCount } from "./models/common/flops.ts";
export { createMambaAD, MambaAD } from "./models/mambaad/model.ts";
export * from "./models/mambaad/config.ts";
export {
  countParams as countWaveParams,
  createWaveMambaAD,
  type CreateWaveMambaADOptions,
  WaveMambaAD,
  type WaveParamCounts,
} from "./models/wave_mambaad/model.ts";
export {
  decoderDropPaths,
  LSSLayerUp,
  type LSSLayerUpOptions,
  lssSplit,
  MambaADDecoder,
  type MambaUPNetOptions,
} from "./models/mambaad/decoder.ts";
export {
  ConvBNSSMBlock,
  type ConvBNSSMBlockOptions,
  VSSLayerUp,
  waveBlockOptions,
  WaveMambaADDecoder,
} from "./models/wave_mambaad/decoder.ts";
export { dropPathSchedule, mambaUPNetInit } from "./models/common/decoder.ts";
export {
  type ADDecoder,
  type ADParts,
  factoryOptions,
  type ModelFactoryOptions,
  ResNetADModel,
} from "./models/common/ad_model.ts";
export * from "./models/wave_mambaad/config.ts";
export { WebGPUDeviceLostError } from "./autodiff/backends/webgpu/runtime.ts";
export * from "./anomaly/data/mod.ts";
export * from "./anomaly/metrics/mod.ts";
export * from "./anomaly/engine/mod.ts";
export * from "./anomaly/viz/heatmap.ts";
