/**
 * Wave-MambaAD's blocks (models/wave_mambaad) against the official PyTorch modules (docs/paper.md §0, reduced copies in
 * tests/fixtures/official): DSE `FeedForward` (Eq. 8), LFSS `ChannelFreqAdapt` (Eq. 6-7) and the Wavelet-Mamba
 * block `VSSBlock` (Eq. 4) — outputs and every gradient, official parameter names loaded strictly; tolerance
 * |a − b| ≤ 1e-4·max|b| per tensor. Parameter counts against docs/paper.md §3.4-3.6 and §3.8.
 */
import assert from "node:assert/strict";
import type { Device } from "../autodiff/backend.ts";
import * as T from "../mod.ts";
import { loadSafetensors } from "../nn/io/safetensors.ts";
import { type HostTensor, toTensor } from "../nn/io/common.ts";
import type { Module } from "../nn/module.ts";
import { FeedForward } from "../models/wave_mambaad/dse.ts";
import { ChannelFreqAdapt } from "../models/wave_mambaad/lfss.ts";
import { HFSS, hfssScanOrders } from "../models/wave_mambaad/hfss.ts";
import { VSSBlock } from "../models/wave_mambaad/wdss.ts";
import { DSS2D } from "../nn/ssm/ss2d.ts";
import { testDevices } from "./util.ts";

async function fixture(name: string) {
  return (await loadSafetensors(new URL(`./fixtures/official/${name}.safetensors`, import.meta.url))).tensors;
}

function close(got: ArrayLike<number>, want: HostTensor, what: string): void {
  let scale = 0, err = 0;
  for (let i = 0; i < want.data.length; i++) {
    scale = Math.max(scale, Math.abs(want.data[i]));
    err = Math.max(err, Math.abs(got[i] - want.data[i]));
  }
  assert.ok(err <= 1e-4 * scale, `${what}: max |diff| ${err} vs scale ${scale}`);
}

/** Loads the fixture's params, runs forward + backward with the stored upstream, compares everything. */
async function checkBlock(
  model: Module & { forward(x: T.Tensor): T.Tensor },
  fx: Map<string, HostTensor>,
  device: Device,
) {
  const sd = new Map<string, T.Tensor>();
  for (const [k, v] of fx) if (k.startsWith("param.")) sd.set(k.slice(6), toTensor(v, { device }));
  assert.deepEqual([...model.stateDict().keys()].sort(), [...sd.keys()].sort(), "official state-dict keys");
  await model.loadStateDict(sd);
  for (const t of sd.values()) t.dispose();
  model.eval();
  const x = toTensor(fx.get("input.x")!, { device, requiresGrad: true });
  const r = toTensor(fx.get("upstream.y")!, { device });
  const y = T.tidy(() => model.forward(x));
  close(await y.data(), fx.get("output.y")!, "output.y");
  y.backward(r);
  close(await x.grad!.data(), fx.get("grad.input.x")!, "grad.input.x");
  for (const [key, p] of model.namedParameters()) {
    const want = fx.get(`grad.param.${key}`);
    assert.ok(want, `fixture has no gradient for ${key}`);
    if (!p.grad) {
      // unused parameters (dt_proj_b.bias, VSSBlock.conv): their stored gradients are all zeros
      assert.ok(want.data.every((v) => v === 0), `${key} got no gradient`);
      continue;
    }
    close(await p.grad.data(), want, `grad.param.${key}`);
  }
  for (const t of [x, r, y]) t.dispose();
  model.dispose();
}

for (const device of await testDevices()) {
  Deno.test({
    name: `DSE FeedForward (Eq. 8) matches the official module [${device}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      await checkBlock(new FeedForward(32, { device }), await fixture("wave_feedforward"), device);
    },
  });
  Deno.test({
    name: `LFSS ChannelFreqAdapt (Eq. 6-7) matches the official module [${device}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      await checkBlock(new ChannelFreqAdapt(64, 8, 8, 2, { device }), await fixture("wave_channel_freq_adapt"), device);
    },
  });
  Deno.test({
    name: `Wavelet-Mamba VSSBlock (Eq. 4) matches the official module [${device}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const fx = await fixture("wave_vss_block");
      await checkBlock(new VSSBlock(64, { h: 8, numHeads: 2, size: 8, device }), fx, device);
    },
  });
}

Deno.test({
  name: "Wave-MambaAD blocks: parameter counts of docs/paper.md §3.4-3.6 and §3.8",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => {
    // per stage C = 512/256/128/64: sub-band h = w = 4/8/16/32, LFSS heads 16/8/4/2
    const stages = [
      { c: 512, h: 4, heads: 16, dse: 2_114_994, lfss: 269_568, hfss: 1_818_624, conv: 786_944, block: 4_992_178 },
      { c: 256, h: 8, heads: 8, dse: 534_480, lfss: 71_680, hfss: 483_328, conv: 196_864, block: 1_287_376 },
      { c: 128, h: 16, heads: 4, dse: 136_680, lfss: 23_808, hfss: 135_168, conv: 49_280, block: 345_448 },
      { c: 64, h: 32, heads: 2, dse: 35_700, lfss: 17_600, hfss: 40_960, conv: 12_352, block: 106_868 },
    ];
    for (const s of stages) {
      const blk = new VSSBlock(s.c, { h: s.h, numHeads: s.heads, size: null });
      assert.equal(blk.mlp.numParameters(), s.dse, `DSE(${s.c})`);
      assert.equal(blk.CMamba.numParameters(), s.lfss, `LFSS(${s.c})`);
      assert.equal(blk.D_SSM.numParameters(), s.hfss, `HFSS(${s.c})`);
      assert.equal(blk.conv.numParameters(), s.conv, `unused conv(${s.c})`);
      // docs/paper.md §3.8's per-block totals: the unused conv included, scan tables (buffers) not
      assert.equal(blk.numParameters(), s.block, `VSSBlock(${s.c})`);
      blk.dispose();
    }
    // ChannelMamba alone: 896 / 1,408 / 2,624 / 5,952 for h = 4/8/16/32
    for (const [h, want] of [[4, 896], [8, 1_408], [16, 2_624], [32, 5_952]]) {
      const m = new ChannelFreqAdapt(64, h, h, 2);
      assert.equal(m.CMamba_h!.numParameters(), want, `ChannelMamba(${h})`);
      m.dispose();
    }
  },
});

Deno.test({
  name: "HFSS: the default orders are D_SS2D exactly; direction ablations run and differ",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    T.manualSeed(7);
    const ref = new DSS2D(16, { size: 4 });
    const x = T.randn([6, 4, 4, 16]);
    const want = await T.tidy(() => ref.forward(x)).data();
    for (const [name, orders] of Object.entries(hfssScanOrders)) {
      const m = new HFSS(16, { size: 4, orders });
      await m.loadStateDict(ref.stateDict());
      const got = await T.tidy(() => m.forward(x)).data();
      const same = got.every((v, i) => v === want[i]);
      assert.equal(same, name === "official", `${name}: ${same ? "same as" : "differs from"} D_SS2D`);
      m.dispose();
    }
    ref.dispose();
    x.dispose();
  },
});
