/**
 * LFSS's `sharedHeads` switch (PAPER.md §5.6): per-head weights add exactly (heads − 1) copies of the shared
 * parameters, and per-head weights that are copies of the shared ones give exactly the shared module's output and
 * gradients, on every device.
 */
import assert from "node:assert/strict";
import * as T from "../mod.ts";
import { ChannelFreqAdapt } from "../models/wave_mambaad/lfss.ts";
import { normals, testDevices } from "./util.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

for (const device of await testDevices()) {
  Deno.test(`LFSS per-head weights: counts, and equal to shared when copied (${device})`, opts, async () => {
    T.manualSeed(2);
    const shared = new ChannelFreqAdapt(8, 4, 4, 2, { device });
    const perHead = new ChannelFreqAdapt(8, 4, 4, 2, { sharedHeads: false, device });
    const headParams = ["CMamba_h", "CMamba_w", "conv1"]
      .map((k) => (shared as unknown as Record<string, T.Module>)[k].numParameters())
      .reduce((a, b) => a + b, 0);
    assert.equal(perHead.numParameters(), shared.numParameters() + headParams);
    assert.ok([...perHead.stateDict().keys()].includes("heads.1.CMamba_w.A_log"));

    // copy the shared weights into every head: the two modules must then compute the same function
    const sd = new Map<string, T.Tensor>();
    for (const [k, t] of shared.stateDict()) {
      if (/^(CMamba_h|CMamba_w|conv1)\./.test(k)) { for (const i of [0, 1]) sd.set(`heads.${i}.${k}`, t); }
      else sd.set(k, t);
    }
    await perHead.loadStateDict(sd);
    const x = T.tensor(normals(2 * 8 * 4 * 4, 5), { shape: [2, 8, 4, 4], device, requiresGrad: true });
    const a = shared.forward(x), b = perHead.forward(x);
    assert.deepEqual(await b.data(), await a.data());
    T.sum(T.mul(a, a)).backward();
    const ga = await x.grad!.data();
    x.zeroGrad();
    T.sum(T.mul(b, b)).backward();
    assert.deepEqual(await x.grad!.data(), ga);
    // the shared module's gradient is the sum of the heads' gradients
    const gShared = await shared.conv1!.weight.grad!.data();
    const g0 = await perHead.heads![0].conv1.weight.grad!.data(),
      g1 = await perHead.heads![1].conv1.weight.grad!.data();
    const sum = Float32Array.from(g0, (v, i) => v + g1[i]);
    sum.forEach((v, i) => assert.ok(Math.abs(v - gShared[i]) <= 1e-5 * Math.max(1, Math.abs(gShared[i]))));
    shared.dispose();
    perHead.dispose();
  });
}
