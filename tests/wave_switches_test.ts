/**
 * The weight-sharing switches of docs/paper.md §5.6: LFSS `sharedHeads` and HFSS `sharedBands`. Unshared weights add
 * exactly the expected parameters, and unshared weights that are copies of the shared ones give exactly the shared
 * module's output and input gradient, on every device.
 */
import assert from "node:assert/strict";
import * as T from "../mod.ts";
import { HFSS } from "../models/wave_mambaad/hfss.ts";
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

for (const device of await testDevices()) {
  Deno.test(`HFSS per-band scan parameters: K = 6, and equal to shared when tiled (${device})`, opts, async () => {
    T.manualSeed(4);
    const shared = new HFSS(8, { dState: 4, size: 4, device });
    const perBand = new HFSS(8, { dState: 4, size: 4, sharedBands: false, device });
    assert.deepEqual(perBand.x_proj_weight.shape, [6, ...shared.x_proj_weight.shape.slice(1)]);
    const scanKeys = ["x_proj_weight", "dt_projs_weight", "dt_projs_bias", "A_logs", "Ds"];
    const scanParams = scanKeys.map((k) => shared.stateDict().get(k)!.size).reduce((a, b) => a + b, 0);
    assert.equal(perBand.numParameters(), shared.numParameters() + 2 * scanParams);

    // every band gets the shared K = 2 parameters: the bands' slices are the shared tensors tiled 3 times
    const sd = new Map<string, T.Tensor>();
    for (const [k, t] of shared.stateDict()) sd.set(k, scanKeys.includes(k) ? T.concat([t, t, t], 0) : t);
    await perBand.loadStateDict(sd);
    const x = T.tensor(normals(6 * 4 * 4 * 8, 6), { shape: [6, 4, 4, 8], device, requiresGrad: true });
    const a = shared.forward(x), b = perBand.forward(x);
    const [da, db] = [await a.data(), await b.data()];
    da.forEach((v, i) =>
      assert.ok(Math.abs(v - db[i]) <= 1e-5 * Math.max(1, Math.abs(v)), `out[${i}] ${v} vs ${db[i]}`)
    );
    T.sum(T.mul(a, a)).backward();
    const ga = await x.grad!.data();
    x.zeroGrad();
    T.sum(T.mul(b, b)).backward();
    const gb = await x.grad!.data();
    ga.forEach((v, i) =>
      assert.ok(Math.abs(v - gb[i]) <= 1e-4 * Math.max(1, Math.abs(v)), `grad[${i}] ${v} vs ${gb[i]}`)
    );
    // with its own (different) random slices, band i of the output is what a shared HFSS holding slice i computes
    const own = new HFSS(8, { dState: 4, size: 4, sharedBands: false, device });
    const out = await own.forward(x).data();
    const rows = out.length / 3;
    for (let band = 0; band < 3; band++) {
      const slice = new Map<string, T.Tensor>();
      for (const [k, t] of own.stateDict()) {
        if (!scanKeys.includes(k)) slice.set(k, t);
        else {
          const per = t.shape[0] / 3; // K = 2 rows (or 2·D for A_logs, Ds) per band
          slice.set(k, T.slice(t, 0, band * per, (band + 1) * per));
        }
      }
      await shared.loadStateDict(slice);
      const want = (await shared.forward(x).data()).subarray(band * rows, (band + 1) * rows);
      const got = out.subarray(band * rows, (band + 1) * rows);
      want.forEach((v, i) => assert.ok(Math.abs(v - got[i]) <= 1e-5 * Math.max(1, Math.abs(v)), `band ${band} [${i}]`));
    }
    own.dispose();
    shared.dispose();
    perBand.dispose();
  });
}
