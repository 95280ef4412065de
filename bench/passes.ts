/**
 * The model passes the benches time, as the engine runs them: a training step and an inference pass of a zoo
 * model at batch 8 (`bench.ts`, `blas_timeout.ts`).
 *
 * @module
 */
import * as T from "../mod.ts";
import type { Device } from "../mod.ts";
import { createModel, type ModelName } from "../models/registry.ts";
import type { AnomalyModel } from "../models/common/anomaly_model.ts";

/**
 * One training step of a zoo model as the engine runs it (anomaly/engine/train.ts): `tidy(loss(forward))`,
 * backward, clip the global grad norm to 5, AdamW (lr 0.005, weight decay 1e-4 except 1-D and biases), loss
 * readback. Batch 8 of random images at `size`².
 */
export async function modelTrainStep(name: ModelName, device: Device, size: number): Promise<() => Promise<void>> {
  T.manualSeed(42);
  const model = await createModel(name, { imageSize: size }, { device });
  model.train();
  const opt = new T.AdamW(T.decayGroups(model.namedParameters(), 1e-4), { lr: 5e-3 });
  const x = T.keep(T.randn([8, 3, size, size], { device }));
  return () => trainStep(model, opt, x);
}

/** One step on batch x: `tidy(loss(forward))`, backward, clip the global grad norm to 5, the optimiser, readback. */
export async function trainStep(model: AnomalyModel, opt: T.AdamW, x: T.Tensor): Promise<void> {
  const loss = T.tidy(() => model.loss(model.forward(x)));
  loss.backward();
  T.tidy(() => T.clipGradNorm(model.parameters(), 5));
  opt.step();
  opt.zeroGrad();
  await loss.item();
  loss.dispose();
}

/**
 * Inference as the engine runs it (anomaly/engine/evaluate.ts): features and anomaly maps of a batch of 8 at
 * 256² under `noGrad(tidy(...))` (`useTidy` false drops the tidy, leaving the blocks' own scopes and the
 * garbage collector). Returns the pass and the model's device.
 */
export async function modelInferPass(name: ModelName, device: Device, useTidy = true): Promise<() => Promise<void>> {
  const model = await createModel(name, { imageSize: 256 }, { device });
  model.eval();
  const x = T.keep(T.randn([8, 3, 256, 256], { device }));
  return async () => {
    const f = () => model.anomalyMap(model.forward(x));
    const res = T.noGrad(() => (useTidy ? T.tidy(f) : f()));
    await res.score.data();
    res.map.dispose();
    res.score.dispose();
  };
}
