/**
 * One inference call of the engine, shared by `eval`, `infer` and the browser playground: normalised images in,
 * anomaly maps and image scores out. No file system here, so `web/` bundles it as it is.
 *
 * @module
 */

import { tensor } from "../../autodiff/ops/creation.ts";
import { noGrad, tidy } from "../../autodiff/tensor.ts";
import type { AnomalyModel } from "../../models/common/anomaly_model.ts";

/** Anomaly maps and scores of a batch of normalised images (B·3·S·S on the host), read back to the host. */
export async function predictBatch(
  model: AnomalyModel,
  images: Float32Array,
  count: number,
  opts: { poolingKs?: number | null; sigma?: number } = {},
): Promise<{ maps: Float32Array; scores: Float32Array }> {
  const s = model.imageSize;
  const device = model.parameters()[0].device;
  const x = tensor(images.subarray(0, count * 3 * s * s), { shape: [count, 3, s, s], device });
  try {
    const r = noGrad(() => tidy(() => model.anomalyMap(model.forward(x), opts)));
    try {
      const [maps, scores] = await Promise.all([r.map.data(), r.score.data()]);
      return { maps: maps as Float32Array, scores: scores as Float32Array };
    } finally {
      r.map.dispose();
      r.score.dispose();
    }
  } finally {
    x.dispose();
  }
}
