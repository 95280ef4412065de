/**
 * models/registry.ts, models/common/flops.ts and `deno task info` (main.ts): unknown names, the paper-style
 * parameter counts of both models (the official `*_params.json` `total_params_fvcore`, docs/paper.md §0) and the
 * fvcore-equivalent MACs at 256² (`flops.total_flops`: 8,300,125,288 and 7,537,140,084; the ResNet-34 encoder
 * alone 3,955,097,600); every number is exact.
 */
import assert from "node:assert/strict";
import * as T from "../mod.ts";
import { info } from "../main.ts";
import { resnet34 } from "../models/backbones/resnet.ts";
import { countFlops, einsumMacs } from "../models/common/flops.ts";
import { createModel, modelNames, variantNames } from "../models/registry.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test("createModel rejects unknown names and variants, listing the known ones", opts, async () => {
  assert.deepEqual(modelNames(), ["mambaad", "wave_mambaad"]);
  await assert.rejects(() => createModel("padim"), /unknown model "padim" \(known models: mambaad, wave_mambaad\)/);
  await assert.rejects(() => createModel("mambaad", {}, { variant: "nope" }), /unknown variant "nope" of mambaad/);
  assert.equal(variantNames("mambaad")[0], "mambaad");
  assert.equal(variantNames("wave_mambaad")[0], "official");
  await assert.rejects(() => info(["--model", "padim"]), /known models: mambaad, wave_mambaad/);
});

Deno.test("einsumMacs rounds as fvcore parses numpy's printed FLOP count", opts, () => {
  // 2·P = 12,582,912 is printed as 1.258e+07
  assert.equal(einsumMacs(6_291_456), 6_290_000);
  assert.equal(einsumMacs(3_145_728), 3_145_500);
});

Deno.test("countFlops: the ResNet-34 encoder (stem + layer1-3) at 256² is fvcore's 3,955,097,600", opts, () => {
  const net = resnet34({ features: ["layer1", "layer2", "layer3"] }).eval();
  const x = T.zeros([1, 3, 256, 256]);
  const fwd = net.forward;
  const c = T.noGrad(() => countFlops(net, () => T.tidy(() => net.forward(x))));
  assert.equal(c.total, 3_955_097_600);
  assert.equal(c.byOp["aten::batch_norm"], 9_306_112);
  assert.equal(net.forward, fwd, "forward restored");
  assert.ok(!Object.hasOwn(net, "forward"));
  x.dispose();
  net.dispose();
});

Deno.test("info: MambaAD — 25,654,528 parameters (paper count), 8.300 GFLOPs (MACs)", opts, async () => {
  const r = await info(["--model", "mambaad", "--skip-speed", "--json"]);
  assert.equal(r.params_paper_count, 25_654_528);
  assert.equal(r.params_total, 25_615_232);
  assert.equal(r.params_trainable, 17_444_928);
  assert.equal(r.gflops, 8.300125288);
  assert.deepEqual(r.flops_by_top_level_module, { net_t: 3_955_097_600, mff_oce: 268_713_984, net_s: 4_076_313_704 });
});

Deno.test("info: Wave-MambaAD — 22,293,250 parameters (paper count), 7.537 GFLOPs (MACs)", opts, async () => {
  const r = await info(["--model", "wave_mambaad", "--skip-speed", "--json"]);
  assert.equal(r.params_paper_count, 22_293_250);
  assert.equal(r.params_total, 22_260_898);
  assert.equal(r.params_trainable, 14_090_594);
  assert.equal(r.gflops, 7.537140084);
  assert.deepEqual(r.flops_by_top_level_module, { net_t: 3_955_097_600, mff_oce: 270_041_088, net_s: 3_312_001_396 });
  const byOp = r.flops_by_op as Record<string, number>;
  assert.equal(byOp["aten::_convolution"], 6_139_960_448);
  assert.equal(byOp["aten::linear"], 1_085_677_568);
  assert.equal(byOp["aten::matmul"], 2_007_040);
  assert.equal(byOp["aten::layer_norm"], 35_512_320);
  assert.equal(byOp["aten::instance_norm"], 2_654_208);
  assert.equal(byOp["aten::adaptive_avg_pool2d"], 933_888);
  // D_SS2D's einsums are counted per band, as the official forward_core calls (fvcore rounds each one)
  assert.equal(byOp["aten::einsum"], 261_088_500);
});
