/**
 * Golden-value tests: every op's forward output and backward gradients against PyTorch 1.13 references
 * (tests/fixtures/ops.json, written by tools/gen_op_fixtures.py; the format is documented there), on every
 * device from `testDevices()`.
 *
 * Per case: build the inputs (permuting them first when the fixture says so), call the op, compare each
 * output; then backpropagate the fixture's upstream R (`out.backward(R)`, or `sum_k sum(out_k * R_k)` for
 * ops returning several tensors) and compare the leaves' gradients.
 *
 * Tolerances: forward |a-b| ≤ 1e-5·max(1, max|b|) for elementwise and shape ops, ≤ 1e-4·max|b| for
 * reductions, matmul and nn ops; gradients ≤ 1e-4·max|ref|. int32/bool outputs must match exactly.
 */
import assert from "node:assert/strict";
import * as ops from "../mod.ts";
import type { Tensor } from "../mod.ts";
import type { Device } from "../autodiff/backend.ts";
import { testDevices } from "./util.ts";

type DTypeName = "float32" | "int32" | "bool";
/** base64 little-endian float32 for float32 data; integer array for int32/bool. */
type Values = string | number[];

interface InputSpec {
  shape: number[];
  dtype: DTypeName;
  values: Values;
  requiresGrad: boolean;
  permute?: number[];
}

interface OutputSpec {
  shape: number[];
  dtype: DTypeName;
  values: Values;
}

interface Case {
  name: string;
  group: string;
  tol: "elementwise" | "reduction";
  op: string;
  args: unknown[];
  inputs: InputSpec[];
  outputs: OutputSpec[];
  upstream: (string | null)[];
  grads: (string | null)[];
}

interface Fixture {
  version: number;
  cases: Case[];
}

type HostArray = Float32Array | Int32Array | Uint8Array;
type OpFn = (...args: unknown[]) => Tensor | Tensor[];

const GROUPS = ["shape", "binary", "compare", "unary", "reduce", "matmul", "nn"];

const fixture: Fixture = JSON.parse(await Deno.readTextFile(new URL("./fixtures/ops.json", import.meta.url)));
const devices = await testDevices();

function decodeF32(b64: string): Float32Array {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

function hostData(dtype: DTypeName, values: Values): HostArray {
  if (dtype === "float32") return decodeF32(values as string);
  if (dtype === "int32") return Int32Array.from(values as number[]);
  return Uint8Array.from(values as number[]);
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Asserts |got-want| ≤ rel·scale elementwise (NaN fails), naming the first mismatches. */
function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length ${got.length} != ${want.length}`);
  const bad: string[] = [];
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= tol)) {
      worst = Number.isNaN(d) ? NaN : Math.max(worst, d);
      if (bad.length < 6) bad.push(`[${i}] got ${got[i]} want ${want[i]}`);
    }
  }
  if (bad.length) {
    assert.fail(
      `${what}: ${bad.length > 5 ? "≥6" : bad.length} mismatches (tol ${tol.toExponential(2)}, ` +
        `worst |diff| ${worst}): ${bad.join("; ")}`,
    );
  }
}

function resolveArg(a: unknown, views: Tensor[]): unknown {
  if (a === null) return undefined;
  if (Array.isArray(a)) return a.map((v) => resolveArg(v, views));
  if (typeof a === "object") {
    const o = a as Record<string, unknown>;
    if ("$t" in o) return views[o.$t as number];
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, resolveArg(v, views)]));
  }
  return a;
}

async function runCase(c: Case, device: Device): Promise<void> {
  const fn = (ops as unknown as Record<string, unknown>)[c.op];
  assert.equal(typeof fn, "function", `mod.ts does not export a function "${c.op}"`);
  const owned = new Set<Tensor>();
  const own = <T extends Tensor>(t: T): T => {
    owned.add(t);
    return t;
  };
  try {
    // inputs
    const leaves: Tensor[] = [];
    const views: Tensor[] = [];
    for (const spec of c.inputs) {
      const leaf = own(ops.tensor(hostData(spec.dtype, spec.values), {
        shape: spec.shape,
        dtype: spec.dtype,
        device,
        requiresGrad: spec.requiresGrad,
      }));
      assert.deepEqual([...leaf.shape], spec.shape, "input shape");
      leaves.push(leaf);
      views.push(spec.permute ? own(ops.permute(leaf, spec.permute)) : leaf);
    }

    // forward
    const args = c.args.map((a) => resolveArg(a, views));
    while (args.length && args[args.length - 1] === undefined) args.pop();
    const res = (fn as OpFn)(...args);
    const outs = Array.isArray(res) ? res : [res];
    outs.forEach(own);
    assert.equal(outs.length, c.outputs.length, `number of outputs`);
    for (let k = 0; k < outs.length; k++) {
      const o = outs[k], want = c.outputs[k];
      const tag = outs.length > 1 ? `output ${k}` : "output";
      assert.deepEqual([...o.shape], want.shape, `${tag} shape`);
      assert.equal(o.dtype, want.dtype, `${tag} dtype`);
      assert.equal(o.device, device, `${tag} device`);
      const got = await o.data();
      assert.equal(got.length, numel(want.shape), `${tag} data length`);
      if (want.dtype === "float32") {
        const ref = decodeF32(want.values as string);
        const m = maxAbs(ref);
        const tol = c.tol === "elementwise" ? 1e-5 * Math.max(1, m) : 1e-4 * (m || 1);
        assertClose(got, ref, tol, `${tag} values`);
      } else {
        assert.deepEqual(Array.from(got), want.values as number[], `${tag} values`);
      }
    }

    // backward
    if (!c.grads.some((g) => g !== null)) return;
    const rs = c.upstream.map((u, k) =>
      u === null ? null : own(ops.tensor(decodeF32(u), { shape: c.outputs[k].shape, device }))
    );
    if (outs.length === 1) {
      outs[0].backward(rs[0]!);
    } else {
      let loss: Tensor | null = null;
      for (let k = 0; k < outs.length; k++) {
        if (rs[k] === null) continue;
        const term = own(ops.sum(own(ops.mul(outs[k], rs[k]!))));
        loss = loss === null ? term : own(ops.add(loss, term));
      }
      loss!.backward();
    }
    for (let i = 0; i < c.inputs.length; i++) {
      const spec = c.inputs[i], leaf = leaves[i], g = c.grads[i];
      if (!spec.requiresGrad) {
        assert.equal(leaf.grad, null, `input ${i} has requiresGrad false but got a .grad`);
        continue;
      }
      if (g === null) continue;
      assert.ok(leaf.grad, `input ${i}: .grad is null after backward`);
      assert.deepEqual([...leaf.grad.shape], spec.shape, `input ${i} grad shape`);
      const ref = decodeF32(g);
      assertClose(await leaf.grad.data(), ref, 1e-4 * (maxAbs(ref) || 1), `input ${i} grad`);
    }
  } finally {
    for (const t of owned) t.dispose();
  }
}

for (const device of devices) {
  for (const group of GROUPS) {
    const cases = fixture.cases.filter((c) => c.group === group);
    Deno.test({
      name: `golden ops: ${group} [${device}]`,
      // WebGPU keeps device resources and pending map ops alive across tests.
      sanitizeResources: device === "cpu",
      sanitizeOps: device === "cpu",
      fn: async (t) => {
        assert.ok(cases.length > 0, `no fixture cases for group ${group}`);
        for (const c of cases) {
          await t.step(`${c.name} [${device}]`, () => runCase(c, device));
        }
      },
    });
  }
}

Deno.test("golden ops: fixture covers every group", () => {
  assert.equal(fixture.version, 1);
  const unknown = fixture.cases.filter((c) => !GROUPS.includes(c.group)).map((c) => c.name);
  assert.deepEqual(unknown, []);
});
