/**
 * Numerical gradient checks: `gradcheck` (central differences in float64 on the host against the analytic
 * gradient of sum(fn(...)·R)) for every differentiable op, on every device from `testDevices()`, at
 * gradcheck's default tolerance (atol 1e-4, rtol 1e-2). And gradcheck itself: a custom op whose gradient rule
 * is dropped, zero, halved or 10 % off fails it, also where every gradient entry is below 0.01.
 *
 * Inputs are small, deterministic (a seeded PRNG below) and kept away from kinks and ties by more than
 * eps: relu/abs/clamp inputs stay ≥ 0.05 from the kink, max/maxPool/maximum operands lie on grids 0.05
 * apart, log/sqrt/rsqrt/pow bases and divisors are in [0.5, 2].
 */
import assert from "node:assert/strict";
import * as ops from "../mod.ts";
import type { Tensor } from "../mod.ts";
import type { Device } from "../autodiff/backend.ts";
import { testDevices } from "./util.ts";

const devices = await testDevices();

// ---- deterministic inputs ------------------------------------------------------------------------

/** mulberry32 */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashName(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

type Kind =
  | "randn" // standard normal
  | "pos" // uniform [0.5, 2)
  | "signed" // ±uniform [0.5, 2)
  | "distinct" // a shuffled grid k·0.1 (all distinct, 0.1 apart)
  | "grid" // random multiples of 0.1 in [-2, 2]
  | "halfgrid" // random odd multiples of 0.05 in [-2, 2]: ≥ 0.05 from any "grid" value
  | "away0"; // normal, but |x| ≥ 0.05

interface In {
  shape: number[];
  kind?: Kind;
  scale?: number;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function values(spec: In, next: () => number): Float32Array {
  const n = numel(spec.shape);
  const out = new Float32Array(n);
  const normal = () => {
    const u = 1 - next(), v = next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const kind = spec.kind ?? "randn";
  const scale = spec.scale ?? 1;
  if (kind === "distinct") {
    const perm = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    for (let i = 0; i < n; i++) out[i] = (perm[i] - n / 2) * 0.1 * scale;
    return out;
  }
  for (let i = 0; i < n; i++) {
    switch (kind) {
      case "randn":
        out[i] = normal() * scale;
        break;
      case "pos":
        out[i] = 0.5 + 1.5 * next();
        break;
      case "signed":
        out[i] = (0.5 + 1.5 * next()) * (next() < 0.5 ? -1 : 1);
        break;
      case "grid":
        out[i] = (Math.floor(next() * 41) - 20) * 0.1;
        break;
      case "halfgrid":
        out[i] = (Math.floor(next() * 40) - 20 + 0.5) * 0.1;
        break;
      case "away0": {
        let x = 0;
        do x = normal() * scale; while (Math.abs(x) < 0.05);
        out[i] = x;
        break;
      }
    }
  }
  return out;
}

// ---- the cases -----------------------------------------------------------------------------------

interface GradCase {
  name: string;
  inputs: In[];
  /** Builds fn on a device; `aux` holds extra (non-differentiated) tensors it created, disposed afterwards. */
  fn: (device: Device, aux: Tensor[]) => (...xs: Tensor[]) => Tensor;
  /** Linear (or piecewise linear away from kinks) ops use eps 1e-2 to keep float32 rounding small. */
  eps?: number;
}

const idx = (data: number[], shape: number[]) => (device: Device, aux: Tensor[]) => {
  const t = ops.tensor(Int32Array.from(data), { shape, dtype: "int32", device });
  aux.push(t);
  return t;
};

const bool = (data: number[], shape: number[]) => (device: Device, aux: Tensor[]) => {
  const t = ops.tensor(Uint8Array.from(data), { shape, dtype: "bool", device });
  aux.push(t);
  return t;
};

type Fn = (...xs: Tensor[]) => Tensor;
const same = (f: Fn) => () => f;
const L = 1e-2; // eps for linear ops

const GROUPS: Record<string, GradCase[]> = {
  shape: [
    { name: "reshape", inputs: [{ shape: [3, 4] }], fn: same((x) => ops.reshape(x, [2, -1])), eps: L },
    {
      name: "reshape_permuted",
      inputs: [{ shape: [3, 4, 2] }],
      fn: same((x) => ops.reshape(ops.permute(x, [2, 0, 1]), [6, 4])),
      eps: L,
    },
    { name: "flatten", inputs: [{ shape: [2, 3, 4] }], fn: same((x) => ops.flatten(x, 1)), eps: L },
    { name: "permute", inputs: [{ shape: [2, 3, 4] }], fn: same((x) => ops.permute(x, [1, 2, 0])), eps: L },
    { name: "transpose", inputs: [{ shape: [3, 5] }], fn: same((x) => ops.transpose(x, 0, -1)), eps: L },
    { name: "expand", inputs: [{ shape: [3, 1] }], fn: same((x) => ops.expand(x, [2, 3, 4])), eps: L },
    { name: "broadcastTo", inputs: [{ shape: [4] }], fn: same((x) => ops.broadcastTo(x, [3, 4])), eps: L },
    { name: "slice", inputs: [{ shape: [7, 5] }], fn: same((x) => ops.slice(x, 0, -6, 6, 2)), eps: L },
    {
      name: "concat",
      inputs: [{ shape: [2, 3] }, { shape: [2, 2] }],
      fn: same((a, b) => ops.concat([a, b], -1)),
      eps: L,
    },
    { name: "stack", inputs: [{ shape: [2, 3] }, { shape: [2, 3] }], fn: same((a, b) => ops.stack([a, b], 1)), eps: L },
    {
      name: "split",
      inputs: [{ shape: [7, 2] }],
      fn: same((x) => ops.concat(ops.split(x, 3, 0).map((p, i) => ops.mul(p, i + 1)), 0)),
      eps: L,
    },
    {
      name: "chunk",
      inputs: [{ shape: [2, 7] }],
      fn: same((x) => ops.concat(ops.chunk(x, 3, 1).map((p, i) => ops.mul(p, i + 2)), 1)),
      eps: L,
    },
    { name: "pad_constant", inputs: [{ shape: [3, 4] }], fn: same((x) => ops.pad(x, [1, 2, 0, 1])), eps: L },
    {
      name: "pad_reflect",
      inputs: [{ shape: [1, 2, 4, 5] }],
      fn: same((x) => ops.pad(x, [2, 1, 1, 2], { mode: "reflect" })),
      eps: L,
    },
    { name: "flip", inputs: [{ shape: [3, 4] }], fn: same((x) => ops.flip(x, [0, 1])), eps: L },
    { name: "rot90", inputs: [{ shape: [3, 4] }], fn: same((x) => ops.rot90(x, 1)), eps: L },
    {
      name: "gather",
      inputs: [{ shape: [3, 4] }],
      fn: (d, aux) => {
        const i = idx([0, 3, 3, 1, 2, 2, 0, 0, 1], [3, 3])(d, aux);
        return (x) => ops.gather(x, 1, i);
      },
      eps: L,
    },
    {
      name: "indexSelect",
      inputs: [{ shape: [4, 3] }],
      fn: (d, aux) => {
        const i = idx([3, 0, 3, 2], [4])(d, aux);
        return (x) => ops.indexSelect(x, 0, i);
      },
      eps: L,
    },
    {
      name: "indexSelect_last_dim",
      inputs: [{ shape: [2, 3, 5] }],
      fn: (d, aux) => {
        const i = idx([4, 0, 4, 1, 2, 4], [6])(d, aux);
        return (x) => ops.indexSelect(x, 2, i);
      },
      eps: L,
    },
    {
      name: "scatterAdd",
      inputs: [{ shape: [3, 4] }, { shape: [2, 4] }],
      fn: (d, aux) => {
        const i = idx([0, 2, 2, 1, 0, 0, 1, 2], [2, 4])(d, aux);
        return (x, s) => ops.scatterAdd(x, 0, i, s);
      },
      eps: L,
    },
  ],
  binary: [
    { name: "add", inputs: [{ shape: [3, 1, 4] }, { shape: [2, 1] }], fn: same((a, b) => ops.add(a, b)), eps: L },
    { name: "sub", inputs: [{ shape: [4] }, { shape: [3, 4] }], fn: same((a, b) => ops.sub(a, b)), eps: L },
    { name: "mul", inputs: [{ shape: [3, 4] }, { shape: [4] }], fn: same((a, b) => ops.mul(a, b)) },
    {
      name: "div",
      inputs: [{ shape: [3, 4] }, { shape: [3, 1], kind: "signed" }],
      fn: same((a, b) => ops.div(a, b)),
    },
    {
      name: "pow",
      inputs: [{ shape: [3, 4], kind: "pos" }, { shape: [4], scale: 0.7 }],
      fn: same((a, b) => ops.pow(a, b)),
    },
    { name: "pow_scalar", inputs: [{ shape: [3, 4], kind: "pos" }], fn: same((a) => ops.pow(a, 1.5)) },
    {
      name: "maximum",
      inputs: [{ shape: [3, 4], kind: "grid" }, { shape: [4], kind: "halfgrid" }],
      fn: same((a, b) => ops.maximum(a, b)),
      eps: L,
    },
    {
      name: "minimum",
      inputs: [{ shape: [3, 1], kind: "halfgrid" }, { shape: [3, 4], kind: "grid" }],
      fn: same((a, b) => ops.minimum(a, b)),
      eps: L,
    },
    {
      name: "where",
      inputs: [{ shape: [3, 4] }, { shape: [4] }],
      fn: (d, aux) => {
        const c = bool([1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1], [3, 4])(d, aux);
        return (a, b) => ops.where(c, a, b);
      },
      eps: L,
    },
  ],
  unary: [
    { name: "neg", inputs: [{ shape: [3, 4] }], fn: same((x) => ops.neg(x)), eps: L },
    { name: "abs", inputs: [{ shape: [3, 4], kind: "away0" }], fn: same((x) => ops.abs(x)) },
    { name: "exp", inputs: [{ shape: [3, 4] }], fn: same((x) => ops.exp(x)) },
    { name: "log", inputs: [{ shape: [3, 4], kind: "pos" }], fn: same((x) => ops.log(x)) },
    { name: "sqrt", inputs: [{ shape: [3, 4], kind: "pos" }], fn: same((x) => ops.sqrt(x)) },
    { name: "rsqrt", inputs: [{ shape: [3, 4], kind: "pos" }], fn: same((x) => ops.rsqrt(x)) },
    { name: "sin", inputs: [{ shape: [3, 4], scale: 2 }], fn: same((x) => ops.sin(x)) },
    { name: "cos", inputs: [{ shape: [3, 4], scale: 2 }], fn: same((x) => ops.cos(x)) },
    { name: "tanh", inputs: [{ shape: [3, 4], scale: 1.5 }], fn: same((x) => ops.tanh(x)) },
    { name: "sigmoid", inputs: [{ shape: [3, 4], scale: 2 }], fn: same((x) => ops.sigmoid(x)) },
    { name: "relu", inputs: [{ shape: [3, 4], kind: "away0" }], fn: same((x) => ops.relu(x)) },
    { name: "gelu", inputs: [{ shape: [3, 4], scale: 2 }], fn: same((x) => ops.gelu(x)) },
    { name: "silu", inputs: [{ shape: [3, 4], scale: 2 }], fn: same((x) => ops.silu(x)) },
    { name: "softplus", inputs: [{ shape: [3, 4], scale: 3 }], fn: same((x) => ops.softplus(x)) },
    { name: "clamp", inputs: [{ shape: [4, 5], kind: "halfgrid" }], fn: same((x) => ops.clamp(x, -0.5, 0.7)) },
    { name: "clamp_min_only", inputs: [{ shape: [4, 5], kind: "halfgrid" }], fn: same((x) => ops.clamp(x, 0.2)) },
    {
      name: "exp_permuted",
      inputs: [{ shape: [3, 4] }],
      fn: same((x) => ops.exp(ops.permute(x, [1, 0]))),
    },
  ],
  reduce: [
    { name: "sum_all", inputs: [{ shape: [3, 4] }], fn: same((x) => ops.sum(x)), eps: L },
    { name: "sum_dims", inputs: [{ shape: [2, 3, 4] }], fn: same((x) => ops.sum(x, [0, -1], true)), eps: L },
    { name: "mean", inputs: [{ shape: [2, 3, 4] }], fn: same((x) => ops.mean(x, 1)), eps: L },
    { name: "max", inputs: [{ shape: [3, 5], kind: "distinct" }], fn: same((x) => ops.max(x, 1)), eps: L },
    { name: "max_all", inputs: [{ shape: [3, 5], kind: "distinct" }], fn: same((x) => ops.max(x)), eps: L },
    {
      name: "min",
      inputs: [{ shape: [2, 3, 4], kind: "distinct" }],
      fn: same((x) => ops.min(x, [0, 2], true)),
      eps: L,
    },
    { name: "variance", inputs: [{ shape: [3, 5] }], fn: same((x) => ops.variance(x, 1)) },
    {
      name: "variance_biased_all",
      inputs: [{ shape: [3, 4] }],
      fn: same((x) => ops.variance(x, undefined, { unbiased: false })),
    },
    { name: "std", inputs: [{ shape: [3, 5] }], fn: same((x) => ops.std(x, -1, { keepdim: true })) },
    { name: "logsumexp", inputs: [{ shape: [3, 5], scale: 2 }], fn: same((x) => ops.logsumexp(x, 1)) },
    { name: "softmax", inputs: [{ shape: [3, 5], scale: 2 }], fn: same((x) => ops.softmax(x, -1)) },
    { name: "softmax_dim0", inputs: [{ shape: [3, 5], scale: 2 }], fn: same((x) => ops.softmax(x, 0)) },
    { name: "logSoftmax", inputs: [{ shape: [3, 5], scale: 2 }], fn: same((x) => ops.logSoftmax(x, 1)) },
    { name: "cumsum", inputs: [{ shape: [3, 5] }], fn: same((x) => ops.cumsum(x, 1)), eps: L },
  ],
  matmul: [
    { name: "2d", inputs: [{ shape: [3, 4] }, { shape: [4, 5] }], fn: same((a, b) => ops.matmul(a, b)), eps: L },
    { name: "1d_2d", inputs: [{ shape: [4] }, { shape: [4, 3] }], fn: same((a, b) => ops.matmul(a, b)), eps: L },
    { name: "2d_1d", inputs: [{ shape: [3, 4] }, { shape: [4] }], fn: same((a, b) => ops.matmul(a, b)), eps: L },
    {
      name: "batched_broadcast",
      inputs: [{ shape: [2, 1, 3, 4] }, { shape: [2, 4, 2] }],
      fn: same((a, b) => ops.matmul(a, b)),
      eps: L,
    },
    {
      name: "transposed",
      inputs: [{ shape: [4, 3] }, { shape: [5, 4] }],
      fn: same((a, b) => ops.matmul(ops.transpose(a, 0, 1), ops.transpose(b, 0, 1))),
      eps: L,
    },
    {
      name: "linear",
      inputs: [{ shape: [2, 3, 4] }, { shape: [5, 4] }, { shape: [5] }],
      fn: same((x, w, b) => ops.linear(x, w, b)),
      eps: L,
    },
  ],
  nn: [
    {
      name: "layerNorm_rows",
      inputs: [{ shape: [3, 2, 6] }, { shape: [6] }, { shape: [6] }],
      fn: same((x, w, b) => ops.layerNorm(x, 6, { weight: w, bias: b })),
    },
    {
      name: "layerNorm_two_dims_no_bias",
      inputs: [{ shape: [2, 3, 4] }, { shape: [3, 4] }],
      fn: same((x, w) => ops.layerNorm(x, [3, 4], { weight: w, eps: 1e-3 })),
    },
    {
      name: "layerNorm_channels_first",
      inputs: [{ shape: [2, 5, 3, 2] }, { shape: [5] }, { shape: [5] }],
      fn: same((x, w, b) => ops.layerNorm(x, 5, { weight: w, bias: b, axis: 1 })),
    },
    {
      name: "geluCrossGate",
      inputs: [{ shape: [2, 6, 3], scale: 2 }],
      fn: same((x) => ops.geluCrossGate(x, 1)),
    },
    { name: "layerNorm_plain", inputs: [{ shape: [4, 7] }], fn: same((x) => ops.layerNorm(x, 7)) },
    {
      name: "conv2d",
      inputs: [{ shape: [2, 2, 5, 6] }, { shape: [3, 2, 3, 3] }, { shape: [3] }],
      fn: same((x, w, b) => ops.conv2d(x, w, b, { stride: [2, 1], padding: 1 })),
      eps: L,
    },
    {
      name: "conv2d_groups_dilation",
      inputs: [{ shape: [1, 4, 6, 6] }, { shape: [2, 2, 2, 2] }],
      fn: same((x, w) => ops.conv2d(x, w, null, { groups: 2, dilation: 2, padding: "same" })),
      eps: L,
    },
    {
      name: "maxPool2d",
      inputs: [{ shape: [1, 2, 5, 6], kind: "distinct" }],
      fn: same((x) => ops.maxPool2d(x, 3, { stride: 2, padding: 1 })),
      eps: L,
    },
    {
      name: "avgPool2d",
      inputs: [{ shape: [1, 2, 5, 6] }],
      fn: same((x) => ops.avgPool2d(x, 3, { stride: 2, padding: 1, countIncludePad: false })),
      eps: L,
    },
    {
      name: "adaptiveAvgPool2d",
      inputs: [{ shape: [1, 2, 5, 7] }],
      fn: same((x) => ops.adaptiveAvgPool2d(x, [2, 3])),
      eps: L,
    },
    {
      name: "interpolate_bilinear",
      inputs: [{ shape: [1, 2, 3, 4] }],
      fn: same((x) => ops.interpolate(x, { size: [5, 6], mode: "bilinear" })),
      eps: L,
    },
    {
      name: "interpolate_bilinear_align_corners",
      inputs: [{ shape: [1, 1, 3, 4] }],
      fn: same((x) => ops.interpolate(x, { scaleFactor: 2, mode: "bilinear", alignCorners: true })),
      eps: L,
    },
    {
      name: "interpolate_nearest",
      inputs: [{ shape: [1, 2, 3, 4] }],
      fn: same((x) => ops.interpolate(x, { size: [5, 7], mode: "nearest" })),
      eps: L,
    },
  ],
};

async function runCase(c: GradCase, device: Device): Promise<void> {
  const next = rng(hashName(c.name));
  const aux: Tensor[] = [];
  const inputs = c.inputs.map((s) =>
    ops.tensor(values(s, next), { shape: s.shape, dtype: "float32", device, requiresGrad: true })
  );
  try {
    const fn = c.fn(device, aux);
    // gradcheck draws its cotangent R from the global generator: seeded per case, so no case depends on the
    // cases (or test files) that ran before it
    ops.manualSeed(hashName(c.name));
    // gradcheck's defaults, spelled out: |a − n| ≤ 1e-4 + 1e-2·|n| per entry and in the 2-norm per input
    const res = await ops.gradcheck(fn, inputs, { eps: c.eps ?? 1e-3, atol: 1e-4, rtol: 1e-2 });
    assert.ok(res.ok, `gradcheck ${c.name} [${device}] failed: maxError ${res.maxError}; ${res.details}`);
  } finally {
    for (const t of [...inputs, ...aux]) t.dispose();
  }
}

for (const device of devices) {
  for (const [group, cases] of Object.entries(GROUPS)) {
    Deno.test({
      name: `gradcheck: ${group} [${device}]`,
      sanitizeResources: device === "cpu",
      sanitizeOps: device === "cpu",
      fn: async (t) => {
        for (const c of cases) await t.step(`${c.name} [${device}]`, () => runCase(c, device));
      },
    });
  }
}

// ---- gradcheck must fail on a wrong rule -------------------------------------------------------------

/** exp(x)·scale as a custom op whose backward multiplies the true gradient by `factor` (null: no rule output). */
function customExp(scale: number, factor: number | null | "zeros"): Fn {
  return (x) => {
    const out = ops.noGrad(() => ops.mul(ops.exp(x), scale));
    return ops.record("customExp", out, [x], [out], (g, [y]) => {
      if (factor === null) return [null];
      if (factor === "zeros") return [ops.zerosLike(x)];
      return [ops.mul(ops.mul(g, y), factor)];
    });
  };
}

/** a·b as a custom op whose rule drops b's gradient. */
const mulDroppingB: Fn = (a, b) => {
  const out = ops.noGrad(() => ops.mul(a, b));
  return ops.record("mulDroppingB", out, [a, b], [a, b], (g, [, sb]) => [ops.mul(g, sb), null]);
};

async function check(fn: Fn, shapes: number[][], seed: number): Promise<ops.GradcheckResult> {
  const next = rng(seed);
  const xs = shapes.map((shape) =>
    ops.tensor(values({ shape, scale: 0.5 }, next), { shape, dtype: "float32", requiresGrad: true })
  );
  try {
    return await ops.gradcheck(fn, xs);
  } finally {
    for (const t of xs) t.dispose();
  }
}

Deno.test("gradcheck: a correct custom rule passes (the broken-rule cases below differ only in the rule)", async () => {
  const res = await check(customExp(1, 1), [[3, 4]], 1);
  assert.ok(res.ok, res.details);
  assert.ok(res.relError < 1e-3, `relError ${res.relError}`);
});

Deno.test("gradcheck: a dropped, zero, halved or 10 % wrong rule fails", async () => {
  for (const factor of [null, "zeros", 0.5, 0.9, 1.1, -1] as const) {
    const res = await check(customExp(1, factor), [[3, 4]], 2);
    assert.equal(res.ok, false, `factor ${factor}: gradcheck passed a wrong rule (${res.details})`);
    assert.match(res.details, /^input 0 /);
  }
  const res = await check(mulDroppingB, [[3, 4], [4]], 3);
  assert.equal(res.ok, false, "a rule that drops one input's gradient passed");
  assert.match(res.details, /^input 1 element 0: analytic 0, numeric /);
});

Deno.test("gradcheck: a zero rule fails even where every gradient entry is below 0.01 (the old atol)", async () => {
  const res = await check(customExp(2e-3, "zeros"), [[3, 4]], 4);
  assert.ok(res.maxError > 0 && res.maxError < 1e-2, `every entry below 0.01: maxError ${res.maxError}`);
  assert.equal(res.ok, false, `passed a zero rule: ${res.details}`);
  assert.ok(res.relError >= 0.999, `relError ${res.relError}`);
  // the same op with its correct rule passes
  const good = await check(customExp(2e-3, 1), [[3, 4]], 4);
  assert.ok(good.ok, good.details);
});
