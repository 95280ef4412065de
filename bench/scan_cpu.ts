/**
 * CPU time of the CPU backend's WebAssembly selective scan on one thread, at the shapes the models run it
 * (N = 16, 4 groups, δ softplus'd with a bias, the D skip, with and without the z gate):
 *
 *   OPENBLAS_NUM_THREADS=1 deno run -A bench/scan_cpu.ts [--against ../other-checkout] [--rounds 3] [--reps 2]
 *     [--shapes 0,1,2] [--no-backward]
 *
 * Wall time is useless on a shared machine, so each figure is the process CPU time of `reps` calls, the least
 * over `rounds` rounds. With `--against`, the kernels of another checkout of this repository (its
 * autodiff/backends/cpu) run in the same process, call for call alternating with this one's, and the largest
 * differences between the two checkouts' results are printed too. Rates are state updates (batch · channels ·
 * length · dState) per second of CPU time.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import type { BackendBuffer, SelectiveScanInputs, SelectiveScanParams } from "../autodiff/backend.ts";

const args = parseArgs({
  args: Deno.args.filter((a) => a !== "--"),
  options: {
    against: { type: "string" },
    rounds: { type: "string", default: "3" },
    reps: { type: "string", default: "2" },
    shapes: { type: "string", default: "0,1,2" },
    "no-backward": { type: "boolean", default: false },
  },
});

type F32 = { data: Float32Array };
interface Kernels {
  name: string;
  forward(x: SelectiveScanInputs, p: SelectiveScanParams): { out: F32; chunkStates: F32 };
  backward(x: SelectiveScanInputs, cs: F32, g: F32, p: SelectiveScanParams): Record<string, F32 | null>;
}

const alloc = (n: number): BackendBuffer => ({ data: new Float32Array(n) }) as unknown as BackendBuffer;

async function kernels(root: string, name: string): Promise<Kernels> {
  const ss = await import(`${root}/autodiff/backends/cpu/selective_scan_wasm.ts`);
  const threads = await import(`${root}/autodiff/backends/cpu/wasm/threads.ts`);
  threads.setCpuThreads(1);
  return {
    name,
    forward: (x, p) => ss.selectiveScanForwardWasm(x, p, false, alloc),
    backward: (x, cs, g, p) => ss.selectiveScanBackwardWasm(x, cs, g, p, alloc),
  };
}

const here = new URL("..", import.meta.url).href.replace(/\/$/, "");
const variants = [await kernels(here, "this checkout")];
if (args.values.against) {
  const other = new URL(args.values.against, `file://${Deno.cwd()}/`).href.replace(/\/$/, "");
  variants.push(await kernels(other, args.values.against));
}

/** Deterministic pseudo-normal values (sum of 4 uniforms), scaled. */
function values(n: number, scale: number, seed: number): F32 {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    let t = 0;
    for (let k = 0; k < 4; k++) {
      s = (s * 1664525 + 1013904223) >>> 0;
      t += s / 4294967296;
    }
    a[i] = (t - 2) * 1.7 * scale;
  }
  return { data: a };
}

const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const SHAPES = [
  { b: 8, d: 256, l: 1024 },
  { b: 8, d: 512, l: 1024 },
  { b: 2, d: 512, l: 4096 },
];
const rounds = Number(args.values.rounds), reps = Number(args.values.reps);
const backward = !args.values["no-backward"];

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const si of args.values.shapes.split(",").map(Number)) {
  const { b, d, l } = SHAPES[si], n = 16, g = 4;
  for (const withZ of [false, true]) {
    const A = values(d * n, 0.5, 3);
    A.data.forEach((v, i) => (A.data[i] = -Math.exp(v)));
    const x = {
      u: values(b * d * l, 1, 1),
      delta: values(b * d * l, 0.5, 2),
      A,
      B: values(b * g * n * l, 1, 4),
      C: values(b * g * n * l, 1, 5),
      D: values(d, 1, 6),
      z: withZ ? values(b * d * l, 1, 7) : null,
      deltaBias: values(d, 0.5, 8),
    } as unknown as SelectiveScanInputs;
    const p: SelectiveScanParams = {
      batch: b,
      channels: d,
      length: l,
      dState: n,
      groups: g,
      chunk: 64,
      hasD: true,
      hasZ: withZ,
      hasDeltaBias: true,
      deltaSoftplus: true,
    };
    const gout = values(b * d * l, 1, 9);
    const updates = b * d * l * n;
    const best = variants.map(() => ({ fwd: Infinity, bwd: Infinity }));
    const results: Record<string, Float32Array>[] = [];
    for (let round = 0; round < rounds; round++) {
      variants.forEach((k, vi) => {
        let r = k.forward(x, p); // warm-up (and V8's optimising tier)
        let t0 = cpuSeconds();
        for (let i = 0; i < reps; i++) r = k.forward(x, p);
        best[vi].fwd = Math.min(best[vi].fwd, (cpuSeconds() - t0) / reps);
        const kept: Record<string, Float32Array> = { out: r.out.data, chunkStates: r.chunkStates.data };
        if (backward) {
          const grads = k.backward(x, r.chunkStates, gout, p);
          t0 = cpuSeconds();
          for (let i = 0; i < reps; i++) k.backward(x, r.chunkStates, gout, p);
          best[vi].bwd = Math.min(best[vi].bwd, (cpuSeconds() - t0) / reps);
          for (const [name, v] of Object.entries(grads)) if (v) kept[name] = v.data;
        }
        if (round === 0) results.push(kept);
      });
    }
    console.log(`B=${b} D=${d} L=${l} N=${n} G=${g} z=${withZ}`);
    variants.forEach((k, vi) => {
      const { fwd, bwd } = best[vi];
      const rate = (s: number) => `${(updates / s / 1e6).toFixed(0)} M/s`;
      console.log(
        `  ${k.name}: forward ${(fwd * 1e3).toFixed(1)} ms (${rate(fwd)})` +
          (backward ? `, backward ${(bwd * 1e3).toFixed(1)} ms, forward+backward ${rate(fwd + bwd)}` : ""),
      );
    });
    if (results.length === 2) {
      const diffs = Object.keys(results[0]).map((name) =>
        `${name} ${maxDiff(results[0][name], results[1][name]).toExponential(1)}`
      );
      console.log(`  max |difference|: ${diffs.join(", ")}`);
    }
  }
}
