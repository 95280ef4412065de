/**
 * The depthwise fast path of conv2d (groups = C_in = C_out, direct backend kernels) against the generic
 * im2col path, rebuilt here from unfold + permute + bmm exactly as conv2d lowers grouped convolutions: forward
 * output and the gradients of x, weight and bias on random inputs, on every device from `testDevices()`.
 * Tolerance: 1e-5 · max|ref| per compared tensor. Plus a numerical gradcheck of the fast path.
 */
import assert from "node:assert/strict";
import * as ops from "../mod.ts";
import type { Tensor } from "../mod.ts";
import type { Device } from "../autodiff/backend.ts";
import { normals, testDevices } from "./util.ts";

const devices = await testDevices();

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (typeof v === "number" ? [v, v] : v);

interface Case {
  name: string;
  /** x shape (N, C, H, W). */
  x: [number, number, number, number];
  kernel: Pair;
  stride?: Pair;
  padding?: Pair | "same";
  dilation?: Pair;
  bias?: boolean;
}

const CASES: Case[] = [
  { name: "3x3 pad1 b1", x: [1, 3, 7, 13], kernel: 3, padding: 1, bias: true },
  { name: "3x3 pad0 stride2 b3", x: [3, 4, 7, 13], kernel: 3, stride: 2 },
  { name: "3x3 pad2 dilation2 b3", x: [3, 5, 7, 13], kernel: 3, padding: 2, dilation: 2, bias: true },
  { name: "3x3 pad1 stride2 dilation2 b3", x: [3, 2, 7, 13], kernel: 3, padding: 1, stride: 2, dilation: 2 },
  { name: "5x5 pad2 stride2 b1", x: [1, 2, 7, 13], kernel: 5, padding: 2, stride: 2, bias: true },
  { name: "5x5 pad0 b3", x: [3, 3, 7, 13], kernel: 5 },
  { name: "5x5 pad2 dilation2 stride2 b3", x: [3, 2, 7, 13], kernel: 5, padding: 2, dilation: 2, stride: 2 },
  { name: "7x7 pad1 b3", x: [3, 3, 7, 13], kernel: 7, padding: 1, bias: true },
  { name: "7x7 pad2 stride2 b1", x: [1, 4, 7, 13], kernel: 7, padding: 2, stride: 2 },
  { name: "1x1 pad0 b3", x: [3, 4, 7, 13], kernel: 1, bias: true },
  { name: "1x1 pad1 stride2 b1", x: [1, 3, 7, 13], kernel: 1, padding: 1, stride: 2 },
  {
    name: "3x5 tuples",
    x: [3, 3, 7, 13],
    kernel: [3, 5],
    stride: [2, 1],
    padding: [1, 2],
    dilation: [1, 2],
    bias: true,
  },
  { name: "same 3x3 dilation2", x: [3, 2, 7, 13], kernel: 3, padding: "same", dilation: 2 },
  { name: "same 4x4 (asymmetric)", x: [1, 3, 7, 13], kernel: 4, padding: "same", bias: true },
  // many positions per (channel, tap): the WebGPU weight gradient splits its reduction into slices
  { name: "3x3 pad1 large plane b2", x: [2, 1, 96, 97], kernel: 3, padding: 1, bias: true },
];

/** The generic grouped-conv lowering of conv2d (unfold + permute + bmm) for groups = C. */
function reference(x: Tensor, w: Tensor, b: Tensor | null, c: Case): Tensor {
  const [kh, kw] = pair(c.kernel);
  const stride = pair(c.stride ?? 1), dilation = pair(c.dilation ?? 1);
  let padding: [number, number];
  if (c.padding === "same") {
    const th = dilation[0] * (kh - 1), tw = dilation[1] * (kw - 1);
    const [t, l] = [Math.floor(th / 2), Math.floor(tw / 2)];
    x = ops.pad(x, [l, tw - l, t, th - t]);
    padding = [0, 0];
  } else {
    padding = pair(c.padding ?? 0);
  }
  const [n, ch, H, W] = x.shape;
  const outH = Math.floor((H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) / stride[0]) + 1;
  const outW = Math.floor((W + 2 * padding[1] - dilation[1] * (kw - 1) - 1) / stride[1]) + 1;
  const kk = kh * kw, L = outH * outW;
  const cols = ops.unfold(x, [kh, kw], { stride, padding, dilation }); // (N, C·kk, L)
  const colsG = ops.reshape(ops.permute(ops.reshape(cols, [n, ch, kk, L]), [1, 2, 0, 3]), [ch, kk, n * L]);
  const yg = ops.bmm(ops.reshape(w, [ch, 1, kk]), colsG); // (C, 1, N·L)
  const y = ops.reshape(ops.permute(ops.reshape(yg, [ch, 1, n, L]), [2, 0, 1, 3]), [n, ch, outH, outW]);
  return b ? ops.add(y, ops.reshape(b, [1, ch, 1, 1])) : y;
}

function fast(x: Tensor, w: Tensor, b: Tensor | null, c: Case): Tensor {
  return ops.conv2d(x, w, b, {
    stride: c.stride,
    padding: c.padding,
    dilation: c.dilation,
    groups: x.shape[1],
  });
}

/** Output and gradients (x, w, b) of `f` with upstream `r`. */
async function run(
  f: typeof fast,
  c: Case,
  device: Device,
  host: Float32Array[],
  upstream: (shape: readonly number[]) => Tensor,
): Promise<Float32Array[]> {
  const [kh, kw] = pair(c.kernel);
  const ch = c.x[1];
  const x = ops.tensor(host[0], { shape: c.x, device, requiresGrad: true });
  const w = ops.tensor(host[1], { shape: [ch, 1, kh, kw], device, requiresGrad: true });
  const b = c.bias ? ops.tensor(host[2], { shape: [ch], device, requiresGrad: true }) : null;
  const leaves = b ? [x, w, b] : [x, w];
  try {
    const y = ops.tidy(() => f(x, w, b, c));
    const r = upstream(y.shape);
    y.backward(r);
    const out = [await y.data() as Float32Array];
    for (const t of leaves) out.push(await t.grad!.data() as Float32Array);
    y.dispose();
    r.dispose();
    return out;
  } finally {
    for (const t of leaves) t.dispose();
  }
}

function assertClose(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let maxRef = 0, maxErr = 0, at = 0;
  for (let i = 0; i < want.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(want[i]));
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= maxErr)) [maxErr, at] = [e, i];
  }
  assert.ok(
    maxErr <= 1e-5 * maxRef,
    `${what}: max |fast - ref| = ${maxErr} at ${at} (${got[at]} vs ${want[at]}) exceeds 1e-5 · max|ref| = ${
      1e-5 * maxRef
    }`,
  );
}

const NAMES = ["forward", "grad x", "grad weight", "grad bias"];

for (const device of devices) {
  Deno.test({
    name: `depthwise conv2d fast path matches the im2col path [${device}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async (t) => {
      for (const [k, c] of CASES.entries()) {
        await t.step(`${c.name} [${device}]`, async () => {
          const [kh, kw] = pair(c.kernel);
          const ch = c.x[1];
          const host = [
            normals(c.x.reduce((a, b) => a * b, 1), 1000 + k),
            normals(ch * kh * kw, 2000 + k),
            normals(ch, 3000 + k),
          ];
          let rHost: Float32Array | null = null;
          const upstream = (shape: readonly number[]) => {
            rHost ??= normals(shape.reduce((a, b) => a * b, 1), 4000 + k);
            return ops.tensor(rHost, { shape, device });
          };
          const got = await run(fast, c, device, host, upstream);
          const want = await run(reference, c, device, host, upstream);
          got.forEach((g, i) => assertClose(g, want[i], `${c.name} [${device}] ${NAMES[i]}`));
        });
      }
    },
  });

  Deno.test({
    name: `depthwise conv2d gradcheck [${device}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const x = ops.tensor(normals(2 * 3 * 5 * 6, 7), { shape: [2, 3, 5, 6], device, requiresGrad: true });
      const w = ops.tensor(normals(3 * 3 * 3, 8), { shape: [3, 1, 3, 3], device, requiresGrad: true });
      const b = ops.tensor(normals(3, 9), { shape: [3], device, requiresGrad: true });
      try {
        for (
          const opts of [
            { stride: [2, 1] as [number, number], padding: 1, groups: 3 },
            { dilation: 2, padding: "same" as const, groups: 3 },
          ]
        ) {
          const res = await ops.gradcheck((xx, ww, bb) => ops.conv2d(xx, ww, bb, opts), [x, w, b], {
            eps: 1e-2,
            atol: 1e-2,
            rtol: 1e-2,
          });
          assert.ok(res.ok, `gradcheck ${JSON.stringify(opts)} [${device}]: maxError ${res.maxError}; ${res.details}`);
        }
      } finally {
        for (const t of [x, w, b]) t.dispose();
      }
    },
  });
}
