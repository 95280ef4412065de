/**
 * SS2D blocks against the official PyTorch modules (docs/paper.md §0; copies in tests/fixtures/official):
 * MambaAD's SS2D with 8 Hilbert directions and Wave-MambaAD's HFSS D_SS2D — outputs and every gradient, with
 * the official parameter names loaded strictly. Tolerance (docs/paper.md §0): |a − b| ≤ 1e-4·max|b|.
 */
import assert from "node:assert/strict";
import type { Device } from "../autodiff/backend.ts";
import * as T from "../mod.ts";
import { DSS2D, SS2D } from "../nn/ssm/ss2d.ts";
import { ChannelMamba } from "../nn/ssm/channel_mamba.ts";
import { Mamba } from "../nn/ssm/mamba.ts";
import { loadSafetensors } from "../nn/io/safetensors.ts";
import { type HostTensor, toTensor } from "../nn/io/common.ts";
import type { Module } from "../nn/module.ts";
import { testDevices } from "./util.ts";

async function fixture(name: string, dir = "official/") {
  return (await loadSafetensors(new URL(`./fixtures/${dir}${name}.safetensors`, import.meta.url))).tensors;
}

function close(got: ArrayLike<number>, want: HostTensor, what: string, absFloor = 0): void {
  let scale = 0, err = 0;
  for (let i = 0; i < want.data.length; i++) {
    scale = Math.max(scale, Math.abs(want.data[i]));
    err = Math.max(err, Math.abs(got[i] - want.data[i]));
  }
  assert.ok(err <= Math.max(1e-4 * scale, absFloor), `${what}: max |diff| ${err} vs scale ${scale}`);
}

/** Loads the fixture's params, runs forward + backward with the stored upstream, compares everything. */
async function checkBlock(
  model: Module & { forward(x: T.Tensor): T.Tensor },
  fx: Map<string, HostTensor>,
  device: Device,
  input = "x",
) {
  const sd = new Map<string, T.Tensor>();
  for (const [k, v] of fx) if (k.startsWith("param.")) sd.set(k.slice(6), toTensor(v, { device }));
  await model.loadStateDict(sd);
  for (const t of sd.values()) t.dispose();
  const x = toTensor(fx.get(`input.${input}`)!, { device, requiresGrad: true });
  const r = toTensor(fx.get("upstream.y")!, { device });
  const y = T.tidy(() => model.forward(x));
  close(await y.data(), fx.get("output.y")!, "output.y");
  y.backward(r);
  close(await x.grad!.data(), fx.get(`grad.input.${input}`)!, `grad.input.${input}`);
  for (const [key, p] of model.namedParameters()) {
    const want = fx.get(`grad.param.${key}`);
    assert.ok(want, `fixture has no gradient for ${key}`);
    if (!p.grad) {
      // an unused parameter (the official module's dt_proj_b.bias): its stored gradient is all zeros
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
    name: `SS2D (MambaAD, 8 Hilbert directions) matches the official module [${device}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const fx = await fixture("mambaad_ss2d");
      await checkBlock(new SS2D(32, { size: 8, device }), fx, device);
    },
  });
  Deno.test({
    name: `D_SS2D (Wave-MambaAD HFSS, official decoding) matches the official module [${device}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const fx = await fixture("wave_d_ss2d");
      await checkBlock(new DSS2D(32, { size: 8, device }), fx, device);
    },
  });
  Deno.test({
    name: `ChannelMamba (Wave-MambaAD LFSS, official quirks) matches the official module [${device}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const fx = await fixture("wave_channel_mamba");
      await checkBlock(new ChannelMamba(8, 32, { device }), fx, device, "u");
    },
  });
  Deno.test({
    name: `Mamba (1-D block) matches a PyTorch port of mamba_simple's reference path [${device}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const fx = await fixture("mamba_block", "");
      await checkBlock(new Mamba(16, { dState: 8, device }), fx, device);
    },
  });
}

Deno.test({
  name: "SS2D: parameter counts of docs/paper.md §1.6 / §3.4 and the official key names",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => {
    // per SS2D (K = 8, no index buffers): 2,519,040 / 735,232 / 236,544 / 85,504 for C = 512/256/128/64
    const counts = [[512, 2_519_040], [256, 735_232], [128, 236_544], [64, 85_504]];
    for (const [c, want] of counts) {
      const m = new SS2D(c, { size: null });
      assert.equal(m.numParameters(), want, `SS2D(${c})`);
      m.dispose();
    }
    // per D_SS2D: 1,818,624 / 483,328 / 135,168 / 40,960
    for (const [c, want] of [[512, 1_818_624], [256, 483_328], [128, 135_168], [64, 40_960]]) {
      const m = new DSS2D(c, { size: null });
      assert.equal(m.numParameters(), want, `DSS2D(${c})`);
      m.dispose();
    }
    const keys = [...new SS2D(32, { size: 8 }).stateDict().keys()];
    for (
      const k of [
        "x_proj_weight",
        "dt_projs_weight",
        "dt_projs_bias",
        "A_logs",
        "Ds",
        "in_proj.weight",
        "out_proj.weight",
        "scans.index_flat",
      ]
    ) {
      assert.ok(keys.includes(k), `missing ${k}`);
    }
  },
});

Deno.test({
  name: "SS2D/D_SS2D variants: VMamba's 4 directions on a non-square grid; HFSS corrected decoding",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    T.manualSeed(3);
    const { vmambaDirections } = await import("../nn/ssm/scan_order.ts");
    const v = new SS2D(16, { directions: vmambaDirections(), size: null });
    const x = T.randn([2, 5, 7, 16], { requiresGrad: true });
    const y = T.tidy(() => v.forward(x));
    assert.deepEqual([...y.shape], [2, 5, 7, 16]);
    T.sum(y).backward();
    assert.ok(x.grad && v.x_proj_weight.grad, "gradients reach the input and the scan parameters");
    // corrected HFSS decoding: HL (row-major) is unchanged, LH and HH are moved back to the grid
    T.manualSeed(4);
    const official = new DSS2D(16, { size: null });
    T.manualSeed(4);
    const corrected = new DSS2D(16, { size: null, decode: "inverse" });
    const xb = T.randn([3, 4, 4, 16]);
    const [a, b] = [official.forward(xb), corrected.forward(xb)];
    const [da, db] = [await a.data(), await b.data()];
    const band = 4 * 4 * 16;
    assert.deepEqual(da.slice(0, band), db.slice(0, band), "HL band identical");
    assert.notDeepEqual(da.slice(band, 2 * band), db.slice(band, 2 * band), "LH band differs");
    for (const m of [v, official, corrected]) m.dispose();
  },
});
