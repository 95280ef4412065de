/**
 * Optimisers (SGD, Adam, AdamW), learning-rate schedules, gradient clipping and weight-decay groups.
 *
 * ```ts
 * import { AdamW, clipGradNorm, decayGroups, Linear, mseLoss, randn, TimmStepLR } from "../../mod.ts";
 * const model = new Linear(8, 1), epochs = 10, iters = 5;
 * const opt = new AdamW(decayGroups(model.namedParameters(), 1e-4), { lr: 0.005, betas: [0.9, 0.999], eps: 1e-8 });
 * const sched = new TimmStepLR(opt, { decayT: Math.floor(0.8 * epochs) * iters, decayRate: 0.1 });
 * for (let i = 0; i < epochs * iters; i++) {
 *   const loss = mseLoss(model.forward(randn([4, 8])), randn([4, 1]));
 *   loss.backward();
 *   clipGradNorm(model.parameters(), 5).dispose();
 *   opt.step();
 *   opt.zeroGrad();
 *   sched.step();
 * }
 * ```
 *
 * @module
 */

export {
  type BaseGroupOptions,
  type JsonValue,
  Optimizer,
  type OptimizerStateDict,
  type ParamGroup,
  type ParamGroupInput,
  type ParamGroupState,
  type ParamState,
  type StateValue,
} from "./optimizer.ts";
export { SGD, type SGDInit, type SGDOptions } from "./sgd.ts";
export { Adam, type AdamOptions } from "./adam.ts";
export { AdamW } from "./adamw.ts";
export {
  CosineAnnealingLR,
  type CosineAnnealingLROptions,
  LinearWarmup,
  type LinearWarmupOptions,
  LRSchedule,
  type LRScheduleStateDict,
  MultiStepLR,
  type MultiStepLROptions,
  type ScheduledOptimizer,
  StepLR,
  type StepLROptions,
  TimmStepLR,
  type TimmStepLROptions,
} from "./schedule.ts";
export { clipGradNorm } from "./clip.ts";
export { setMultiTensor } from "./multi_tensor.ts";
export { type DecayGroup, decayGroups } from "./param_groups.ts";
