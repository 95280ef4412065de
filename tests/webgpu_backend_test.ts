/**
 * Kernel-level parity tests: every WebGPU kernel against the CPU reference backend on random inputs
 * (odd sizes, size-1 dims, broadcast and negative strides, int32/bool, matmul transposes and batch
 * broadcast, im2col/col2im geometry, gather/scatter-add). Skipped with a warning when no adapter
 * exists, except under CI.
 */
import "../autodiff/backends/cpu/deno_host.ts"; // OpenBLAS and worker threads, as mod.ts registers them
import assert from "node:assert/strict";
import type { Backend, BackendBuffer, DType, HostArray, Im2colParams, MatmulParams } from "../autodiff/backend.ts";
import { BINARY, UNARY } from "../autodiff/op_table.ts";
import type { BinaryOp, UnaryOp } from "../autodiff/backend.ts";
import { cpuBackend } from "../autodiff/backends/cpu/backend.ts";
import { createWebGPUBackend, type WebGPUBackend } from "../autodiff/backends/webgpu/backend.ts";
import { collapse, grid } from "../autodiff/backends/webgpu/templates.ts";
import { BufferPool, sizeClass } from "../autodiff/backends/webgpu/buffer_pool.ts";
import { preferVulkanOnLinux } from "../autodiff/backends/webgpu/device.ts";
import { profileGpu } from "../bench/profile.ts";

let gpu: WebGPUBackend | null = null;
try {
  gpu = await createWebGPUBackend();
} catch (e) {
  if (Deno.env.get("CI")) throw e;
  console.warn(`skipping WebGPU backend tests: ${(e as Error).message}`);
}
const ignore = gpu === null;

function test(name: string, fn: (g: WebGPUBackend) => Promise<void> | void): void {
  Deno.test({
    name: `webgpu backend: ${name}`,
    ignore,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () => fn(gpu!),
  });
}

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(1234);
function randf(n: number, lo = -3, hi = 3): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
}
function randi(n: number, lo = -5, hi = 5): Int32Array {
  return Int32Array.from({ length: n }, () => lo + Math.floor((hi - lo + 1) * rand()));
}
function randb(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => (rand() < 0.5 ? 1 : 0));
}
function randFor(dtype: DType, n: number): HostArray {
  return dtype === "float32" ? randf(n) : dtype === "int32" ? randi(n) : randb(n);
}
const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
function contig(shape: readonly number[]): number[] {
  const s: number[] = [];
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

function assertClose(got: HostArray, want: HostArray, rtol: number, atol: number, msg: string): void {
  assert.deepStrictEqual(got.length, want.length, `${msg}: length`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(w)) {
      assert(Number.isNaN(g), `${msg}: [${i}] got ${g}, want NaN`);
      continue;
    }
    if (g === w) continue;
    assert(Math.abs(g - w) <= atol + rtol * Math.abs(w), `${msg}: [${i}] got ${g}, want ${w}`);
  }
}

type Input = readonly [HostArray, DType];

/**
 * Runs `f` on both backends with the same inputs and compares the result (the returned buffer, which
 * may be one of the inputs for in-place kernels). Also checks that no buffer leaks.
 */
async function parity(
  g: Backend,
  msg: string,
  inputs: readonly Input[],
  f: (be: Backend, bufs: BackendBuffer[]) => BackendBuffer,
  rtol = 1e-5,
  atol = 1e-6,
): Promise<void> {
  const res: { data: HostArray; dtype: DType }[] = [];
  for (const be of [cpuBackend, g]) {
    const before = be.memory();
    const bufs = inputs.map(([d, t]) => be.upload(d, t));
    const out = f(be, bufs);
    res.push({ data: await be.read(out), dtype: out.dtype });
    if (!bufs.includes(out)) be.free(out);
    bufs.forEach((b) => be.free(b));
    const after = be.memory();
    assert.deepStrictEqual(
      [after.bytes, after.buffers],
      [before.bytes, before.buffers],
      `${msg}: leak on ${be.device}`,
    );
  }
  assert.deepStrictEqual(res[1].dtype, res[0].dtype, `${msg}: dtype`);
  assert.deepStrictEqual(res[1].data.constructor, res[0].data.constructor, `${msg}: array type`);
  assertClose(res[1].data, res[0].data, rtol, atol, msg);
}

Deno.test("webgpu templates: collapse merges contiguous dims and drops size-1 dims", () => {
  assert.deepStrictEqual(collapse([2, 3, 4], [[12, 4, 1], [0, 4, 1]]), { shape: [2, 12], strides: [[12, 1], [0, 1]] });
  assert.deepStrictEqual(collapse([1, 5, 1], [[5, 1, 1]]), { shape: [5], strides: [[1]] });
  assert.deepStrictEqual(collapse([3, 2], [[-2, 1]]), { shape: [3, 2], strides: [[-2, 1]] });
  assert.deepStrictEqual(grid(70000 * 3), [Math.ceil(210000 / 4), 4, 1]);
  assert.deepStrictEqual(sizeClass(1), 256);
  assert.deepStrictEqual(sizeClass(1000), 1024);
  assert.deepStrictEqual(sizeClass(1100), 1280);
});

test("upload/read round trip per dtype, zero-length buffers, memory accounting", async (g) => {
  assert(typeof g.isFallbackAdapter === "boolean");
  const before = g.memory();
  const f = g.upload(Float32Array.of(1.5, -2, NaN, Infinity), "float32");
  const i = g.upload(Int32Array.of(-7, 0, 2147483647), "int32");
  const b = g.upload(Uint8Array.of(1, 0, 1, 1, 0), "bool");
  const z = g.upload(new Float32Array(0), "float32");
  const za = g.alloc(0, "int32");
  assert.deepStrictEqual(g.memory().buffers, before.buffers + 5);
  assert.deepStrictEqual(g.memory().bytes, before.bytes + 48);
  assert.deepStrictEqual(await g.read(f), Float32Array.of(1.5, -2, NaN, Infinity));
  assert.deepStrictEqual(await g.read(i), Int32Array.of(-7, 0, 2147483647));
  assert.deepStrictEqual(await g.read(b), Uint8Array.of(1, 0, 1, 1, 0));
  assert.deepStrictEqual(await g.read(z), new Float32Array(0));
  assert.deepStrictEqual(await g.read(za), new Int32Array(0));
  const zf = g.fill(0, 3, "float32");
  assert.deepStrictEqual(await g.read(zf), new Float32Array(0));
  for (const x of [f, i, b, z, za, zf]) g.free(x);
  assert.deepStrictEqual(g.memory().buffers, before.buffers);
  assert(g.memory().pooledBytes > 0);
  await g.sync();
});

test("fill and cast", async (g) => {
  for (const dtype of ["float32", "int32", "bool"] as DType[]) {
    await parity(g, `fill ${dtype}`, [], (be) => be.fill(37, dtype === "bool" ? 1 : -3, dtype));
  }
  const src: Record<DType, HostArray> = {
    float32: Float32Array.of(-2.7, -0.5, 0, 0.5, 1.9, 3, -0, 100.25, 7),
    int32: Int32Array.of(-3, -1, 0, 1, 2, 5, 0, 99, -100),
    bool: Uint8Array.of(1, 0, 0, 1, 1, 0, 1, 1, 0),
  };
  for (const from of ["float32", "int32", "bool"] as DType[]) {
    for (const to of ["float32", "int32", "bool"] as DType[]) {
      await parity(g, `cast ${from}->${to}`, [[src[from], from]], (be, [x]) => be.cast(x, to));
    }
  }
});

test("unary ops: float32 (scalar and vec4 paths), int32, bool", async (g) => {
  for (const n of [91, 64, 1]) {
    for (const op of Object.keys(UNARY) as UnaryOp[]) {
      const positive = op === "log" || op === "sqrt" || op === "rsqrt";
      const data = randf(n, positive ? 0.05 : -4, 4);
      if (op === "isnan" || op === "round") {
        data[0] = NaN;
        if (n > 4) data.set([2.5, -1.5, 0.5], 1);
      }
      await parity(g, `unary ${op} n=${n}`, [[data, "float32"]], (be, [x]) => be.unary(op, x), 2e-5, 2e-6);
    }
  }
  for (const op of Object.keys(UNARY) as UnaryOp[]) {
    if (!UNARY[op].int) continue;
    await parity(g, `unary int ${op}`, [[randi(29, -50, 50), "int32"]], (be, [x]) => be.unary(op, x));
  }
  await parity(g, "unary logicalNot bool", [[randb(13), "bool"]], (be, [x]) => be.unary("logicalNot", x));
});

test("binary ops: contiguous, broadcast, scalar, rank 5 with size-1 dims; float32/int32/bool", async (g) => {
  const cases: { shape: number[]; sa: number[]; sb: number[]; na: number; nb: number }[] = [
    { shape: [7, 13], sa: [13, 1], sb: [13, 1], na: 91, nb: 91 },
    { shape: [7, 13], sa: [13, 1], sb: [0, 1], na: 91, nb: 13 },
    { shape: [7, 13], sa: [0, 1], sb: [1, 0], na: 13, nb: 7 },
    { shape: [7, 13], sa: [1, 7], sb: [0, 0], na: 91, nb: 1 },
    { shape: [2, 1, 3, 1, 5], sa: [15, 15, 5, 5, 1], sb: [0, 0, 1, 0, 0], na: 30, nb: 3 },
    { shape: [1], sa: [0], sb: [1], na: 1, nb: 1 },
    { shape: [], sa: [], sb: [], na: 1, nb: 1 },
  ];
  for (const c of cases) {
    for (const op of Object.keys(BINARY) as BinaryOp[]) {
      const a = randf(c.na), b = randf(c.nb);
      if (op === "pow") { for (let i = 0; i < b.length; i += 2) b[i] = Math.round(b[i]); }
      if (op === "eq" || op === "ne" || op === "le" || op === "ge") b.fill(a[0], 0, Math.min(2, b.length));
      if (op === "maximum" || op === "minimum") a[0] = NaN;
      await parity(
        g,
        `binary ${op} ${JSON.stringify(c)}`,
        [[a, "float32"], [b, "float32"]],
        (be, [x, y]) => be.binary(op, x, y, c.shape, c.sa, c.sb),
        op === "pow" ? 1e-5 : 1e-6,
        1e-6,
      );
      if (BINARY[op].wgslInt) {
        await parity(
          g,
          `binary int ${op} ${JSON.stringify(c)}`,
          [[randi(c.na), "int32"], [randi(c.nb), "int32"]],
          (be, [x, y]) => be.binary(op, x, y, c.shape, c.sa, c.sb),
        );
      }
    }
    for (const op of ["logicalAnd", "logicalOr", "eq", "ne"] as BinaryOp[]) {
      await parity(
        g,
        `binary bool ${op}`,
        [[randb(c.na), "bool"], [randb(c.nb), "bool"]],
        (be, [x, y]) => be.binary(op, x, y, c.shape, c.sa, c.sb),
      );
    }
  }
});

test("where with broadcast strides", async (g) => {
  const shape = [4, 1, 7, 13];
  const strides = contig(shape);
  await parity(
    g,
    "where float",
    [[randb(13), "bool"], [randf(4 * 7 * 13), "float32"], [randf(7), "float32"]],
    (be, [c, a, b]) => be.where(c, a, b, shape, [0, 0, 0, 1], strides, [0, 0, 1, 0]),
  );
  await parity(
    g,
    "where int32",
    [[randb(91), "bool"], [randi(1), "int32"], [randi(91), "int32"]],
    (be, [c, a, b]) => be.where(c, a, b, [7, 13], [13, 1], [0, 0], [1, 7]),
  );
});

test("clamp and affine", async (g) => {
  const x = randf(91, -5, 5);
  x[3] = NaN;
  await parity(g, "clamp float", [[x, "float32"]], (be, [a]) => be.clamp(a, -1.5, 2));
  await parity(g, "clamp one-sided", [[x, "float32"]], (be, [a]) => be.clamp(a, -Infinity, 0.25));
  await parity(g, "clamp int", [[randi(40, -9, 9), "int32"]], (be, [a]) => be.clamp(a, -3, 4));
  await parity(g, "affine", [[x, "float32"]], (be, [a]) => be.affine(a, -0.75, 2.5));
});

test("stridedCopyInto: transpose, flip (negative strides), broadcast, offsets, int32/bool", async (g) => {
  const shape = [7, 13];
  const dstLen = 200;
  const cases: { so: number; ss: number[]; do: number; ds: number[]; srcLen: number; shape: number[] }[] = [
    { so: 0, ss: [1, 7], do: 0, ds: [13, 1], srcLen: 91, shape },
    { so: 90, ss: [-13, -1], do: 5, ds: [13, 1], srcLen: 91, shape },
    { so: 12, ss: [13, -1], do: 3, ds: [1, 7], srcLen: 91, shape },
    { so: 2, ss: [0, 1], do: 10, ds: [14, 1], srcLen: 20, shape },
    { so: 4, ss: [0, 0, 1], do: 0, ds: [39, 13, 1], srcLen: 20, shape: [3, 3, 13] },
    { so: 3, ss: [], do: 7, ds: [], srcLen: 5, shape: [] },
    {
      so: 0,
      ss: [1, 0, 3, 6, 18, 36, 72, 144, 288, 1],
      do: 0,
      ds: contig([1, 1, 1, 1, 1, 1, 1, 1, 1, 2]).fill(0, 0, 9),
      srcLen: 4,
      shape: [1, 1, 1, 1, 1, 1, 1, 1, 1, 2],
    },
  ];
  for (const c of cases) {
    for (const dtype of ["float32", "int32", "bool"] as DType[]) {
      await parity(
        g,
        `stridedCopyInto ${dtype} ${JSON.stringify(c)}`,
        [[randFor(dtype, c.srcLen), dtype], [randFor(dtype, dstLen), dtype]],
        (be, [s, d]) => {
          be.stridedCopyInto(s, c.so, c.ss, d, c.do, c.ds, c.shape);
          return d;
        },
      );
    }
  }
  // Source and destination may be the same buffer.
  await parity(g, "stridedCopyInto in place", [[randf(20), "float32"]], (be, [s]) => {
    be.stridedCopyInto(s, 19, [-1], s, 0, [1], [10]);
    return s;
  });
});

test("reduce (sum/max/min/argmax/argmin) over (outer, size, inner), float32 and int32", async (g) => {
  const geoms = [[1, 1, 1], [7, 13, 1], [1, 13, 7], [3, 5, 4], [2, 3000, 1], [1, 70000, 1], [1, 1000, 3], [5000, 3, 2]];
  for (const [outer, size, inner] of geoms) {
    for (const op of ["sum", "max", "min", "argmax", "argmin"] as const) {
      const n = outer * size * inner;
      // Few distinct values so ties (first index wins) actually happen.
      const xf = Float32Array.from(randi(n, -3, 3), (v) => v * 0.5);
      const tol = op === "sum" ? 1e-5 : 0;
      await parity(
        g,
        `reduce ${op} f32 ${[outer, size, inner]}`,
        [[xf, "float32"]],
        (be, [x]) => be.reduce(op, x, outer, size, inner),
        tol,
        tol ? 1e-3 : 0,
      );
      await parity(
        g,
        `reduce ${op} i32 ${[outer, size, inner]}`,
        [[randi(n, -4, 4), "int32"]],
        (be, [x]) => be.reduce(op, x, outer, size, inner),
      );
    }
  }
  const withNaN = randf(60);
  withNaN[17] = NaN;
  withNaN[40] = NaN;
  for (const op of ["max", "min", "argmax", "argmin"] as const) {
    await parity(g, `reduce ${op} NaN`, [[withNaN, "float32"]], (be, [x]) => be.reduce(op, x, 2, 30, 1));
    await parity(g, `reduce ${op} NaN long`, [[withNaN, "float32"]], (be, [x]) => be.reduce(op, x, 1, 60, 1));
  }
  const big = randf(300 * 2);
  big[450] = NaN;
  await parity(g, "reduce argmax NaN wg path", [[big, "float32"]], (be, [x]) => be.reduce("argmax", x, 1, 600, 1));
});

test("cumsum", async (g) => {
  for (const [outer, size, inner] of [[1, 1, 1], [3, 13, 7], [1, 100, 1], [4, 5, 1]]) {
    const n = outer * size * inner;
    await parity(
      g,
      `cumsum f32 ${[outer, size, inner]}`,
      [[randf(n), "float32"]],
      (be, [x]) => be.cumsum(x, outer, size, inner),
      1e-5,
      1e-5,
    );
    await parity(
      g,
      `cumsum i32 ${[outer, size, inner]}`,
      [[randi(n), "int32"]],
      (be, [x]) => be.cumsum(x, outer, size, inner),
    );
  }
});

test("matmul: transposes, odd sizes, batch strides 0", async (g) => {
  const sizes = [[1, 1, 1], [7, 13, 5], [13, 7, 9], [16, 16, 16], [33, 65, 17], [4, 8, 12], [36, 40, 13], [1, 20, 8], [
    9,
    1,
    3,
  ], [
    5,
    6,
    0,
  ]];
  for (const [m, n, k] of sizes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (
          const [batch, bcA, bcB] of [[1, false, false], [3, false, false], [3, true, false], [2, false, true]] as const
        ) {
          const p: MatmulParams = {
            batch,
            m,
            n,
            k,
            transA,
            transB,
            strideA: bcA ? 0 : m * k,
            strideB: bcB ? 0 : k * n,
          };
          const a = randf((bcA ? 1 : batch) * m * k), b = randf((bcB ? 1 : batch) * k * n);
          await parity(
            g,
            `matmul ${JSON.stringify(p)}`,
            [[a, "float32"], [b, "float32"]],
            (be, [x, y]) => be.matmul(x, y, p),
            1e-5,
            1e-4,
          );
        }
      }
    }
  }
  const p: MatmulParams = { batch: 1, m: 130, n: 257, k: 67, transA: false, transB: true, strideA: 0, strideB: 0 };
  await parity(
    g,
    "matmul 130x257x67",
    [[randf(130 * 67), "float32"], [randf(257 * 67), "float32"]],
    (be, [x, y]) => be.matmul(x, y, p),
    1e-5,
    1e-4,
  );
});

test("matmul: the hardware-GPU tile (chosen when the adapter is not a software one) gives the same products", async (g) => {
  const software = g.runtime.software;
  g.runtime.software = false;
  try {
    for (const [m, n, k] of [[33, 65, 17], [64, 64, 64], [130, 257, 67], [48, 36, 9]]) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const p: MatmulParams = { batch: 2, m, n, k, transA, transB, strideA: m * k, strideB: 0 };
          await parity(
            g,
            `gpu-tile matmul ${JSON.stringify(p)}`,
            [[randf(2 * m * k), "float32"], [randf(k * n), "float32"]],
            (be, [x, y]) => be.matmul(x, y, p),
            1e-5,
            1e-4,
          );
        }
      }
    }
  } finally {
    g.runtime.software = software;
  }
});

function geom(
  batch: number,
  channels: number,
  height: number,
  width: number,
  kh: number,
  kw: number,
  s: [number, number],
  pad: [number, number],
  dil: [number, number],
): Im2colParams {
  const outH = Math.floor((height + 2 * pad[0] - dil[0] * (kh - 1) - 1) / s[0]) + 1;
  const outW = Math.floor((width + 2 * pad[1] - dil[1] * (kw - 1) - 1) / s[1]) + 1;
  return {
    batch,
    channels,
    height,
    width,
    kernelH: kh,
    kernelW: kw,
    strideH: s[0],
    strideW: s[1],
    padH: pad[0],
    padW: pad[1],
    dilationH: dil[0],
    dilationW: dil[1],
    outH,
    outW,
  };
}

test("im2col and col2im with stride, padding, dilation", async (g) => {
  const geoms = [
    geom(1, 1, 5, 5, 3, 3, [1, 1], [0, 0], [1, 1]),
    geom(2, 3, 7, 9, 3, 3, [1, 1], [1, 1], [1, 1]),
    geom(2, 2, 9, 8, 3, 2, [2, 3], [1, 2], [1, 1]),
    geom(1, 3, 11, 10, 3, 3, [2, 1], [2, 2], [2, 3]),
    geom(3, 4, 4, 4, 1, 1, [1, 1], [0, 0], [1, 1]),
    geom(1, 2, 6, 6, 2, 2, [2, 2], [0, 0], [1, 1]),
  ];
  for (const p of geoms) {
    const nIn = p.batch * p.channels * p.height * p.width;
    const nCols = p.batch * p.channels * p.kernelH * p.kernelW * p.outH * p.outW;
    await parity(g, `im2col ${JSON.stringify(p)}`, [[randf(nIn), "float32"]], (be, [x]) => be.im2col(x, p, 0));
    await parity(
      g,
      `im2col pad -inf ${JSON.stringify(p)}`,
      [[randf(nIn), "float32"]],
      (be, [x]) => be.im2col(x, p, -Infinity),
    );
    await parity(
      g,
      `col2im ${JSON.stringify(p)}`,
      [[randf(nCols), "float32"]],
      (be, [c]) => be.col2im(c, p),
      1e-5,
      1e-5,
    );
  }
});

test("gather and scatterAddInto (float32, int32) on every axis", async (g) => {
  const xShape = [4, 5, 6];
  for (let axis = 0; axis < 3; axis++) {
    const indexShape = [3, 4, 5];
    indexShape[axis] = 7; // the index may be longer than x along the axis
    const idx = randi(prod(indexShape), 0, xShape[axis] - 1);
    for (const dtype of ["float32", "int32", "bool"] as DType[]) {
      await parity(
        g,
        `gather ${dtype} axis ${axis}`,
        [[randFor(dtype, prod(xShape)), dtype], [idx, "int32"]],
        (be, [x, i]) => be.gather(x, xShape, axis, i, indexShape),
      );
    }
    for (const dtype of ["float32", "int32"] as DType[]) {
      await parity(
        g,
        `scatterAdd ${dtype} axis ${axis}`,
        [[randFor(dtype, prod(xShape)), dtype], [idx, "int32"], [randFor(dtype, prod(indexShape)), dtype]],
        (be, [d, i, s]) => {
          be.scatterAddInto(d, xShape, axis, i, s, indexShape);
          return d;
        },
        1e-5,
        1e-5,
      );
    }
  }
  // Heavy contention: every source element lands on the same few destinations.
  const n = 5000;
  await parity(
    g,
    "scatterAdd contention",
    [[new Float32Array(3), "float32"], [randi(n, 0, 2), "int32"], [Float32Array.from(randi(n, -3, 3)), "float32"]],
    (be, [d, i, s]) => {
      be.scatterAddInto(d, [3], 0, i, s, [n]);
      return d;
    },
  );
});

test("gather with out-of-range indices writes 0 and never reads out of bounds", async (g) => {
  const x = g.upload(Float32Array.of(1, 2, 3, 4), "float32");
  const i = g.upload(Int32Array.of(0, -1, 4, 3, 1000000), "int32");
  const out = g.gather(x, [4], 0, i, [5]);
  assert.deepStrictEqual(await g.read(out), Float32Array.of(1, 0, 0, 4, 0));
  for (const b of [x, i, out]) g.free(b);
});

test("large element counts use a 2-D grid; freed-while-pending buffers are not clobbered", async (g) => {
  const n = 65535 * 256 + 4099; // more than 65535 workgroups of 256, and not a multiple of 4
  const data = randf(n);
  const x = g.upload(data, "float32");
  const y = g.unary("neg", x);
  const s = g.binary("add", y, x, [n], [1], [1]);
  g.free(y); // pending: still referenced by the unsubmitted add
  const z = g.upload(Float32Array.from({ length: n }, () => 1), "float32"); // must not land in y's memory early
  const t = g.binary("add", s, z, [n], [1], [1]);
  const out = await g.read(t);
  for (const i of [0, 1, n >> 1, n - 4100, n - 1]) assert.deepStrictEqual(out[i], 1, `index ${i}`);
  const r = await g.read(g.unary("neg", x));
  for (const i of [0, n - 1, n - 4000]) assert.deepStrictEqual(r[i], -data[i]);
  for (const b of [x, s, z, t]) g.free(b);
});

test("many dispatches between reads (batch limit, uniform ring)", async (g) => {
  let x = g.upload(Float32Array.of(0, 1, 2), "float32");
  for (let i = 0; i < 700; i++) {
    const y = g.affine(x, 1, 1);
    g.free(x);
    x = y;
  }
  assert.deepStrictEqual(await g.read(x), Float32Array.of(700, 701, 702));
  g.free(x);
});

test("GPU timer: every dispatch is stamped once under its key, with a plausible duration; results unchanged", async (g) => {
  const rt = g.runtime;
  if (!rt.device.features.has("timestamp-query")) {
    // every adapter the suite runs on (lavapipe, llvmpipe) has timestamps; a missing feature is reported, not hidden
    assert.fail(`adapter without timestamp-query: ${[...rt.device.features].join(", ")}`);
  }
  const host = randf(300 * 200);
  const a = g.upload(host, "float32");
  const before = rt.dispatchCount;
  // more dispatches than one submit holds, so the stamps of several submits are collected
  const p: MatmulParams = { batch: 1, m: 300, n: 300, k: 200, transA: false, transB: true, strideA: 0, strideB: 0 };
  rt.startGpuTimer((d) => d.label ?? "unlabelled");
  const outs: BackendBuffer[] = [];
  for (let i = 0; i < 150; i++) outs.push(g.matmul(a, a, p));
  const times = await rt.stopGpuTimer();
  const dispatched = rt.dispatchCount - before;
  const counted = [...times.values()].reduce((s, t) => s + t.dispatches, 0);
  assert.equal(counted, dispatched, "one stamp pair per dispatch");
  for (const [key, t] of times) assert.ok(t.ms > 0 && t.ms < 60_000, `${key}: ${t.ms} ms`);
  // the result of a timed kernel is the untimed result
  const ref = g.matmul(a, a, p);
  assert.deepEqual(await g.read(outs[149]), await g.read(ref));
  await assert.rejects(() => rt.stopGpuTimer(), /not started/);
  for (const b of [...outs, ref, a]) g.free(b);
  // the bench's per-call GPU profile: every dispatch counted once, under the backend call that made it
  const d1 = rt.dispatchCount;
  const prof = await profileGpu(g, async () => {
    const x = g.upload(host, "float32");
    const y = g.matmul(x, x, p);
    const s = g.reduce("sum", g.unary("exp", y), 1, 300 * 300, 1);
    await g.read(s);
    for (const b of [x, y, s]) g.free(b);
  });
  assert.equal(Object.values(prof).reduce((n, v) => n + v.calls, 0), rt.dispatchCount - d1);
  assert.ok(Object.keys(prof).some((k) => k.startsWith("matmul")), Object.keys(prof).join(", "));
  assert.ok(Object.keys(prof).some((k) => k.startsWith("reduce:sum")), Object.keys(prof).join(", "));
});

test("bind groups: a repeated program binds the same pooled buffers and reuses every bind group; results unchanged", async (g) => {
  const rt = g.runtime;
  const host = randf(64 * 48);
  const program = async () => {
    const a = g.upload(host, "float32");
    const e = g.unary("exp", a);
    const t = g.binary("mul", e, a, [64 * 48], [1], [1]);
    const p: MatmulParams = { batch: 1, m: 64, n: 64, k: 48, transA: false, transB: true, strideA: 0, strideB: 0 };
    const c = g.matmul(t, a, p);
    const s = g.reduce("sum", c, 1, 64 * 64, 1);
    const out = await g.read(s);
    for (const b of [a, e, t, c, s]) g.free(b);
    return out;
  };
  const first = await program();
  // buffers come back to the pool in a different order than they left it; the pool hands out the oldest first
  const h0 = rt.bindGroups.hits, m0 = rt.bindGroups.misses, d0 = rt.dispatchCount;
  const second = await program();
  assert.equal(rt.bindGroups.misses - m0, 0, "no new bind group on the second run");
  assert.equal(rt.bindGroups.hits - h0, rt.dispatchCount - d0, "every dispatch reused one");
  assert.deepEqual(second, first);
});

Deno.test("buffer pool: the oldest idle buffer of a class first, whatever order buffers were released in", async () => {
  preferVulkanOnLinux(); // as requestDevice does, should this test run first
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) {
    if (Deno.env.get("CI")) throw new Error("no WebGPU adapter under CI");
    return;
  }
  const device = await adapter.requestDevice();
  const pool = new BufferPool(device);
  const usage = GPUBufferUsage.STORAGE;
  const made = [0, 1, 2, 3].map(() => pool.acquire(1000, usage));
  for (const i of [2, 0, 3, 1]) pool.release(made[i]);
  assert.deepEqual([0, 1, 2, 3].map(() => made.indexOf(pool.acquire(1000, usage))), [0, 1, 2, 3]);
  device.destroy();
});
