/**
 * WebGPU-only concerns of issue 12, each checked against the CPU backend (the semantic reference):
 * - the chunked parallel selective scan (local scans, carry pass, fix-up pass) at every split, on this adapter;
 * - lazy elementwise fusion: chains compile to one kernel, views of lazy values fuse, writes into a buffer that a
 *   lazy value reads compute that value first, and freeing is deterministic (memory accounting unchanged).
 */
import assert from "node:assert/strict";
import type { BackendBuffer, Im2colParams, SelectiveScanParams } from "../autodiff/backend.ts";
import { cpuBackend } from "../autodiff/backends/cpu/backend.ts";
import { createWebGPUBackend, type WebGPUBackend } from "../autodiff/backends/webgpu/backend.ts";
import {
  channelsPerInvocation,
  scanInvocations,
  scanSegmentLength,
  setScanSplit,
  setScanWidth,
  statesPerInvocation,
} from "../autodiff/backends/webgpu/selective_scan.ts";
import { normals } from "./util.ts";

let gpu: WebGPUBackend | null = null;
try {
  gpu = await createWebGPUBackend();
} catch (e) {
  if (Deno.env.get("CI")) throw e;
  console.warn(`skipping WebGPU fusion tests: ${(e as Error).message}`);
}

function test(name: string, fn: (g: WebGPUBackend) => Promise<void>): void {
  Deno.test({
    name: `webgpu fusion: ${name}`,
    ignore: !gpu,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () => fn(gpu!),
  });
}

/** |a − b| ≤ tol·max|ref| over the whole array (as tests/selective_scan_test.ts). */
function assertClose(actual: ArrayLike<number>, ref: ArrayLike<number>, what: string, tol = 1e-4): void {
  assert.equal(actual.length, ref.length, `${what}: length`);
  let scale = 0, worst = 0;
  for (let i = 0; i < ref.length; i++) {
    scale = Math.max(scale, Math.abs(ref[i]));
    const d = Math.abs(actual[i] - ref[i]);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  assert.ok(worst <= tol * Math.max(scale, 1e-30), `${what}: max|a-b| = ${worst} > ${tol}·${scale}`);
}

const groupedAll: SelectiveScanParams = {
  batch: 2,
  channels: 6,
  length: 45,
  dState: 4,
  groups: 2,
  chunk: 8,
  hasD: true,
  hasZ: true,
  hasDeltaBias: true,
  deltaSoftplus: true,
};

const scanCases: { name: string; p: SelectiveScanParams }[] = [
  { name: "grouped B/C, z, D, softplus bias, L not a multiple of the chunk", p: groupedAll },
  // room for 4 channels an invocation (the tests force the width: this scan is too small to choose it)
  { name: "grouped B/C, 8 channels a group, z, D, softplus bias", p: { ...groupedAll, channels: 16 } },
  {
    name: "fixed B/C, no options",
    p: {
      batch: 1,
      channels: 3,
      length: 32,
      dState: 5,
      groups: 0,
      chunk: 4,
      hasD: false,
      hasZ: false,
      hasDeltaBias: false,
      deltaSoftplus: false,
    },
  },
];

test("the chunked parallel scan matches the CPU at every split (out, chunk states, last state)", async (g) => {
  for (const { name, p } of scanCases) {
    const { batch: B, channels: D, length: L, dState: N, groups: G } = p;
    const bcLen = G > 0 ? B * G * N * L : D * N;
    const A = normals(D * N, 3).map((v) => -Math.exp(0.5 * v));
    const host = {
      u: normals(B * D * L, 1),
      delta: normals(B * D * L, 2).map((v) => 0.5 * v),
      A,
      B: normals(bcLen, 4),
      C: normals(bcLen, 5),
      D: normals(D, 6),
      z: normals(B * D * L, 7),
      deltaBias: normals(D, 8).map((v) => 0.5 * v),
    };
    const on = (b: typeof cpuBackend | WebGPUBackend) => {
      const up = (a: Float32Array) => b.upload(a, "float32");
      return {
        u: up(host.u),
        delta: up(host.delta),
        A: up(host.A),
        B: up(host.B),
        C: up(host.C),
        D: p.hasD ? up(host.D) : null,
        z: p.hasZ ? up(host.z) : null,
        deltaBias: p.hasDeltaBias ? up(host.deltaBias) : null,
      };
    };
    const ref = cpuBackend.selectiveScanForward(on(cpuBackend), p, true);
    const refOut = await cpuBackend.read(ref.out), refCs = await cpuBackend.read(ref.chunkStates);
    const refLast = await cpuBackend.read(ref.lastState!);
    const nC = Math.ceil(L / p.chunk);
    const xs = on(g);
    try {
      // every split, with 1 and 4 channels per invocation of the scan proper where the groups allow 4
      for (const [split, channels] of [1, 2, 3, nC, L].flatMap((s) => [[s, 1], [s, 4]])) {
        setScanSplit(split);
        setScanWidth(channels);
        assert.equal(scanSegmentLength(p, true), Math.ceil(L / split));
        const cpi = channelsPerInvocation(p, g.runtime.software);
        assert.equal(cpi, G > 0 && (D / G) % channels === 0 ? channels : 1);
        const before = g.runtime.dispatchCount;
        const r = g.selectiveScanForward(xs, p, true);
        const out = await g.read(r.out), cs = await g.read(r.chunkStates), last = await g.read(r.lastState!);
        const what = `${name}, ${split} segment(s), ${cpi} channel(s) an invocation`;
        assertClose(out, refOut, `${what}: out`);
        assertClose(cs, refCs, `${what}: chunk states`);
        assertClose(last, refLast, `${what}: last state`);
        // one kernel unsplit; local + carry + fix-up split (plus the last-state view when it is read)
        const kernels = g.runtime.dispatchCount - before;
        assert.ok(split === 1 ? kernels <= 2 : kernels <= 4, `${what}: ${kernels} dispatches`);
        for (const b of [r.out, r.chunkStates, r.lastState!]) g.free(b);
      }
    } finally {
      setScanSplit(null);
      setScanWidth(null);
      for (const b of Object.values(xs)) if (b) g.free(b as BackendBuffer);
    }
  }
  // on a hardware adapter the widest scans of both models at batch 1, 256² launch ≥ 64k invocations
  // (Wave-MambaAD: 3 sub-band sequences × 256 channels, L = 32²; MambaAD: 1024 channels, L = 64²)
  for (const [batch, channels, length] of [[3, 256, 1024], [1, 1024, 4096]]) {
    const big: SelectiveScanParams = { ...scanCases[0].p, batch, channels, length, groups: 2, chunk: 64 };
    assert.ok(scanInvocations(big, false) >= 65536, `${scanInvocations(big, false)} invocations`);
    assert.equal(channelsPerInvocation(big, false), 1);
    // software adapters: whole sequences, 4 channels an invocation from 2^27 state updates (see below)
    const wide = big.batch * big.channels * big.length * big.dState >= 2 ** 27;
    assert.equal(scanInvocations(big, true), batch * channels / (wide ? 4 : 1));
  }
  // the bench's scan (batch 8, 1024 channels in 8 groups, L = 4,096, dState 16): 4 channels and 4 states an
  // invocation on software adapters, 1 on hardware ones
  const bench: SelectiveScanParams = {
    ...scanCases[0].p,
    batch: 8,
    channels: 1024,
    length: 4096,
    dState: 16,
    groups: 8,
  };
  assert.equal(channelsPerInvocation(bench, true), 4);
  assert.equal(statesPerInvocation(bench, true), 4);
  assert.equal(channelsPerInvocation(bench, false), 1);
  assert.equal(statesPerInvocation(bench, false), 1);
  // a group's channels not a multiple of 4, dState not a multiple of 4: 1
  assert.equal(channelsPerInvocation({ ...bench, channels: 8 * 1026 }, true), 1);
  assert.equal(statesPerInvocation({ ...bench, dState: 18 }, true), 1);
  assert.equal(channelsPerInvocation(scanCases[0].p, true), 1); // a small scan keeps the kernels that compile fast
});

test("lazy selective-scan inputs (views, slices of one projection, −exp(A)) are evaluated inside the scan kernels, forward and backward, and match the CPU", async (g) => {
  for (const { name, p } of scanCases) {
    const { batch: B, channels: D, length: L, dState: N, groups: G } = p;
    // B and C are two slices of one projection, as SS2D splits x_proj's output: (rows, 2N, cols)
    const [rows, cols] = G > 0 ? [B * G, L] : [D, 1];
    const host = {
      uT: normals(B * L * D, 11), // u stored (B, L, D): the scan reads its transpose
      delta: normals(B * D * L, 12),
      aLog: normals(D * N, 13).map((v) => 0.5 * v),
      proj: normals(rows * 2 * N * cols, 14),
      D: normals(D, 15),
      z: normals(B * D * L, 16),
      bias: normals(D, 17),
      dout: normals(B * D * L, 18),
    };
    const run = async (be: typeof cpuBackend | WebGPUBackend, split: number, width: number) => {
      const up = (a: Float32Array) => be.upload(a, "float32");
      const view = (src: BackendBuffer, offset: number, strides: number[], shape: number[]) => {
        const dst = be.alloc(shape.reduce((a, b) => a * b, 1), "float32");
        be.stridedCopyInto(
          src,
          offset,
          strides,
          dst,
          0,
          shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1)),
          shape,
        );
        return dst;
      };
      const base = {
        uT: up(host.uT),
        delta: up(host.delta),
        aLog: up(host.aLog),
        proj: up(host.proj),
        D: up(host.D),
        z: up(host.z),
        bias: up(host.bias),
        dout: up(host.dout),
      };
      const xs = {
        u: view(base.uT, 0, [L * D, 1, D], [B, D, L]),
        delta: be.affine(base.delta, 0.5, 0.1),
        A: be.unary("neg", be.unary("exp", base.aLog)),
        B: view(base.proj, 0, [2 * N * cols, cols, 1], [rows, N, cols]),
        C: view(base.proj, N * cols, [2 * N * cols, cols, 1], [rows, N, cols]),
        D: p.hasD ? be.affine(base.D, 1, 0.5) : null,
        z: p.hasZ ? be.unary("neg", base.z) : null,
        deltaBias: p.hasDeltaBias ? be.affine(base.bias, 0.5, 0) : null,
      };
      const dout = be.affine(base.dout, 2, 0);
      if (be !== cpuBackend) {
        setScanSplit(split);
        setScanWidth(width);
      }
      const count = () => (be === cpuBackend ? 0 : (be as WebGPUBackend).runtime.dispatchCount);
      try {
        const c0 = count();
        const f = be.selectiveScanForward(xs, p, false);
        const forward = count() - c0;
        const grads = be.selectiveScanBackward(xs, f.chunkStates, dout, p);
        const { du, ddelta, dA, dB, dC, dD, dz, ddeltaBias } = grads;
        const results = [f.out, f.chunkStates, du, ddelta, dA, dB, dC, dD, dz, ddeltaBias]
          .filter((b): b is BackendBuffer => b !== null);
        const values = [];
        for (const b of results) values.push(await be.read(b));
        for (const b of [...results, ...Object.values(base), ...Object.values(xs), dout]) if (b) be.free(b);
        return { values, forward };
      } finally {
        setScanSplit(null);
        setScanWidth(null);
      }
    };
    const ref = await run(cpuBackend, 1, 1);
    // every split, with 1 and 4 channels (forward) and states (grouped dB/dC) an invocation where the shapes allow
    for (const [split, width] of [1, 3, 100].flatMap((s) => [[s, 1], [s, 4]])) {
      const r = await run(g, split, width);
      const what = `${name}, ${split} segment(s), width ${width}`;
      // the forward is its scan kernels alone: no kernel computes an input first
      assert.equal(r.forward, split === 1 ? 1 : 3, `${what}: forward dispatches`);
      const names = ["out", "chunk states", "du", "ddelta", "dA", "dB", "dC", "dD", "dz", "ddeltaBias"];
      assert.equal(r.values.length, ref.values.length);
      for (let i = 0; i < r.values.length; i++) assertClose(r.values[i], ref.values[i], `${what}: ${names[i]}`);
    }
  }
});

test("lazy gather/scatter-add inputs (a broadcast index as indexSelect makes, values, a src reading dst) are evaluated inside the kernels and match the CPU", async (g) => {
  const [R, Cc, L] = [3, 4, 10];
  const n = R * Cc * L;
  const xh = normals(n, 61), sh = normals(n, 62);
  const perm = Int32Array.from({ length: L }, (_, i) => (i * 7 + 3) % L);
  perm[5] = perm[6]; // a repeated position: scatter-add sums into it
  const run = (be: typeof cpuBackend | WebGPUBackend, count?: () => number) => {
    const x = be.upload(xh, "float32"), s = be.upload(sh, "float32"), p1 = be.upload(perm, "int32");
    const xi = be.upload(Int32Array.from(xh, (v) => Math.round(4 * v)), "int32");
    // the index broadcast over (R, C, L) as a lazy view, as indexSelect makes it
    const idx = be.alloc(n, "int32");
    be.stridedCopyInto(p1, 0, [0, 0, 1], idx, 0, [Cc * L, L, 1], [R, Cc, L]);
    const lx = be.unary("silu", be.affine(x, 1.5, 0.1));
    const c0 = count?.() ?? 0;
    const outs = [be.gather(lx, [R, Cc, L], 2, idx, [R, Cc, L]), be.gather(xi, [R, Cc, L], 2, idx, [R, Cc, L])];
    const dst = be.affine(x, 1, 0);
    be.scatterAddInto(dst, [R, Cc, L], 2, idx, be.unary("neg", s), [R, Cc, L]);
    const dsti = be.affine(xi, 1, 0);
    be.scatterAddInto(dsti, [R, Cc, L], 2, idx, be.affine(xi, 2, 1), [R, Cc, L]);
    // src reads dst: dst's old values are taken before the scatter writes it
    const dst2 = be.affine(x, 1, 0);
    be.scatterAddInto(dst2, [R, Cc, L], 2, idx, be.binary("mul", dst2, s, [n], [1], [1]), [R, Cc, L]);
    const c1 = count?.() ?? 0;
    outs.push(dst, dsti, dst2);
    return { outs, dispatches: c1 - c0 };
  };
  const ref = run(cpuBackend);
  const r = run(g, () => g.runtime.dispatchCount);
  // 2 gathers and 3 scatters; the dsts are computed first (3) and the src that reads dst2 (1)
  assert.ok(r.dispatches <= 9, `${r.dispatches} dispatches`);
  for (let i = 0; i < r.outs.length; i++) {
    assertClose(await g.read(r.outs[i]), await cpuBackend.read(ref.outs[i]), `gather/scatter ${i}`, 1e-6);
  }
});

test("lazy Haar DWT/IWT inputs are evaluated inside the kernels and match the CPU", async (g) => {
  const [B, C, H, W] = [2, 3, 6, 8];
  const n = B * C * H * W;
  const xh = normals(n, 71), yh = normals(n, 72);
  const run = (be: typeof cpuBackend | WebGPUBackend, count?: () => number) => {
    const x = be.upload(xh, "float32"), y = be.upload(yh, "float32");
    const lx = be.unary("gelu", be.affine(x, 0.7, 0.3));
    const ly = be.binary("add", x, y, [n], [1], [1]);
    const c0 = count?.() ?? 0;
    const outs = [be.haarDwt(lx, B, C, H, W), be.haarIwt(ly, B, C, H / 2, W / 2)];
    return { outs, dispatches: (count?.() ?? 0) - c0, temps: [x, y, lx, ly] };
  };
  const ref = run(cpuBackend);
  const r = run(g, () => g.runtime.dispatchCount);
  assert.equal(r.dispatches, 2, "one kernel per transform");
  for (let i = 0; i < r.outs.length; i++) {
    assertClose(await g.read(r.outs[i]), await cpuBackend.read(ref.outs[i]), `haar ${i}`, 1e-6);
  }
  for (const b of [...r.temps, ...r.outs]) g.free(b);
  for (const b of [...ref.temps, ...ref.outs]) cpuBackend.free(b);
});

test("copies into a buffer not computed yet (slice adjoints, cat/stack pieces) stay lazy, fuse into the consumer and match the CPU", async (g) => {
  const ah = normals(2 * 3 * 4, 81), bh = normals(2 * 5 * 4, 82), ch = normals(6, 83);
  const run = (be: typeof cpuBackend | WebGPUBackend, count?: () => number) => {
    const a = be.upload(ah, "float32"), b = be.upload(bh, "float32"), c = be.upload(ch, "float32");
    const c0 = count?.() ?? 0;
    // cat([silu(a), b], 1) of (2, 3, 4) and (2, 5, 4) → (2, 8, 4), pieces written into a fresh buffer
    const cat = be.alloc(2 * 8 * 4, "float32");
    be.stridedCopyInto(be.unary("silu", a), 0, [12, 4, 1], cat, 0, [32, 4, 1], [2, 3, 4]);
    be.stridedCopyInto(b, 0, [20, 4, 1], cat, 12, [32, 4, 1], [2, 5, 4]);
    // a slice's adjoint: zeros of (4, 6) with c written at rows 1..2, every other column (strided), twice over
    const pad = be.fill(24, 0, "float32");
    be.stridedCopyInto(c, 0, [3, 1], pad, 7, [6, 2], [2, 3]);
    be.stridedCopyInto(be.affine(c, -1, 0), 0, [3, 1], pad, 8, [6, 2], [2, 3]);
    // overlapping later write wins; a transposed (permuted-stride) destination
    const t = be.fill(12, 0.5, "float32");
    be.stridedCopyInto(c, 0, [1], t, 2, [1], [6]);
    be.stridedCopyInto(a, 0, [1, 2], t, 0, [1, 3], [3, 2]);
    const lazyDispatches = (count?.() ?? 0) - c0;
    const sum = be.reduce("sum", cat, 1, 64, 1); // the consumer evaluates the pieces
    return { outs: [cat, pad, t, sum], lazyDispatches, temps: [a, b, c] };
  };
  const ref = run(cpuBackend);
  const r = run(g, () => g.runtime.dispatchCount);
  assert.equal(r.lazyDispatches, 0, "no copy dispatches before a consumer needs the values");
  const names = ["cat", "slice adjoint", "overlapping, transposed", "sum of cat"];
  for (let i = 0; i < r.outs.length; i++) {
    assertClose(await g.read(r.outs[i]), await cpuBackend.read(ref.outs[i]), names[i], 1e-6);
  }
  for (const x of [...r.temps, ...r.outs]) g.free(x);
  for (const x of [...ref.temps, ...ref.outs]) cpuBackend.free(x);
});

test("layerNorm: one kernel forward (y lazy), at most two backward, lazy inputs fused; matches the CPU", async (g) => {
  const cases = [
    { outer: 6, size: 40, inner: 1, weight: true, bias: true },
    { outer: 2, size: 5, inner: 7, weight: true, bias: false }, // channels-first (LayerNorm2d)
    { outer: 3, size: 9, inner: 2, weight: false, bias: false },
  ];
  for (const { outer, size, inner, weight, bias } of cases) {
    const n = outer * size * inner;
    const xh = normals(n, 91).map((v) => 3 + 2 * v),
      gh = normals(n, 92),
      wh = normals(size, 93),
      bh = normals(size, 94);
    const want = { dx: true, dWeight: weight, dBias: bias };
    const run = (be: typeof cpuBackend | WebGPUBackend, count?: () => number) => {
      const x0 = be.upload(xh, "float32"), g0 = be.upload(gh, "float32");
      const w = weight ? be.upload(wh, "float32") : null, b = bias ? be.upload(bh, "float32") : null;
      const x = be.affine(x0, 1.5, 0.25), gy = be.unary("tanh", g0); // lazy on the GPU
      const c0 = count?.() ?? 0;
      const f = be.layerNorm!(x, w, b, outer, size, inner, 1e-5);
      const c1 = count?.() ?? 0;
      const r = be.layerNormBackward!(gy, x, w, f.mean, f.rstd, outer, size, inner, want);
      const c2 = count?.() ?? 0;
      const outs = [f.y, f.mean, f.rstd, r.dx!, ...(r.dWeight ? [r.dWeight] : []), ...(r.dBias ? [r.dBias] : [])];
      return {
        outs,
        forward: c1 - c0,
        backward: c2 - c1,
        temps: [x0, g0, x, gy, ...(w ? [w] : []), ...(b ? [b] : [])],
      };
    };
    const ref = run(cpuBackend);
    const live = g.memory().buffers;
    const r = run(g, () => g.runtime.dispatchCount);
    const what = `layerNorm (${outer}, ${size}, ${inner})`;
    assert.equal(r.forward, 1, `${what}: forward dispatches`);
    assert.ok(r.backward <= 2, `${what}: ${r.backward} backward dispatches`);
    const names = ["y", "mean", "rstd", "dx", "dWeight", "dBias"].filter((k) => k !== "dWeight" || weight)
      .filter((k) => k !== "dBias" || bias);
    for (let i = 0; i < r.outs.length; i++) {
      assertClose(await g.read(r.outs[i]), await cpuBackend.read(ref.outs[i]), `${what}: ${names[i]}`, 1e-5);
    }
    for (const b of [...r.temps, ...r.outs]) g.free(b);
    for (const b of [...ref.temps, ...ref.outs]) cpuBackend.free(b);
    assert.equal(g.memory().buffers, live, `${what}: temporaries freed`);
  }
});

test("an elementwise chain (with broadcast and a permuted view) is one kernel and matches the CPU", async (g) => {
  const n = 6 * 5;
  const xh = normals(n, 11), yh = normals(5, 12);
  const run = (b: typeof cpuBackend | WebGPUBackend) => {
    const x = b.upload(xh, "float32"), y = b.upload(yh, "float32");
    const e = b.unary("exp", b.affine(x, 0.5, -0.25)); // (6, 5)
    const s = b.binary("mul", e, y, [6, 5], [5, 1], [0, 1]); // broadcast y over rows
    const t = b.alloc(n, "float32");
    b.stridedCopyInto(s, 0, [1, 5], t, 0, [6, 1], [5, 6]); // transpose → (5, 6)
    const m = b.binary("gt", t, b.fill(n, 0.5, "float32"), [n], [1], [1]);
    const out = b.where(m, b.unary("silu", t), b.clamp(t, -0.1, 0.1), [n], [1], [1], [1]);
    return { out, temps: [x, y, e, s, t, m] };
  };
  const ref = run(cpuBackend);
  const before = g.runtime.dispatchCount;
  const r = run(g);
  assert.equal(g.runtime.dispatchCount, before, "elementwise ops are lazy");
  const got = await g.read(r.out);
  assert.equal(g.runtime.dispatchCount, before + 1, "one fused kernel computes the chain");
  assertClose(got, await cpuBackend.read(ref.out), "fused chain", 1e-6);
  for (const b of [...r.temps, r.out]) g.free(b);
});

test("writing into a buffer a lazy value reads computes that value first; freeing keeps the accounting", async (g) => {
  const m0 = g.memory();
  const x = g.upload(Float32Array.from([1, 2, 3, 4]), "float32");
  const y = g.affine(x, 2, 1); // lazy: reads x
  g.free(x); // the caller is done with x, y still needs its values
  assert.equal(g.memory().buffers, m0.buffers + 1);
  assert.deepEqual([...await g.read(y)], [3, 5, 7, 9]);
  const z = g.upload(Float32Array.from([1, 1, 1, 1]), "float32");
  const w = g.unary("neg", z); // lazy: reads z
  g.stridedCopyInto(y, 0, [1], z, 0, [1], [4]); // overwrites z
  assert.deepEqual([...await g.read(w)], [-1, -1, -1, -1]);
  assert.deepEqual([...await g.read(z)], [3, 5, 7, 9]);
  const dropped = g.unary("exp", y); // freed without ever being computed
  const before = g.runtime.dispatchCount;
  g.free(dropped);
  assert.equal(g.runtime.dispatchCount, before);
  for (const b of [y, z, w]) g.free(b);
  assert.equal(g.memory().buffers, m0.buffers);
  assert.equal(g.memory().bytes, m0.bytes);
});

test("a lazy value copied into part of a buffer is evaluated inside the copy kernel (cat/stack) and matches the CPU", async (g) => {
  const xh = normals(4 * 3, 21), yh = normals(3, 22), zh = normals(2 * 4 * 3, 23);
  const run = (b: typeof cpuBackend | WebGPUBackend, count?: () => number) => {
    const x = b.upload(xh, "float32"), y = b.upload(yh, "float32"), z = b.upload(zh, "float32");
    const s = b.unary("tanh", b.binary("add", x, y, [4, 3], [3, 1], [0, 1])); // lazy (4, 3)
    const dst = b.alloc(2 * 4 * 3 + 5, "float32"); // written in three pieces: not a fresh whole-buffer copy
    b.stridedCopyInto(b.affine(z, 2, 0), 0, [1], dst, 24, [1], [5]);
    if ("runtime" in b) b.runtime.check(dst); // computed: the next copy cannot stay lazy
    const c0 = count?.() ?? 0;
    // transposed into dst[12, 24)
    b.stridedCopyInto(s, 0, [1, 3], dst, 12, [4, 1], [3, 4]);
    const c1 = count?.() ?? 0;
    // an expression that reads the destination itself falls back to computing it first
    const r = b.affine(dst, 3, 1);
    b.stridedCopyInto(r, 24, [1], dst, 0, [1], [5]);
    b.stridedCopyInto(b.unary("exp", z), 5, [1], dst, 5, [1], [7]);
    return { dst, copyDispatches: c1 - c0, temps: [x, y, z, s, r] };
  };
  const ref = run(cpuBackend);
  const r = run(g, () => g.runtime.dispatchCount);
  assert.equal(r.copyDispatches, 1, "the lazy transpose-add-tanh is computed by the copy kernel itself");
  assertClose(await g.read(r.dst), await cpuBackend.read(ref.dst), "fused copies", 1e-6);
  for (const b of [...r.temps, r.dst]) g.free(b);
});

test("a lazy value reduced (sum/max/arg*, per-thread and per-workgroup, int and bool) is evaluated inside the reduction and matches the CPU", async (g) => {
  const cases: [number, number, number][] = [[6, 5, 4], [2, 700, 3], [1, 40, 1]]; // (outer, size, inner)
  for (const [outer, size, inner] of cases) {
    const n = outer * size * inner;
    const xh = normals(n, 31), yh = normals(inner, 32);
    const run = (b: typeof cpuBackend | WebGPUBackend, count?: () => number) => {
      const x = b.upload(xh, "float32"), y = b.upload(yh, "float32");
      const e = b.unary("tanh", b.binary("mul", b.affine(x, 0.5, 0.1), y, [outer * size, inner], [inner, 1], [0, 1]));
      const iv = b.cast(b.affine(x, 4, 0), "int32");
      const bv = b.binary("gt", x, b.fill(n, 0.2, "float32"), [n], [1], [1]);
      const c0 = count?.() ?? 0;
      const outs = [
        b.reduce("sum", e, outer, size, inner),
        b.reduce("max", e, outer, size, inner),
        b.reduce("argmin", e, outer, size, inner),
        b.reduce("sum", iv, outer, size, inner),
        b.reduce("argmax", bv, outer, size, inner), // (a bool sum differs from the CPU before fusion too)
      ];
      const c1 = count?.() ?? 0;
      return { outs, dispatches: c1 - c0, temps: [x, y, e, iv, bv] };
    };
    const ref = run(cpuBackend);
    const r = run(g, () => g.runtime.dispatchCount);
    assert.equal(r.dispatches, r.outs.length, `(${outer}, ${size}, ${inner}): one kernel per reduction`);
    for (let i = 0; i < r.outs.length; i++) {
      assertClose(
        await g.read(r.outs[i]),
        await cpuBackend.read(ref.outs[i]),
        `reduce ${i} (${outer}, ${size}, ${inner})`,
        1e-5,
      );
    }
    for (const b of [...r.temps, ...r.outs]) g.free(b);
    for (const b of [...ref.temps, ...ref.outs]) cpuBackend.free(b);
  }
});

test("lazy matmul operands (views, transposes, broadcast batch) are computed by one kernel each before the matmul and match the CPU", async (g) => {
  const cases = [
    { batch: 2, m: 5, n: 7, k: 6 },
    { batch: 1, m: 40, n: 36, k: 33 },
    // a long k loop around the view's index decoding (lavapipe cut loops after 65,535 iterations in all)
    { batch: 1, m: 1, n: 9, k: 8192 },
  ];
  for (const { batch, m, n, k } of cases) {
    for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]]) {
      const ah = normals(batch * m * k, 41), bh = normals(k * n, 42);
      const run = (be: typeof cpuBackend | WebGPUBackend, count?: () => number) => {
        const a = be.upload(ah, "float32"), b = be.upload(bh, "float32");
        const la = be.unary("silu", be.affine(a, 0.7, 0.2)); // lazy A, (batch, m·k) in the layout transA says
        const t = be.alloc(k * n, "float32"); // lazy transposed copy of b
        const [R, C] = transB ? [n, k] : [k, n];
        be.stridedCopyInto(b, 0, [1, R], t, 0, [C, 1], [R, C]);
        const lb = be.binary("mul", t, be.fill(1, 1.5, "float32"), [k * n], [1], [0]);
        const c0 = count?.() ?? 0;
        const out = be.matmul(la, lb, { batch, m, n, k, transA, transB, strideA: m * k, strideB: 0 });
        const c1 = count?.() ?? 0;
        return { out, dispatches: c1 - c0, temps: [a, b, la, t, lb] };
      };
      const what = `matmul b${batch} ${m}x${n}x${k} tA=${transA} tB=${transB}`;
      const ref = run(cpuBackend);
      const r = run(g, () => g.runtime.dispatchCount);
      // not inlined into the matmul's loads (see matmul.ts): one kernel per lazy operand, then the matmul
      assert.equal(r.dispatches, 3, `${what}: two operand kernels and the matmul`);
      assertClose(await g.read(r.out), await cpuBackend.read(ref.out), what, 1e-5);
      for (const b of [...r.temps, r.out]) g.free(b);
      for (const b of [...ref.temps, ref.out]) cpuBackend.free(b);
    }
  }
});

test("lazy depthwise-conv inputs (forward, input and weight gradients) are evaluated inside the kernels and match the CPU", async (g) => {
  const [N, C, H, W] = [2, 3, 6, 5];
  const p: Im2colParams = {
    batch: N,
    channels: C,
    height: H,
    width: W,
    kernelH: 3,
    kernelW: 3,
    strideH: 1,
    strideW: 1,
    padH: 1,
    padW: 1,
    dilationH: 1,
    dilationW: 1,
    outH: H,
    outW: W,
  };
  const n = N * C * H * W;
  const xh = normals(n, 51), wh = normals(C * 9, 52), gh = normals(n, 53);
  const run = (be: typeof cpuBackend | WebGPUBackend, count?: () => number) => {
    const x = be.upload(xh, "float32"), w = be.upload(wh, "float32"), gy = be.upload(gh, "float32");
    const lx = be.unary("silu", be.affine(x, 1.3, -0.2));
    const lw = be.affine(w, 0.5, 0);
    const lg = be.binary("mul", gy, x, [n], [1], [1]);
    const c0 = count?.() ?? 0;
    const outs = [
      be.depthwiseConv2d(lx, lw, p),
      be.depthwiseConv2dBackwardInput(lg, lw, p),
      be.depthwiseConv2dBackwardWeight(lx, lg, p),
    ];
    const c1 = count?.() ?? 0;
    return { outs, dispatches: c1 - c0, temps: [x, w, gy, lx, lw, lg] };
  };
  const ref = run(cpuBackend);
  const r = run(g, () => g.runtime.dispatchCount);
  assert.ok(r.dispatches <= 4, `no separate elementwise kernels (${r.dispatches} dispatches)`);
  for (let i = 0; i < r.outs.length; i++) {
    assertClose(await g.read(r.outs[i]), await cpuBackend.read(ref.outs[i]), `depthwise ${i}`, 1e-5);
  }
  for (const b of [...r.temps, ...r.outs]) g.free(b);
  for (const b of [...ref.temps, ...ref.outs]) cpuBackend.free(b);
});

test("lazy im2col/col2im inputs (float and int, padded) are evaluated inside the kernels and match the CPU", async (g) => {
  const [N, C, H, W] = [2, 2, 5, 4];
  const p: Im2colParams = {
    batch: N,
    channels: C,
    height: H,
    width: W,
    kernelH: 3,
    kernelW: 2,
    strideH: 2,
    strideW: 1,
    padH: 1,
    padW: 1,
    dilationH: 1,
    dilationW: 1,
    outH: 3,
    outW: 5,
  };
  const n = N * C * H * W, nc = N * C * 6 * 15;
  const xh = normals(n, 61), ch = normals(nc, 62);
  const run = (be: typeof cpuBackend | WebGPUBackend, count?: () => number) => {
    const x = be.upload(xh, "float32"), cols = be.upload(ch, "float32");
    const lx = be.unary("tanh", be.affine(x, 2, 0.5));
    const li = be.cast(be.affine(x, 3, 0), "int32");
    const lc = be.unary("exp", cols);
    const c0 = count?.() ?? 0;
    const outs = [be.im2col(lx, p, -1.5), be.im2col(li, p, 7), be.col2im(lc, p)];
    const c1 = count?.() ?? 0;
    return { outs, dispatches: c1 - c0, temps: [x, cols, lx, li, lc] };
  };
  const ref = run(cpuBackend);
  const r = run(g, () => g.runtime.dispatchCount);
  assert.equal(r.dispatches, 3, "one kernel each");
  for (let i = 0; i < r.outs.length; i++) {
    assertClose(await g.read(r.outs[i]), await cpuBackend.read(ref.outs[i]), `im2col/col2im ${i}`, 1e-5);
  }
  for (const b of [...r.temps, ...r.outs]) g.free(b);
  for (const b of [...ref.temps, ...ref.outs]) cpuBackend.free(b);
});

test("a long scan's backward (L = 4,096, dState 16) matches the CPU: split to stay under lavapipe's loop cap", async (g) => {
  // unsplit, one invocation ran about 139k loop iterations; lavapipe stops a thread's loops after ~65k and every
  // du came back wrong
  const p: SelectiveScanParams = {
    batch: 1,
    channels: 4,
    length: 4096,
    dState: 16,
    groups: 1,
    chunk: 64,
    hasD: true,
    hasZ: false,
    hasDeltaBias: true,
    deltaSoftplus: true,
  };
  const { batch: B, channels: D, length: L, dState: N } = p;
  const host = {
    u: normals(B * D * L, 71),
    delta: normals(B * D * L, 72).map((v) => 0.5 * v),
    A: normals(D * N, 73).map((v) => -Math.exp(0.5 * v)),
    B: normals(B * N * L, 74),
    C: normals(B * N * L, 75),
    D: normals(D, 76),
    deltaBias: normals(D, 77).map((v) => 0.5 * v),
    dout: normals(B * D * L, 78),
  };
  const run = async (be: typeof cpuBackend | WebGPUBackend) => {
    const up = (a: Float32Array) => be.upload(a, "float32");
    const xs = {
      u: up(host.u),
      delta: up(host.delta),
      A: up(host.A),
      B: up(host.B),
      C: up(host.C),
      D: up(host.D),
      z: null,
      deltaBias: up(host.deltaBias),
    };
    const dout = up(host.dout);
    const f = be.selectiveScanForward(xs, p, false);
    const gr = be.selectiveScanBackward(xs, f.chunkStates, dout, p);
    const outs = [gr.du, gr.ddelta, gr.dA, gr.dB, gr.dC, gr.dD!, gr.ddeltaBias!];
    const values = [];
    for (const b of outs) values.push(await be.read(b));
    for (const b of [...outs, f.out, f.chunkStates, dout, ...Object.values(xs)]) if (b) be.free(b);
    return values;
  };
  const ref = await run(cpuBackend), got = await run(g);
  ["du", "ddelta", "dA", "dB", "dC", "dD", "ddeltaBias"].forEach((name, i) => assertClose(got[i], ref[i], name));
});
