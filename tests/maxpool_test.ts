/**
 * maxPool2d's direct backend kernels against the previous unfold-based formulation, rebuilt here from public
 * ops (unfold with -inf padding, argmax over the taps, gather; its gradient comes from gather's and unfold's
 * rules): forward values, indices and the gradient for a random upstream, on every device from
 * `testDevices()`. Plus ties (all-equal input: the first in-image tap of each window wins), NaN propagation,
 * a hand-made `maxPool2dWithIndices` example checked against PyTorch's `return_indices` convention, and no
 * leaked buffers with or without a recorded gradient.
 */
import assert from "node:assert/strict";
import * as ops from "../mod.ts";
import type { Tensor } from "../mod.ts";
import type { Device } from "../autodiff/backend.ts";
import { normals, testDevices } from "./util.ts";

const devices = await testDevices();

interface Geometry {
  kernel: number;
  stride: number;
  padding: number;
  dilation: number;
}

function outSize(size: number, g: Geometry): number {
  return Math.floor((size + 2 * g.padding - g.dilation * (g.kernel - 1) - 1) / g.stride) + 1;
}

/**
 * The previous maxPool2d: unfold with -inf padding, the argmax tap of each window, gather. Also returns the
 * argmax taps (N, C, 1, L) so that the caller can turn them into flat plane indices.
 */
function reference(x: Tensor, g: Geometry): { y: Tensor; taps: Tensor } {
  const [n, c, H, W] = x.shape;
  const kk = g.kernel * g.kernel, oh = outSize(H, g), ow = outSize(W, g);
  const cols = ops.unfold(x, g.kernel, { ...g, padValue: -Infinity }); // (N, C·kk, L)
  const windows = ops.reshape(cols, [n, c, kk, oh * ow]);
  const taps = ops.argmax(windows, 2, true); // (N, C, 1, L)
  const y = ops.reshape(ops.gather(windows, 2, taps), [n, c, oh, ow]);
  return { y, taps };
}

/** Flat plane index h·W + w of tap `t` of output position `l`. */
function tapToIndex(t: number, l: number, W: number, ow: number, g: Geometry): number {
  const h = Math.floor(l / ow) * g.stride - g.padding + Math.floor(t / g.kernel) * g.dilation;
  const w = (l % ow) * g.stride - g.padding + (t % g.kernel) * g.dilation;
  return h * W + w;
}

/** Values, int32 indices (plane positions) and input gradient for upstream `up` of the fast and reference paths. */
async function both(
  host: Float32Array,
  shape: [number, number, number, number],
  g: Geometry,
  device: Device,
  upHost: (n: number) => Float32Array,
): Promise<{ got: [Float32Array, Int32Array, Float32Array]; want: [Float32Array, Int32Array, Float32Array] }> {
  const [n, c, H, W] = shape;
  const oh = outSize(H, g), ow = outSize(W, g), L = oh * ow;
  const up = ops.tensor(upHost(n * c * L), { shape: [n, c, oh, ow], device });
  const x1 = ops.tensor(host, { shape, device, requiresGrad: true });
  const x2 = ops.tensor(host, { shape, device, requiresGrad: true });
  try {
    const { values, indices } = ops.maxPool2dWithIndices(x1, g.kernel, g);
    assert.equal(indices.dtype, "int32");
    assert.deepEqual(indices.shape, [n, c, oh, ow]);
    values.backward(up);
    const got: [Float32Array, Int32Array, Float32Array] = [
      await values.data() as Float32Array,
      await indices.data() as Int32Array,
      await x1.grad!.data() as Float32Array,
    ];
    values.dispose();
    indices.dispose();

    const { y, taps } = reference(x2, g);
    y.backward(up);
    const t = await taps.data() as Int32Array;
    const refIdx = new Int32Array(t.length);
    for (let i = 0; i < t.length; i++) refIdx[i] = tapToIndex(t[i], i % L, W, ow, g);
    const want: [Float32Array, Int32Array, Float32Array] = [
      await y.data() as Float32Array,
      refIdx,
      await x2.grad!.data() as Float32Array,
    ];
    y.dispose();
    taps.dispose();
    return { got, want };
  } finally {
    up.dispose();
    x1.dispose();
    x2.dispose();
  }
}

function assertClose(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let maxRef = 0, maxErr = 0, at = 0;
  for (let i = 0; i < want.length; i++) maxRef = Math.max(maxRef, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= maxErr)) [maxErr, at] = [e, i];
  }
  assert.ok(
    maxErr <= 1e-6 * maxRef,
    `${what}: max |fast - ref| = ${maxErr} at ${at} (${got[at]} vs ${want[at]}) exceeds 1e-6 · max|ref|`,
  );
}

const GEOMETRIES: Geometry[] = [];
for (const kernel of [2, 3]) {
  for (const stride of [1, 2]) {
    for (const padding of [0, 1]) {
      for (const dilation of [1, 2]) GEOMETRIES.push({ kernel, stride, padding, dilation });
    }
  }
}

for (const device of devices) {
  Deno.test({
    name: `maxPool2d direct kernels match the unfold formulation [${device}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async (t) => {
      let seed = 1;
      for (const g of GEOMETRIES) {
        for (const batch of [1, 3]) {
          const name = `k${g.kernel} s${g.stride} p${g.padding} d${g.dilation} b${batch} 7x13 [${device}]`;
          await t.step(name, async () => {
            const shape: [number, number, number, number] = [batch, 3, 7, 13];
            const s = seed++;
            const host = normals(shape.reduce((a, b) => a * b, 1), 100 + s);
            const { got, want } = await both(host, shape, g, device, (n) => normals(n, 200 + s));
            assert.deepEqual(got[0], want[0], `${name}: values`);
            assert.deepEqual(got[1], want[1], `${name}: indices`);
            assertClose(got[2], want[2], `${name}: grad x`);
          });
        }
      }
    },
  });

  Deno.test({
    name: `maxPool2d ties: the first in-image tap of each window wins [${device}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async (t) => {
      for (
        const g of [
          { kernel: 3, stride: 1, padding: 1, dilation: 1 },
          { kernel: 2, stride: 2, padding: 0, dilation: 1 },
          { kernel: 3, stride: 2, padding: 1, dilation: 2 },
          { kernel: 2, stride: 1, padding: 1, dilation: 2 },
        ]
      ) {
        await t.step(`k${g.kernel} s${g.stride} p${g.padding} d${g.dilation} [${device}]`, async () => {
          const shape: [number, number, number, number] = [2, 2, 7, 13];
          const [, , H, W] = shape;
          const host = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(1.5);
          const { got, want } = await both(host, shape, g, device, (n) => normals(n, 7));
          // the convention, from first principles: the first tap (row-major) that lies inside the image
          const oh = outSize(H, g), ow = outSize(W, g);
          const first = new Int32Array(got[1].length);
          for (let i = 0; i < first.length; i++) {
            const l = i % (oh * ow);
            const h0 = Math.floor(l / ow) * g.stride - g.padding, w0 = (l % ow) * g.stride - g.padding;
            let ki = 0, kj = 0;
            while (h0 + ki * g.dilation < 0) ki++;
            while (w0 + kj * g.dilation < 0) kj++;
            first[i] = (h0 + ki * g.dilation) * W + w0 + kj * g.dilation;
          }
          assert.ok(got[0].every((v) => v === 1.5), "values");
          assert.deepEqual(got[1], first, "indices: first in-image tap");
          assert.deepEqual(got[1], want[1], "indices: reference");
          assertClose(got[2], want[2], "grad x");
        });
      }
    },
  });

  Deno.test({
    name: `maxPool2d propagates NaN [${device}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      // 4x4, k=2 s=2: window (0,0) holds one NaN; window (1,1) holds two; window (0,1) holds +inf.
      const N = NaN, I = Infinity;
      const host = Float32Array.from([
        ...[1, N, 2, 3],
        ...[0, 9, I, 4],
        ...[5, 6, N, 8],
        ...[7, 2, 1, N],
      ]);
      const x = ops.tensor(host, { shape: [1, 1, 4, 4], device, requiresGrad: true });
      try {
        const { values, indices } = ops.maxPool2dWithIndices(x, 2);
        values.backward(ops.tensor([[[[1, 2], [3, 4]]]], { device }));
        const v = Array.from(await values.data());
        assert.ok(Number.isNaN(v[0]), `window (0,0) is NaN, got ${v[0]}`);
        assert.equal(v[1], Infinity);
        assert.equal(v[2], 7);
        assert.ok(Number.isNaN(v[3]), `window (1,1) is NaN, got ${v[3]}`);
        // PyTorch's kernels replace the maximum when `val > max || isnan(val)`: with two NaNs the last one wins.
        assert.deepEqual(Array.from(await indices.data()), [1, 6, 12, 15]);
        const gx = Array.from(await x.grad!.data());
        assert.deepEqual(gx, [0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0, 4]);
        values.dispose();
        indices.dispose();

        // overlapping windows (k=3 s=1 p=1): every window that contains the NaN at (0,1) is NaN
        const y = await ops.maxPool2d(x, 3, { stride: 1, padding: 1 }).data();
        for (let h = 0; h < 4; h++) {
          for (let w = 0; w < 4; w++) {
            const nanInside = [[0, 1], [2, 2], [3, 3]].some(([a, b]) => Math.abs(a - h) <= 1 && Math.abs(b - w) <= 1);
            assert.equal(Number.isNaN(y[h * 4 + w]), nanInside, `output (${h},${w}) = ${y[h * 4 + w]}`);
          }
        }
      } finally {
        x.dispose();
      }
    },
  });

  Deno.test({
    name: `maxPool2dWithIndices follows torch's return_indices convention [${device}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      // Channel 0 and channel 1 = -channel 0; indices are flat positions h·W + w within each (H, W) plane.
      const c0 = [
        [1, 2, 5, 3],
        [4, 0, 5, 1],
        [-1, -2, 7, 7],
        [-3, 6, 7, 2],
      ];
      const c1 = c0.map((r) => r.map((v) => 0 - v)); // (0 - v: no -0)
      const x = ops.tensor([[c0, c1]], { device, requiresGrad: true });
      try {
        // k=2 (stride 2): windows of channel 0: {1,2,4,0} → 4 at (1,0) = 4; {5,3,5,1} → 5, first at (0,2) = 2;
        // {-1,-2,-3,6} → 6 at (3,1) = 13; {7,7,7,2} → 7, first at (2,2) = 10. Channel 1 (negated): {-1,-2,-4,0}
        // → 0 at (1,1) = 5; {-5,-3,-5,-1} → -1 at (1,3) = 7; {1,2,3,-6} → 3 at (3,0) = 12; {-7,-7,-7,-2} → -2 at 15.
        const { values, indices } = ops.maxPool2dWithIndices(x, 2);
        assert.deepEqual(await values.array(), [[[[4, 5], [6, 7]], [[0, -1], [3, -2]]]]);
        assert.deepEqual(await indices.array(), [[[[4, 2], [13, 10]], [[5, 7], [12, 15]]]]);
        values.dispose();
        indices.dispose();

        // k=3, stride 1, padding 1 on channel 0 only: the 3x3 neighbourhood maxima, first on ties, padding never
        // chosen. Row 0: (0,0) {1,2,4,0} → 4 at 4; (0,1) {1,2,5,4,0,5} → 5 at 2; (0,2) {2,5,3,0,5,1} → 5 at 2;
        // (0,3) {5,3,5,1} → 5 at 2. Row 1: (1,0) {1,2,4,0,-1,-2} → 4 at 4; (1,1) → 7 at (2,2) = 10; (1,2) → 7 at 10;
        // (1,3) {5,3,5,1,7,7} → 7 at 10. Row 2: (2,0) {4,0,-1,-2,-3,6} → 6 at 13; (2,1)..(2,3) → 7 at 10.
        // Row 3: (3,0) {-1,-2,-3,6} → 6 at 13; (3,1) {-1,-2,7,-3,6,7} → 7 at 10; (3,2), (3,3) → 7 at 10.
        const x0 = ops.tensor([[c0]], { device, requiresGrad: true });
        const r = ops.maxPool2dWithIndices(x0, 3, { stride: 1, padding: 1 });
        assert.deepEqual(await r.indices.array(), [[[
          [4, 2, 2, 2],
          [4, 10, 10, 10],
          [13, 10, 10, 10],
          [13, 10, 10, 10],
        ]]]);
        assert.deepEqual(await r.values.array(), [[[[4, 5, 5, 5], [4, 7, 7, 7], [6, 7, 7, 7], [6, 7, 7, 7]]]]);
        // gradient of sum(values): each pixel counts the windows whose index points at it
        ops.sum(r.values).backward();
        const gx = await x0.grad!.array();
        assert.deepEqual(gx, [[[[0, 0, 3, 0], [2, 0, 0, 0], [0, 0, 9, 0], [0, 2, 0, 0]]]]);
        r.values.dispose();
        r.indices.dispose();
        x0.dispose();
      } finally {
        x.dispose();
      }
    },
  });

  Deno.test({
    name: `maxPool2d frees its indices with and without a recorded gradient [${device}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const x = ops.tensor(normals(2 * 3 * 8 * 8, 5), { shape: [2, 3, 8, 8], device, requiresGrad: true });
      try {
        const before = ops.memoryStats()[device]!.buffers;
        const y0 = ops.noGrad(() => ops.maxPool2d(x, 2));
        assert.equal(ops.memoryStats()[device]!.buffers, before + 1, "no grad: only the output is live");
        y0.dispose();
        const y = ops.maxPool2d(x, 3, { stride: 2, padding: 1 });
        assert.equal(ops.memoryStats()[device]!.buffers, before + 2, "grad recorded: output + saved indices");
        const s = ops.sum(y);
        s.backward();
        await x.grad!.data();
        s.dispose();
        y.dispose();
        x.grad!.dispose();
        x.grad = null;
        assert.equal(ops.memoryStats()[device]!.buffers, before, "everything released after backward");
      } finally {
        x.dispose();
      }
    },
  });
}
