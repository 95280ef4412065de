/**
 * MambaAD's decoder blocks against the official PyTorch modules (docs/paper.md §0, reduced copies in
 * tests/fixtures/official): the HSS block (docs/paper.md §1.6) and the LSS module (§1.5), built from each fixture's
 * `constructor_args`, loaded strictly under the official keys; output and every gradient compared with
 * |a − b| ≤ 1e-4·max|b| per tensor, and with an absolute 1e-4 for the fixture's `grad_zero_in_exact_arithmetic`
 * entries (conv biases feeding an affine-free InstanceNorm: their true gradient is 0). Also the docs/paper.md §1.12
 * per-unit parameter counts and the docs/paper.md §1.5 LSS initialisation.
 */
import assert from "node:assert/strict";
import type { Device } from "../autodiff/backend.ts";
import * as T from "../mod.ts";
import { HSSBlock } from "../models/mambaad/hss.ts";
import { lssInit, LSSModule } from "../models/mambaad/lss.ts";
import { loadSafetensors } from "../nn/io/safetensors.ts";
import { type HostTensor, toTensor } from "../nn/io/common.ts";
import type { Module } from "../nn/module.ts";
import { testDevices } from "./util.ts";

interface FixtureMeta {
  constructor_args: Record<string, number | string>;
  grad_zero_in_exact_arithmetic: string[];
}

async function fixture(name: string) {
  const st = await loadSafetensors(new URL(`./fixtures/official/${name}.safetensors`, import.meta.url));
  return { tensors: st.tensors, meta: JSON.parse(st.metadata.fixture) as FixtureMeta };
}

function close(got: ArrayLike<number>, want: HostTensor, what: string, absolute = false): void {
  let scale = 0, err = 0;
  for (let i = 0; i < want.data.length; i++) {
    scale = Math.max(scale, Math.abs(want.data[i]));
    err = Math.max(err, Math.abs(got[i] - want.data[i]));
  }
  const tol = absolute ? 1e-4 : 1e-4 * scale;
  assert.ok(err <= tol, `${what}: max |diff| ${err} > ${tol} (scale ${scale})`);
}

/** Loads the params, runs forward + backward with the stored upstream, compares the output and every gradient. */
async function checkBlock(
  model: Module & { forward(x: T.Tensor): T.Tensor },
  fx: Map<string, HostTensor>,
  zeroGrads: readonly string[],
  device: Device,
) {
  const sd = new Map<string, T.Tensor>();
  for (const [k, v] of fx) if (k.startsWith("param.")) sd.set(k.slice(6), toTensor(v, { device }));
  await model.loadStateDict(sd);
  for (const t of sd.values()) t.dispose();
  model.eval();
  const x = toTensor(fx.get("input.x")!, { device, requiresGrad: true });
  const r = toTensor(fx.get("upstream.y")!, { device });
  const y = T.tidy(() => model.forward(x));
  assert.deepEqual([...y.shape], fx.get("output.y")!.shape);
  close(await y.data(), fx.get("output.y")!, "output.y");
  y.backward(r);
  close(await x.grad!.data(), fx.get("grad.input.x")!, "grad.input.x");
  let checked = 0;
  for (const [key, p] of model.namedParameters()) {
    const want = fx.get(`grad.param.${key}`);
    assert.ok(want, `fixture has no gradient for ${key}`);
    assert.ok(p.grad, `${key} got no gradient`);
    close(await p.grad.data(), want, `grad.param.${key}`, zeroGrads.includes(key));
    checked++;
  }
  // every float parameter gradient of the fixture was compared
  assert.equal(checked, [...fx.keys()].filter((k) => k.startsWith("grad.param.")).length);
  for (const t of [x, r, y]) t.dispose();
  model.dispose();
}

for (const device of await testDevices()) {
  Deno.test({
    name: `HSSBlock (MambaAD) matches the official module [${device}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const { tensors, meta } = await fixture("mambaad_hss_block");
      const a = meta.constructor_args;
      assert.equal(a.scan_type, "hilbert");
      assert.equal(a.num_direction, 8);
      const m = new HSSBlock(a.hidden_dim as number, {
        dropPath: a.drop_path as number,
        dState: a.d_state as number,
        size: a.size as number,
        device,
      });
      await checkBlock(m, tensors, meta.grad_zero_in_exact_arithmetic, device);
    },
  });
  Deno.test({
    name: `LSSModule (MambaAD) matches the official module [${device}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const { tensors, meta } = await fixture("mambaad_lss_module");
      const a = meta.constructor_args;
      assert.equal(a.scan_type, "hilbert");
      assert.equal(a.num_direction, 8);
      assert.equal(meta.grad_zero_in_exact_arithmetic.length, 4);
      const m = new LSSModule(a.hidden_dim as number, a.depth as number, {
        dropPath: a.drop_path as number,
        dState: a.d_state as number,
        size: a.size as number,
        device,
      });
      // the official key list, in order (no ADer conv33)
      const keys = [...tensors.keys()].filter((k) => k.startsWith("param.")).map((k) => k.slice(6));
      assert.deepEqual(new Set(m.stateDict().keys()), new Set(keys));
      await checkBlock(m, tensors, meta.grad_zero_in_exact_arithmetic, device);
    },
  });
}

Deno.test({
  name: "HSS/LSS: parameter counts of docs/paper.md §1.12 and state-dict order of the MambaAD key list",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => {
    // per unit (no scan tables): HSS block; LSS conv part (4 1×1, dw5, dw7, finalconv11)
    const hss = [[512, 2_520_064], [256, 735_744], [128, 236_800], [64, 85_632]];
    const conv = new Map([[512, 1_875_456], [256, 478_976], [128, 124_800], [64, 33_728]]);
    for (const [c, want] of hss) {
      const b = new HSSBlock(c);
      assert.equal(b.numParameters(), want, `HSSBlock(${c})`);
      b.dispose();
    }
    // the decoder (docs/paper.md §1.3 stages: 1×3, 2×2, 2×3, 1×3 HSS per LSS) plus the three PatchExpand2D = 15,986,624
    let decoder = 524_800 + 131_328 + 32_896;
    for (const [c, modules, depth] of [[512, 1, 3], [256, 2, 2], [128, 2, 3], [64, 1, 3]]) {
      const want = depth * hss.find(([w]) => w === c)![1] + conv.get(c)!;
      const m = new LSSModule(c, depth, { init: false });
      assert.equal(m.numParameters(), want, `LSSModule(${c}, ${depth})`);
      m.dispose();
      assert.equal(conv.get(c), 4 * (c * c + c) + 25 * c + 49 * c + 3 * c * c + c);
      decoder += modules * want;
    }
    assert.equal(decoder, 15_986_624);
    // state-dict order equals the official model's (mambaad_keys.json, net_s.layers_up.1.blocks.0.*)
    const ss2d = ["x_proj_weight", "dt_projs_weight", "dt_projs_bias", "A_logs", "Ds", "in_proj.weight"]
      .concat(["conv2d.weight", "conv2d.bias", "out_norm.weight", "out_norm.bias", "out_proj.weight"])
      .concat(["scans.index_flat", "scans.index_flat_inv"]);
    const want = [0, 1].flatMap((k) =>
      ["ln_1.weight", "ln_1.bias", ...ss2d.map((s) => `self_attention.${s}`)].map((s) => `smm_blocks.${k}.${s}`)
    ).concat(["conv1b7", "conv1a7", "conv1b5", "conv1a5"].flatMap((n) => [`${n}.0.weight`, `${n}.0.bias`]))
      .concat(["conv55.0.weight", "conv77.0.weight", "finalconv11.weight", "finalconv11.bias"]);
    assert.equal(want.length, 42);
    const m = new LSSModule(256, 2, { size: 16, init: false });
    assert.deepEqual([...m.stateDict().keys()], want);
    m.dispose();
  },
});

Deno.test({
  name: "lssInit: every Conv2d N(0, √(2/fan_out)) with fan_out = k·k·out/groups, biases 0 (docs/paper.md §1.5)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    T.manualSeed(11);
    const m = new LSSModule(64, 1, { size: null });
    const convs = m.modules().filter((x): x is T.Conv2d => x instanceof T.Conv2d);
    assert.equal(convs.length, 8); // SS2D's depthwise conv, 4 1×1, dw5, dw7, finalconv11
    for (const c of convs) {
      const w = await c.weight.data();
      let s2 = 0;
      for (const v of w) s2 += v * v;
      const std = Math.sqrt(s2 / w.length);
      const want = Math.sqrt(2 / ((c.kernelSize[0] * c.kernelSize[1] * c.outChannels) / c.groups));
      assert.ok(
        Math.abs(std / want - 1) < 0.1,
        `conv ${c.inChannels}→${c.outChannels} k${c.kernelSize}: std ${std} vs ${want}`,
      );
      if (c.bias) assert.ok((await c.bias.data()).every((v) => v === 0));
    }
    // lssInit on a bare HSS block touches its SS2D depthwise conv only
    const b = new HSSBlock(16);
    const before = await b.self_attention.x_proj_weight.data();
    assert.equal(lssInit(b), b);
    assert.deepEqual(await b.self_attention.x_proj_weight.data(), before);
    assert.ok((await b.self_attention.conv2d.bias!.data()).every((v) => v === 0));
    m.dispose();
    b.dispose();
  },
});

Deno.test({
  name: "HSSBlock/LSSModule: drop path 1 in training leaves only the residual; channels-last shape checks",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    T.manualSeed(5);
    const b = new HSSBlock(16, { dropPath: 1 });
    const x = T.randn([2, 4, 4, 16]);
    const y = b.forward(x);
    assert.deepEqual(await y.data(), await x.data());
    assert.throws(() => b.forward(T.randn([2, 16, 4, 4])), /channels-last/);
    const m = new LSSModule(16, 2, { dropPath: 0.5 });
    assert.equal(m.smm_blocks.every((s) => s.drop_path.p === 0.5), true);
    assert.deepEqual([...m.eval().forward(x).shape], [2, 4, 4, 16]);
    assert.throws(() => new LSSModule(16, 0), /depth/);
    for (const t of [x, y]) t.dispose();
    b.dispose();
    m.dispose();
  },
});
