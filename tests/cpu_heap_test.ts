/**
 * The CPU backend's tensor heap (wasm/heap.ts) and the kernels that work on it in place (heap_kernels.ts,
 * elementwise_wasm.ts, depthwise_wasm.ts): the allocator's reuse and merging, results against host index
 * arithmetic and against the same ops with the heap off (ordinary arrays, the TypeScript loops), and a proof
 * that the in-place kernels really ran.
 */
import assert from "node:assert/strict";
import { assertPermuted } from "./util.ts";
import type { CpuBuffer } from "../autodiff/backends/cpu/backend.ts";
import {
  add,
  conv2d,
  div,
  dwt,
  flip,
  gelu,
  indexSelect,
  iwt,
  layerNorm,
  maxPool2d,
  mul,
  permute,
  selectiveScan,
  silu,
  sub,
  type Tensor,
  tensor,
  tidy,
} from "../mod.ts";
import { BlockAllocator, heapStats, onHeap, setCpuHeapEnabled } from "../autodiff/backends/cpu/wasm/heap.ts";
import {
  type CpuWasm,
  reserveRegions,
  sharedMemory,
  wasmKernelRuns,
  WasmLayout,
} from "../autodiff/backends/cpu/wasm/module.ts";

const hasHeap = typeof SharedArrayBuffer !== "undefined" && sharedMemory() !== null;

/** Values with a pattern no op leaves unchanged (no zeros, mixed signs). */
const values = (n: number, seed: number) =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 3 + (i % 7 === 0 ? 0.5 : -0.25));

const heapData = (t: Tensor) => (t.buffer as CpuBuffer).data;

/** Asserts a and b hold the same values (NaN equal to NaN), naming the first that differs (no 100k-line diffs). */
function assertSame(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  const i = a.findIndex((v, k) => !Object.is(v, b[k]));
  assert.equal(i, -1, `${what}: element ${i} is ${a[i]}, want ${b[i]}`);
}

/** Runs `f` with the heap on, then off; returns both results. */
async function bothWays(f: () => Tensor): Promise<[Float32Array, Float32Array]> {
  const on = (await tidy(f).data()) as Float32Array;
  setCpuHeapEnabled(false);
  try {
    return [on, (await tidy(f).data()) as Float32Array];
  } finally {
    setCpuHeapEnabled(true);
  }
}

/** Runs `run` with the heap off (ordinary arrays, the TypeScript loops); returns its result. */
async function heapOff<T>(run: () => Promise<T>): Promise<T> {
  setCpuHeapEnabled(false);
  try {
    return await run();
  } finally {
    setCpuHeapEnabled(true);
  }
}

Deno.test("cpu heap: the runtime has it (shared memory and WebAssembly SIMD)", () => {
  assert.ok(hasHeap, "no shared WebAssembly memory: the CPU backend would copy every kernel's operands");
});

Deno.test("cpu heap: large float32 tensors live in it, small ones and other dtypes do not", () => {
  const big = tensor(values(1 << 14, 1), { shape: [1 << 14] });
  const small = tensor(values(100, 1), { shape: [100] });
  const ints = tensor(new Int32Array(1 << 14), { shape: [1 << 14], dtype: "int32" });
  assert.ok(onHeap(heapData(big)));
  assert.ok(!onHeap(heapData(small)));
  assert.ok(!onHeap(heapData(ints)));
  for (const t of [big, small, ints]) t.dispose();
});

Deno.test("cpu heap: blocks are reused best-fit, neighbours merge, a free top lowers it", () => {
  const h = new BlockAllocator(1024, 1024 + 10_000);
  const a = h.take(1000), b = h.take(5000), c = h.take(1000);
  assert.deepEqual([a, b, c], [1024, 2024, 7024]);
  const small = h.take(200);
  h.release(b, 5000);
  h.release(small, 200); // the top block: the top comes down to c's end
  assert.equal(h.top, 8024);
  // 4000 fits in b's hole, below the top
  const d = h.take(4000);
  assert.equal(d, b);
  h.release(a, 1000);
  assert.deepEqual(h.free, [{ at: 1024, size: 1000 }, { at: 6024, size: 1000 }]);
  h.release(d, 4000); // merges with both neighbours
  assert.deepEqual(h.free, [{ at: 1024, size: 6000 }]);
  assert.equal(h.take(1000), 1024, "a hole that fits wins over the top");
  assert.equal(h.take(3000), 2024);
  assert.equal(h.take(2500), 8024, "nothing below fits: from the top");
  assert.equal(h.take(10_000), 0, "past the end: none");
  h.release(1024, 1000);
  h.release(2024, 3000);
  h.release(8024, 2500);
  assert.deepEqual(h.stats(), { usedBytes: 1000, topBytes: 7000 }, "only c is left");
  h.release(c, 1000);
  assert.deepEqual([h.top, h.free], [1024, []]);
});

Deno.test("cpu heap: memory stays flat over repeated steps of tidy'd ops", async () => {
  const x = tensor(values(1 << 16, 2), { shape: [64, 1024] });
  const step = () => tidy(() => silu(mul(add(x, x), permute(x.reshape([1024, 64]), [1, 0]))).sum());
  for (let i = 0; i < 3; i++) (await step().data(), undefined);
  const before = heapStats();
  for (let i = 0; i < 20; i++) {
    const s = step();
    await s.data();
    s.dispose();
  }
  assert.deepEqual(heapStats(), before);
  x.dispose();
});

const binaryCases: { name: string; a: number[]; b: number[] }[] = [
  { name: "same shape", a: [8, 64, 96], b: [8, 64, 96] },
  { name: "row broadcast (bias)", a: [8, 64, 96], b: [96] },
  { name: "column broadcast", a: [8, 64, 96], b: [8, 64, 1] },
  { name: "scalar on the left", a: [1], b: [8, 64, 96] },
  { name: "outer product", a: [160, 1], b: [1, 130] },
  { name: "five dims (the loop path)", a: [2, 3, 4, 5, 300], b: [2, 1, 4, 1, 300] },
];
const binaryOps = { add, sub, mul, div } as const;

for (const { name, a: sa, b: sb } of binaryCases) {
  Deno.test(`cpu heap: binary ops, ${name} = host arithmetic and the heap-off loops`, async () => {
    const na = sa.reduce((p, q) => p * q, 1), nb = sb.reduce((p, q) => p * q, 1);
    const va = values(na, 3), vb = values(nb, 4).map((v) => v + 4); // no division by zero
    const out = sa.length >= sb.length ? sa.map((d, k) => Math.max(d, sb[k - sa.length + sb.length] ?? 1)) : sb;
    const rank = out.length,
      pa = [...Array(rank - sa.length).fill(1), ...sa],
      pb = [...Array(rank - sb.length).fill(1), ...sb];
    const strides = (s: number[]) => s.map((d, k) => (d === 1 ? 0 : s.slice(k + 1).reduce((p, q) => p * q, 1)));
    const [ra, rb] = [strides(pa), strides(pb)];
    for (const [op, f] of Object.entries(binaryOps)) {
      const calls = wasmKernelRuns("binary");
      const [on, off] = await bothWays(() => f(tensor(va, { shape: sa }), tensor(vb, { shape: sb })));
      if (rank <= 4) assert.ok(wasmKernelRuns("binary") > calls, `${op}: the heap kernel did not run`);
      assertSame(on, off, `${op}: heap against loops`);
      const idx = new Array(rank).fill(0);
      for (let i = 0; i < on.length; i++) {
        let ia = 0, ib = 0;
        for (let k = 0; k < rank; k++) (ia += idx[k] * ra[k], ib += idx[k] * rb[k]);
        const x = va[ia], y = vb[ib];
        const want = Math.fround(op === "add" ? x + y : op === "sub" ? x - y : op === "mul" ? x * y : x / y);
        assert.equal(on[i], want, `${op} element ${i}`);
        for (let k = rank - 1; k >= 0 && ++idx[k] === out[k]; k--) idx[k] = 0;
      }
    }
  });
}

const copyCases: { shape: number[]; dims: number[] }[] = [
  { shape: [4, 96, 130], dims: [0, 2, 1] }, // tiled transpose, partial tiles
  { shape: [2, 64, 17, 40], dims: [0, 2, 3, 1] }, // channels-first → channels-last
  { shape: [2, 45, 34, 64], dims: [0, 3, 1, 2] }, // channels-last → channels-first
  { shape: [3, 40, 8, 50], dims: [2, 0, 3, 1] }, // rows of 50 strided on both sides
  { shape: [6, 4, 33, 100], dims: [1, 0, 2, 3] }, // contiguous rows (memory.copy)
  { shape: [2, 3, 5, 7, 11, 13], dims: [5, 3, 1, 0, 2, 4] }, // six dims (the loop path)
];

for (const { shape, dims } of copyCases) {
  Deno.test(`cpu heap: permute [${shape}] by [${dims}] = host index arithmetic, heap on and off`, async () => {
    const n = shape.reduce((a, b) => a * b, 1);
    const src = Float32Array.from({ length: n }, (_, i) => i);
    const calls = wasmKernelRuns("copy") + wasmKernelRuns("transpose");
    const [on, off] = await bothWays(() => permute(tensor(src, { shape }), dims));
    const ran = wasmKernelRuns("copy") + wasmKernelRuns("transpose") > calls;
    if (shape.length <= 4) assert.ok(ran, "the heap kernel did not run");
    assertPermuted(on, src, shape, dims);
    assertSame(on, off, "heap against loops");
  });
}

for (const { shape, axes } of [{ shape: [4, 40, 131], axes: [2] }, { shape: [4, 9, 37, 66], axes: [1, 3] }]) {
  Deno.test(`cpu heap: flip [${shape}] over [${axes}] (reversed rows in vectors) = host index arithmetic`, async () => {
    const n = shape.reduce((a, b) => a * b, 1);
    const src = Float32Array.from({ length: n }, (_, i) => i);
    const calls = wasmKernelRuns("copy");
    const [on, off] = await bothWays(() => flip(tensor(src, { shape }), axes));
    assert.ok(wasmKernelRuns("copy") > calls, "the heap kernel did not run");
    // the element at index i of the output is the source's at i with the flipped axes' coordinates mirrored
    const strides = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
    const want = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let j = 0;
      for (let d = 0; d < shape.length; d++) {
        const c = Math.floor(i / strides[d]) % shape[d];
        j += (axes.includes(d) ? shape[d] - 1 - c : c) * strides[d];
      }
      want[i] = src[j];
    }
    assertSame(on, want, "flip");
    assertSame(on, off, "heap against loops");
  });
}

Deno.test("cpu heap: in-place unary kernels equal the copying path, lengths not a multiple of 8", async () => {
  for (const n of [40_001, 1 << 16]) {
    const v = values(n, 5);
    for (const f of [silu, gelu]) {
      const [on, off] = await bothWays(() => f(tensor(v, { shape: [n] })));
      assertSame(on, off, `${f.name} at ${n}`);
    }
  }
});

Deno.test("cpu heap: the selective scan's worker-side copies (operands in the heap) equal the copying path", async () => {
  const b = 3, d = 8, n = 4, G = 2, L = 700; // 3 batch elements: a wave of two threads, then one
  const mk = (shape: number[], seed: number, scale = 1, shift = 0) => {
    const v = values(shape.reduce((p, q) => p * q, 1), seed).map((x) => x * scale + shift);
    return () => tensor(v, { shape, requiresGrad: true });
  };
  const inputs = [
    mk([b, d, L], 1), // u
    mk([b, d, L], 2, 0.2), // delta
    mk([d, n], 3, 0.2, -1), // A
    mk([b, G, n, L], 4), // B
    mk([b, G, n, L], 5), // C
    mk([d], 6), // D
    mk([b, d, L], 7), // z
    mk([d], 8, 0.3), // delta bias
  ];
  const weights = values(b * d * L, 9);
  const run = async (heap: boolean) => {
    const [u, delta, A, B, C, D, z, bias] = inputs.map((f) => f());
    assert.equal(onHeap(heapData(u)), heap);
    const y = selectiveScan(u, delta, A, B, C, { D, z, deltaBias: bias, deltaSoftplus: true });
    mul(y, tensor(weights, { shape: [b, d, L] })).sum().backward();
    const out = [(await y.data()) as Float32Array];
    for (const t of [u, delta, A, B, C, D, z, bias]) out.push((await t.grad!.data()) as Float32Array);
    return out;
  };
  const copies = wasmKernelRuns("copy");
  const on = await run(true);
  assert.ok(wasmKernelRuns("copy") > copies, "no copy calls in the scan's jobs");
  setCpuHeapEnabled(false);
  const off = await run(false).finally(() => setCpuHeapEnabled(true));
  const names = ["y", "du", "ddelta", "dA", "dB", "dC", "dD", "dz", "dbias"];
  names.forEach((name, k) => assertSame(on[k], off[k], name));
});

for (
  const [name, shape, normalized, axis] of [
    ["rows (LayerNorm)", [4, 1000, 48], [48], 2],
    // rows of odd length (the 2-element vectors' scalar tail), row counts per call not a multiple of 4
    ["rows of 47 (LayerNorm)", [2, 1001, 47], [47], 2],
    ["channels-first (LayerNorm2d)", [3, 24, 20, 36], [24], 1],
  ] as const
) {
  Deno.test(`cpu heap: layerNorm ${name} in the heap = the reference loops`, async () => {
    const n = shape.reduce((p, q) => p * q, 1), c = normalized[0];
    const run = () => {
      const x = tensor(values(n, 11), { shape: [...shape], requiresGrad: true });
      const weight = tensor(values(c, 12), { shape: [c], requiresGrad: true });
      const bias = tensor(values(c, 13), { shape: [c], requiresGrad: true });
      const y = layerNorm(x, [...normalized], { weight, bias, axis, eps: 1e-6 });
      mul(y, tensor(values(n, 14), { shape: [...shape] })).sum().backward();
      return [y, x.grad!, weight.grad!, bias.grad!].map((t) => t.data() as Promise<Float32Array>);
    };
    const [forward, backward] = [wasmKernelRuns("lnForward"), wasmKernelRuns("lnBackward")];
    const on = await Promise.all(run());
    assert.ok(wasmKernelRuns("lnForward") > forward && wasmKernelRuns("lnBackward") > backward, "kernels did not run");
    const off = await heapOff(() => Promise.all(run()));
    // y and dx: the same float64 arithmetic in the same order
    assertSame(on[0], off[0], "y");
    assertSame(on[1], off[1], "dx");
    // dw and db: float64 sums in another order, rounded to float32
    for (const k of [2, 3]) {
      on[k].forEach((v, i) =>
        assert.ok(Math.abs(v - off[k][i]) <= 1e-6 * Math.abs(off[k][i]) + 1e-9, `grad ${k} ${i}`)
      );
    }
  });
}

Deno.test("cpu heap: reserveRegions halves the region count until the layout fits, null when one does not", () => {
  const limit = 10_000;
  const fake = { reserve: (bytes: number) => (bytes <= limit ? new Float32Array(1) : null) } as unknown as CpuWasm;
  const plan = (per: number) => (k: number) => {
    const lay = new WasmLayout();
    return { lay, regions: Array.from({ length: k }, () => lay.take(per)) };
  };
  assert.equal(reserveRegions(fake, 8, plan(100))?.regions.length, 8);
  assert.equal(reserveRegions(fake, 8, plan(1000))?.regions.length, 2, "8 and 4 regions of 4 KB do not fit 10 KB");
  assert.equal(reserveRegions(fake, 7, plan(2000))?.regions.length, 1, "7, 4, 2 do not fit");
  assert.equal(reserveRegions(fake, 8, plan(3000)), null);
});

const convCases = [
  // batch, channels, size, out channels, kernel, stride, padding, dilation
  { n: 2, c: 8, h: 48, o: 6, k: 3, stride: 1, pad: 1, dil: 1 }, // padded planes, garbage columns dropped
  { n: 2, c: 6, h: 40, o: 5, k: 3, stride: 1, pad: 2, dil: 2 },
  { n: 2, c: 3, h: 64, o: 4, k: 7, stride: 2, pad: 3, dil: 1 }, // the stem: unfolded from the padded planes
  { n: 2, c: 16, h: 64, o: 8, k: 1, stride: 2, pad: 0, dil: 1 }, // unfolded from x itself
  { n: 2, c: 8, h: 48, o: 4, k: 3, stride: 2, pad: 1, dil: 1 },
];

for (const c of convCases) {
  Deno.test(
    `cpu heap: conv2d k${c.k} stride ${c.stride} pad ${c.pad} dil ${c.dil}: padding and unfolding copies equal the loops`,
    async () => {
      const n = c.n * c.c * c.h * c.h;
      const x = tensor(values(n, 1), { shape: [c.n, c.c, c.h, c.h] }).requiresGrad_(true);
      const w = tensor(values(c.o * c.c * c.k * c.k, 2).map((v) => v / 8), { shape: [c.o, c.c, c.k, c.k] })
        .requiresGrad_(true);
      const results: Float32Array[][] = [];
      const copies = wasmKernelRuns("copy") + wasmKernelRuns("transpose");
      for (const heap of [true, false]) {
        setCpuHeapEnabled(heap);
        try {
          const xi = x.detach().requiresGrad_(true), wi = w.detach().requiresGrad_(true);
          const y = conv2d(xi, wi, null, { stride: c.stride, padding: c.pad, dilation: c.dil });
          y.backward(tensor(values(y.size, 3), { shape: y.shape }));
          results.push([await y.data(), await xi.grad!.data(), await wi.grad!.data()] as Float32Array[]);
        } finally {
          setCpuHeapEnabled(true);
        }
      }
      assert.ok(wasmKernelRuns("copy") + wasmKernelRuns("transpose") > copies, "no heap copy ran");
      ["out", "dx", "dw"].forEach((what, i) => assertSame(results[0][i], results[1][i], what));
    },
  );
}

const poolCases = [
  // size (H, W), kernel, stride, padding, dilation (outputs of 2 × 4 planes: enough for the tensor heap)
  { h: 37, w: 66, k: 3, stride: 2, pad: 1, dil: 1 }, // ResNet's: the 4-output vectors, their edges on both sides
  { h: 64, w: 64, k: 2, stride: 2, pad: 0, dil: 1 },
  { h: 30, w: 41, k: 3, stride: 1, pad: 1, dil: 2 },
  { h: 65, w: 59, k: 3, stride: 2, pad: 0, dil: 1 },
];

for (const c of poolCases) {
  Deno.test(
    `cpu heap: maxPool2d k${c.k} stride ${c.stride} pad ${c.pad} dil ${c.dil} (${c.h}×${c.w}): WebAssembly = the loops`,
    async () => {
      // few distinct values, so windows tie (the first maximum wins), a NaN, and -Infinity everywhere in one plane
      const n = 2 * 4 * c.h * c.w, plane = c.h * c.w;
      const v = values(n, 4).map((a, i) => (i < plane ? -Infinity : Math.round(a * 2)));
      v[plane + 5 * c.w + 7] = NaN;
      const run = async () => {
        const x = tensor(v, { shape: [2, 4, c.h, c.w] }).requiresGrad_(true);
        const y = maxPool2d(x, c.k, { stride: c.stride, padding: c.pad, dilation: c.dil });
        y.backward(tensor(values(y.size, 6), { shape: y.shape }));
        return [await y.data(), await x.grad!.data()] as Float32Array[];
      };
      const before = wasmKernelRuns("maxPoolForward");
      const on = await run();
      assert.ok(wasmKernelRuns("maxPoolForward") > before, "the WebAssembly kernel did not run");
      const off = await heapOff(run);
      assertSame(on[0], off[0], "out");
      // the gradient lands where the indices say
      assertSame(on[1], off[1], "dx");
    },
  );
}

for (
  const [name, shape, axis, picks] of [
    ["rows (inner 1)", [6, 40, 257], 2, 300], // a scan order's gather: every index, some twice
    ["planes (inner > 1)", [5, 33, 20, 30], 1, 40],
  ] as const
) {
  Deno.test(`cpu heap: indexSelect over ${name} and its gradient = the loops`, async () => {
    const n = shape.reduce((a, b) => a * b, 1), size = shape[axis];
    // indices that repeat (the gradient adds twice there) and skip some (zero gradient there)
    const idx = Array.from({ length: picks }, (_, j) => (j * 7 + (j % 3)) % size);
    const run = async () => {
      const x = tensor(values(n, 21), { shape: [...shape], requiresGrad: true });
      const y = indexSelect(x, axis, tensor(idx, { dtype: "int32" }));
      mul(y, tensor(values(y.size, 22), { shape: y.shape })).sum().backward();
      return [await y.data(), await x.grad!.data()] as Float32Array[];
    };
    const [g0, s0] = [wasmKernelRuns("gather"), wasmKernelRuns("scatterAdd")];
    const on = await run();
    assert.ok(wasmKernelRuns("gather") > g0 && wasmKernelRuns("scatterAdd") > s0, "the heap kernels did not run");
    const off = await heapOff(run);
    assertSame(on[0], off[0], "y");
    assertSame(on[1], off[1], "dx");
  });
}

for (const [h, w] of [[64, 48], [18, 46]]) {
  Deno.test(`cpu heap: Haar DWT and IWT on ${h}×${w} planes (WebAssembly) = the loops, bit for bit`, async () => {
    const shape = [3, 8, h, w], n = shape.reduce((a, b) => a * b, 1);
    const run = async () => {
      const x = tensor(values(n, 41), { shape, requiresGrad: true });
      const bands = dwt(x);
      const back = iwt(mul(bands, tensor(values(bands.size, 42), { shape: bands.shape })));
      back.sum().backward();
      return [await bands.data(), await back.data(), await x.grad!.data()] as Float32Array[];
    };
    const [d0, i0] = [wasmKernelRuns("haarDwt"), wasmKernelRuns("haarIwt")];
    const on = await run();
    assert.ok(wasmKernelRuns("haarDwt") > d0 && wasmKernelRuns("haarIwt") > i0, "the WebAssembly kernels did not run");
    const off = await heapOff(run);
    ["bands", "iwt", "dx"].forEach((what, k) => assertSame(on[k], off[k], what));
  });
}
