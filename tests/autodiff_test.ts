/**
 * Autograd and tensor-lifetime semantics, run on every device from `testDevices()`: backward on scalars,
 * gradient accumulation, noGrad / detach, leaf-only `.grad`, explicit output gradients, retainGraph and
 * freed graphs, release of saved tensors, tidy / keep / `using` / dispose, `Tensor.assign`, seeded
 * random creation, and the creation functions (expected values follow PyTorch's documented semantics).
 */
import assert from "node:assert/strict";
import {
  add,
  arange,
  cast,
  conv2d,
  exp,
  full,
  Generator,
  isGradEnabled,
  keep,
  linspace,
  log,
  manualSeed,
  matmul,
  max,
  mean,
  memoryStats,
  mul,
  noGrad,
  ones,
  onesLike,
  rand,
  randint,
  randn,
  relu,
  reshape,
  sigmoid,
  slice,
  softmax,
  split,
  sub,
  sum,
  tanh,
  type Tensor,
  tensor,
  tidy,
  zeros,
  zerosLike,
} from "../mod.ts";
import type { Device } from "../mod.ts";
import { testDevices } from "./util.ts";

const devices = await testDevices();

interface TestOptions {
  /** Skip the test (used for tests that document a known framework bug). */
  ignore?: boolean;
}

/** Registers `fn` once per device. */
function test(name: string, fn: (device: Device) => Promise<void> | void, opts: TestOptions = {}): void {
  for (const device of devices) {
    Deno.test({
      name: `autodiff: ${name} [${device}]`,
      ignore: opts.ignore ?? false,
      // WebGPU keeps device resources across tests; the CPU backend may load OpenBLAS through FFI.
      sanitizeResources: false,
      sanitizeOps: false,
      fn: () => fn(device),
    });
  }
}

/** The tensor's values as a flat JS number array. */
async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

/** Asserts that the flat values of `t` are within `tol` of `expected` (and the shape matches when given). */
async function assertClose(
  t: Tensor | null,
  expected: number[],
  opts: { shape?: number[]; tol?: number; msg?: string } = {},
): Promise<void> {
  assert.ok(t, `${opts.msg ?? "tensor"}: expected a tensor, got null`);
  if (opts.shape) assert.deepEqual([...t.shape], opts.shape, `${opts.msg ?? "tensor"}: shape`);
  const got = await values(t);
  assert.equal(got.length, expected.length, `${opts.msg ?? "tensor"}: length`);
  const tol = opts.tol ?? 1e-5;
  for (let i = 0; i < got.length; i++) {
    const ok = Math.abs(got[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i]));
    assert.ok(ok, `${opts.msg ?? "tensor"}: element ${i}: got ${got[i]}, expected ${expected[i]} (all: ${got})`);
  }
}

function live(device: Device): { buffers: number; bytes: number } {
  const m = memoryStats()[device];
  assert.ok(m, `memoryStats() has no entry for ${device}`);
  return { buffers: m.buffers, bytes: m.bytes };
}

// ---- backward basics ---------------------------------------------------------------------------------

test("backward() on a scalar loss gives d(sum x²)/dx = 2x", async (device) => {
  const x = tensor([1, -2, 3], { device, requiresGrad: true });
  const loss = sum(mul(x, x));
  assert.deepEqual([...loss.shape], []);
  assert.equal(loss.requiresGrad, true);
  loss.backward();
  await assertClose(x.grad, [2, -4, 6], { shape: [3] });
  assert.equal(x.grad!.requiresGrad, false, "gradients themselves do not require grad");
});

test("backward() on a one-element tensor of shape [1] and on a leaf scalar", async (device) => {
  // torch allows implicit grad for any one-element output
  const x = tensor([2, 3], { device, requiresGrad: true });
  const y = reshape(sum(mul(x, 4)), [1]);
  y.backward();
  await assertClose(x.grad, [4, 4]);
  const leaf = tensor(5, { device, requiresGrad: true });
  leaf.backward();
  await assertClose(leaf.grad, [1], { shape: [] });
});

test("backward() on a non-scalar without a grad throws naming the shape", (device) => {
  const x = tensor([[1, 2], [3, 4]], { device, requiresGrad: true });
  const y = mul(x, x);
  assert.throws(() => y.backward(), /backward.*one-element.*\[2,2\]/);
});

test("gradients accumulate across two backward calls", async (device) => {
  const x = tensor([1, 2, 3], { device, requiresGrad: true });
  sum(mul(x, 3)).backward();
  await assertClose(x.grad, [3, 3, 3]);
  sum(mul(x, x)).backward();
  await assertClose(x.grad, [5, 7, 9]);
  x.zeroGrad();
  assert.equal(x.grad, null);
  sum(mul(x, 2)).backward();
  await assertClose(x.grad, [2, 2, 2]);
});

test("gradients accumulate across two uses of one tensor in a graph", async (device) => {
  const x = tensor([1, 2, 3], { device, requiresGrad: true });
  // y = x*x + x  →  dy/dx = 2x + 1
  sum(add(mul(x, x), x)).backward();
  await assertClose(x.grad, [3, 5, 7]);
  x.zeroGrad();
  // the same tensor twice as the inputs of one op
  sum(add(x, x)).backward();
  await assertClose(x.grad, [2, 2, 2]);
  x.zeroGrad();
  // a diamond: a = 2x, b = exp(x), y = a*b → dy/dx = 2 e^x + 2x e^x
  const a = mul(x, 2);
  const b = exp(x);
  sum(mul(a, b)).backward();
  await assertClose(x.grad, [1, 2, 3].map((v) => 2 * Math.exp(v) * (1 + v)), { tol: 1e-5 });
});

test("a leaf used by two losses sums both contributions (w.grad of x@w and sum(w))", async (device) => {
  const x = tensor([[1, 2], [3, 4]], { device });
  const w = tensor([[1, 0], [0, 1]], { device, requiresGrad: true });
  // d/dw sum(x @ w) = xᵀ @ 1 = column sums of x repeated: [[4,4],[6,6]]; plus d/dw sum(w) = 1
  sum(add(sum(matmul(x, w)), sum(w))).backward();
  await assertClose(w.grad, [5, 5, 7, 7], { shape: [2, 2] });
  assert.equal(x.grad, null, "a tensor without requiresGrad gets no grad");
});

// ---- noGrad, detach, leaves ---------------------------------------------------------------------------

test("noGrad records nothing and backward on its output throws", async (device) => {
  const x = tensor([1, 2], { device, requiresGrad: true });
  assert.equal(isGradEnabled(), true);
  const y = noGrad(() => {
    assert.equal(isGradEnabled(), false);
    return sum(mul(exp(x), 2));
  });
  assert.equal(isGradEnabled(), true, "grad mode is restored");
  assert.equal(y.requiresGrad, false);
  assert.equal(y.node, null);
  await assertClose(y, [2 * (Math.E + Math.exp(2))], { tol: 1e-5 });
  assert.throws(() => y.backward(), /backward.*does not require grad/);
  assert.equal(x.grad, null);
});

test("noGrad restores grad mode after fn throws", (device) => {
  assert.throws(() =>
    noGrad(() => {
      throw new Error("boom");
    }), /boom/);
  assert.equal(isGradEnabled(), true);
  const x = tensor([1], { device, requiresGrad: true });
  assert.equal(mul(x, 2).requiresGrad, true);
});

test("detach() shares the values and cuts the graph", async (device) => {
  const x = tensor([1, 2, 3], { device, requiresGrad: true });
  const d = mul(x, 2).detach();
  assert.equal(d.requiresGrad, false);
  assert.equal(d.node, null);
  await assertClose(d, [2, 4, 6]);
  // torch: y = (2x).detach(); (y * x).sum().backward() → x.grad = y
  sum(mul(d, x)).backward();
  await assertClose(x.grad, [2, 4, 6]);
  // detaching a leaf: no gradient reaches the original
  const x2 = tensor([1, 2], { device, requiresGrad: true });
  const y2 = sum(mul(x2.detach(), 3));
  assert.equal(y2.requiresGrad, false);
  assert.throws(() => y2.backward(), /does not require grad/);
});

test("only leaves with requiresGrad get .grad; intermediates have none", async (device) => {
  const x = tensor([1, 2], { device, requiresGrad: true });
  const c = tensor([10, 20], { device }); // a constant leaf
  const h = mul(x, 2);
  const k = add(h, c);
  assert.equal(h.requiresGrad, true);
  assert.ok(h.node, "an op output that requires grad has a node");
  assert.equal(x.node, null, "a leaf has no node");
  // loss = Σ (2x + c)²  →  dx = 4 (2x + c)
  sum(mul(k, k)).backward();
  await assertClose(x.grad, [4 * 12, 4 * 24]);
  assert.equal(h.grad, null, "intermediate h has no grad");
  assert.equal(k.grad, null, "intermediate k has no grad");
  assert.equal(c.grad, null, "constant leaf has no grad");
});

test("requiresGrad_ only for float32 tensors", (device) => {
  const i = tensor([1, 2], { device, dtype: "int32" });
  assert.throws(() => i.requiresGrad_(), /requiresGrad_.*float32.*int32/);
  assert.throws(() => tensor([1, 2], { device, dtype: "int32", requiresGrad: true }), /float32/);
  const f = tensor([1, 2], { device });
  assert.equal(f.requiresGrad_(), f);
  assert.equal(f.requiresGrad, true);
});

// torch: x.float() on a float tensor returns x itself and clone() is differentiable, so gradients flow.
test("x.float() / cast to the same dtype keeps the graph", async (device) => {
  const x = tensor([1, 2], { device, requiresGrad: true });
  const y = x.float();
  assert.equal(y.requiresGrad, true);
  sum(mul(cast(x, "float32"), 3)).backward();
  await assertClose(x.grad, [3, 3]);
});

test("clone() is differentiable", async (device) => {
  const x = tensor([1, 2], { device, requiresGrad: true });
  sum(mul(x.clone(), 3)).backward();
  await assertClose(x.grad, [3, 3]);
});

// ---- explicit output gradients and retainGraph -------------------------------------------------------

test("backward(grad) with an explicit output gradient", async (device) => {
  const x = tensor([[1, 2], [3, 4]], { device, requiresGrad: true });
  const y = mul(x, x);
  const g = tensor([[1, 0.5], [2, -1]], { device });
  y.backward(g);
  // dL/dx = 2x · g
  await assertClose(x.grad, [2, 2, 12, -8], { shape: [2, 2] });
  await assertClose(g, [1, 0.5, 2, -1], { msg: "the given grad is left intact" });
  g.dispose();
  await assertClose(x.grad, [2, 2, 12, -8], { msg: "x.grad survives disposing the given grad" });
});

test("backward(grad) on a leaf stores that gradient", async (device) => {
  const x = tensor([1, 2], { device, requiresGrad: true });
  const g = tensor([3, -4], { device });
  x.backward(g);
  g.dispose();
  await assertClose(x.grad, [3, -4]);
});

test("backward(grad) on a leaf inside tidy keeps the gradient", async (device) => {
  const x = tensor([1, 2], { device, requiresGrad: true });
  const g = tensor([3, -4], { device });
  tidy(() => x.backward(g));
  assert.equal(x.grad?.disposed, false, "x.grad was disposed by tidy");
  await assertClose(x.grad, [3, -4]);
});

test("backward inside tidy keeps the leaf gradients (the training-step pattern)", async (device) => {
  const w = tensor([[1, 2], [3, 4]], { device, requiresGrad: true });
  const x = tensor([[1, 1]], { device });
  for (let step = 0; step < 2; step++) {
    tidy(() => {
      const loss = sum(matmul(x, w));
      loss.backward();
    });
  }
  // d/dw sum(x @ w) = xᵀ 1 = ones, twice
  await assertClose(w.grad, [2, 2, 2, 2]);
});

test("backward(grad) with a mismatched shape throws and leaves the graph usable", async (device) => {
  const x = tensor([[1, 2], [3, 4]], { device, requiresGrad: true });
  const y = mul(x, 3);
  const bad = ones([4], { device });
  assert.throws(() => y.backward(bad), /backward.*grad shape \[4\].*output shape \[2,2\]/);
  const bad2 = ones([2, 2, 1], { device });
  assert.throws(() => y.backward(bad2), /\[2,2,1\].*\[2,2\]/);
  assert.equal(x.grad, null);
  y.backward(ones([2, 2], { device }));
  await assertClose(x.grad, [3, 3, 3, 3]);
});

test("retainGraph: true allows a second backward", async (device) => {
  const x = tensor([1, 2, 3], { device, requiresGrad: true });
  const loss = sum(mul(x, x));
  loss.backward(undefined, { retainGraph: true });
  await assertClose(x.grad, [2, 4, 6]);
  loss.backward(undefined, { retainGraph: true });
  await assertClose(x.grad, [4, 8, 12]);
  loss.backward();
  await assertClose(x.grad, [6, 12, 18]);
  assert.throws(() => loss.backward(), /already freed/);
});

test("a second backward through a freed graph throws the 'already freed' error", async (device) => {
  const x = tensor([1, 2, 3], { device, requiresGrad: true });
  const h = exp(x);
  const loss = sum(mul(h, h));
  loss.backward();
  const first = await values(x.grad!);
  assert.throws(() => loss.backward(), /backward.*already freed.*retainGraph/);
  // a new loss that shares the freed subgraph (h) also cannot go through it
  assert.throws(() => sum(mul(h, 2)).backward(), /already freed/);
  // a fresh graph still works
  x.zeroGrad();
  sum(mul(x, 2)).backward();
  await assertClose(x.grad, [2, 2, 2]);
  assert.equal(first.length, 3);
});

// ---- memory: saved tensors, tidy, using, dispose -----------------------------------------------------

test("saved tensors are released after backward (live buffers return to the start)", (device) => {
  manualSeed(3);
  const x = randn([4, 5], { device });
  const w = randn([5, 3], { device, requiresGrad: true });
  const bias = randn([3], { device, requiresGrad: true });
  const scale = randn([4, 3], { device, requiresGrad: true });
  const start = live(device);
  const loss = tidy(() => {
    const h = tanh(add(matmul(x, w), bias));
    const p = softmax(mul(h, scale), 1);
    const q = sub(log(add(p, 1)), sigmoid(relu(h)));
    return add(mean(mul(q, q)), max(exp(h)));
  });
  const during = live(device);
  assert.ok(during.buffers > start.buffers + 1, "the graph holds saved tensors before backward");
  loss.backward();
  assert.ok(w.grad && bias.grad && scale.grad);
  assert.deepEqual([...w.grad.shape], [5, 3]);
  assert.deepEqual([...bias.grad.shape], [3]);
  const after = live(device);
  assert.equal(after.buffers, start.buffers + 4, "after backward only the loss and three grads are new");
  loss.dispose();
  w.zeroGrad();
  bias.zeroGrad();
  scale.zeroGrad();
  assert.deepEqual(live(device), start);
  x.dispose();
  w.dispose();
  bias.dispose();
  scale.dispose();
});

test("saved tensors of conv2d are released after backward", (device) => {
  manualSeed(4);
  const x = randn([2, 3, 6, 6], { device });
  const k = randn([4, 3, 3, 3], { device, requiresGrad: true });
  const b = randn([4], { device, requiresGrad: true });
  const start = live(device);
  const loss = tidy(() => mean(relu(conv2d(x, k, b, { padding: 1, stride: 2 }))));
  loss.backward();
  loss.dispose();
  k.zeroGrad();
  b.zeroGrad();
  assert.deepEqual(live(device), start);
});

test("retainGraph keeps saved tensors until the final backward", (device) => {
  const x = tensor([1, 2, 3], { device, requiresGrad: true });
  const start = live(device);
  const loss = tidy(() => sum(mul(exp(x), x)));
  loss.backward(undefined, { retainGraph: true });
  x.zeroGrad();
  const retained = live(device);
  assert.ok(retained.buffers > start.buffers + 1, "saved tensors still alive with retainGraph");
  loss.backward();
  x.zeroGrad();
  loss.dispose();
  assert.deepEqual(live(device), start);
});

test("tidy disposes intermediates and keeps the returned tensor", async (device) => {
  const outside = tensor([1, 2, 3], { device });
  const start = live(device);
  let inner: Tensor[] = [];
  const out = tidy(() => {
    const a = mul(outside, 2);
    const b = add(a, 1);
    inner = [a, b];
    return exp(b);
  });
  assert.ok(inner.every((t) => t.disposed), "intermediates are disposed");
  assert.equal(out.disposed, false);
  assert.equal(outside.disposed, false, "tensors from outside are untouched");
  await assertClose(out, [3, 5, 7].map(Math.exp), { tol: 1e-5 });
  assert.equal(live(device).buffers, start.buffers + 1);
  out.dispose();
  assert.deepEqual(live(device), start);
});

test("tidy keeps tensors returned in arrays and plain objects", async (device) => {
  const x = tensor([1, 2], { device });
  const start = live(device);
  let tmp: Tensor | null = null;
  const r = tidy(() => {
    tmp = mul(x, 10);
    const a = add(tmp, 1);
    const b = add(tmp, 2);
    const c = add(tmp, 3);
    return { list: [a, b], nested: { c }, n: 4 };
  });
  assert.equal(tmp!.disposed, true);
  assert.equal(r.n, 4);
  await assertClose(r.list[0], [11, 21]);
  await assertClose(r.list[1], [12, 22]);
  await assertClose(r.nested.c, [13, 23]);
  assert.equal(live(device).buffers, start.buffers + 3);
  for (const t of [...r.list, r.nested.c]) t.dispose();
  assert.deepEqual(live(device), start);
});

test("nested tidy moves returned tensors to the outer scope; keep() escapes every scope", async (device) => {
  const start = live(device);
  let fromInner: Tensor | null = null;
  let kept: Tensor | null = null;
  const out = tidy(() => {
    fromInner = tidy(() => add(ones([2], { device }), 1));
    kept = keep(full([2], 9, { device }));
    return mul(fromInner, 3);
  });
  assert.equal(fromInner!.disposed, true, "the inner result is disposed by the outer tidy");
  assert.equal(kept!.disposed, false);
  await assertClose(out, [6, 6]);
  await assertClose(kept, [9, 9]);
  out.dispose();
  kept!.dispose();
  assert.deepEqual(live(device), start);
});

test("tidy rejects an async fn", (device) => {
  assert.throws(
    () => tidy(async () => await Promise.resolve(zeros([1], { device }))),
    /tidy.*synchronous/,
  );
});

test("using disposes at the end of the block", async (device) => {
  const start = live(device);
  let seen: Tensor | null = null;
  {
    using t = ones([3], { device });
    seen = t;
    await assertClose(t, [1, 1, 1]);
    assert.equal(live(device).buffers, start.buffers + 1);
  }
  assert.equal(seen.disposed, true);
  assert.deepEqual(live(device), start);
});

test("dispose() then use throws a clear error; dispose is idempotent", async (device) => {
  const t = tensor([[1, 2], [3, 4]], { device });
  t.dispose();
  assert.equal(t.disposed, true);
  t.dispose();
  assert.throws(() => add(t, 1), /disposed/);
  assert.throws(() => add(t, ones([2, 2], { device })), /tensor #\d+ \[2,2\] was disposed/);
  assert.throws(() => exp(t), /disposed/);
  await assert.rejects(async () => await t.data(), /disposed/);
  await assert.rejects(() => t.array(), /disposed/);
  // a reshape shares storage: disposing the source leaves the view alive
  const u = tensor([1, 2, 3, 4], { device });
  const v = reshape(u, [2, 2]);
  u.dispose();
  await assertClose(v, [1, 2, 3, 4], { shape: [2, 2] });
  v.dispose();
});

test("Tensor.assign swaps the data and keeps identity", async (device) => {
  const p = tensor([1, 2], { device, requiresGrad: true });
  const id = p.id;
  const start = live(device);
  const q = tensor([5, 6], { device });
  assert.equal(p.assign(q), p);
  assert.equal(p.id, id);
  assert.equal(p.requiresGrad, true);
  await assertClose(p, [5, 6]);
  q.dispose();
  await assertClose(p, [5, 6], { msg: "assigned data survives disposing the source" });
  assert.equal(live(device).buffers, start.buffers, "the old buffer was freed");
  // still a leaf that takes gradients
  sum(mul(p, p)).backward();
  await assertClose(p.grad, [10, 12]);
  assert.throws(() => p.assign(tensor([1, 2, 3], { device })), /assign.*\[3\].*\[2\]/);
  assert.throws(() => p.assign(tensor([1, 2], { device, dtype: "int32" })), /assign.*int32/);
  const nonLeaf = mul(p, 2);
  assert.throws(() => nonLeaf.assign(tensor([0, 0], { device })), /assign.*leaf/);
});

test("assign does not change values saved by an earlier graph", async (device) => {
  const p = tensor([1, 2], { device, requiresGrad: true });
  const loss = sum(mul(p, p)); // saves p's data
  p.assign(tensor([100, 100], { device }));
  loss.backward();
  await assertClose(p.grad, [2, 4]);
});

// ---- seeded random ----------------------------------------------------------------------------------

async function draws(device: Device, seed: number): Promise<{ u: number[]; n: number[]; i: number[] }> {
  manualSeed(seed);
  const u = rand([5, 3], { device });
  const n = randn([7], { device });
  const i = randint(-3, 10, [9], { device });
  assert.equal(u.dtype, "float32");
  assert.equal(n.dtype, "float32");
  assert.equal(i.dtype, "int32");
  const out = { u: await values(u), n: await values(n), i: await values(i) };
  u.dispose();
  n.dispose();
  i.dispose();
  return out;
}

test("manualSeed gives identical rand/randn/randint values on this device and on cpu", async (device) => {
  const here = await draws(device, 1234);
  const cpu = await draws("cpu", 1234);
  assert.deepEqual(here, cpu);
});

test("manualSeed is reproducible across re-seeding; different seeds differ", async (device) => {
  const a = await draws(device, 7);
  const b = await draws(device, 7);
  assert.deepEqual(a, b);
  // without re-seeding the stream continues
  manualSeed(7);
  const first = rand([4], { device });
  const second = rand([4], { device });
  assert.notDeepEqual(await values(first), await values(second));
  const c = await draws(device, 8);
  assert.notDeepEqual(a.u, c.u);
  assert.notDeepEqual(a.n, c.n);
  // an explicit generator with the same seed draws the same stream
  manualSeed(99);
  const g1 = await values(rand([6], { device }));
  const g2 = await values(rand([6], { device, generator: new Generator(99) }));
  assert.deepEqual(g1, g2);
});

test("rand in [0, 1), randint in [low, high), randn ~ N(0, 1)", async (device) => {
  manualSeed(0);
  const u = await values(rand([4000], { device }));
  assert.ok(u.every((v) => v >= 0 && v < 1));
  const mu = u.reduce((a, b) => a + b, 0) / u.length;
  assert.ok(Math.abs(mu - 0.5) < 0.03, `rand mean ${mu}`);
  const r = await values(randint(2, 5, [3000], { device }));
  assert.ok(r.every((v) => Number.isInteger(v) && v >= 2 && v < 5));
  assert.deepEqual([...new Set(r)].sort(), [2, 3, 4]);
  const n = await values(randn([8000], { device }));
  const m = n.reduce((a, b) => a + b, 0) / n.length;
  const sd = Math.sqrt(n.reduce((a, b) => a + (b - m) ** 2, 0) / n.length);
  assert.ok(Math.abs(m) < 0.05, `randn mean ${m}`);
  assert.ok(Math.abs(sd - 1) < 0.05, `randn std ${sd}`);
  const shaped = rand([2, 3, 4], { device });
  assert.deepEqual([...shaped.shape], [2, 3, 4]);
});

// ---- creation -------------------------------------------------------------------------------------------

test("zeros, ones, full, zerosLike, onesLike", async (device) => {
  const z = zeros([2, 3], { device });
  assert.equal(z.dtype, "float32");
  assert.equal(z.device, device);
  assert.deepEqual(await z.array(), [[0, 0, 0], [0, 0, 0]]);
  const o = ones([3], { device });
  assert.deepEqual(await o.array(), [1, 1, 1]);
  const f = full([2, 2], 7.5, { device });
  assert.deepEqual(await f.array(), [[7.5, 7.5], [7.5, 7.5]]);
  const s = full([], -3, { device });
  assert.deepEqual([...s.shape], []);
  assert.equal(await s.item(), -3);
  const empty = zeros([0, 4], { device });
  assert.equal(empty.size, 0);
  assert.deepEqual(await empty.array(), []);
  const fi = full([3], -7, { device, dtype: "int32" });
  assert.equal(fi.dtype, "int32");
  assert.deepEqual(await values(fi), [-7, -7, -7]);
  const ob = ones([2], { device, dtype: "bool" });
  assert.equal(ob.dtype, "bool");
  assert.deepEqual(await values(ob), [1, 1]);
  const zl = zerosLike(fi);
  assert.equal(zl.dtype, "int32");
  assert.equal(zl.device, device);
  assert.deepEqual(await values(zl), [0, 0, 0]);
  const ol = onesLike(f);
  assert.deepEqual(await ol.array(), [[1, 1], [1, 1]]);
  const big = full([1000], 0.1, { device });
  assert.ok((await values(big)).every((v) => v === Math.fround(0.1)));
});

test("arange: integer ranges, negative steps and float steps", async (device) => {
  const a = arange(5, undefined, 1, { device });
  assert.equal(a.dtype, "int32");
  assert.deepEqual(await a.array(), [0, 1, 2, 3, 4]);
  assert.deepEqual(await arange(2, 6, 1, { device }).array(), [2, 3, 4, 5]);
  assert.deepEqual(await arange(10, 0, -3, { device }).array(), [10, 7, 4, 1]);
  assert.deepEqual(await arange(0, 10, 3, { device }).array(), [0, 3, 6, 9]);
  assert.deepEqual([...arange(3, 3, 1, { device }).shape], [0]);
  assert.deepEqual([...arange(5, 0, 1, { device }).shape], [0], "an empty range, as torch");
  const f = arange(0, 1, 0.25, { device });
  assert.equal(f.dtype, "float32");
  assert.deepEqual(await f.array(), [0, 0.25, 0.5, 0.75]);
  // torch.arange(0, 1, 0.1) has 10 elements (ceil((end - start) / step))
  await assertClose(arange(0, 1, 0.1, { device }), [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], {
    shape: [10],
    tol: 1e-6,
  });
  await assertClose(arange(1, 2.5, 0.5, { device }), [1, 1.5, 2], { shape: [3] });
  await assertClose(arange(5, 0, -1.5, { device }), [5, 3.5, 2, 0.5], { shape: [4] });
  await assertClose(arange(-1, 1, 0.5, { device }), [-1, -0.5, 0, 0.5], { shape: [4] });
  const asFloat = arange(3, undefined, 1, { device, dtype: "float32" });
  assert.equal(asFloat.dtype, "float32");
  assert.deepEqual(await asFloat.array(), [0, 1, 2]);
  assert.throws(() => arange(0, 5, 0, { device }), /arange.*step/);
});

test("linspace includes both ends", async (device) => {
  const l = linspace(0, 1, 5, { device });
  assert.equal(l.dtype, "float32");
  assert.deepEqual(await l.array(), [0, 0.25, 0.5, 0.75, 1]);
  await assertClose(linspace(2, 10, 3, { device }), [2, 6, 10]);
  await assertClose(linspace(-1, 1, 1, { device }), [-1], { shape: [1] });
  assert.deepEqual([...linspace(0, 1, 0, { device }).shape], [0]);
  await assertClose(linspace(0, 1, 6, { device }), [0, 0.2, 0.4, 0.6, 0.8, 1], { tol: 1e-6 });
  await assertClose(linspace(3, -3, 4, { device }), [3, 1, -1, -3]);
  const ends = await values(linspace(-0.3, 0.7, 11, { device }));
  assert.equal(ends[0], Math.fround(-0.3));
  assert.equal(ends[10], Math.fround(0.7));
});

test("tensor() from nested arrays, scalars and typed arrays", async (device) => {
  const m = tensor([[1, 2, 3], [4, 5, 6]], { device });
  assert.deepEqual([...m.shape], [2, 3]);
  assert.equal(m.dtype, "float32");
  assert.deepEqual(await m.array(), [[1, 2, 3], [4, 5, 6]]);
  const deep = tensor([[[1], [2]]], { device });
  assert.deepEqual([...deep.shape], [1, 2, 1]);
  assert.deepEqual(await deep.array(), [[[1], [2]]]);
  const s = tensor(2.5, { device });
  assert.deepEqual([...s.shape], []);
  assert.equal(s.ndim, 0);
  assert.equal(await s.item(), 2.5);
  const e = tensor([], { device });
  assert.deepEqual([...e.shape], [0]);
  const shaped = tensor([1, 2, 3, 4, 5, 6], { device, shape: [3, 2] });
  assert.deepEqual(await shaped.array(), [[1, 2], [3, 4], [5, 6]]);
  const ti = tensor(new Int32Array([1, -2, 3]), { device });
  assert.equal(ti.dtype, "int32");
  assert.deepEqual(await values(ti), [1, -2, 3]);
  const tf = tensor(new Float32Array([0.5, 1.5]), { device });
  assert.equal(tf.dtype, "float32");
  assert.deepEqual(await values(tf), [0.5, 1.5]);
  // float32 rounding, as torch.tensor([0.1]).item() == 0.10000000149011612
  assert.equal(await tensor([0.1], { device }).item(), Math.fround(0.1));
});

test("tensor() with int32 and bool dtypes", async (device) => {
  // torch.tensor([1.7, -1.7, 2], dtype=torch.int32) truncates toward zero
  const i = tensor([1.7, -1.7, 2], { device, dtype: "int32" });
  assert.equal(i.dtype, "int32");
  assert.deepEqual(await values(i), [1, -1, 2]);
  const b = tensor([1, 0, -2, 0.5], { device, dtype: "bool" });
  assert.equal(b.dtype, "bool");
  assert.deepEqual(await values(b), [1, 0, 1, 1]);
  const bs = tensor(true, { device });
  assert.equal(bs.dtype, "bool");
  assert.equal(await bs.item(), 1);
  const bu = tensor(new Uint8Array([0, 1]), { device });
  assert.equal(bu.dtype, "bool");
  assert.deepEqual(await bu.array(), [0, 1]);
  // a boolean list with a float dtype becomes 0/1
  const bf = tensor([true, false], { device, dtype: "float32" });
  assert.deepEqual(await bf.array(), [1, 0]);
  // int arithmetic stays int: torch.tensor([1,2], dtype=int32) + 3 → int32 [4, 5]
  const sum2 = add(tensor([1, 2], { device, dtype: "int32" }), 3);
  assert.equal(sum2.dtype, "int32");
  assert.deepEqual(await values(sum2), [4, 5]);
});

// torch.tensor([True, False, True]).dtype == torch.bool.
test("tensor() infers bool from an array of booleans", async (device) => {
  const b = tensor([true, false, true], { device });
  assert.equal(b.dtype, "bool");
  assert.deepEqual(await values(b), [1, 0, 1]);
  const nested = tensor([[true], [false]], { device });
  assert.equal(nested.dtype, "bool");
});

test("tidy: a throwing function still releases what it created", (device) => {
  const before = memoryStats()[device]!.buffers;
  assert.throws(
    () =>
      tidy(() => {
        mul(ones([4, 4], { device }), 2);
        throw new Error("boom");
      }),
    /boom/,
  );
  assert.equal(memoryStats()[device]!.buffers, before);
});

// ---- slice gradients joined per input (split's chunks, overlaps, partial use) ----------------------------

/** x (2, 6) = 0..11 requiring grad; `loss(x)` is backpropagated and x's gradient returned, with the live count. */
async function sliceGrad(device: Device, loss: (x: Tensor) => Tensor): Promise<{ grad: number[]; leaked: number }> {
  const x = tensor(Array.from({ length: 12 }, (_, i) => i), { shape: [2, 6], device, requiresGrad: true });
  const start = live(device).buffers;
  const l = tidy(() => loss(x));
  l.backward();
  l.dispose();
  const grad = Array.from(await x.grad!.data());
  x.zeroGrad();
  const leaked = live(device).buffers - start;
  x.dispose();
  return { grad, leaked };
}

/** Σ x·w with w = 1, 2, … over x's elements (its gradient is w). */
const weighted = (x: Tensor, from: number) =>
  sum(mul(x, tensor(Array.from({ length: x.size }, (_, i) => from + i), { shape: x.shape, device: x.device })));

test("split's chunk gradients join into the input's gradient (all, some, or overlapping slices)", async (device) => {
  // all chunks along dim 1: a concat of their gradients
  let r = await sliceGrad(device, (x) => {
    const [a, b, c] = split(x, [1, 3, 2], 1);
    return add(add(weighted(a, 100), weighted(b, 200)), weighted(c, 300));
  });
  assert.deepEqual(r.grad, [100, 200, 201, 202, 300, 301, 101, 203, 204, 205, 302, 303]);
  assert.equal(r.leaked, 0);
  // one chunk unused: zeros there
  r = await sliceGrad(device, (x) => weighted(split(x, 2, 1)[1], 1));
  assert.deepEqual(r.grad, [0, 0, 1, 2, 0, 0, 0, 0, 3, 4, 0, 0]);
  assert.equal(r.leaked, 0);
  // overlapping slices, a step-2 slice, a slice along dim 0 and x itself: every contribution added
  r = await sliceGrad(device, (x) =>
    add(
      add(weighted(slice(x, 1, 0, 4), 1), weighted(slice(x, 1, 2, 6), 10)),
      add(add(weighted(slice(x, 1, 0, 6, 2), 100), weighted(slice(x, 0, 1, 2), 1000)), sum(x)),
    ));
  const want = [
    [1 + 100 + 1, 2 + 1, 3 + 10 + 101 + 1, 4 + 11 + 1, 12 + 102 + 1, 13 + 1],
    [5 + 103 + 1000 + 1, 6 + 1001 + 1, 7 + 14 + 104 + 1002 + 1, 8 + 15 + 1003 + 1, 16 + 105 + 1004 + 1, 17 + 1005 + 1],
  ].flat();
  assert.deepEqual(r.grad, want);
  assert.equal(r.leaked, 0);
});
