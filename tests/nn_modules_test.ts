/**
 * Golden-value tests of the nn layers and losses against PyTorch 1.13 (tests/fixtures/nn.json, written by
 * tools/gen_nn_fixtures.py, which documents the format), on every device from `testDevices()`.
 *
 * Layer cases: build the layer with the fixture's constructor arguments, install PyTorch's state dict with a
 * strict `loadStateDict` (so the parameter and buffer names are PyTorch's), set train/eval, run the input,
 * compare the output and the buffers after the forward (BatchNorm's running statistics), then backpropagate
 * R (`out.backward(R)`, i.e. the gradient of sum(out·R)) and compare the input's and every parameter's gradient.
 * Loss cases: call the loss on the fixture's tensors and compare the value and the gradients.
 *
 * Tolerances: forward |a-b| ≤ 1e-5·max(1, max|ref|) for elementwise layers (activations, pixel shuffle),
 * ≤ 1e-4·max|ref| for everything that reduces; gradients ≤ 1e-4·max|ref|; int32 values exactly.
 */
import assert from "node:assert/strict";
import { type Tensor, tensor } from "../mod.ts";
import * as nn from "../nn/index.ts";
import type { Device } from "../autodiff/backend.ts";
import { testDevices } from "./util.ts";

type Values = string | number[];
interface TensorSpec {
  shape: number[];
  dtype: "float32" | "int32";
  values: Values;
  requiresGrad?: boolean;
}
interface LayerCase {
  name: string;
  kind: "layer";
  layer: string;
  args: unknown[];
  opts: Record<string, unknown>;
  train: boolean;
  tol: "elementwise" | "reduction";
  state: Record<string, TensorSpec>;
  input: TensorSpec;
  output: TensorSpec;
  upstream: string;
  gradInput: string;
  gradParams: Record<string, string>;
  stateAfter: Record<string, TensorSpec>;
}
interface LossCase {
  name: string;
  kind: "loss";
  fn: string;
  args: unknown[];
  opts: Record<string, unknown>;
  tol: "elementwise" | "reduction";
  inputs: TensorSpec[];
  output: TensorSpec;
  upstream: string;
  grads: (string | null)[];
}
type Case = LayerCase | LossCase;

const fixture: { cases: Case[] } = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/nn.json", import.meta.url)),
);
const devices = await testDevices();

function decodeF32(b64: string): Float32Array {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

function build(spec: TensorSpec, device: Device, requiresGrad = false): Tensor {
  const data = spec.dtype === "float32" ? decodeF32(spec.values as string) : Int32Array.from(spec.values as number[]);
  return tensor(data, { shape: spec.shape, dtype: spec.dtype, device, requiresGrad });
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Asserts |got-want| ≤ tol elementwise (NaN fails), naming the first mismatches. */
function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length ${got.length} != ${want.length}`);
  const bad: string[] = [];
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= tol) && bad.length < 6) bad.push(`[${i}] got ${got[i]} want ${want[i]}`);
  }
  if (bad.length) assert.fail(`${what}: mismatches (tol ${tol.toExponential(2)}): ${bad.join("; ")}`);
}

async function compare(t: Tensor, spec: TensorSpec, tolClass: "elementwise" | "reduction", what: string) {
  assert.deepEqual([...t.shape], spec.shape, `${what} shape`);
  assert.equal(t.dtype, spec.dtype, `${what} dtype`);
  const got = await t.data();
  if (spec.dtype === "int32") {
    assert.deepEqual(Array.from(got), spec.values, `${what} values`);
    return;
  }
  const ref = decodeF32(spec.values as string);
  const m = maxAbs(ref);
  assertClose(got, ref, tolClass === "elementwise" ? 1e-5 * Math.max(1, m) : 1e-4 * (m || 1), what);
}

async function compareGrad(g: Tensor | null, b64: string, what: string) {
  assert.ok(g, `${what}: no gradient`);
  const ref = decodeF32(b64);
  assertClose(await g.data(), ref, 1e-4 * (maxAbs(ref) || 1), what);
}

type Ctor = new (...args: unknown[]) => nn.Module & { forward(x: Tensor): Tensor };

async function runLayer(c: LayerCase, device: Device): Promise<void> {
  const Cls = (nn as unknown as Record<string, Ctor>)[c.layer];
  assert.equal(typeof Cls, "function", `nn does not export "${c.layer}"`);
  const module = new Cls(...c.args, { ...c.opts, device });
  const owned: Tensor[] = [];
  try {
    // the state dict arrives on the CPU; loadStateDict moves it to the module's device
    const sd = new Map(Object.entries(c.state).map(([k, s]) => [k, build(s, "cpu")]));
    owned.push(...sd.values());
    const res = await module.loadStateDict(sd);
    assert.deepEqual(res, { missing: [], unexpected: [] });
    module.train(c.train);
    const x = build(c.input, device, true);
    owned.push(x);
    const y = module.forward(x);
    owned.push(y);
    assert.equal(y.device, device);
    await compare(y, c.output, c.tol, "output");
    const buffers = new Map(module.namedBuffers());
    assert.deepEqual([...buffers.keys()], Object.keys(c.stateAfter), "buffer keys");
    for (const [k, spec] of Object.entries(c.stateAfter)) await compare(buffers.get(k)!, spec, "reduction", k);
    const r = build({ shape: c.output.shape, dtype: "float32", values: c.upstream }, device);
    owned.push(r);
    y.backward(r);
    await compareGrad(x.grad, c.gradInput, "input grad");
    const params = new Map(module.namedParameters());
    assert.deepEqual([...params.keys()], Object.keys(c.gradParams), "parameter keys");
    for (const [k, g] of Object.entries(c.gradParams)) await compareGrad(params.get(k)!.grad, g, `${k} grad`);
  } finally {
    for (const t of owned) {
      t.zeroGrad();
      t.dispose();
    }
    module.dispose();
  }
}

async function runLoss(c: LossCase, device: Device): Promise<void> {
  const fn = (nn as unknown as Record<string, (...a: unknown[]) => Tensor>)[c.fn];
  assert.equal(typeof fn, "function", `nn does not export "${c.fn}"`);
  const inputs = c.inputs.map((s) => build(s, device, s.requiresGrad));
  const owned: Tensor[] = [...inputs];
  try {
    const extra = Object.keys(c.opts).length ? [c.opts] : [];
    const y = fn(...inputs, ...c.args, ...extra);
    owned.push(y);
    await compare(y, c.output, c.tol, "output");
    const r = build({ shape: c.output.shape, dtype: "float32", values: c.upstream }, device);
    owned.push(r);
    y.backward(r);
    for (let i = 0; i < inputs.length; i++) {
      const g = c.grads[i];
      if (g === null) assert.equal(inputs[i].grad, null, `input ${i} should get no gradient`);
      else await compareGrad(inputs[i].grad, g, `input ${i} grad`);
    }
  } finally {
    for (const t of owned) {
      t.zeroGrad();
      t.dispose();
    }
  }
}

for (const device of devices) {
  for (const [kind, label] of [["layer", "layers"], ["loss", "losses"]] as const) {
    Deno.test({
      name: `nn golden (${label}) matches PyTorch 1.13 on ${device}`,
      sanitizeResources: false,
      sanitizeOps: false,
      async fn(t) {
        for (const c of fixture.cases.filter((c) => c.kind === kind)) {
          await t.step(c.name, () => c.kind === "layer" ? runLayer(c, device) : runLoss(c, device));
        }
      },
    });
  }
}
