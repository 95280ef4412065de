/**
 * anomaly/metrics against tests/fixtures/metrics.json (tools/gen_metric_fixtures.py: sklearn 1.2.1,
 * scikit-image 0.19.3, numpy 1.24): the exact curves (AUROC / AP / F1-max within 1e-6 of sklearn, ties
 * included), 8- and 4-connected labels (same partition as skimage), the exact-path AU-PRO (ADER
 * cal_pro_score, 100 steps), ADER's P-F1max, the ADEval-path pixel metrics, and the errors for bad inputs.
 * Timing lives in bench/metrics.ts, not here.
 */
import assert from "node:assert/strict";
import {
  adevalPixelMetrics,
  arangeThresholds,
  auproExact,
  averagePrecision,
  binaryCurveMetrics,
  type ClassMetrics,
  classMetrics,
  f1Max,
  labelComponents,
  meanMetrics,
  METRIC_KEYS,
  type MetricPath,
  pixelF1Max,
  radixSortFloat32,
  rocAuc,
} from "../anomaly/metrics/mod.ts";

interface CurveCase {
  name: string;
  labels: number[];
  scores: number[];
  auroc: number;
  ap: number;
  f1max: number;
}
interface ComponentCase {
  name: string;
  height: number;
  width: number;
  mask: number[];
  labels8: number[];
  count8: number;
  labels4: number[];
  count4: number;
}
interface ClassCase {
  name: string;
  n: number;
  height: number;
  width: number;
  scores: number[];
  maps: number[];
  masks: number[];
  num_aupro_thresholds: number;
  exact: Omit<ClassMetrics, "mad">;
  adeval: { auroc: number; ap: number; aupro: number };
}
interface Fixture {
  aranges: { min: number; max: number; max_step: number; values: number[] }[];
  curves: CurveCase[];
  components: ComponentCase[];
  classes: ClassCase[];
}

const fixture: Fixture = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/metrics.json", import.meta.url)),
);

function close(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: got ${actual}, expected ${expected} (tol ${tol})`);
}

function classInput(c: ClassCase) {
  return {
    scores: Float32Array.from(c.scores),
    maps: Float32Array.from(c.maps),
    masks: Uint8Array.from(c.masks),
    n: c.n,
    height: c.height,
    width: c.width,
  };
}

Deno.test("curves: AUROC, AP and F1-max match sklearn within 1e-6 (ties, tiny and distinct sets)", () => {
  for (const c of fixture.curves) {
    const labels = Uint8Array.from(c.labels);
    for (const scores of [Float32Array.from(c.scores), Float64Array.from(c.scores)]) {
      const m = binaryCurveMetrics(labels, scores);
      close(m.auroc, c.auroc, 1e-6, `${c.name} auroc`);
      close(m.ap, c.ap, 1e-6, `${c.name} ap`);
      close(m.f1max, c.f1max, 1e-6, `${c.name} f1max`);
      close(rocAuc(labels, scores), c.auroc, 1e-6, `${c.name} rocAuc`);
      close(averagePrecision(labels, scores), c.ap, 1e-6, `${c.name} averagePrecision`);
      close(f1Max(labels, scores), c.f1max, 1e-6, `${c.name} f1Max`);
    }
  }
});

Deno.test("curves: a single class gives NaN (sklearn's roc_auc_score raises); non-finite scores throw", () => {
  const m = binaryCurveMetrics(new Uint8Array([0, 0, 0]), new Float32Array([0.1, 0.2, 0.3]));
  assert.ok(Number.isNaN(m.auroc) && Number.isNaN(m.ap) && Number.isNaN(m.f1max));
  assert.ok(Number.isNaN(rocAuc(new Uint8Array([1, 1]), new Float32Array([0.1, 0.2]))));
  assert.throws(() => rocAuc(new Uint8Array([0, 1]), new Float32Array([0.1, NaN])), /scores\[1\] is NaN/);
  assert.throws(
    () => binaryCurveMetrics(new Uint8Array(3), new Float32Array(4)),
    /binaryCurveMetrics: labels has 3 elements but scores has 4/,
  );
});

Deno.test("radixSortFloat32 sorts like the native sort (negatives, ±0, ties, large magnitudes)", () => {
  let seed = 12345;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
  const a = new Float32Array(50_000);
  for (let i = 0; i < a.length; i++) {
    const u = next();
    a[i] = u < 0.1
      ? Math.round(next() * 4) / 4
      : u < 0.15
      ? (next() < 0.5 ? -0 : 0)
      : (next() - 0.5) * 10 ** (next() * 60 - 30);
  }
  const want = a.slice().sort();
  const got = a.slice();
  radixSortFloat32(got);
  for (let i = 0; i < a.length; i++) assert.ok(got[i] === want[i], `index ${i}: ${got[i]} vs ${want[i]}`);
  // and the curves agree with the native-sort path (float64 input) on data of that size
  const labels = Uint8Array.from(a, (v, i) => (v > 0.3 || i % 7 === 0 ? 1 : 0));
  const m32 = binaryCurveMetrics(labels, a), m64 = binaryCurveMetrics(labels, Float64Array.from(a));
  close(m32.auroc, m64.auroc, 1e-12, "auroc f32 vs f64");
  close(m32.ap, m64.ap, 1e-12, "ap f32 vs f64");
  close(m32.f1max, m64.f1max, 1e-12, "f1max f32 vs f64");
});

Deno.test("components: 8- and 4-connected labels give skimage's partition (and its numbering)", () => {
  for (const c of fixture.components) {
    for (const [conn, want, count] of [[8, c.labels8, c.count8], [4, c.labels4, c.count4]] as const) {
      const got = labelComponents(Uint8Array.from(c.mask), c.height, c.width, conn);
      assert.equal(got.count, count, `${c.name} count (${conn}-connected)`);
      // same partition: a bijection between our labels and skimage's
      const fwd = new Map<number, number>(), back = new Map<number, number>();
      for (let i = 0; i < want.length; i++) {
        const a = got.labels[i], b = want[i];
        assert.equal(a === 0, b === 0, `${c.name} pixel ${i} foreground`);
        if (fwd.has(a)) assert.equal(fwd.get(a), b, `${c.name} pixel ${i} (${conn}-connected)`);
        if (back.has(b)) assert.equal(back.get(b), a, `${c.name} pixel ${i} (${conn}-connected)`);
        fwd.set(a, b);
        back.set(b, a);
      }
      // both number regions in raster order of their first pixel
      assert.deepEqual(Array.from(got.labels), want, `${c.name} labels (${conn}-connected)`);
      for (let l = 1; l <= got.count; l++) {
        assert.equal(got.areas[l], want.filter((v) => v === l).length, `${c.name} area of ${l}`);
      }
      assert.equal(got.areas[0], want.filter((v) => v === 0).length, `${c.name} background area`);
    }
  }
  const diag = fixture.components.find((c) => c.name === "diagonal_touching")!;
  assert.ok(diag.count8 < diag.count4, "the diagonal case must tell 8- from 4-connectivity");
});

Deno.test("arangeThresholds reproduces numpy's arange bit for bit, including a 101-long one", () => {
  for (const a of fixture.aranges) {
    assert.deepEqual(Array.from(arangeThresholds(a.min, a.max, a.max_step)), a.values, `arange(${a.min}, ${a.max})`);
  }
  assert.ok(fixture.aranges.some((a) => a.values.length === 101));
});

Deno.test("exact path: AU-PRO (ADER cal_pro_score, 100 steps) and the sklearn pixel metrics", () => {
  for (const c of fixture.classes) {
    const inp = classInput(c);
    let mn = Infinity, mx = -Infinity;
    for (const v of inp.maps) {
      mn = Math.min(mn, v);
      mx = Math.max(mx, v);
    }
    assert.equal(arangeThresholds(mn, mx, 100).length, c.num_aupro_thresholds, `${c.name} threshold count`);
    close(auproExact(inp.maps, inp.masks, c.n, c.height, c.width), c.exact.pixel_aupro, 1e-6, `${c.name} aupro`);
    close(pixelF1Max(inp.maps, inp.masks), c.exact.pixel_f1max, 1e-6, `${c.name} P-F1max`);
    const m = classMetrics(inp, "exact");
    for (const k of METRIC_KEYS) close(m[k], c.exact[k], 1e-6, `${c.name} exact ${k}`);
    const mad = METRIC_KEYS.reduce((s, k) => s + c.exact[k], 0) / 7;
    close(m.mad, mad, 1e-6, `${c.name} exact mad`);
  }
});

Deno.test("adeval path: histogram AUROC / AP / AU-PRO match the numpy statement of ADEval within 1e-6", () => {
  for (const c of fixture.classes) {
    const inp = classInput(c);
    const px = adevalPixelMetrics(inp.maps, inp.masks, c.n, c.height, c.width);
    close(px.auroc, c.adeval.auroc, 1e-6, `${c.name} adeval auroc`);
    close(px.ap, c.adeval.ap, 1e-6, `${c.name} adeval ap`);
    close(px.aupro, c.adeval.aupro, 1e-6, `${c.name} adeval aupro`);
    const m = classMetrics(inp, "adeval");
    close(m.pixel_auroc, c.adeval.auroc, 1e-6, `${c.name} classMetrics adeval auroc`);
    close(m.pixel_aupro, c.adeval.aupro, 1e-6, `${c.name} classMetrics adeval aupro`);
    // image metrics and P-F1max do not depend on the path
    for (const k of ["image_auroc", "image_ap", "image_f1max", "pixel_f1max"] as const) {
      close(m[k], c.exact[k], 1e-6, `${c.name} adeval ${k}`);
    }
  }
});

Deno.test("a class without defects gives NaN where sklearn/ADER raise or divide by zero, and does not throw", () => {
  const n = 3, height = 4, width = 5;
  const maps = Float32Array.from({ length: n * height * width }, (_, i) => (i * 37) % 11);
  const input = { scores: new Float32Array([1, 2, 3]), maps, masks: new Uint8Array(maps.length), n, height, width };
  for (const path of ["exact", "adeval"] as const) {
    const m = classMetrics(input, path);
    for (
      const k of ["image_auroc", "image_ap", "image_f1max", "pixel_auroc", "pixel_ap", "pixel_aupro", "mad"] as const
    ) {
      assert.ok(Number.isNaN(m[k]), `${path} ${k} should be NaN, got ${m[k]}`);
    }
    // ADER's eps terms make P-F1max 0 rather than NaN
    assert.equal(m.pixel_f1max, 0);
  }
});

Deno.test("meanMetrics averages per metric and takes mAD of the averages", () => {
  const per: Record<string, ClassMetrics> = {};
  for (const c of fixture.classes) per[c.name] = classMetrics(classInput(c), "exact");
  const mean = meanMetrics(per);
  const names = Object.keys(per);
  for (const k of METRIC_KEYS) {
    close(mean[k], names.reduce((s, n) => s + per[n][k], 0) / names.length, 1e-12, `mean ${k}`);
  }
  close(mean.mad, names.reduce((s, n) => s + per[n].mad, 0) / names.length, 1e-12, "mean mad");
  assert.throws(() => meanMetrics({}), /meanMetrics: perClass is empty/);
});

Deno.test("classMetrics rejects mismatched sizes, bad masks and unknown paths with named errors", () => {
  const base = classInput(fixture.classes[0]);
  assert.throws(
    () => classMetrics({ ...base, scores: new Float32Array(base.n + 1) }, "exact"),
    new RegExp(`classMetrics: scores has ${base.n + 1} elements, expected n = ${base.n}`),
  );
  assert.throws(
    () => classMetrics({ ...base, maps: new Float32Array(10) }, "adeval"),
    /classMetrics: maps has 10 elements, expected n\*height\*width = 6\*32\*32 = 6144/,
  );
  assert.throws(
    () => classMetrics({ ...base, masks: new Uint8Array(7) }, "exact"),
    /classMetrics: masks has 7 elements, expected n\*height\*width = 6\*32\*32 = 6144/,
  );
  const bad = base.masks.slice();
  bad[5] = 255;
  assert.throws(() => classMetrics({ ...base, masks: bad }, "exact"), /classMetrics: masks\[5\] is 255/);
  assert.throws(() => classMetrics({ ...base, n: 0 }, "exact"), /classMetrics: n must be a positive integer/);
  assert.throws(
    () => classMetrics(base, "histogram" as MetricPath),
    /classMetrics: path must be "exact" or "adeval"/,
  );
  assert.throws(() => labelComponents(new Uint8Array(5), 2, 3), /labelComponents: mask has 5 elements/);
});
