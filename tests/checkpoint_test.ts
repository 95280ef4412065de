/**
 * Checkpoints: a run interrupted after two epochs and resumed from its checkpoint ends with parameters
 * bit-identical to an uninterrupted run (CPU); saves are atomic; bad checkpoints are refused clearly.
 */
import assert from "node:assert/strict";
import * as T from "../mod.ts";
import { loadCheckpoint, saveCheckpoint } from "../nn/checkpoint.ts";
import { BatchNorm2d, Conv2d, DropPath, Linear, Module } from "../nn/index.ts";
import { AdamW, clipGradNorm, decayGroups, TimmStepLR } from "../nn/optim/index.ts";
import { globalGenerator } from "../autodiff/random.ts";

class TinyNet extends Module {
  conv = new Conv2d(3, 8, 3, { padding: 1 });
  bn = new BatchNorm2d(8);
  drop = new DropPath(0.2);
  head = new Linear(8 * 4 * 4, 5);
  forward(x: T.Tensor): T.Tensor {
    const h = T.maxPool2d(T.relu(this.bn.forward(this.conv.forward(x))), 2);
    return this.head.forward(T.flatten(this.drop.forward(h), 1));
  }
}

const N = 12, BATCH = 4, EPOCHS = 4;

function setup(seed: number) {
  T.manualSeed(seed);
  const model = new TinyNet();
  const optimizer = new AdamW(decayGroups(model.namedParameters(), 1e-4), { lr: 5e-3 });
  const schedule = new TimmStepLR(optimizer, { decayT: 8, decayRate: 0.1 });
  return { model, optimizer, schedule };
}

/** Trains epochs [from, to); each epoch shuffles the data with the global generator. */
async function train(s: ReturnType<typeof setup>, data: { x: T.Tensor; y: T.Tensor }, from: number, to: number) {
  for (let epoch = from; epoch < to; epoch++) {
    const order = Array.from({ length: N }, (_, i) => i);
    for (let i = N - 1; i > 0; i--) {
      const j = globalGenerator.int(0, i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (let b = 0; b < N; b += BATCH) {
      const idx = T.tensor(order.slice(b, b + BATCH), { dtype: "int32" });
      const loss = T.tidy(() => {
        const logits = s.model.forward(T.indexSelect(data.x, 0, idx));
        return T.crossEntropy(logits, T.indexSelect(data.y, 0, idx));
      });
      idx.dispose();
      loss.backward();
      clipGradNorm(s.model.parameters(), 5).dispose();
      s.optimizer.step();
      s.schedule.step();
      s.optimizer.zeroGrad();
      await loss.item();
      loss.dispose();
    }
  }
}

async function snapshot(m: Module): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const [k, t] of m.stateDict()) out.set(k, new Uint8Array((await t.data()).slice().buffer));
  return out;
}

Deno.test({
  name: "checkpoint: interrupt after 2 epochs, resume, and the parameters match an uninterrupted run bit for bit",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    T.manualSeed(7);
    const data = { x: T.keep(T.randn([N, 3, 8, 8])), y: T.keep(T.randint(0, 5, [N])) };
    const dir = await Deno.makeTempDir();
    const path = `${dir}/run.ckpt.safetensors`;

    const full = setup(1);
    await train(full, data, 0, EPOCHS);
    const want = await snapshot(full.model);

    const first = setup(1);
    await train(first, data, 0, 2);
    await saveCheckpoint(path, first, { epoch: 2, step: 2 * N / BATCH, config: { lr: 5e-3 } });
    first.model.dispose();
    first.optimizer.disposeState();

    // a fresh process would build everything from another seed: the checkpoint must overwrite it all
    const resumed = setup(999);
    const meta = await loadCheckpoint(path, resumed);
    assert.deepEqual(meta, { epoch: 2, step: 6, config: { lr: 5e-3 }, dataState: undefined, extra: undefined });
    assert.equal(resumed.schedule.getLastLr()[0], full.schedule.getLr(6)[0]);
    await train(resumed, data, meta.epoch, EPOCHS);
    const got = await snapshot(resumed.model);
    assert.deepEqual([...got.keys()], [...want.keys()]);
    for (const [k, bytes] of want) assert.deepEqual(got.get(k), bytes, `${k} differs after resume`);

    // no temp files left behind by the atomic write
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.deepEqual(names, ["run.ckpt.safetensors"]);
    for (const s of [full, resumed]) {
      s.model.dispose();
      s.optimizer.disposeState();
    }
    data.x.dispose();
    data.y.dispose();
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "checkpoint: a failed save keeps the previous file; bad files are refused naming the file",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/ck.safetensors`;
    const s = setup(3);
    await saveCheckpoint(path, s, { epoch: 1, step: 3 });
    const before = await Deno.readFile(path);
    // a disposed parameter makes the next save fail before anything is written
    const w = s.model.head.weight;
    const broken = w.shareWithShape(w.shape);
    s.model.head.weight.dispose();
    await assert.rejects(
      saveCheckpoint(path, s, { epoch: 2, step: 6 }),
      /tensor #\d+ \[5,128\] was disposed and cannot be used/,
    );
    assert.deepEqual(await Deno.readFile(path), before);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["ck.safetensors"]);
    broken.dispose();

    // a weights file that is not a checkpoint, and a truncated one
    const plain = `${dir}/plain.safetensors`;
    await T.saveSafetensors(plain, { a: T.ones([2]) });
    await assert.rejects(loadCheckpoint(plain, setup(4)), /plain\.safetensors: not a training checkpoint/);
    await Deno.writeFile(`${dir}/cut.safetensors`, before.subarray(0, before.length >> 1));
    await assert.rejects(loadCheckpoint(`${dir}/cut.safetensors`, setup(5)), /cut\.safetensors/);
    await Deno.remove(dir, { recursive: true });
  },
});
