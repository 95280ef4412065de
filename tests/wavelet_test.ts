/**
 * The Haar wavelet transform of Wave-MambaAD (nn/wavelet/haar.ts, backend kernels `haarDwt` / `haarIwt`) on every
 * device from `testDevices()`:
 *
 * - docs/paper.md §3.2's test vector x = [[1, 2], [3, 4]] → LL 5, HL 1, LH 2, HH 0, and back;
 * - the official fixtures (tests/fixtures/official/wave_{dwt,iwt}.safetensors, PyTorch 1.13 float32): forward
 *   and grad.input.x (loss = sum(y · R)) within |a − b| ≤ 1e-4 · max|b| per tensor, as docs/paper.md §0
 *   suggests; the CPU forward is also bitwise PyTorch's (same float32 evaluation order);
 * - round trips iwt(dwt(x)) = x and dwt(iwt(y)) = y to 1e-6 · max|input|;
 * - PyWavelets' `dwt2` / `idwt2` with 'haar' (tests/fixtures/wavelet/pywt_haar.json, from
 *   tools/gen_wavelet_fixtures.py) under the mapping LL = cA, HL = −cV, LH = −cH, HH = cD: PyWavelets' detail
 *   filter is (first − second)/√2, the opposite sign of the MWCNN code's, cH is the detail along rows (axis −2)
 *   and cV along columns (axis −1); both transforms are orthonormal, so there is no scale factor;
 * - numerical gradient checks, CPU/WebGPU agreement on a larger shape, the modules, and the odd-size errors.
 */
import assert from "node:assert/strict";
import * as T from "../mod.ts";
import type { Device, Tensor } from "../mod.ts";
import { DWT, dwt, IWT, iwt } from "../nn/wavelet/haar.ts";
import { loadSafetensors } from "../nn/io/safetensors.ts";
import { normals, testDevices } from "./util.ts";

const devices = await testDevices();
const FIX = new URL("./fixtures/", import.meta.url);
const fixturePath = (rel: string): string => decodeURIComponent(new URL(rel, FIX).pathname);

function test(name: string, fn: (device: Device) => Promise<void> | void): void {
  for (const device of devices) {
    Deno.test({
      name: `wavelet: ${name} [${device}]`,
      sanitizeResources: false,
      sanitizeOps: false,
      fn: () => fn(device),
    });
  }
}

/** Max |got − want| ≤ tol · max|want| (tol · 1 when `abs`). */
function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: number,
  what: string,
  abs = false,
): number {
  assert.equal(got.length, want.length, `${what}: length`);
  let maxRef = 0, maxErr = 0, at = 0;
  for (let i = 0; i < want.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(want[i]));
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= maxErr)) [maxErr, at] = [e, i];
  }
  const bound = abs ? tol : tol * maxRef;
  assert.ok(
    maxErr <= bound,
    `${what}: max |got − want| = ${maxErr} at ${at} (${got[at]} vs ${want[at]}) exceeds ${bound}`,
  );
  return maxErr;
}

/** Value and input gradient of `f` at `x` (shape `shape`) with upstream `r`. */
async function valueAndGrad(
  f: (t: Tensor) => Tensor,
  x: Float32Array,
  shape: number[],
  r: Float32Array,
  device: Device,
): Promise<{ y: Float32Array; y4: number[]; g: Float32Array }> {
  const leaf = T.tensor(x, { shape, device, requiresGrad: true });
  try {
    const y = T.tidy(() => f(leaf));
    const rt = T.tensor(r, { shape: y.shape, device });
    y.backward(rt);
    const out = { y: await y.data() as Float32Array, y4: [...y.shape], g: await leaf.grad!.data() as Float32Array };
    y.dispose();
    rt.dispose();
    return out;
  } finally {
    leaf.dispose();
  }
}

async function apply(f: (t: Tensor) => Tensor, x: Float32Array, shape: number[], device: Device) {
  const t = T.tensor(x, { shape, device });
  const y = T.tidy(() => f(t));
  const out = { data: await y.data() as Float32Array, shape: [...y.shape] };
  t.dispose();
  y.dispose();
  return out;
}

test("docs/paper.md §3.2 test vector", async (device) => {
  const y = await apply(dwt, Float32Array.of(1, 2, 3, 4), [1, 1, 2, 2], device);
  assert.deepEqual(y.shape, [4, 1, 1, 1]);
  assert.deepEqual([...y.data], [5, 1, 2, 0]); // LL, HL, LH, HH
  const x = await apply(iwt, Float32Array.of(5, 1, 2, 0), [4, 1, 1, 1], device);
  assert.deepEqual(x.shape, [1, 1, 2, 2]);
  assert.deepEqual([...x.data], [1, 2, 3, 4]);
  // one sub-band at a time: a = x[0,0], b = x[1,0] (row below), c = x[0,1] (column right), d = x[1,1]
  const basis = await apply(iwt, Float32Array.of(0, 2, 0, 0), [4, 1, 1, 1], device); // HL = 2
  assert.deepEqual([...basis.data], [-1, 1, -1, 1]); // right minus left
  const lh = await apply(iwt, Float32Array.of(0, 0, 2, 0), [4, 1, 1, 1], device); // LH = 2
  assert.deepEqual([...lh.data], [-1, -1, 1, 1]); // bottom minus top
});

for (const name of ["wave_dwt", "wave_iwt"] as const) {
  test(`official fixture ${name} (forward and grad.input.x)`, async (device) => {
    const { tensors } = await loadSafetensors(fixturePath(`official/${name}.safetensors`));
    const get = (k: string) => {
      const t = tensors.get(k);
      assert.ok(t, `${name}: missing ${k}`);
      return t;
    };
    const x = get("input.x"), y = get("output.y"), r = get("upstream.y"), gx = get("grad.input.x");
    const f = name === "wave_dwt" ? dwt : iwt;
    const out = await valueAndGrad(f, x.data as Float32Array, x.shape, r.data as Float32Array, device);
    assert.deepEqual(out.y4, y.shape);
    assertClose(out.y, y.data as Float32Array, 1e-4, `${name} output.y`);
    assertClose(out.g, gx.data as Float32Array, 1e-4, `${name} grad.input.x`);
    if (device === "cpu") {
      // same float32 operations in the same order as the official code: bitwise equal
      assert.deepEqual(out.y, y.data, `${name}: CPU forward is not bitwise PyTorch's`);
    }
  });
}

test("round trips iwt(dwt(x)) = x and dwt(iwt(y)) = y", async (device) => {
  for (const shape of [[2, 3, 8, 8], [1, 5, 6, 10], [3, 2, 2, 14]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = normals(n, 7 + shape[1]);
    const back = await apply((t) => iwt(dwt(t)), x, shape, device);
    assert.deepEqual(back.shape, shape);
    assertClose(back.data, x, 1e-6, `iwt(dwt(x)) ${shape}`);
    const yShape = [4 * shape[0], shape[1], shape[2] / 2, shape[3] / 2];
    const fwd = await apply((t) => dwt(iwt(t)), x, yShape, device);
    assert.deepEqual(fwd.shape, yShape);
    assertClose(fwd.data, x, 1e-6, `dwt(iwt(y)) ${yShape}`);
  }
});

interface PywtFixture {
  mapping: string;
  dwt: { shape: number[]; x: number[]; cA: number[]; cH: number[]; cV: number[]; cD: number[] };
  idwt: { shape: number[]; x: number[]; cA: number[]; cH: number[]; cV: number[]; cD: number[] };
}

test("PyWavelets 'haar' under LL = cA, HL = −cV, LH = −cH, HH = cD", async (device) => {
  const fx: PywtFixture = JSON.parse(await Deno.readTextFile(fixturePath("wavelet/pywt_haar.json")));
  assert.equal(fx.mapping, "LL = cA, HL = -cV, LH = -cH, HH = cD");
  const neg = (a: number[]) => a.map((v) => -v);
  // forward: the bands stacked on the batch axis, mapped from PyWavelets' coefficients
  const want = [...fx.dwt.cA, ...neg(fx.dwt.cV), ...neg(fx.dwt.cH), ...fx.dwt.cD];
  const y = await apply(dwt, Float32Array.from(fx.dwt.x), fx.dwt.shape, device);
  assertClose(y.data, want, 1e-6, "dwt vs pywt.dwt2");
  // inverse: iwt([LL; HL; LH; HH]) = idwt2((cA, (cH, cV, cD))) with LL = cA, HL = −cV, LH = −cH, HH = cD
  const bands = [...fx.idwt.cA, ...neg(fx.idwt.cV), ...neg(fx.idwt.cH), ...fx.idwt.cD];
  const [b, c, h, w] = fx.idwt.shape;
  const x = await apply(iwt, Float32Array.from(bands), [4 * b, c, h, w], device);
  assert.deepEqual(x.shape, [b, c, 2 * h, 2 * w]);
  assertClose(x.data, fx.idwt.x, 1e-6, "iwt vs pywt.idwt2");
});

test("gradcheck of dwt and iwt", async (device) => {
  for (const [f, shape] of [[dwt, [2, 2, 4, 6]], [iwt, [8, 2, 3, 2]]] as const) {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = T.tensor(normals(n, 3), { shape: [...shape], device, requiresGrad: true });
    // a nonlinearity after the transform so that a wrong rule cannot hide behind linearity in R
    const res = await T.gradcheck((t) => T.tanh(f(t)), [x], { eps: 1e-2, atol: 1e-2, rtol: 1e-2 });
    x.dispose();
    assert.ok(res.ok, `${f.name}: ${res.details}`);
  }
});

test("orthonormality: the gradient of sum(dwt(x)²) = sum(x²) is 2x", async (device) => {
  const x = T.tensor(normals(2 * 1 * 4 * 4, 11), { shape: [2, 1, 4, 4], device, requiresGrad: true });
  const y = T.tidy(() => T.sum(T.square(dwt(x))));
  // sum(dwt(x)²) = sum(x²) (orthonormal), so the gradient is 2x
  y.backward();
  assertClose(await x.grad!.data(), Float32Array.from(await x.data(), (v) => 2 * v), 1e-6, "grad of |dwt(x)|²");
  y.dispose();
  x.dispose();
});

if (devices.includes("webgpu")) {
  Deno.test({
    name: "wavelet: WebGPU matches the CPU bitwise on a larger shape",
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const shape = [3, 5, 34, 18];
      const x = normals(shape.reduce((a, b) => a * b, 1), 21);
      const yShape = [12, 5, 17, 9];
      const [dc, dg] = await Promise.all((["cpu", "webgpu"] as const).map((d) => apply(dwt, x, shape, d)));
      assertClose(dg.data, dc.data, 0, "dwt webgpu vs cpu");
      const [ic, ig] = await Promise.all((["cpu", "webgpu"] as const).map((d) => apply(iwt, x, yShape, d)));
      assertClose(ig.data, ic.data, 0, "iwt webgpu vs cpu");
    },
  });
}

test("DWT / IWT modules: no parameters, same results as the functions", async (device) => {
  const m = new DWT(), mi = new IWT();
  assert.equal(m.stateDict().size, 0);
  assert.equal(mi.stateDict().size, 0);
  const x = normals(2 * 3 * 4 * 4, 5);
  const a = await apply((t) => mi.forward(m.forward(t)), x, [2, 3, 4, 4], device);
  const b = await apply((t) => iwt(dwt(t)), x, [2, 3, 4, 4], device);
  assert.deepEqual(a.data, b.data);
});

test("odd sizes and bad batches throw errors naming the shape", (device) => {
  const x = T.zeros([1, 2, 5, 4], { device });
  assert.throws(() => dwt(x), /dwt: height and width must be even, got input shape \[1, 2, 5, 4\]/);
  const x2 = T.zeros([1, 2, 4, 7], { device });
  assert.throws(() => dwt(x2), /\[1, 2, 4, 7\]/);
  const y = T.zeros([6, 2, 2, 2], { device });
  assert.throws(() => iwt(y), /iwt: the batch must be a multiple of 4.*\[6, 2, 2, 2\]/);
  const v = T.zeros([4, 4], { device });
  assert.throws(() => dwt(v), /4-D/);
  assert.throws(() => iwt(v), /4-D/);
  for (const t of [x, x2, y, v]) t.dispose();
});
