/**
 * What a selective scan does to a signal, by its impulse and step responses. Per channel the scan is the linear
 * recurrence `h_t = exp(Δ_t·A)·h_{t−1} + Δ_t·B_t·u_t`, `y_t = C_t·h_t` (mamba_ssm's `selective_scan_ref`), run here
 * with the library's fused `selectiveScan` on the CPU. Four panels:
 *
 * 1. impulse responses for three A: A sets how fast the state forgets (time constant 1/(Δ·|A|) steps);
 * 2. step responses for three Δ: Δ is the step size, so a larger Δ reacts faster and remembers less;
 * 3. two states (N = 2, a fast and a slow A) read out with different C: C mixes decays into new shapes;
 * 4. an input-dependent Δ (Mamba's selectivity): Δ = softplus(gate) is tiny on most steps, so the state is held,
 *    and large on a few "write" steps, which forget the old state and store the new input. A fixed Δ can only
 *    smooth.
 *
 * Run: `deno run -A examples/ssm_response.ts [--out out/examples/]` → `ssm_response.png`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { selectiveScan, tensor } from "../mod.ts";
import { renderSvg } from "../anomaly/data/image.ts";

const { values: args } = parseArgs({ args: Deno.args, options: { out: { type: "string", default: "out/examples/" } } });
const outDir = args.out!;

/** Scan inputs per channel; one batch element, `channels` rows of length `L`. */
interface ScanCase {
  u: number[][];
  delta: number[][];
  A: number[][];
  B: number[][];
  C: number[][];
  deltaSoftplus?: boolean;
}

/** Runs the library's selective scan on plain arrays and returns y per channel. */
async function scan(c: ScanCase): Promise<number[][]> {
  const channels = c.u.length, L = c.u[0].length;
  const out = selectiveScan(
    tensor([c.u]),
    tensor([c.delta]),
    tensor(c.A),
    tensor(c.B),
    tensor(c.C),
    { deltaSoftplus: c.deltaSoftplus ?? false },
  );
  const flat = Array.from(await out.data());
  out.dispose();
  return Array.from({ length: channels }, (_, d) => flat.slice(d * L, (d + 1) * L));
}

const L = 60;
const impulse = Array.from({ length: L }, (_, t) => (t === 5 ? 1 : 0));
const step = Array.from({ length: L }, (_, t) => (t >= 5 ? 1 : 0));
const fill = (v: number, n = L) => new Array(n).fill(v);

// 1. A: three channels, N = 1, Δ = 0.1
const aValues = [-0.2, -1, -5];
const byA = await scan({
  u: aValues.map(() => impulse),
  delta: aValues.map(() => fill(0.1)),
  A: aValues.map((a) => [a]),
  B: aValues.map(() => [1]),
  C: aValues.map(() => [1]),
});

// 2. Δ: three channels, N = 1, A = −1
const dValues = [0.02, 0.1, 0.5];
const byDelta = await scan({
  u: dValues.map(() => step),
  delta: dValues.map((d) => fill(d)),
  A: dValues.map(() => [-1]),
  B: dValues.map(() => [1]),
  C: dValues.map(() => [1]),
});

// 3. B/C: N = 2 states, A = (−2, −0.2) (fast, slow), B = (1, 1); C picks or mixes them
const cValues = [[1, 0], [0, 1], [-1, 1]];
const byC = await scan({
  u: cValues.map(() => impulse),
  delta: cValues.map(() => fill(0.1)),
  A: cValues.map(() => [-2, -0.2]),
  B: cValues.map(() => [1, 1]),
  C: cValues,
});

// 4. gating: a wandering input; the gate opens (Δ ≈ 6) on four steps and is shut (Δ ≈ 0.0025) elsewhere
const L4 = 100, writes = [12, 37, 58, 81];
let s = 1;
const noise = () => (s = (s * 16807) % 2147483647) / 2147483647 - 0.5; // small seeded generator
const u4: number[] = [];
for (let t = 0, v = 0; t < L4; t++) u4.push(v = 0.85 * v + noise());
const gate = Array.from({ length: L4 }, (_, t) => (writes.includes(t) ? 6 : -6));
const softplus = (x: number) => Math.log1p(Math.exp(x));
const [selective, fixed] = await scan({
  u: [u4, u4],
  // channel 0: Δ = softplus(gate); channel 1: a fixed Δ = 0.15 (softplus⁻¹(0.15) ≈ −1.82)
  delta: [gate, fill(Math.log(Math.expm1(0.15)), L4)],
  A: [[-1], [-1]],
  B: [[1], [1]],
  // C = 1/Δ_write so that the held value reads back as the written input
  C: [[1 / softplus(6)], [1]],
  deltaSoftplus: true,
});

// ---- plotting: small SVG line plots -----------------------------------------------------------------------------

interface Series {
  label: string;
  color: string;
  y: number[];
  width?: number;
  dash?: string;
}

/** Round tick steps (1, 2, 5 × 10^k) covering [lo, hi] with about `n` ticks. */
function ticks(lo: number, hi: number, n = 5): number[] {
  const raw = (hi - lo) / n, mag = 10 ** Math.floor(Math.log10(raw));
  const stepSize = [1, 2, 5, 10].map((m) => m * mag).find((v) => v >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / stepSize) * stepSize; v <= hi + 1e-9; v += stepSize) out.push(Number(v.toPrecision(6)));
  return out;
}

function plot(
  x0: number,
  y0: number,
  w: number,
  h: number,
  title: string,
  subtitle: string,
  series: Series[],
  marks: number[] = [],
  headroom = 0.08,
): string {
  const n = series[0].y.length;
  const all = series.flatMap((s) => s.y);
  let lo = Math.min(0, ...all), hi = Math.max(...all);
  const range = hi - lo || 1;
  lo -= lo < 0 ? 0.08 * range : 0;
  hi += headroom * range; // room above the data, e.g. for the legend
  const px = (t: number) => x0 + (t / (n - 1)) * w;
  const py = (v: number) => y0 + h - ((v - lo) / (hi - lo)) * h;
  const parts = [
    `<text x="${x0}" y="${y0 - 30}" font-size="17" font-weight="bold">${title}</text>`,
    `<text x="${x0}" y="${y0 - 12}" font-size="12" fill="#555">${subtitle}</text>`,
  ];
  for (const t of marks) {
    parts.push(`<rect x="${px(t) - 3}" y="${y0}" width="6" height="${h}" fill="#ffe08a" opacity="0.7"/>`);
  }
  for (const v of ticks(lo, hi)) {
    parts.push(
      `<line x1="${x0}" x2="${x0 + w}" y1="${py(v)}" y2="${py(v)}" stroke="${v === 0 ? "#999" : "#eee"}"/>`,
      `<text x="${x0 - 6}" y="${py(v) + 4}" font-size="11" text-anchor="end">${v}</text>`,
    );
  }
  for (const t of ticks(0, n - 1, 6)) {
    parts.push(
      `<line x1="${px(t)}" x2="${px(t)}" y1="${y0 + h}" y2="${y0 + h + 4}" stroke="#333"/>`,
      `<text x="${px(t)}" y="${y0 + h + 17}" font-size="11" text-anchor="middle">${t}</text>`,
    );
  }
  parts.push(
    `<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="none" stroke="#333"/>`,
    `<text x="${x0 + w / 2}" y="${y0 + h + 34}" font-size="12" text-anchor="middle">step t</text>`,
  );
  for (const s of series) {
    const pts = s.y.map((v, t) => `${px(t).toFixed(1)},${py(v).toFixed(1)}`).join(" ");
    parts.push(
      `<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 2.2}"` +
        `${s.dash ? ` stroke-dasharray="${s.dash}"` : ""} stroke-linejoin="round"/>`,
    );
  }
  // legend, top right
  const boxW = 40 + Math.max(...series.map((s) => s.label.length)) * 6.8;
  const lx = x0 + w - boxW - 4, ly = y0 + 8;
  parts.push(
    `<rect x="${lx - 6}" y="${ly - 2}" width="${boxW}" height="${series.length * 18 + 6}" ` +
      `fill="white" fill-opacity="0.9" stroke="#ccc"/>`,
  );
  series.forEach((s, i) => {
    const yy = ly + 12 + i * 18;
    parts.push(
      `<line x1="${lx}" x2="${lx + 22}" y1="${yy - 4}" y2="${yy - 4}" stroke="${s.color}" stroke-width="3"` +
        `${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`,
      `<text x="${lx + 28}" y="${yy}" font-size="12">${s.label}</text>`,
    );
  });
  return parts.join("\n");
}

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c"];
const W = 560, H = 300, MX = 70, MY = 80, GX = 90, GY = 110;
const width = 2 * W + GX + 2 * MX, height = 2 * H + GY + MY + 70;
const body = [
  `<rect width="${width}" height="${height}" fill="white"/>`,
  `<text x="${width / 2}" y="34" font-size="22" font-weight="bold" text-anchor="middle">` +
  `Selective scan: h_t = exp(Δ_t·A)·h_(t−1) + Δ_t·B_t·u_t,  y_t = C_t·h_t</text>`,
  plot(
    MX,
    MY + 20,
    W,
    H,
    "1. Impulse response: A sets the memory",
    "u = impulse at t = 5, Δ = 0.1, B = C = 1, N = 1",
    byA.map((y, i) => ({ label: `A = ${aValues[i]}`, color: COLORS[i], y })),
  ),
  plot(
    MX + W + GX,
    MY + 20,
    W,
    H,
    "2. Step response: Δ is the step size",
    "u = step at t = 5, A = −1, B = C = 1: larger Δ reacts faster, forgets sooner",
    byDelta.map((y, i) => ({ label: `Δ = ${dValues[i]}`, color: COLORS[i], y })),
  ),
  plot(
    MX,
    MY + 20 + H + GY,
    W,
    H,
    "3. B and C mix states",
    "N = 2 states, A = (−2, −0.2), B = (1, 1), Δ = 0.1; impulse at t = 5",
    byC.map((y, i) => ({ label: `C = (${cValues[i].join(", ")})`, color: COLORS[i], y })),
  ),
  plot(
    MX + W + GX,
    MY + 20 + H + GY,
    W,
    H,
    "4. Input-dependent Δ gates memory",
    "Δ = softplus(gate): ≈ 6 on the shaded steps (overwrite), ≈ 0.0025 elsewhere (hold)",
    [
      { label: "input u", color: "#999", y: u4, width: 1.4 },
      { label: "y, selective Δ", color: COLORS[0], y: selective },
      { label: "y, fixed Δ = 0.15", color: COLORS[1], y: fixed, dash: "5,3" },
    ],
    writes,
    0.35,
  ),
];
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
  `font-family="DejaVu Sans, sans-serif">\n${body.join("\n")}\n</svg>`;

await Deno.mkdir(outDir, { recursive: true });
const path = join(outDir, "ssm_response.png");
await renderSvg(svg, path);
for (const t of writes) {
  console.log(`write at t=${t}: u=${u4[t].toFixed(3)}, held until the next write: y=${selective[t].toFixed(3)}`);
}
console.log(`wrote ${path}`);
