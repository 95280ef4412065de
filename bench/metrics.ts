/**
 * Timing of the per-class metrics (anomaly/metrics, docs/paper.md §4) at MVTec-like scale: 3 classes x 100
 * images x 256x256, seeded random maps with rectangular and elliptic defects, on both metric paths.
 * `deno run -A bench/metrics.ts [--json]`; with `--json` the last line is
 * `{"metrics_3cls_100img_256px_s_exact": s, "metrics_3cls_100img_256px_s_adeval": s}` (seconds for all three
 * classes, median of `--repeats` runs, default 3). The budget is 10 s on CPU per path.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Generator } from "../autodiff/random.ts";
import { classMetrics, type ClassMetricsInput, type MetricPath } from "../anomaly/metrics/mod.ts";

const args = parseArgs({
  args: Deno.args.filter((a) => a !== "--"),
  options: { json: { type: "boolean", default: false }, repeats: { type: "string", default: "3" } },
});

/** One synthetic class: smooth-ish noise, defects in about half of the images raising the map under them. */
function synthClass(seed: number, n = 100, h = 256, w = 256): ClassMetricsInput {
  const gen = new Generator(seed);
  const r = () => gen.uniform();
  const hw = h * w;
  const maps = new Float32Array(n * hw);
  const masks = new Uint8Array(n * hw);
  const scores = new Float32Array(n);
  for (let img = 0; img < n; img++) {
    const off = img * hw;
    // low-frequency background: a few random cosines plus pixel noise
    const fy = 1 + r() * 4, fx = 1 + r() * 4, ph = r() * 6.28;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        maps[off + y * w + x] = 0.2 + 0.05 * Math.cos((fy * y) / h * 6.28 + ph) * Math.cos((fx * x) / w * 6.28) +
          0.03 * r();
      }
    }
    if (r() < 0.5) {
      const defects = 1 + Math.floor(r() * 3);
      for (let d = 0; d < defects; d++) {
        const cy = Math.floor(r() * h), cx = Math.floor(r() * w);
        const ry = 3 + Math.floor(r() * 20), rx = 3 + Math.floor(r() * 20);
        const ellipse = r() < 0.5, gain = 0.05 + 0.2 * r();
        for (let y = Math.max(0, cy - ry); y < Math.min(h, cy + ry); y++) {
          for (let x = Math.max(0, cx - rx); x < Math.min(w, cx + rx); x++) {
            const dy = (y - cy) / ry, dx = (x - cx) / rx;
            if (ellipse && dy * dy + dx * dx > 1) continue;
            masks[off + y * w + x] = 1;
            maps[off + y * w + x] += gain * (0.5 + 0.5 * r());
          }
        }
      }
    }
    let mx = -Infinity;
    for (let i = 0; i < hw; i++) mx = Math.max(mx, maps[off + i]);
    scores[img] = mx;
  }
  return { scores, maps, masks, n, height: h, width: w };
}

const log = (msg: string) => console.error(msg);
const classes = [1, 2, 3].map((s) => synthClass(s));
const repeats = Math.max(1, Number(args.values.repeats));
const result: Record<string, number> = {};
for (const path of ["exact", "adeval"] as MetricPath[]) {
  const times: number[] = [];
  for (let rep = 0; rep < repeats; rep++) {
    const t0 = performance.now();
    const mads = classes.map((c) => classMetrics(c, path).mad);
    times.push((performance.now() - t0) / 1000);
    if (rep === 0) log(`${path}: mAD per class ${mads.map((m) => m.toFixed(4)).join(", ")}`);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  result[`metrics_3cls_100img_256px_s_${path}`] = Number(median.toFixed(3));
  log(`${path}: ${median.toFixed(3)} s for 3 classes x 100 images x 256x256 (runs: ${times.map((t) => t.toFixed(3))})`);
}
if (args.values.json) console.log(JSON.stringify(result));
