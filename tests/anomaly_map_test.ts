/**
 * models/common/anomaly_map.ts on every device: the official `cal_anomaly_map` fixture
 * (tests/fixtures/official/anomaly_map.safetensors, an official fixture, docs/paper.md §0; float64 reference, float32
 * here, |a − b| ≤ 1e-4·max|b| per tensor), the Gaussian blur against scipy.ndimage.gaussian_filter
 * (tests/fixtures/blur.json from tools/gen_blur_fixture.py, sizes below the radius included), and the loss
 * against a hand computation.
 */
import assert from "node:assert/strict";
import * as T from "../mod.ts";
import { adLoss, anomalyMapOf, anomalyMapParts, gaussianBlur } from "../models/common/anomaly_map.ts";
import { loadSafetensors } from "../nn/io/safetensors.ts";
import { type HostTensor, toTensor } from "../nn/io/common.ts";
import { testDevices } from "./util.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const FIXTURE = new URL("./fixtures/official/anomaly_map.safetensors", import.meta.url);
const BLUR = new URL("./fixtures/blur.json", import.meta.url);

function close(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rel = 1e-4): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 0, err = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    err = Math.max(err, Math.abs(got[i] - want[i]));
  }
  assert.ok(err <= rel * scale, `${what}: max |diff| ${err} > ${rel * scale} (max |ref| ${scale})`);
}

for (const device of await testDevices()) {
  Deno.test(`anomaly map matches the official cal_anomaly_map fixture (${device})`, opts, async () => {
    const { tensors } = await loadSafetensors(FIXTURE);
    const get = (k: string): HostTensor => {
      const t = tensors.get(k);
      assert.ok(t, `fixture entry ${k}`);
      return t;
    };
    const features = {
      encoder: [0, 1, 2].map((i) => toTensor(get(`input.ft.${i}`), { device })),
      decoder: [0, 1, 2].map((i) => toTensor(get(`input.fs.${i}`), { device })),
    };
    const parts = anomalyMapParts(features, 64);
    for (let i = 0; i < 3; i++) {
      close(await parts.perScale[i].data(), get(`output.per_scale.${i}`).data, `per_scale.${i}`);
    }
    close(await parts.unsmoothed.data(), get("output.unsmoothed").data, "unsmoothed");
    const { map, score } = anomalyMapOf(features, { size: 64 });
    assert.deepEqual(map.shape, [2, 64, 64]);
    assert.deepEqual(score.shape, [2]);
    assert.equal(map.device, device);
    close(await map.data(), get("output.anomaly_map").data, "anomaly_map");
    close(await score.data(), get("output.image_score").data, "image_score");
    // the pooled score: max of avg_pool2d(k, stride 1), by hand from the map
    const pooled = anomalyMapOf(features, { size: 64, poolingKs: 16 });
    const m = await map.data();
    const want = [0, 1].map((b) => {
      let best = -Infinity;
      for (let i = 0; i + 16 <= 64; i++) {
        for (let j = 0; j + 16 <= 64; j++) {
          let s = 0;
          for (let u = 0; u < 16; u++) for (let v = 0; v < 16; v++) s += m[b * 4096 + (i + u) * 64 + j + v];
          best = Math.max(best, s / 256);
        }
      }
      return best;
    });
    close(await pooled.score.data(), want, "pooled score", 1e-5);
    for (const t of [...features.encoder, ...features.decoder, ...parts.perScale, parts.unsmoothed, map, score]) {
      t.dispose();
    }
    pooled.map.dispose();
    pooled.score.dispose();
  });

  Deno.test(
    `gaussianBlur matches scipy.ndimage.gaussian_filter, reflect mode and edges (${device})`,
    opts,
    async () => {
      const fx = JSON.parse(await Deno.readTextFile(BLUR)) as {
        cases: { shape: number[]; sigma: number; x: number[]; y: number[] }[];
      };
      assert.ok(fx.cases.some((c) => Math.min(c.shape[1], c.shape[2]) < Math.floor(4 * c.sigma + 0.5)));
      for (const c of fx.cases) {
        const x = T.tensor(c.x, { shape: c.shape, device });
        const y = gaussianBlur(x, c.sigma);
        assert.deepEqual(y.shape, c.shape);
        close(await y.data(), c.y, `blur ${c.shape} σ=${c.sigma}`);
        // edges: the first and last rows and columns alone, against an absolute 1e-5
        const got = await y.data();
        const [b, h, w] = c.shape;
        for (let n = 0; n < b; n++) {
          for (const i of [0, h - 1]) {
            for (let j = 0; j < w; j++) {
              const k = n * h * w + i * w + j;
              assert.ok(Math.abs(got[k] - c.y[k]) <= 1e-5, `edge (${n},${i},${j}): ${got[k]} vs ${c.y[k]}`);
            }
          }
        }
        x.dispose();
        y.dispose();
      }
    },
  );

  Deno.test(`adLoss is Σ 5·MSE_mean over the scales, with a gradient to the decoder (${device})`, opts, async () => {
    const f = [T.tensor([[1, 2], [3, 4]], { device }), T.tensor([0.5, -1, 2], { device })];
    const g = [
      T.tensor([[0, 2], [3, 6]], { device, requiresGrad: true }),
      T.tensor([0.5, 1, 0], { device, requiresGrad: true }),
    ];
    // scale 0: (1 + 0 + 0 + 4) / 4 = 1.25; scale 1: (0 + 4 + 4) / 3 = 8/3
    const want = 5 * (1.25 + 8 / 3);
    const loss = adLoss({ encoder: f, decoder: g });
    assert.ok(Math.abs((await loss.data())[0] - want) < 1e-5, `loss ${(await loss.data())[0]} vs ${want}`);
    const l2 = adLoss({ encoder: f, decoder: g }, 2);
    assert.ok(Math.abs((await l2.data())[0] - 2 * (1.25 + 8 / 3)) < 1e-5);
    loss.backward();
    // d/dg 5·mean((g − f)²) = 10 (g − f) / n
    close(await g[0].grad!.data(), [-10 / 4, 0, 0, 20 / 4], "grad g0", 1e-6);
    close(await g[1].grad!.data(), [0, 20 / 3, -20 / 3], "grad g1", 1e-6);
    assert.throws(() => adLoss({ encoder: f, decoder: [g[0]] }), /as many encoder as decoder/);
    for (const t of [...f, ...g, loss, l2]) t.dispose();
  });
}

Deno.test("anomaly map argument errors", opts, () => {
  const a = T.zeros([1, 2, 4, 4]), b = T.zeros([1, 2, 2, 2]);
  assert.throws(() => anomalyMapOf({ encoder: [a], decoder: [b] }, { size: 8 }), /differ in shape/);
  assert.throws(() => anomalyMapOf({ encoder: [a], decoder: [a] }, { size: 0 }), /size must be a positive integer/);
  assert.throws(() => gaussianBlur(a, 0), /sigma must be positive/);
  a.dispose();
  b.dispose();
});
