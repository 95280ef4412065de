/**
 * The `Module` API as a specification: what gets registered and under which key, state dict round trips and
 * load errors, train/eval, freezing, device moves, dropout behaviour, initialiser statistics and flat memory.
 */
import assert from "node:assert/strict";
import { add, manualSeed, memoryStats, noGrad, randn, sum, type Tensor, tensor, tidy, zeros } from "../mod.ts";
import {
  BatchNorm2d,
  Conv2d,
  Dropout,
  DropPath,
  Identity,
  init,
  LayerNorm,
  Linear,
  Module,
  ModuleList,
  mseLoss,
  Parameter,
  ReLU,
  Sequential,
  StateDictMismatchError,
} from "../nn/index.ts";
import { testDevices } from "./util.ts";

const devices = await testDevices();
const opts = { sanitizeResources: false, sanitizeOps: false };

/** A torchvision-like BasicBlock: own fields in declaration order, an optional downsample. */
class Block extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu: ReLU = new ReLU();
  downsample: Sequential | null;
  constructor(cin: number, cout: number) {
    super();
    this.conv1 = new Conv2d(cin, cout, 3, { padding: 1, bias: false });
    this.bn1 = new BatchNorm2d(cout);
    this.downsample = cin === cout
      ? null
      : new Sequential(new Conv2d(cin, cout, 1, { bias: false }), new BatchNorm2d(cout));
  }
  forward(x: Tensor): Tensor {
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return this.relu.forward(add(this.bn1.forward(this.conv1.forward(x)), identity));
  }
}

class Net extends Module {
  stem = new Conv2d(3, 4, 3, { padding: 1 });
  scale = new Parameter(tensor([2]));
  layer1: Block[] = [new Block(4, 4), new Block(4, 8)];
  heads = new ModuleList([new Linear(8, 2), new Linear(8, 3, { bias: false })]);
  skip: Module | null = null;
  id = new Identity();
  counter = 3; // not state
  #cache: Tensor | null = null; // private: not state
  cached(): Tensor | null {
    return this.#cache;
  }
}

const NET_KEYS = [
  "scale",
  "stem.weight",
  "stem.bias",
  "layer1.0.conv1.weight",
  "layer1.0.bn1.weight",
  "layer1.0.bn1.bias",
  "layer1.0.bn1.running_mean",
  "layer1.0.bn1.running_var",
  "layer1.0.bn1.num_batches_tracked",
  "layer1.1.conv1.weight",
  "layer1.1.bn1.weight",
  "layer1.1.bn1.bias",
  "layer1.1.bn1.running_mean",
  "layer1.1.bn1.running_var",
  "layer1.1.bn1.num_batches_tracked",
  "layer1.1.downsample.0.weight",
  "layer1.1.downsample.1.weight",
  "layer1.1.downsample.1.bias",
  "layer1.1.downsample.1.running_mean",
  "layer1.1.downsample.1.running_var",
  "layer1.1.downsample.1.num_batches_tracked",
  "heads.0.weight",
  "heads.0.bias",
  "heads.1.weight",
];

async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

Deno.test({
  name: "registration: own tensors first, then sub-modules in field order, PyTorch dotted keys",
  ...opts,
  fn() {
    const net = new Net();
    try {
      assert.deepEqual([...net.stateDict().keys()], NET_KEYS);
      assert.deepEqual(
        net.namedParameters().map(([k]) => k),
        NET_KEYS.filter((k) => !/running_|num_batches/.test(k)),
      );
      assert.deepEqual(net.namedBuffers().map(([k]) => k), NET_KEYS.filter((k) => /running_|num_batches/.test(k)));
      assert.deepEqual(net.namedModules().map(([k]) => k), [
        "",
        "stem",
        "layer1.0",
        "layer1.0.conv1",
        "layer1.0.bn1",
        "layer1.0.relu",
        "layer1.1",
        "layer1.1.conv1",
        "layer1.1.bn1",
        "layer1.1.relu",
        "layer1.1.downsample",
        "layer1.1.downsample.0",
        "layer1.1.downsample.1",
        "heads",
        "heads.0",
        "heads.1",
        "id",
      ]);
      assert.deepEqual(net.namedChildren().map(([k]) => k), ["stem", "layer1.0", "layer1.1", "heads", "id"]);
      assert.equal(net.children()[0], net.stem);
      assert.equal(net.heads.at(1), net.heads.toArray()[1]);
      const bn = net.layer1[0].bn1;
      assert.equal(bn.num_batches_tracked!.dtype, "int32");
      assert.equal(net.numParameters(), net.parameters().reduce((n, p) => n + p.size, 0));
      assert.ok(net.parameters().every((p) => p instanceof Parameter && p.requiresGrad && p.dtype === "float32"));
      assert.equal(net.cached(), null);
    } finally {
      net.dispose();
    }
  },
});

Deno.test({
  name: "registration: Sequential keys by position or by name; a shared parameter is one parameter, two keys",
  ...opts,
  fn() {
    const seq = new Sequential(new Linear(2, 2), new ReLU(), new LayerNorm(2));
    const named = Sequential.named({ fc: new Linear(2, 3), act: new ReLU() });
    const shared = new Linear(2, 2);
    class Tied extends Module {
      a = shared;
      b = shared;
    }
    const tied = new Tied();
    try {
      assert.deepEqual([...seq.stateDict().keys()], ["0.weight", "0.bias", "2.weight", "2.bias"]);
      assert.equal(seq.length, 3);
      assert.deepEqual([...named.stateDict().keys()], ["fc.weight", "fc.bias"]);
      assert.deepEqual(tied.namedParameters().map(([k]) => k), ["a.weight", "a.bias"]);
      assert.deepEqual([...tied.stateDict().keys()], ["a.weight", "a.bias", "b.weight", "b.bias"]);
      assert.equal(tied.numParameters(), 6);
      assert.deepEqual(tied.namedModules().map(([k]) => k), ["", "a"]);
    } finally {
      seq.dispose();
      named.dispose();
      shared.dispose();
    }
  },
});

Deno.test({
  name: "a module built inside tidy keeps its parameters and buffers",
  ...opts,
  async fn() {
    const bn = tidy(() => new BatchNorm2d(3));
    assert.ok(bn.stateDict().size === 5 && [...bn.stateDict().values()].every((t) => !t.disposed));
    assert.deepEqual(await values(bn.running_var!), [1, 1, 1]);
    bn.dispose();
  },
});

Deno.test({
  name: "stateDict → loadStateDict round trip copies values and keeps the Parameter objects",
  ...opts,
  async fn() {
    manualSeed(1);
    const a = new Net();
    manualSeed(2);
    const b = new Net();
    try {
      // make a's buffers non-default: one training forward
      tidy(() => a.layer1[1].forward(randn([2, 4, 5, 5])));
      const before = b.parameters();
      const res = await b.loadStateDict(a.stateDict());
      assert.deepEqual(res, { missing: [], unexpected: [] });
      assert.deepEqual(b.parameters(), before, "same Parameter objects");
      for (const [k, t] of b.stateDict()) {
        assert.deepEqual(await values(t), await values(a.stateDict().get(k)!), k);
      }
      assert.deepEqual(await values(b.layer1[1].bn1.num_batches_tracked!), [1]);
      // a plain object works too, and a float num_batches_tracked (e.g. from a converted checkpoint) becomes int32
      const bn = new BatchNorm2d(2);
      await bn.loadStateDict({
        weight: tensor([1, 2]),
        bias: tensor([0, 1]),
        running_mean: tensor([0.5, 0.5]),
        running_var: tensor([2, 2]),
        num_batches_tracked: tensor(7),
      });
      assert.equal(bn.num_batches_tracked!.dtype, "int32");
      assert.deepEqual(await values(bn.num_batches_tracked!), [7]);
      assert.deepEqual(await values(bn.weight!), [1, 2]);
      bn.dispose();
    } finally {
      a.dispose();
      b.dispose();
    }
  },
});

Deno.test({
  name: "strict load fails with one error naming missing, unexpected and mis-shaped keys; nothing is written",
  ...opts,
  async fn() {
    const m = new Sequential(new Linear(3, 2), new BatchNorm2d(2));
    const sd = new Map(m.stateDict());
    const w0 = await values(m.at(0).stateDict().get("weight")!);
    const owned = [tensor([[1, 2, 3, 4, 5, 6]]), tensor([1]), tensor([9, 9])];
    sd.delete("1.running_var");
    sd.set("0.weight", owned[0]);
    sd.set("2.weight", owned[1]);
    sd.set("1.bias", owned[2]);
    try {
      await assert.rejects(
        () => m.loadStateDict(sd),
        (e: Error) => {
          assert.ok(e instanceof StateDictMismatchError);
          assert.match(e.message, /^loadStateDict\(Sequential\): /);
          assert.match(e.message, /missing keys \(1\): 1\.running_var\n/);
          assert.match(e.message, /unexpected keys \(1\): 2\.weight\n/);
          assert.match(e.message, /shape mismatches \(1\): 0\.weight: checkpoint \[1,6\], module \[2,3\]$/);
          assert.deepEqual(e.missing, ["1.running_var"]);
          assert.deepEqual(e.unexpected, ["2.weight"]);
          assert.deepEqual(e.misShaped, [{ key: "0.weight", given: [1, 6], expected: [2, 3] }]);
          return true;
        },
      );
      assert.deepEqual(await values(m.at(0).stateDict().get("weight")!), w0, "nothing loaded after a failure");
      // non-strict still refuses a shape mismatch
      await assert.rejects(() => m.loadStateDict(sd, { strict: false }), /shape mismatches/);
      // non-strict without it loads what matches and reports the rest
      sd.delete("0.weight");
      const res = await m.loadStateDict(sd, { strict: false });
      assert.deepEqual(res, { missing: ["0.weight", "1.running_var"], unexpected: ["2.weight"] });
      assert.deepEqual(await values(m.stateDict().get("1.bias")!), [9, 9]);
    } finally {
      m.dispose();
      owned.forEach((t) => t.dispose());
    }
  },
});

Deno.test({
  name:
    "a badly mismatched state dict gives a short message (first 5 keys and counts); the full lists are on the error",
  ...opts,
  async fn() {
    // 40 layers whose dict comes from another architecture: 80 missing, 80 unexpected, 40 mis-shaped keys
    const m = new Sequential(...Array.from({ length: 40 }, () => new Linear(2, 2)));
    const other = new Sequential(...Array.from({ length: 40 }, () => new Linear(3, 3)));
    const sd = new Map<string, Tensor>();
    for (const [k, t] of other.stateDict()) {
      sd.set(k, t);
      sd.set(`encoder.${k}`, t);
    }
    const wanted = [...m.stateDict().keys()];
    try {
      await assert.rejects(
        () => m.loadStateDict(sd),
        (e: Error) => {
          assert.ok(e instanceof StateDictMismatchError);
          assert.equal(e.module, "Sequential");
          assert.deepEqual(e.missing, []);
          assert.deepEqual(e.unexpected, [...sd.keys()].filter((k) => k.startsWith("encoder.")));
          assert.equal(e.unexpected.length, 80);
          assert.deepEqual(e.misShaped.map((x) => x.key), wanted);
          assert.ok(e.message.length < 1000, `${e.message.length} characters: ${e.message}`);
          assert.match(
            e.message,
            /unexpected keys \(80\): encoder\.0\.weight, encoder\.0\.bias, encoder\.1\.weight, encoder\.1\.bias, encoder\.2\.weight, … 75 more\n/,
          );
          assert.match(
            e.message,
            /shape mismatches \(80\): 0\.weight: checkpoint \[3,3\], module \[2,2\]; .*; … 75 more$/,
          );
          assert.doesNotMatch(e.message, /encoder\.3\.weight|\b39\.bias/);
          return true;
        },
      );
      const renamed = new Map([...sd].filter(([k]) => k.startsWith("encoder.")));
      await assert.rejects(
        () => m.loadStateDict(renamed),
        (e: Error) => {
          assert.ok(e instanceof StateDictMismatchError);
          assert.deepEqual(e.missing, wanted);
          assert.match(
            e.message,
            /missing keys \(80\): 0\.weight, 0\.bias, 1\.weight, 1\.bias, 2\.weight, … 75 more\n/,
          );
          assert.deepEqual(e.misShaped, []);
          return true;
        },
      );
    } finally {
      m.dispose();
      other.dispose();
    }
  },
});

Deno.test({
  name: "train()/eval() set the flag on every sub-module; BatchNorm then uses running statistics",
  ...opts,
  async fn() {
    const net = new Net();
    try {
      assert.ok(net.modules().every((m) => m.training));
      assert.equal(net.eval(), net);
      assert.ok(net.modules().every((m) => !m.training));
      const bn = net.layer1[0].bn1;
      const x = randn([2, 4, 3, 3]);
      // eval with fresh statistics (mean 0, var 1): y = x / √(1 + eps)
      const y = bn.forward(x);
      const want = (await values(x)).map((v) => v / Math.sqrt(1 + 1e-5));
      (await values(y)).forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-5));
      assert.deepEqual(await values(bn.num_batches_tracked!), [0], "eval does not count batches");
      net.train();
      assert.ok(net.modules().every((m) => m.training));
      x.dispose();
      y.dispose();
    } finally {
      net.dispose();
    }
  },
});

Deno.test({
  name: "requiresGrad_(false) freezes: frozen parameters get no gradient, the rest still do",
  ...opts,
  fn() {
    const model = new Sequential(new Linear(4, 4), new ReLU(), new Linear(4, 1));
    try {
      model.at(0).requiresGrad_(false);
      assert.equal(model.numParameters(true), 5);
      const loss = tidy(() => sum(model.forward(randn([3, 4]))));
      loss.backward();
      const [w0, b0, w2, b2] = model.parameters();
      assert.equal(w0.grad, null);
      assert.equal(b0.grad, null);
      assert.ok(w2.grad && b2.grad);
      model.zeroGrad();
      assert.ok(model.parameters().every((p) => p.grad === null));
      loss.dispose();
    } finally {
      model.dispose();
    }
  },
});

Deno.test({
  name: "errors name the layer, the mismatch and the input shape",
  ...opts,
  fn() {
    const conv = new Conv2d(3, 64, 3);
    const fc = new Linear(8, 2);
    const x = zeros([1, 4, 5, 5]);
    try {
      assert.throws(() => conv.forward(x), /Conv2d\(3→64\): input has 4 channels, expected 3, input shape \[1,4,5,5\]/);
      assert.throws(() => fc.forward(x), /Linear\(8→2\): input last dim is 5, expected 8, input shape \[1,4,5,5\]/);
      assert.throws(() => new BatchNorm2d(3).forward(x), /BatchNorm2d\(3\): input has 4 channels/);
      assert.throws(() => new Conv2d(3, 4, 3, { stride: 2, padding: "same" }), /Conv2d\(3→4\): padding "same"/);
    } finally {
      conv.dispose();
      fc.dispose();
      x.dispose();
    }
  },
});

Deno.test({
  name: "to(device) moves every tensor and back, keeping the Parameter and buffer objects" +
    (devices.includes("webgpu") ? "" : " (ignored: no WebGPU adapter)"),
  ignore: !devices.includes("webgpu"),
  ...opts,
  async fn(t) {
    const net = new Net();
    try {
      const before = [...net.stateDict().entries()];
      const host = await Promise.all(before.map(([, v]) => values(v)));
      await t.step("to webgpu", async () => {
        assert.equal(await net.to("webgpu"), net);
        for (const [k, v] of net.stateDict()) {
          assert.equal(v, before.find(([kk]) => kk === k)![1], `${k} is the same object`);
          assert.equal(v.device, "webgpu");
        }
        const y = tidy(() => net.layer1[1].forward(randn([1, 4, 3, 3], { device: "webgpu" })));
        assert.equal(y.device, "webgpu");
        y.dispose();
      });
      await t.step("back to cpu", async () => {
        await net.eval().to("cpu");
        const after = [...net.stateDict().values()];
        assert.ok(after.every((v) => v.device === "cpu"));
        // only the two training-mode BatchNorms' buffers changed
        for (let i = 0; i < before.length; i++) {
          if (!before[i][0].startsWith("layer1.1.")) assert.deepEqual(await values(after[i]), host[i], before[i][0]);
        }
      });
    } finally {
      net.dispose();
    }
  },
});

Deno.test({
  name: "Dropout: identity in eval; in training drops a p fraction and scales the rest by 1/(1-p)",
  ...opts,
  async fn() {
    const drop = new Dropout(0.3);
    const x = tensor(new Float32Array(100_000).fill(1));
    try {
      drop.eval();
      assert.equal(drop.forward(x), x);
      drop.train();
      manualSeed(5);
      const y = drop.forward(x);
      const v = await values(y);
      const zerosFrac = v.filter((a) => a === 0).length / v.length;
      assert.ok(Math.abs(zerosFrac - 0.3) < 0.01, `dropped fraction ${zerosFrac}`);
      assert.ok(v.every((a) => a === 0 || Math.abs(a - 1 / 0.7) < 1e-6));
      // same seed, same mask
      manualSeed(5);
      const y2 = drop.forward(x);
      assert.deepEqual(await values(y2), v);
      y.dispose();
      y2.dispose();
    } finally {
      x.dispose();
    }
  },
});

Deno.test({
  name: "DropPath: per-sample mask (each sample all kept ×1/keep or all dropped), keep fraction, eval identity",
  ...opts,
  async fn() {
    for (const device of devices) {
      const dp = new DropPath(0.25);
      const n = 4000, per = 6;
      const x = randn([n, 2, 3], { device });
      manualSeed(11);
      const y = dp.forward(x);
      const xv = await values(x), yv = await values(y);
      let kept = 0;
      for (let i = 0; i < n; i++) {
        const row = yv.slice(i * per, (i + 1) * per), src = xv.slice(i * per, (i + 1) * per);
        const isKept = row.some((v) => v !== 0);
        if (isKept) {
          kept++;
          row.forEach((v, j) => assert.ok(Math.abs(v - src[j] / 0.75) < 1e-5));
        } else assert.ok(row.every((v) => v === 0));
      }
      assert.ok(Math.abs(kept / n - 0.75) < 0.03, `kept fraction ${kept / n} on ${device}`);
      // the mask comes from the seeded generator: the same on every device
      const maskOn = async (d: typeof device) => {
        manualSeed(11);
        const ones = tensor(new Float32Array(n).fill(1), { shape: [n, 1], device: d });
        const out = new DropPath(0.25).forward(ones);
        const v = await values(out);
        ones.dispose();
        out.dispose();
        return v;
      };
      assert.deepEqual(await maskOn(device), await maskOn("cpu"));
      dp.eval();
      assert.equal(dp.forward(x), x);
      assert.equal(new DropPath(0).forward(x), x);
      x.dispose();
      y.dispose();
    }
  },
});

/** Mean and (population) standard deviation. */
function moments(v: ArrayLike<number>): { mean: number; std: number; min: number; max: number } {
  let s = 0, s2 = 0, min = Infinity, max = -Infinity;
  for (let i = 0; i < v.length; i++) {
    s += v[i];
    s2 += v[i] * v[i];
    min = Math.min(min, v[i]);
    max = Math.max(max, v[i]);
  }
  const mean = s / v.length;
  return { mean, std: Math.sqrt(s2 / v.length - mean * mean), min, max };
}

Deno.test({
  name: "init: bounds and standard deviations follow torch.nn.init's formulas",
  ...opts,
  async fn() {
    manualSeed(0);
    const shape = [256, 128, 3, 3]; // fan_in 1152, fan_out 2304, 294912 values
    const fanIn = 128 * 9, fanOut = 256 * 9;
    const check = async (t: Tensor, want: { std: number; bound?: number; mean?: number }, what: string) => {
      const m = moments(await t.data());
      t.dispose();
      assert.ok(Math.abs(m.mean - (want.mean ?? 0)) < 0.01 * want.std, `${what}: mean ${m.mean}`);
      assert.ok(Math.abs(m.std / want.std - 1) < 0.01, `${what}: std ${m.std}, want ${want.std}`);
      if (want.bound !== undefined) {
        const lim = want.bound * (1 + 1e-6); // float32 rounding of values at the bound
        assert.ok(m.min >= -lim && m.max <= lim, `${what}: range [${m.min}, ${m.max}]`);
        assert.ok(m.max > 0.999 * want.bound && m.min < -0.999 * want.bound, `${what}: reaches the bounds`);
      }
    };
    // PyTorch's default conv/linear init: kaiming_uniform(a=√5) → bound 1/√fan_in
    const b5 = 1 / Math.sqrt(fanIn);
    await check(init.kaimingUniform(shape, { a: Math.sqrt(5) }), { std: b5 / Math.sqrt(3), bound: b5 }, "kaiming a=√5");
    const bRelu = Math.sqrt(2) * Math.sqrt(3 / fanIn);
    await check(
      init.kaimingUniform(shape, { nonlinearity: "relu" }),
      { std: bRelu / Math.sqrt(3), bound: bRelu },
      "kU",
    );
    await check(
      init.kaimingNormal(shape, { mode: "fanOut", nonlinearity: "relu" }),
      { std: Math.sqrt(2 / fanOut) },
      "kaimingNormal fanOut relu",
    );
    const bx = Math.sqrt(6 / (fanIn + fanOut)) * (5 / 3);
    await check(
      init.xavierUniform(shape, { gain: init.calculateGain("tanh") }),
      { std: bx / Math.sqrt(3), bound: bx },
      "xU",
    );
    await check(init.xavierNormal(shape), { std: Math.sqrt(2 / (fanIn + fanOut)) }, "xavierNormal");
    await check(init.normal(shape, 1, 0.5), { std: 0.5, mean: 1 }, "normal");
    const u = init.uniform(shape, -3, 1);
    const mu = moments(await u.data());
    assert.ok(mu.min >= -3 && mu.max < 1 && mu.min < -2.999 && mu.max > 0.999, `uniform range [${mu.min}, ${mu.max}]`);
    await check(u, { std: 4 / Math.sqrt(12), mean: -1 }, "uniform");
    // trunc_normal(std 0.02) as the models use it: [-2, 2] is 100 σ away, so plain N(0, 0.02²)
    await check(init.truncNormal(shape, { std: 0.02 }), { std: 0.02 }, "truncNormal std 0.02");
    // a real truncation: N(0.5, 1) cut to [-1, 1]; moments from the truncated-normal formulas
    const phi = (z: number) => Math.exp(-z * z / 2) / Math.sqrt(2 * Math.PI);
    const cdf = (z: number) => {
      // Φ by Simpson's rule on [0, z]
      const n = 2000, h = z / n;
      let s = phi(0) + phi(z);
      for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * phi(i * h);
      return 0.5 + (s * h) / 3;
    };
    const al = -1 - 0.5, be = 1 - 0.5, Z = cdf(be) - cdf(al);
    const tMean = 0.5 + (phi(al) - phi(be)) / Z;
    const tVar = 1 + (al * phi(al) - be * phi(be)) / Z - ((phi(al) - phi(be)) / Z) ** 2;
    const tr = init.truncNormal(shape, { mean: 0.5, std: 1, a: -1, b: 1 });
    const m = moments(await tr.data());
    tr.dispose();
    assert.ok(m.min >= -1 && m.max <= 1, `truncNormal range [${m.min}, ${m.max}]`);
    assert.ok(Math.abs(m.mean - tMean) < 0.005, `truncNormal mean ${m.mean}, want ${tMean}`);
    assert.ok(Math.abs(m.std - Math.sqrt(tVar)) < 0.005, `truncNormal std ${m.std}, want ${Math.sqrt(tVar)}`);
    assert.equal(init.calculateGain("leaky_relu"), Math.sqrt(2 / (1 + 0.01 ** 2)));
    assert.deepEqual(init.calculateFanInAndFanOut([8, 4, 3, 3]), [36, 72]);
    assert.throws(() => init.kaimingUniform([5]), /fewer than 2 dims/);
  },
});

Deno.test({
  name: "init: filling a Parameter in place keeps the object; layer defaults use PyTorch's bounds",
  ...opts,
  async fn() {
    const fc = new Linear(400, 300);
    const conv = new Conv2d(16, 32, 3, { groups: 2 });
    try {
      const w = fc.weight;
      assert.equal(init.constant(w, 0.5), w);
      assert.equal(fc.weight, w);
      assert.ok((await values(w)).every((v) => v === 0.5));
      init.truncNormal(fc.weight, { std: 0.02 });
      assert.ok(Math.abs(moments(await fc.weight.data()).std - 0.02) < 0.001);
      const lin = new Linear(400, 300);
      const mw = moments(await lin.weight.data()), mb = moments(await lin.bias!.data());
      assert.ok(mw.max <= 1 / 20 && mw.min >= -1 / 20 && mw.max > 0.049, "Linear weight U(±1/√400)");
      assert.ok(mb.max <= 1 / 20 && mb.min >= -1 / 20, "Linear bias U(±1/√400)");
      lin.dispose();
      const cb = 1 / Math.sqrt(8 * 9); // fan_in = in/groups·k²
      const mc = moments(await conv.weight.data());
      assert.ok(mc.max <= cb && mc.min >= -cb && mc.max > 0.95 * cb, `Conv2d weight U(±${cb})`);
    } finally {
      fc.dispose();
      conv.dispose();
    }
  },
});

Deno.test({
  name: "memory stays flat over 30 training steps of a small Sequential inside tidy",
  ...opts,
  async fn() {
    for (const device of devices) {
      manualSeed(3);
      const model = new Sequential(
        new Conv2d(2, 4, 3, { padding: 1 }),
        new BatchNorm2d(4),
        new ReLU(),
        new DropPath(0.2),
        new Conv2d(4, 2, 1),
      );
      await model.to(device);
      const x = randn([2, 2, 6, 6], { device }), target = randn([2, 2, 6, 6], { device });
      const step = () => {
        tidy(() => {
          const loss = mseLoss(model.forward(x), target);
          loss.backward();
        });
        noGrad(() =>
          tidy(() => {
            for (const p of model.parameters()) p.assign(p.sub(p.grad!.mul(0.01)));
          })
        );
        model.zeroGrad();
      };
      step();
      step();
      const before = memoryStats()[device]!;
      for (let i = 0; i < 30; i++) step();
      const after = memoryStats()[device]!;
      assert.equal(after.buffers, before.buffers, `${device}: live buffers ${before.buffers} → ${after.buffers}`);
      assert.equal(after.bytes, before.bytes, `${device}: live bytes`);
      assert.deepEqual(await values(model.at(1).stateDict().get("num_batches_tracked")!), [32]);
      model.dispose();
      x.dispose();
      target.dispose();
      const freed = memoryStats()[device]!;
      assert.ok(freed.buffers < before.buffers, "dispose() frees the module's tensors");
    }
  },
});
