/**
 * End-to-end: a small conv net (conv-relu-conv-relu-pool-linear) trained with plain SGD for 50 steps
 * gives the same losses on WebGPU as on the CPU, and a training step leaks no device memory.
 */
import assert from "node:assert/strict";
import type { Device } from "../autodiff/backend.ts";
import * as T from "../mod.ts";
import { testDevices } from "./util.ts";

const STEPS = 50;
const LR = 0.01;

interface Net {
  params: T.Tensor[];
  forward(x: T.Tensor): T.Tensor;
}

function smallCnn(device: Device): Net {
  // init on the host from the seeded generator: identical on every device
  T.manualSeed(1234);
  const params = T.tidy(() => [
    T.mul(T.randn([8, 3, 3, 3], { device }), Math.sqrt(2 / 27)),
    T.zeros([8], { device }),
    T.mul(T.randn([16, 8, 3, 3], { device }), Math.sqrt(2 / 72)),
    T.zeros([16], { device }),
    T.mul(T.randn([10, 16 * 8 * 8], { device }), Math.sqrt(1 / 1024)),
    T.zeros([10], { device }),
  ]).map((p) => T.keep(p).requiresGrad_(true));
  const [w1, b1, w2, b2, w3, b3] = params;
  return {
    params,
    forward(x) {
      let h = T.relu(T.conv2d(x, w1, b1, { padding: 1 }));
      h = T.relu(T.conv2d(h, w2, b2, { padding: "same" }));
      h = T.maxPool2d(h, 2);
      return T.linear(T.flatten(h, 1), w3, b3);
    },
  };
}

function crossEntropy(logits: T.Tensor, labels: T.Tensor): T.Tensor {
  const logp = T.logSoftmax(logits, 1);
  return T.neg(T.mean(T.gather(logp, 1, T.reshape(labels, [-1, 1]))));
}

async function train(device: Device): Promise<{ losses: number[]; memory: number[] }> {
  const net = smallCnn(device);
  T.manualSeed(99);
  const x = T.keep(T.randn([16, 3, 16, 16], { device }));
  const y = T.keep(T.randint(0, 10, [16], { device }));
  const losses: number[] = [];
  const memory: number[] = [];
  for (let step = 0; step < STEPS; step++) {
    const loss = T.tidy(() => crossEntropy(net.forward(x), y));
    loss.backward();
    T.noGrad(() =>
      T.tidy(() => {
        for (const p of net.params) p.assign(T.sub(p, T.mul(p.grad!, LR)));
      })
    );
    for (const p of net.params) p.zeroGrad();
    losses.push(await loss.item());
    loss.dispose();
    memory.push(T.memoryStats()[device]!.bytes);
  }
  for (const t of [...net.params, x, y]) t.dispose();
  return { losses, memory };
}

Deno.test({
  name: "small CNN: 50 SGD steps match between CPU and WebGPU, and memory stays flat",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const devices = await testDevices();
    const results = new Map<Device, { losses: number[]; memory: number[] }>();
    for (const device of devices) {
      await t.step(`train on ${device}`, async () => {
        const before = T.memoryStats()[device]!.bytes;
        const r = await train(device);
        results.set(device, r);
        // the loss must actually go down (the net starts to fit its 16 samples)
        assert.ok(r.losses[STEPS - 1] < 0.8 * r.losses[0], `${device}: loss ${r.losses[0]} -> ${r.losses[STEPS - 1]}`);
        // no growth after step 5, and everything released at the end
        for (let s = 5; s < STEPS; s++) {
          assert.equal(
            r.memory[s],
            r.memory[5],
            `${device}: live bytes grew at step ${s}: ${r.memory[5]} -> ${r.memory[s]}`,
          );
        }
        assert.equal(T.memoryStats()[device]!.bytes, before, `${device}: memory not released after training`);
      });
    }
    if (results.has("webgpu")) {
      const cpu = results.get("cpu")!.losses, gpu = results.get("webgpu")!.losses;
      for (let s = 0; s < STEPS; s++) {
        const rel = Math.abs(cpu[s] - gpu[s]) / Math.abs(cpu[s]);
        assert.ok(rel <= 1e-4, `step ${s}: cpu loss ${cpu[s]} vs webgpu ${gpu[s]} (rel ${rel})`);
      }
    }
  },
});
