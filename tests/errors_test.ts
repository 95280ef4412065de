/**
 * Bad input gives clear errors that name the op and the shapes involved, on every device from
 * `testDevices()`: broadcasting, matmul, conv2d, reshape, permute, concat, gather, axis ranges, mixed
 * devices, dtypes, ragged nested arrays and backward without grad.
 */
import assert from "node:assert/strict";
import {
  add,
  argmax,
  concat,
  conv2d,
  exp,
  expand,
  gather,
  indexSelect,
  log,
  logSoftmax,
  matmul,
  max,
  mean,
  mul,
  noGrad,
  ones,
  permute,
  reshape,
  scatterAdd,
  sigmoid,
  softmax,
  stack,
  sum,
  tensor,
  transpose,
  unsqueeze,
  zeros,
} from "../mod.ts";
import type { Device } from "../mod.ts";
import { testDevices } from "./util.ts";

const devices = await testDevices();

/** Registers `fn` once per device. */
function test(name: string, fn: (device: Device) => Promise<void> | void, opts: { ignore?: boolean } = {}): void {
  for (const device of devices) {
    Deno.test({
      name: `errors: ${name} [${device}]`,
      ignore: opts.ignore ?? false,
      // WebGPU keeps device resources across tests; the CPU backend may load OpenBLAS through FFI.
      sanitizeResources: false,
      sanitizeOps: false,
      fn: () => fn(device),
    });
  }
}

test("add of (2,3) and (4,) names the op and both shapes", (device) => {
  const a = ones([2, 3], { device }), b = ones([4], { device });
  assert.throws(() => add(a, b), /add.*\[2, 3\].*\[4\].*broadcast/);
  assert.throws(() => add(b, a), /add.*\[4\].*\[2, 3\]/);
  assert.throws(() => a.add(b), /add.*\[2, 3\].*\[4\]/);
  assert.throws(() => mul(ones([2, 3, 4], { device }), ones([3, 5], { device })), /mul.*\[2, 3, 4\].*\[3, 5\]/);
});

test("matmul with mismatched inner dims names both shapes", (device) => {
  assert.throws(
    () => matmul(ones([2, 3], { device }), ones([4, 5], { device })),
    /matmul.*\[2, 3\].*\[4, 5\].*3 vs 4/,
  );
  assert.throws(
    () => matmul(ones([5, 2, 3], { device }), ones([5, 4, 2], { device })),
    /matmul.*\[5, 2, 3\].*\[5, 4, 2\]/,
  );
  assert.throws(() => matmul(ones([3], { device }), ones([4], { device })), /matmul.*\[3\].*\[4\]/);
  assert.throws(
    () => matmul(ones([5, 2, 3], { device }), ones([4, 3, 2], { device })),
    /matmul.*\[5\].*\[4\].*broadcast/,
  );
  assert.throws(() => matmul(tensor(1, { device }), ones([2], { device })), /matmul.*at least 1 dim/);
});

test("matmul matrix @ vector mismatch names the caller's shapes", (device) => {
  assert.throws(() => matmul(ones([2, 3], { device }), ones([4], { device })), /matmul.*\[2, 3\].*\[4\][^,]/);
  assert.throws(() => matmul(ones([4], { device }), ones([3, 2], { device })), /matmul.*\[4\].*\[3, 2\]/);
});

test("conv2d channel mismatch names input and weight shapes", (device) => {
  const x = ones([1, 3, 8, 8], { device });
  assert.throws(
    () => conv2d(x, ones([4, 2, 3, 3], { device })),
    /conv2d.*\[4, 2, 3, 3\].*2 input channels.*\[1, 3, 8, 8\].*3/,
  );
  assert.throws(() => conv2d(x, ones([4, 3, 3, 3], { device }), ones([3], { device })), /conv2d.*bias \[3\].*\[4\]/);
  assert.throws(() => conv2d(ones([3, 8, 8], { device }), ones([4, 3, 3, 3], { device })), /conv2d.*4-D.*\[3, 8, 8\]/);
  assert.throws(
    () => conv2d(ones([1, 3, 2, 2], { device }), ones([4, 3, 3, 3], { device })),
    /conv2d.*\[1, 3, 2, 2\].*too small.*3x3/,
  );
  assert.throws(() => conv2d(x, ones([4, 3, 3, 3], { device }), null, { groups: 2 }), /conv2d.*groups=2/);
});

test("reshape to the wrong size names both shapes", (device) => {
  const x = ones([2, 3], { device });
  assert.throws(() => reshape(x, [4, 2]), /reshape.*\[2, 3\].*6 elements.*\[4, 2\]/);
  assert.throws(() => x.reshape([7]), /reshape.*\[2, 3\].*\[7\]/);
  assert.throws(() => reshape(x, [4, -1]), /reshape.*\[2, 3\].*\[4, -1\]/);
  assert.throws(() => reshape(x, [-1, -1]), /reshape.*only one dim can be -1/);
});

test("permute with wrong dims names the op and the shape", (device) => {
  const x = ones([2, 3, 4], { device });
  assert.throws(() => permute(x, [0, 1]), /permute.*2 dims.*\[2, 3, 4\]/);
  assert.throws(() => permute(x, [0, 1, 3]), /permute.*dim 3.*out of range.*\[2, 3, 4\]/);
  assert.throws(() => permute(x, [0, 0, 1]), /permute.*repeated dim/);
  assert.throws(() => transpose(ones([2, 3], { device }), 0, 2), /transpose.*dim 2.*\[2, 3\]/);
});

test("concat / stack shape mismatches name both shapes", (device) => {
  const a = ones([2, 3], { device });
  assert.throws(() => concat([a, ones([2, 4], { device })], 0), /concat.*\[2, 3\].*\[2, 4\].*dim 0/);
  assert.throws(() => concat([a, ones([3], { device })], 0), /concat.*\[2, 3\].*\[3\]/);
  assert.throws(() => concat([a, a], 2), /concat.*dim 2.*out of range.*\[2, 3\]/);
  assert.throws(() => concat([], 0), /concat.*at least one/);
  assert.throws(() => concat([a, ones([2, 3], { device, dtype: "int32" })], 0), /concat.*float32.*int32/);
  assert.throws(() => stack([a, ones([3, 2], { device })], 0), /stack.*\[2, 3\].*\[3, 2\]/);
});

test("gather / indexSelect / scatterAdd with a float index", (device) => {
  const x = ones([2, 3], { device });
  assert.throws(() => gather(x, 1, zeros([2, 2], { device })), /gather.*index.*int32.*float32 \[2, 2\]/);
  assert.throws(() => indexSelect(x, 0, zeros([2], { device })), /indexSelect.*int32.*float32/);
  assert.throws(
    () => scatterAdd(x, 0, zeros([2, 3], { device }), ones([2, 3], { device })),
    /scatterAdd.*int32.*float32/,
  );
  // torch: index.size(d) <= input.size(d) for every d != dim
  assert.throws(
    () => gather(x, 1, zeros([3, 1], { device, dtype: "int32" })),
    /gather.*index shape \[3, 1\].*\[2, 3\]/,
  );
  assert.throws(() => gather(x, 2, zeros([2, 1], { device, dtype: "int32" })), /gather.*dim 2.*\[2, 3\]/);
});

test("axis out of range for sum / mean / max / argmax / softmax", (device) => {
  const x = ones([2, 3], { device });
  assert.throws(() => sum(x, 2), /sum.*dim 2.*out of range.*\[2, 3\]/);
  assert.throws(() => sum(x, -3), /sum.*dim -3.*\[2, 3\]/);
  assert.throws(() => sum(x, [0, 2]), /sum.*dim 2.*\[2, 3\]/);
  assert.throws(() => sum(x, [1, -1]), /sum.*repeated dim/);
  assert.throws(() => mean(x, 5), /mean.*dim 5.*\[2, 3\]/);
  assert.throws(() => max(x, 3), /max.*dim 3.*\[2, 3\]/);
  assert.throws(() => argmax(x, 3), /argmax.*dim 3.*\[2, 3\]/);
  assert.throws(() => softmax(x, 2), /softmax.*dim 2.*out of range.*\[2, 3\]/);
  assert.throws(() => softmax(x, -3), /softmax.*dim -3.*\[2, 3\]/);
  assert.throws(() => sum(tensor(1, { device }), 1), /sum.*dim 1.*\[\]/);
  assert.throws(() => unsqueeze(x, 4), /unsqueeze.*dim 4.*\[2, 3\]/);
});

test("axis out of range for logSoftmax names logSoftmax", (device) => {
  assert.throws(() => logSoftmax(ones([2, 3], { device }), 5), /logSoftmax.*dim 5.*\[2, 3\]/);
});

/** The other device, or null when only one is available. */
function other(device: Device): Device | null {
  return devices.find((d) => d !== device) ?? null;
}

test(
  `ops mixing cpu and webgpu tensors say so${devices.length < 2 ? " (ignored: needs both devices)" : ""}`,
  (device) => {
    const o = other(device)!;
    const a = ones([2, 3], { device }), b = ones([2, 3], { device: o });
    const devs = new RegExp(`different devices.*${device}.*${o}`);
    assert.throws(() => add(a, b), /add.*different devices/);
    assert.throws(() => add(a, b), devs);
    assert.throws(() => mul(a, b), /mul.*different devices/);
    assert.throws(() => concat([a, b], 0), /concat.*different devices/);
    assert.throws(
      () => conv2d(ones([1, 1, 3, 3], { device }), ones([1, 1, 1, 1], { device: o })),
      /conv2d.*different devices/,
    );
    assert.throws(() => gather(a, 1, zeros([2, 1], { device: o, dtype: "int32" })), /gather.*different devices/);
    // matmul reports it under some op name; see the ignored test below for the name itself
    assert.throws(() => matmul(a, ones([3, 2], { device: o })), /different devices/);
  },
  { ignore: devices.length < 2 },
);

test("matmul mixing devices or given an int tensor names matmul", (device) => {
  const o = other(device);
  if (o) {
    assert.throws(() => matmul(ones([2, 3], { device }), ones([3, 2], { device: o })), /matmul.*different devices/);
  }
  assert.throws(
    () => matmul(ones([2, 2], { device, dtype: "int32" }), ones([2, 2], { device })),
    /matmul.*int32.*\[2, 2\]/,
  );
});

Deno.test({
  name: `errors: copying a webgpu tensor to cpu synchronously points at toAsync [webgpu]` +
    (devices.includes("webgpu") ? "" : " (ignored: no WebGPU adapter)"),
  ignore: !devices.includes("webgpu"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => {
    assert.throws(() => ones([2], { device: "webgpu" }).to("cpu"), /to\(cpu\).*toAsync/);
  },
});

test("int / bool tensors passed to float-only ops", (device) => {
  const i = tensor([1, 2, 3], { device, dtype: "int32" });
  assert.throws(() => exp(i), /exp.*float32.*int32 \[3\]/);
  assert.throws(() => i.exp(), /exp.*int32/);
  assert.throws(() => sigmoid(i), /sigmoid.*float32.*int32/);
  assert.throws(() => log(ones([2], { device, dtype: "bool" })), /log.*float32.*bool \[2\]/);
  assert.throws(
    () => conv2d(ones([1, 1, 3, 3], { device, dtype: "int32" }), ones([1, 1, 1, 1], { device })),
    /conv2d.*float32.*int32 \[1, 1, 3, 3\]/,
  );
});

test("tensor() with ragged nested arrays", (device) => {
  assert.throws(() => tensor([[1, 2], [3]], { device }), /tensor.*ragged.*dim 1/);
  assert.throws(() => tensor([[[1, 2], [3, 4]], [[5, 6], [7]]], { device }), /tensor.*ragged.*dim 2/);
  assert.throws(() => tensor([[1, 2], 3] as never, { device }), /tensor.*ragged/);
  assert.throws(() => tensor([1, [2, 3]] as never, { device }), /tensor.*ragged/);
  assert.throws(() => tensor([[], [1]], { device }), /tensor.*ragged/);
  assert.throws(() => tensor([1, 2, 3], { device, shape: [2, 2] }), /tensor.*3 values.*\[2, 2\]/);
});

test("creation functions reject invalid shapes and arguments", (device) => {
  assert.throws(() => zeros([2, -1], { device }), /invalid shape \[2, -1\]/);
  assert.throws(() => ones([2.5], { device }), /invalid shape \[2\.5\]/);
  assert.throws(() => expand(ones([2, 3], { device }), [4, 3]), /expand.*\[2, 3\].*\[4, 3\]/);
});

test("backward on a tensor without grad", (device) => {
  assert.throws(() => sum(ones([2], { device })).backward(), /backward.*does not require grad/);
  const x = ones([2], { device, requiresGrad: true });
  const y = noGrad(() => sum(mul(x, 2)));
  assert.throws(() => y.backward(), /backward.*does not require grad/);
});

test("item() on a tensor with more than one element names the shape", async (device) => {
  await assert.rejects(() => ones([2, 3], { device }).item(), /item.*one element.*\[2,3\]/);
});

test("index ops: an out-of-range index is refused before any kernel runs", (device) => {
  const x = tensor([[1, 2, 3], [4, 5, 6]], { device });
  const idx = tensor([[0, 3]], { dtype: "int32", device });
  assert.throws(() => gather(x, 1, idx), /gather: index 3 is out of range for dim 1 of size 3.*\[2, 3\]/);
  const neg = tensor([-1], { dtype: "int32", device });
  assert.throws(() => indexSelect(x, 0, neg), /indexSelect: index -1 is out of range for dim 0 of size 2/);
  assert.throws(
    () => scatterAdd(x, 0, tensor([[2, 0, 0]], { dtype: "int32", device }), ones([1, 3], { device })),
    /scatterAdd: index 2 is out of range for dim 0 of size 2/,
  );
  // argmax results carry their range: in range for the axis they came from
  const am = argmax(x, 1, true);
  assert.doesNotThrow(() => gather(x, 1, am).dispose());
});
