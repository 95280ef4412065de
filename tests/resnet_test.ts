/**
 * ResNet-34 with torchvision keys: a state dict saved by PyTorch (tools/gen_resnet_fixture.py) loads
 * strictly and gives layer1..3 features equal to torchvision's within 1e-4 relative, on every device.
 */
import assert from "node:assert/strict";
import { loadResNetWeights, resnet18, resnet34, resnet50, type ResNetFeature } from "../models/backbones/resnet.ts";
import { loadSafetensors } from "../nn/io/safetensors.ts";
import { toTensor } from "../nn/io/common.ts";
import { memoryStats, noGrad, tidy } from "../mod.ts";
import { testDevices } from "./util.ts";

const dir = new URL("./fixtures/resnet/", import.meta.url);
const pth = new URL("resnet34_views.pth", dir).pathname;
const ref = (await loadSafetensors(new URL("resnet34_features.safetensors", dir))).tensors;

for (const device of await testDevices()) {
  Deno.test({
    name: `resnet34: torchvision state dict → layer1..3 features match PyTorch [${device}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const features: ResNetFeature[] = ["stem", "layer1", "layer2", "layer3"];
      const model = resnet34({ features, device });
      assert.equal(model.layer4, null, "layer4 is not built when layer3 is the deepest feature");
      await loadResNetWeights(model, pth);
      model.eval();
      const x = toTensor(ref.get("input.x")!, { device });
      const out = noGrad(() => tidy(() => model.forward(x)));
      for (const name of features) {
        const want = ref.get(`output.${name}`)!;
        const got = out[name]!;
        assert.deepEqual([...got.shape], want.shape, `${name} shape`);
        const data = await got.data();
        let scale = 0, err = 0;
        for (let i = 0; i < data.length; i++) {
          scale = Math.max(scale, Math.abs(want.data[i]));
          err = Math.max(err, Math.abs(data[i] - want.data[i]));
        }
        assert.ok(err <= 1e-4 * scale, `${name}: max |diff| ${err} > 1e-4 × ${scale}`);
      }
      for (const t of Object.values(out)) t?.dispose();
      x.dispose();
      model.dispose();
    },
  });
}

Deno.test({
  name: "resnet: torchvision key layout and parameter counts",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => {
    const before = memoryStats().cpu!.buffers;
    const r34 = resnet34();
    const keys = [...r34.stateDict().keys()];
    assert.equal(keys[0], "conv1.weight");
    assert.ok(keys.includes("layer2.0.downsample.0.weight") && keys.includes("layer2.0.downsample.1.running_var"));
    assert.ok(keys.includes("layer4.2.bn2.num_batches_tracked") && keys.at(-1) === "fc.bias");
    // torchvision: resnet18 11,689,512 / resnet34 21,797,672 / resnet50 25,557,032 parameters
    assert.equal(r34.numParameters(), 21_797_672);
    const r18 = resnet18(), r50 = resnet50();
    assert.equal(r18.numParameters(), 11_689_512);
    assert.equal(r50.numParameters(), 25_557_032);
    // the anomaly-detection encoder: stem + layer1..3 = 8,170,304 parameters (docs/paper.md §1.1)
    const enc = resnet34({ features: ["layer1", "layer2", "layer3"] });
    assert.equal(enc.numParameters(), 8_170_304);
    for (const m of [r34, r18, r50, enc]) m.dispose();
    assert.equal(memoryStats().cpu!.buffers, before);
  },
});

Deno.test({
  name: "resnet: a checkpoint with a wrong shape or a foreign key is refused with the key named",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const model = resnet18({ features: ["layer3"] });
    await assert.rejects(
      loadResNetWeights(model, pth),
      /loadResNetWeights\(.*resnet34_views\.pth\).*(missing|unexpected|shape)/s,
    );
    model.dispose();
  },
});
