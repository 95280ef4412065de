/**
 * What the playground's panels compute, with no DOM: the same functions run in the page (on WebGPU or the CPU
 * backend) and in Deno (tests/playground_test.ts), so the test can hold what the page shows against them.
 *
 * @module
 */

import type { Device } from "../autodiff/backend.ts";
import { arange, tensor } from "../autodiff/ops/creation.ts";
import { indexSelect } from "../autodiff/ops/indexing.ts";
import { abs, sub } from "../autodiff/ops/elementwise.ts";
import { max } from "../autodiff/ops/reduce.ts";
import { noGrad, tidy } from "../autodiff/tensor.ts";
import { selectiveScan } from "../nn/ssm/selective_scan.ts";
import {
  hfssScanOrders,
  type HfssScanSet,
  mambaadDirections,
  type OfficialScanType,
  reversed,
  type ScanOrder,
  scanOrderForType,
} from "../nn/ssm/scan_order.ts";
import { dwt, iwt } from "../nn/wavelet/haar.ts";
import { normalizeRgb, resizePil, type RgbImage } from "../anomaly/data/pixels.ts";
import { predictBatch } from "../anomaly/engine/predict.ts";
import type { AnomalyModel } from "../models/common/anomaly_model.ts";

/**
 * The Wave-MambaAD configuration of the built-in checkpoint (tools/gen_playground_checkpoint.ts): Wavelet-Mamba
 * blocks in the two finest stages only, one per stage, no dead conv or index tables; about 2.5 M parameters besides
 * the frozen encoder, so the checkpoint is a few megabytes.
 */
export const TINY_MODEL_CONFIG: Readonly<Record<string, unknown>> = {
  depths: [0, 0, 1, 1],
  depthSemantics: "linear",
  unusedConv: false,
  scanTables: false,
};

/** One entry of the scan-order menu. */
export interface OrderEntry {
  /** Stable id (the `<option>` value). */
  id: string;
  /** The menu group. */
  group: string;
  /** What the menu shows. */
  label: string;
  /** The library's order. */
  order: ScanOrder;
}

const HFSS_BANDS = ["HL", "LH", "HH"] as const;

/** The official `scan_type` strings of MambaAD's `HSCANS` / Wave-MambaAD's `SCANS` (see `scanOrderForType`). */
export const SCAN_TYPES: readonly OfficialScanType[] = [
  "sweep",
  "horizontal",
  "vertical",
  "scan",
  "zigzag",
  "hilbert",
  "diagonal",
];

/**
 * The menu: the 14 orders of the official scan types (each of the 7 `scan_type` strings forward and time-reversed,
 * as the SS2D blocks scan them), every HFSS band order of Wave-MambaAD's `hfssScanOrders` table (the official set
 * and the Table 3 ablations, each band forward and reversed, K = 2), and MambaAD's 8 SS2D directions.
 */
export function orderCatalogue(): OrderEntry[] {
  const out: OrderEntry[] = [];
  for (const type of SCAN_TYPES) {
    const order = scanOrderForType(type);
    for (const [dir, o] of [["forward", order], ["reversed", reversed(order)]] as const) {
      out.push({
        id: `type-${type}-${dir}`,
        group: "Scan types (scan_type)",
        label: `${type} ${dir}: ${o.name}`,
        order: o,
      });
    }
  }
  for (const set of Object.keys(hfssScanOrders) as HfssScanSet[]) {
    hfssScanOrders[set].forEach((order, b) => {
      for (const [dir, o] of [["forward", order], ["reversed", reversed(order)]] as const) {
        out.push({
          id: `hfss-${set}-${HFSS_BANDS[b]}-${dir}`,
          group: `Wave-MambaAD HFSS (${set})`,
          label: `${HFSS_BANDS[b]} ${dir}: ${o.name}`,
          order: o,
        });
      }
    });
  }
  mambaadDirections().forEach((order, k) => {
    out.push({ id: `mambaad-k${k}`, group: "MambaAD HSS directions", label: `k${k}: ${order.name}`, order });
  });
  return out;
}

/**
 * The sequence an SS2D reads for `order` on an `n × n` grid, computed as the model does it: a grid holding each
 * cell's row-major index, gathered along the flattened axis by the order's cached index tensor on `device`.
 * Entry t is the cell read at step t.
 */
export async function scanSequence(order: ScanOrder, n: number, device: Device): Promise<Int32Array> {
  const seq = tidy(() =>
    indexSelect(arange(n * n, undefined, 1, { device, dtype: "int32" }), 0, order.indices(n, n, device))
  );
  try {
    return Int32Array.from(await seq.data());
  } finally {
    seq.dispose();
  }
}

/** The scalars of one SSM channel (N = 1): `h_t = exp(Δ·A)·h_{t−1} + Δ·B·u_t`, `y_t = C·h_t`. */
export interface SsmParams {
  /** State decay (negative). */
  A: number;
  /** Step size Δ. */
  delta: number;
  /** Input weight. */
  B: number;
  /** Read-out weight. */
  C: number;
}

/** Length of the impulse and step responses. */
export const RESPONSE_LENGTH = 60;
/** The step of the impulse and the step of the step input. */
export const RESPONSE_ONSET = 5;

/** Impulse and step responses of one channel, from one `selectiveScan` call with two channels. */
export async function ssmResponses(
  p: SsmParams,
  device: Device,
): Promise<{ impulse: Float32Array; step: Float32Array }> {
  const L = RESPONSE_LENGTH, t0 = RESPONSE_ONSET;
  const u = Float32Array.from({ length: 2 * L }, (_, i) => (i < L ? (i === t0 ? 1 : 0) : (i - L >= t0 ? 1 : 0)));
  const y = tidy(() =>
    selectiveScan(
      tensor(u, { shape: [1, 2, L], device }),
      tensor(new Float32Array(2 * L).fill(p.delta), { shape: [1, 2, L], device }),
      tensor([[p.A], [p.A]], { device }),
      tensor([[p.B], [p.B]], { device }),
      tensor([[p.C], [p.C]], { device }),
    )
  );
  try {
    const d = await y.data() as Float32Array;
    return { impulse: d.slice(0, L), step: d.slice(L) };
  } finally {
    y.dispose();
  }
}

/** Length of the gating demo. */
export const GATING_LENGTH = 100;
/** The steps where the demo's gate opens. */
export const GATING_WRITES: readonly number[] = [12, 37, 58, 81];

/** The gating demo's input: a wandering signal (AR(1) of a small seeded generator), as examples/ssm_response.ts. */
export function gatingInput(): Float32Array {
  let s = 1;
  const noise = () => (s = (s * 16807) % 2147483647) / 2147483647 - 0.5;
  const u = new Float32Array(GATING_LENGTH);
  for (let t = 0, v = 0; t < GATING_LENGTH; t++) u[t] = v = 0.85 * v + noise();
  return u;
}

/**
 * Mamba's selectivity: Δ_t = softplus(gate_t) is large (`open`, in softplus⁻¹ units) on the write steps and tiny
 * (`-open`) elsewhere, so the state holds the input of the last write; against a fixed Δ (`fixedDelta`), which can
 * only smooth. A and B come from the panel's sliders; C = 1/softplus(open) reads the held value back.
 */
export async function gatingDemo(
  p: { A: number; B: number; open: number; fixedDelta: number },
  device: Device,
): Promise<{ u: Float32Array; selective: Float32Array; fixed: Float32Array }> {
  const L = GATING_LENGTH, u = gatingInput();
  const gate = Float32Array.from({ length: L }, (_, t) => (GATING_WRITES.includes(t) ? p.open : -p.open));
  const softplus = (x: number) => Math.log1p(Math.exp(x));
  const delta = new Float32Array(2 * L);
  delta.set(gate);
  delta.fill(Math.log(Math.expm1(p.fixedDelta)), L); // softplus⁻¹, so that the fixed channel's Δ is fixedDelta
  const uu = new Float32Array(2 * L);
  uu.set(u);
  uu.set(u, L);
  const y = tidy(() =>
    selectiveScan(
      tensor(uu, { shape: [1, 2, L], device }),
      tensor(delta, { shape: [1, 2, L], device }),
      tensor([[p.A], [p.A]], { device }),
      tensor([[p.B], [p.B]], { device }),
      tensor([[1 / softplus(p.open)], [1]], { device }),
      { deltaSoftplus: true },
    )
  );
  try {
    const d = await y.data() as Float32Array;
    return { u, selective: d.slice(0, L), fixed: d.slice(L) };
  } finally {
    y.dispose();
  }
}

/** An RGB image as a (1, 3, H, W) float array in [0, 1] (cropped to even sides for the Haar transform). */
export function rgbToPlanes(img: RgbImage): { data: Float32Array; height: number; width: number } {
  const h = img.height & ~1, w = img.width & ~1;
  const data = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) data[(c * h + y) * w + x] = img.data[(y * img.width + x) * 3 + c] / 255;
    }
  }
  return { data, height: h, width: w };
}

/** The four Haar sub-bands of an image and how well `iwt` undoes `dwt`. */
export interface WaveletResult {
  /** LL, HL, LH, HH, each (3, H/2, W/2). */
  bands: Float32Array[];
  /** Band height and width. */
  height: number;
  width: number;
  /** max |iwt(dwt(x)) − x| over all pixels and channels. */
  maxError: number;
}

/** `dwt` of the image (1, 3, H, W), its bands, and the reconstruction error of `iwt`, on `device`. */
export async function waveletBands(planes: ReturnType<typeof rgbToPlanes>, device: Device): Promise<WaveletResult> {
  const { data, height, width } = planes;
  const [y, err] = noGrad(() =>
    tidy(() => {
      const x = tensor(data, { shape: [1, 3, height, width], device });
      const y = dwt(x);
      return [y, max(abs(sub(iwt(y), x)))];
    })
  );
  try {
    const [d, e] = await Promise.all([y.data(), err.data()]);
    const n = 3 * (height / 2) * (width / 2);
    const bands = [0, 1, 2, 3].map((b) => (d as Float32Array).slice(b * n, (b + 1) * n));
    return { bands, height: height / 2, width: width / 2, maxError: e[0] };
  } finally {
    y.dispose();
    err.dispose();
  }
}

/**
 * The model input of an RGB image as `deno task infer` makes it (Pillow-exact bilinear resize to the model's size,
 * ImageNet normalisation), then the map and score as infer computes them (`predictBatch`).
 */
export async function anomalyOf(
  model: AnomalyModel,
  img: RgbImage,
): Promise<{ input: Float32Array; map: Float32Array; score: number; size: number }> {
  const s = model.imageSize;
  const input = normalizeRgb(resizePil(img.data, img.width, img.height, 3, s, s), s, s);
  const { maps, scores } = await predictBatch(model, input, 1);
  return { input, map: maps, score: scores[0], size: s };
}
