/**
 * Neural-network building blocks: `Module` and `Parameter`, the layers, initialisers (`init.*`, as
 * `torch.nn.init`) and losses.
 *
 * ```ts
 * import { BatchNorm2d, Conv2d, ReLU, Sequential } from "../mod.ts";
 * const block = new Sequential(new Conv2d(3, 16, 3, { padding: 1, bias: false }), new BatchNorm2d(16), new ReLU());
 * console.log(block.stateDict().keys()); // "0.weight", "1.weight", "1.bias", "1.running_mean", ...
 * ```
 *
 * @module
 */

export {
  buffer,
  type LoadResult,
  type LoadStateDictOptions,
  Module,
  Parameter,
  StateDictMismatchError,
} from "./module.ts";
export * as init from "./init.ts";
export type {
  FanMode,
  InitOptions,
  InitTarget,
  KaimingOptions,
  Nonlinearity,
  TruncNormalOptions,
  XavierOptions,
} from "./init.ts";
export { Linear, type LinearOptions } from "./layers/linear.ts";
export { Conv2d, type Conv2dLayerOptions } from "./layers/conv.ts";
export {
  BatchNorm2d,
  GroupNorm,
  type GroupNormOptions,
  InstanceNorm2d,
  LayerNorm,
  LayerNorm2d,
  type LayerNormOptions,
  type NormOptions,
  RunningStatsNorm,
} from "./layers/norm.ts";
export { GELU, type GELUOptions, ReLU, Sigmoid, SiLU, Tanh } from "./layers/activation.ts";
export { Dropout, DropPath } from "./layers/dropout.ts";
export { Identity, ModuleList, Sequential, type UnaryModule } from "./layers/container.ts";
export { PixelShuffle, PixelUnshuffle } from "./layers/pixel_shuffle.ts";
export {
  cosineDistance,
  cosineSimilarity,
  crossEntropy,
  type CrossEntropyOptions,
  l1Loss,
  type LossOptions,
  mseLoss,
  type Reduction,
} from "./losses.ts";
