/**
 * The fused selective scan (nn/ssm/selective_scan.ts) on every device from `testDevices()`:
 * - golden cases from tools/gen_sscan_fixtures.py (a port of `selective_scan_ref`, PyTorch 1.13): out, last
 *   state and every gradient of sum(out·R), within 1e-4·max|ref| per tensor;
 * - the official fixture `selective_scan_ref.safetensors` (forward and every gradient);
 * - a numerical gradcheck at small sizes, agreement with `selectiveScanReference`, shape errors, and that the
 *   gradient rule saves only the inputs and the chunk-boundary states (no (batch, D, L, N) buffer).
 */
import assert from "node:assert/strict";
import { gradcheck, loadSafetensors, memoryStats, noGrad, randn, tensor, tidy } from "../mod.ts";
import type { Tensor } from "../mod.ts";
import type { Device } from "../autodiff/backend.ts";
import {
  SELECTIVE_SCAN_CHUNK,
  selectiveScan,
  type SelectiveScanOptions,
  selectiveScanReference,
} from "../nn/ssm/selective_scan.ts";
import { assertCloseToMax, normals, testDevices } from "./util.ts";

const devices = await testDevices();
const opts = { sanitizeResources: false, sanitizeOps: false };

interface Stored {
  shape: number[];
  data: number[];
}
interface GoldenCase {
  name: string;
  deltaSoftplus: boolean;
  inputs: Record<string, Stored>;
  out: Stored;
  lastState: Stored;
  R: Stored;
  grads: Record<string, Stored>;
}

const golden = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/sscan.json", import.meta.url)),
) as { cases: GoldenCase[] };

// name in fixtures → option key
const OPTIONAL: Record<string, keyof SelectiveScanOptions> = { D: "D", z: "z", delta_bias: "deltaBias" };
const ORDER = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"];

/** Runs the fused scan on named inputs, backward with R; returns out, last state and grads by name. */
async function runNamed(
  device: Device,
  inputs: Record<string, { shape: number[]; data: Float32Array }>,
  R: { shape: number[]; data: Float32Array },
  deltaSoftplus: boolean,
  fn = selectiveScan,
): Promise<{ out: Float32Array; lastState: Float32Array; grads: Record<string, Float32Array> }> {
  const ts: Record<string, Tensor> = {};
  for (const k of ORDER) {
    const v = inputs[k];
    if (v) ts[k] = tensor(v.data, { shape: v.shape, device, requiresGrad: true });
  }
  const o: SelectiveScanOptions & { returnLastState: true } = { deltaSoftplus, returnLastState: true };
  for (const [name, key] of Object.entries(OPTIONAL)) if (ts[name]) (o[key] as Tensor) = ts[name];
  const r = tensor(R.data, { shape: R.shape, device });
  const res = tidy(() => fn(ts.u, ts.delta, ts.A, ts.B, ts.C, o));
  res.out.backward(r);
  const out = await res.out.data() as Float32Array, lastState = await res.lastState.data() as Float32Array;
  const grads: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(ts)) {
    assert.ok(t.grad, `no gradient for ${k}`);
    grads[k] = await t.grad.data() as Float32Array;
    t.grad.dispose();
    t.dispose();
  }
  res.out.dispose();
  res.lastState.dispose();
  r.dispose();
  return { out, lastState, grads };
}

const toF32 = (s: Stored) => ({ shape: s.shape, data: Float32Array.from(s.data) });

for (const device of devices) {
  for (const c of golden.cases) {
    Deno.test({
      name: `selectiveScan golden ${c.name} (${device})`,
      ...opts,
      fn: async () => {
        const inputs = Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, toF32(v)]));
        const got = await runNamed(device, inputs, toF32(c.R), c.deltaSoftplus);
        assertCloseToMax(got.out, c.out.data, `${c.name} out`);
        assertCloseToMax(got.lastState, c.lastState.data, `${c.name} lastState`);
        for (const [k, ref] of Object.entries(c.grads)) assertCloseToMax(got.grads[k], ref.data, `${c.name} grad ${k}`);
      },
    });
  }

  Deno.test({
    name: `selectiveScan official selective_scan_ref.safetensors (${device})`,
    ...opts,
    fn: async () => {
      const shared = new URL("../../shared/official/selective_scan_ref.safetensors", import.meta.url);
      const copy = new URL("./fixtures/official/selective_scan_ref.safetensors", import.meta.url);
      let file = shared;
      try {
        await Deno.stat(shared);
      } catch {
        console.warn(`${shared.pathname} is missing (a checkout of the repo only): using the copy ${copy.pathname}`);
        file = copy;
      }
      const st = (await loadSafetensors(file)).tensors;
      const get = (k: string) => {
        const h = st.get(k);
        assert.ok(h, `${file.pathname}: no entry ${k}`);
        return { shape: h.shape, data: Float32Array.from(h.data) };
      };
      const inputs = Object.fromEntries(ORDER.map((k) => [k, get(`input.${k}`)]));
      // the fixture's call: delta_softplus=True
      const got = await runNamed(device, inputs, get("upstream.y"), true);
      assertCloseToMax(got.out, get("output.y").data, "official y");
      for (const k of ORDER) assertCloseToMax(got.grads[k], get(`grad.input.${k}`).data, `official grad ${k}`);
    },
  });

  Deno.test({
    name: `selectiveScan gradcheck (${device})`,
    ...opts,
    fn: async () => {
      // multi-chunk on the CPU (L > chunk); a single short chunk on WebGPU (each evaluation is a readback)
      const L = device === "cpu" ? SELECTIVE_SCAN_CHUNK + 6 : 7;
      for (const grouped of [true, false]) {
        const b = 1, d = 2, n = 2;
        const mk = (shape: number[], seed: number, scale = 1, shift = 0) =>
          tensor(normals(shape.reduce((x, y) => x * y, 1), seed).map((v) => v * scale + shift), {
            shape,
            device,
            requiresGrad: true,
          });
        const u = mk([b, d, L], 1), delta = mk([b, d, L], 2, 0.3), A = mk([d, n], 3, 0.3, -1);
        const B = grouped ? mk([b, 1, n, L], 4) : mk([d, n], 4);
        const C = grouped ? mk([b, 1, n, L], 5) : mk([d, n], 5);
        const D = mk([d], 6), z = mk([b, d, L], 7), bias = mk([d], 8, 0.5);
        const res = await gradcheck(
          (u, delta, A, B, C, D, z, bias) =>
            selectiveScan(u, delta, A, B, C, { D, z, deltaBias: bias, deltaSoftplus: true }),
          [u, delta, A, B, C, D, z, bias],
          { eps: 1e-2, atol: 2e-2, rtol: 2e-2 },
        );
        for (const t of [u, delta, A, B, C, D, z, bias]) t.dispose();
        assert.ok(res.ok, `grouped=${grouped}: ${res.details} (max error ${res.maxError})`);
      }
    },
  });

  Deno.test({
    name: `selectiveScan agrees with selectiveScanReference (${device})`,
    ...opts,
    fn: async () => {
      for (const [G, L, z] of [[2, 100, false], [0, 70, true]] as const) {
        const b = 2, d = 4, n = 8;
        const mk = (shape: number[], seed: number, scale = 1, shift = 0) => ({
          shape,
          data: normals(shape.reduce((x, y) => x * y, 1), seed).map((v) => v * scale + shift),
        });
        const inputs: Record<string, { shape: number[]; data: Float32Array }> = {
          u: mk([b, d, L], 11),
          delta: mk([b, d, L], 12, 0.5),
          A: { shape: [d, n], data: mk([d, n], 13, 0.5).data.map((v) => -Math.exp(v)) },
          B: G ? mk([b, G, n, L], 14) : mk([d, n], 14),
          C: G ? mk([b, G, n, L], 15) : mk([d, n], 15),
          D: mk([d], 16),
          delta_bias: mk([d], 17, 0.5),
          ...(z ? { z: mk([b, d, L], 18) } : {}),
        };
        const R = mk([b, d, L], 19);
        const fused = await runNamed(device, inputs, R, true);
        const ref = await runNamed(device, inputs, R, true, selectiveScanReference);
        assertCloseToMax(fused.out, ref.out, `G=${G} out`);
        assertCloseToMax(fused.lastState, ref.lastState, `G=${G} lastState`);
        for (const k of Object.keys(ref.grads)) assertCloseToMax(fused.grads[k], ref.grads[k], `G=${G} grad ${k}`);
      }
    },
  });

  Deno.test({
    name: `selectiveScan saves no (batch, D, L, N) state (${device})`,
    ...opts,
    fn: async () => {
      const b = 2, d = 8, L = 300, n = 16, G = 2;
      const u = randn([b, d, L], { device, requiresGrad: true });
      const delta = randn([b, d, L], { device, requiresGrad: true });
      const A = randn([d, n], { device, requiresGrad: true });
      const B = randn([b, G, n, L], { device, requiresGrad: true });
      const C = randn([b, G, n, L], { device, requiresGrad: true });
      const before = memoryStats()[device]!.bytes;
      const out = selectiveScan(u, delta, A, B, C, { deltaSoftplus: true });
      const node = out.node!;
      assert.equal(node.saved.length, 6);
      const chunks = Math.ceil(L / SELECTIVE_SCAN_CHUNK);
      assert.deepEqual(node.saved[5].shape, [b, d, chunks, n]);
      for (const s of node.saved) assert.ok(s.size < b * d * L * n, `saved ${s.shape} is a full state`);
      // live memory after the forward: out + the chunk states (shared storages for the saved inputs)
      const grew = memoryStats()[device]!.bytes - before;
      assert.equal(grew, 4 * (b * d * L + b * d * chunks * n));
      out.backward(noGrad(() => randn([b, d, L], { device })));
      for (const t of [u, delta, A, B, C]) {
        assert.ok(t.grad);
        assert.deepEqual(t.grad.shape, t.shape);
        await t.grad.data();
        t.grad.dispose();
        t.dispose();
      }
      out.dispose();
    },
  });

  Deno.test({
    name: `selectiveScan shape errors (${device})`,
    ...opts,
    fn: () => {
      tidy(() => {
        const u = randn([2, 4, 10], { device }), A = randn([4, 3], { device });
        const B = randn([2, 2, 3, 10], { device });
        assert.throws(() => selectiveScan(u, randn([2, 4, 9], { device }), A, B, B), /delta must have u's shape/);
        assert.throws(() => selectiveScan(u, u, randn([5, 3], { device }), B, B), /A must be \(channels, dState\)/);
        assert.throws(() => selectiveScan(u, u, A, randn([2, 3, 3, 10], { device }), B), /B must be/);
        assert.throws(() => selectiveScan(u, u, A, B, randn([4, 3], { device })), /same layout/);
        assert.throws(() => selectiveScan(u, u, A, B, B, { D: randn([3], { device }) }), /D must be \(channels\)/);
        assert.throws(() => selectiveScan(randn([4, 10], { device }), u, A, B, B), /u must be/);
      });
    },
  });
}
