/**
 * The CPU backend's WebAssembly SIMD kernels against its scalar kernels (the float64-state reference that the
 * PyTorch goldens and official fixtures check), and the committed binary against its AssemblyScript source.
 * - selective scan, forward and every gradient, over group sizes that leave partial lane blocks, lengths
 *   across chunk boundaries, and every optional input;
 * - the unary ops with a WebAssembly kernel, over ordinary values and the special ones (±0, ±∞, NaN, the
 *   softplus threshold, exp's overflow and underflow).
 */
import assert from "node:assert/strict";
import { conv2d, gelu, randn, tensor, tidy } from "../mod.ts";

import { cpuBackend } from "../autodiff/backends/cpu/backend.ts";
import type { UnaryOp } from "../autodiff/backend.ts";
import { UNARY } from "../autodiff/op_table.ts";
import { Generator } from "../autodiff/random.ts";
import { cpuWasm, setCpuWasmEnabled, wasmKernelRuns } from "../autodiff/backends/cpu/wasm/module.ts";
import { cpuThreads, setCpuThreads } from "../autodiff/backends/cpu/wasm/threads.ts";
import { selectiveScan } from "../nn/ssm/selective_scan.ts";
import { assertCloseToMax } from "./util.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

/** Runs `fn` with the WebAssembly kernels off (scalar reference) and on; returns both results. */
function both<T>(fn: () => T): { ref: T; wasm: T } {
  setCpuWasmEnabled(false);
  let ref: T;
  try {
    ref = fn();
  } finally {
    setCpuWasmEnabled(true);
  }
  return { ref, wasm: fn() };
}

Deno.test("CPU WebAssembly kernels are available", () => {
  assert.ok(cpuWasm(), "WebAssembly SIMD kernels failed to instantiate");
});

const scanCases = [
  // channels, groups (perGroup = channels / groups), length, dState, options
  { d: 8, g: 2, l: 37, n: 4, z: true, D: true, bias: true, softplus: true },
  { d: 10, g: 2, l: 130, n: 3, z: false, D: true, bias: false, softplus: false }, // 5 per group: a 1-lane block
  { d: 6, g: 1, l: 65, n: 16, z: true, D: false, bias: true, softplus: true }, // a 2-lane block
  { d: 21, g: 3, l: 64, n: 5, z: true, D: true, bias: true, softplus: true }, // 7 per group: a 3-lane block
  { d: 16, g: 4, l: 1, n: 2, z: false, D: false, bias: false, softplus: true },
  { d: 12, g: 1, l: 200, n: 8, z: true, D: true, bias: true, softplus: true },
  // decays down to e^(δ·A) with δ·A far below the kernels' exp range (-87): the clamped path
  { d: 9, g: 3, l: 70, n: 7, z: true, D: true, bias: true, softplus: true, aScale: 60 },
];

for (const c of scanCases) {
  Deno.test(`selective scan: WebAssembly = scalar, D=${c.d} G=${c.g} L=${c.l} N=${c.n}`, opts, async () => {
    const b = 2;
    const make = () =>
      tidy(() => ({
        u: randn([b, c.d, c.l]),
        delta: randn([b, c.d, c.l]).mul(0.5),
        A: randn([c.d, c.n]).mul(0.5).exp().neg().mul(c.aScale ?? 1),
        B: randn([b, c.g, c.n, c.l]),
        C: randn([b, c.g, c.n, c.l]),
        D: randn([c.d]),
        z: randn([b, c.d, c.l]),
        bias: randn([c.d]).mul(0.5),
        R: randn([b, c.d, c.l]),
      }));
    const x = make();
    const leaves = [x.u, x.delta, x.A, x.B, x.C, x.D, x.z, x.bias];
    leaves.forEach((t) => t.requiresGrad_(true));
    const run = () => {
      const res = selectiveScan(x.u, x.delta, x.A, x.B, x.C, {
        D: c.D ? x.D : null,
        z: c.z ? x.z : null,
        deltaBias: c.bias ? x.bias : null,
        deltaSoftplus: c.softplus,
        returnLastState: true,
      });
      res.out.backward(x.R);
      const grads = leaves.map((t) => t.grad);
      leaves.forEach((t) => (t.grad = null));
      return { out: res.out, last: res.lastState, grads };
    };
    const { ref, wasm } = both(run);
    assertCloseToMax(await wasm.out.data(), await ref.out.data(), "out");
    assertCloseToMax(await wasm.last.data(), await ref.last.data(), "last state");
    const names = ["u", "delta", "A", "B", "C", "D", "z", "deltaBias"];
    let checked = 0;
    for (let i = 0; i < names.length; i++) {
      const r = ref.grads[i], w = wasm.grads[i];
      assert.equal(r === null, w === null, `${names[i]}: gradient present in one path only`);
      if (r && w) {
        assertCloseToMax(await w.data(), await r.data(), `d${names[i]}`);
        checked++;
      }
    }
    assert.ok(checked >= 5, `only ${checked} gradients compared`);
  });
}

const dwCases = [
  // channels, height, width, kernel, padding, dilation, stride
  { c: 3, h: 9, w: 13, k: 3, pad: 1, dil: 1, stride: 1 },
  { c: 4, h: 7, w: 5, k: 3, pad: 2, dil: 2, stride: 1 },
  { c: 2, h: 6, w: 21, k: 7, pad: 3, dil: 1, stride: 1 }, // taps wider than some valid ranges
  { c: 5, h: 4, w: 3, k: 3, pad: 0, dil: 1, stride: 1 }, // output width 1
  { c: 2, h: 8, w: 8, k: 3, pad: 1, dil: 1, stride: 2 }, // stride 2: the scalar loops run both times
  // 3×3 "same" with the width a multiple of 4: the register path (dw3x3), with rows above and below, one row
  // only, and a single block per row
  { c: 3, h: 9, w: 16, k: 3, pad: 1, dil: 1, stride: 1 },
  { c: 2, h: 1, w: 8, k: 3, pad: 1, dil: 1, stride: 1 },
  { c: 4, h: 2, w: 4, k: 3, pad: 1, dil: 1, stride: 1 },
];

for (const c of dwCases) {
  Deno.test(
    `depthwise conv: WebAssembly = scalar, ${c.c}×${c.h}×${c.w} k${c.k} pad ${c.pad} dil ${c.dil} stride ${c.stride}`,
    opts,
    async () => {
      const x = randn([2, c.c, c.h, c.w]).requiresGrad_(true), w = randn([c.c, 1, c.k, c.k]).requiresGrad_(true);
      const run = () => {
        const y = conv2d(x, w, null, { padding: c.pad, dilation: c.dil, stride: c.stride, groups: c.c });
        y.backward(randn(y.shape, { generator: new Generator(7) }));
        const grads = [x.grad!, w.grad!];
        x.grad = null;
        w.grad = null;
        return { y, grads };
      };
      const { ref, wasm } = both(run);
      assertCloseToMax(await wasm.y.data(), await ref.y.data(), "out", 1e-6);
      assertCloseToMax(await wasm.grads[0].data(), await ref.grads[0].data(), "dx", 1e-6);
      assertCloseToMax(await wasm.grads[1].data(), await ref.grads[1].data(), "dw", 1e-6);
    },
  );
}

const SPECIAL = [
  0,
  -0,
  1e-30,
  -1e-30,
  1e-7,
  -1e-7,
  0.5,
  -0.5,
  1,
  -1,
  5,
  -5,
  19.99,
  20,
  20.01,
  -20,
  30,
  -30,
  87,
  -87,
  88.5,
  -88.5,
  89,
  -89,
  100,
  -100,
  -104,
  -110,
  Infinity,
  -Infinity,
  NaN,
];

for (const op of ["exp", "sigmoid", "silu", "gelu", "softplus", "siluGrad", "geluGrad"] as UnaryOp[]) {
  // The scalar reference evaluates in float64, the kernels in float32, where cancellations (silu' and gelu'
  // near their minima, 1 + x(1 − s)) and the rounding of e^a's argument cost a few ulps of the terms, not of
  // the result. Tolerance: torch.testing's float32 rtol (1.3e-6) with a tenth of its atol (1e-6).
  Deno.test(`unary ${op}: WebAssembly = scalar within rtol 1.3e-6, atol 1e-6`, opts, async () => {
    const values = Float32Array.from([...SPECIAL, ...(await randn([4093]).mul(6).data())]);
    const x = tensor(values);
    const { ref, wasm } = both(() => cpuBackend.unary(op, x.buffer));
    const r = (ref as unknown as { data: Float32Array }).data, w = (wasm as unknown as { data: Float32Array }).data;
    for (let i = 0; i < r.length; i++) {
      const ok = Number.isNaN(r[i])
        ? Number.isNaN(w[i])
        : r[i] === w[i] || Math.abs(w[i] - r[i]) <= 1.3e-6 * Math.abs(r[i]) + 1e-6;
      assert.ok(ok, `${op}(${values[i]}): WebAssembly ${w[i]}, scalar ${r[i]} (js ${UNARY[op].js(values[i])})`);
    }
    cpuBackend.free(ref);
    cpuBackend.free(wasm);
    x.dispose();
  });
}

Deno.test("unary relu: WebAssembly (in the heap) = the bit loop, bit for bit (NaN and −0 give +0)", opts, async () => {
  const values = Float32Array.from([...SPECIAL, -0, ...(await randn([4093]).data())]);
  const x = tensor(values);
  const runs = wasmKernelRuns("unary");
  const { ref, wasm } = both(() => cpuBackend.unary("relu", x.buffer));
  assert.ok(wasmKernelRuns("unary") > runs, "the WebAssembly kernel did not run");
  const r = (ref as unknown as { data: Float32Array }).data, w = (wasm as unknown as { data: Float32Array }).data;
  r.forEach((v, i) => assert.ok(Object.is(w[i], v), `relu(${values[i]}): WebAssembly ${w[i]}, loop ${v}`));
  cpuBackend.free(ref);
  cpuBackend.free(wasm);
  x.dispose();
});

// x (outer, 2, span) with spans that end in a partial SIMD vector and cross the 65,536-element block
for (const [outer, span] of [[3, 1029], [2, 70001]]) {
  Deno.test(
    `geluCrossGate (outer ${outer}, span ${span}): WebAssembly = scalar, forward and gradient`,
    opts,
    async () => {
      const x = randn([outer, 2, span]).mul(3), g = randn([outer, span]);
      const fwd = both(() => cpuBackend.geluCrossGate!(x.buffer, outer, span));
      const bwd = both(() => cpuBackend.geluCrossGateBackward!(g.buffer, x.buffer, outer, span));
      for (const [what, { ref, wasm }] of [["forward", fwd], ["gradient", bwd]] as const) {
        const r = await cpuBackend.read(ref), w = await cpuBackend.read(wasm);
        assert.equal(w.length, r.length);
        for (let i = 0; i < r.length; i++) {
          // sums of two products of a few-ulp GELU: torch.testing's float32 rtol, atol 1e-5
          assert.ok(Math.abs(w[i] - r[i]) <= 1.3e-6 * Math.abs(r[i]) + 1e-5, `${what}[${i}]: ${w[i]} vs ${r[i]}`);
        }
        cpuBackend.free(ref);
        cpuBackend.free(wasm);
      }
      x.dispose();
      g.dispose();
    },
  );
}

Deno.test("kernel worker threads start and change no bit of any result", opts, async () => {
  const cores = navigator.hardwareConcurrency ?? 1;
  if (cores < 2) throw new Error(`this test needs 2 or more cores, the machine reports ${cores}`);
  cpuWasm();
  for (let t = 0; t < 100 && cpuThreads() < 2; t++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(cpuThreads() >= 2, `no kernel worker became ready in 5 s (threads: ${cpuThreads()})`);
  const b = 5, d = 12, l = 150, n = 8, g = 3;
  const x = tidy(() => ({
    u: randn([b, d, l]),
    delta: randn([b, d, l]).mul(0.5),
    A: randn([d, n]).mul(0.5).exp().neg(),
    B: randn([b, g, n, l]),
    C: randn([b, g, n, l]),
    z: randn([b, d, l]),
    D: randn([d]),
    bias: randn([d]),
    R: randn([b, d, l]),
    img: randn([b, 6, 20, 33]),
    w: randn([6, 1, 3, 3]),
    big: randn([3 * 65536 + 5]), // several unary blocks
  }));
  const leaves = [x.u, x.delta, x.A, x.B, x.C, x.z, x.D, x.bias, x.img, x.w];
  leaves.forEach((t) => t.requiresGrad_(true));
  const run = async (threads: number) => {
    setCpuThreads(threads);
    try {
      const y = selectiveScan(x.u, x.delta, x.A, x.B, x.C, { D: x.D, z: x.z, deltaBias: x.bias, deltaSoftplus: true });
      y.backward(x.R);
      const c = conv2d(x.img, x.w, null, { padding: 1, groups: 6 });
      c.backward(gelu(x.img.mul(0.5)));
      const outs = [y, c, gelu(x.big), ...leaves.map((t) => t.grad!)];
      leaves.forEach((t) => (t.grad = null));
      return await Promise.all(outs.map((t) => t.data()));
    } finally {
      setCpuThreads(navigator.hardwareConcurrency ?? 1);
    }
  };
  const one = await run(1), many = await run(cpuThreads());
  one.forEach((a, i) => assert.deepEqual(many[i], a, `output ${i} differs between 1 and ${cpuThreads()} threads`));
});

Deno.test("the committed WebAssembly binary is the build of its AssemblyScript source", opts, async () => {
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../tools/build_wasm.ts", import.meta.url).pathname, "--check"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(res.stderr);
  assert.equal(res.code, 0, `tools/build_wasm.ts --check failed:\n${err}`);
});
