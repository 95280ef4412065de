/** sgemm: the OpenBLAS path and the pure TypeScript path against a float64 reference. */
import "../autodiff/backends/cpu/deno_host.ts"; // OpenBLAS, as mod.ts registers it
import assert from "node:assert/strict";
import { blasAvailable, blasEnabled, setBlasEnabled, sgemm } from "../autodiff/backends/cpu/gemm.ts";
import { blasSgemmCalls } from "../autodiff/backends/cpu/blas.ts";

/** Deterministic uniform values in [-1, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

interface Case {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  alpha: number;
  beta: number;
  offA: number;
  offB: number;
  offC: number;
  /** Extra elements per row beyond the stored width. */
  padA: number;
  padB: number;
  padC: number;
}

function describe(t: Case): string {
  return `${t.transA ? "T" : "N"}${t.transB ? "T" : "N"} m=${t.m} n=${t.n} k=${t.k} alpha=${t.alpha} beta=${t.beta} ` +
    `off=${t.offA},${t.offB},${t.offC} pad=${t.padA},${t.padB},${t.padC}`;
}

/** Runs one case through sgemm and checks it (and the untouched parts of C) against a float64 reference. */
function check(t: Case, seed: number): void {
  const { transA, transB, m, n, k, alpha, beta, offA, offB, offC } = t;
  const rand = rng(seed);
  // Stored shapes: A is m x k (k x m when transposed), B is k x n (n x k when transposed).
  const aRows = transA ? k : m, aCols = transA ? m : k;
  const bRows = transB ? n : k, bCols = transB ? k : n;
  const lda = aCols + t.padA, ldb = bCols + t.padB, ldc = n + t.padC;
  const a = new Float32Array(offA + aRows * lda + 3).map(rand);
  const b = new Float32Array(offB + bRows * ldb + 3).map(rand);
  const c = new Float32Array(offC + m * ldc + 3).map(rand);
  if (beta === 0) {
    // beta = 0 must overwrite whatever is there, NaN included.
    for (let i = 0; i < m; i++) c.fill(NaN, offC + i * ldc, offC + i * ldc + n);
  }
  const before = c.slice();
  const opA = (i: number, p: number) => transA ? a[offA + p * lda + i] : a[offA + i * lda + p];
  const opB = (p: number, j: number) => transB ? b[offB + j * ldb + p] : b[offB + p * ldb + j];
  const ref = new Float64Array(m * n);
  let maxRef = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += opA(i, p) * opB(p, j);
      const old = before[offC + i * ldc + j];
      const v = alpha * s + (beta === 0 ? 0 : beta * old);
      ref[i * n + j] = v;
      maxRef = Math.max(maxRef, Math.abs(v));
    }
  }
  sgemm(transA, transB, m, n, k, alpha, a, offA, lda, b, offB, ldb, beta, c, offC, ldc);
  const tol = 1e-5 * maxRef + 1e-30;
  const inWindow = new Uint8Array(c.length);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const idx = offC + i * ldc + j;
      inWindow[idx] = 1;
      const err = Math.abs(c[idx] - ref[i * n + j]);
      if (!(err <= tol)) {
        assert.fail(
          `${describe(t)} blas=${blasEnabled()}: C[${i},${j}] = ${c[idx]}, want ${ref[i * n + j]} (tol ${tol})`,
        );
      }
    }
  }
  for (let idx = 0; idx < c.length; idx++) {
    if (!inWindow[idx] && !Object.is(c[idx], before[idx])) {
      assert.fail(`${describe(t)} blas=${blasEnabled()}: wrote outside the C window at flat index ${idx}`);
    }
  }
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 5],
  [64, 1, 33],
  [1, 64, 33],
  [5, 3, 1],
  [130, 67, 129],
  [33, 17, 300], // k spans two k-blocks of the TS kernel
  [17, 9, 16],
  [4, 4, 4],
  [129, 4, 8],
];

const SCALES: [number, number][] = [[1, 0], [1, 1], [0.5, -2], [-1.5, 0], [2, 0.25]];

function allCases(): Case[] {
  const cases: Case[] = [];
  for (const [m, n, k] of SHAPES) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        SCALES.forEach(([alpha, beta], s) => {
          const layout = s % 3; // 0: dense at 0; 1: offsets; 2: offsets and padded rows
          cases.push({
            transA,
            transB,
            m,
            n,
            k,
            alpha,
            beta,
            offA: layout ? 3 : 0,
            offB: layout ? 5 : 0,
            offC: layout ? 7 : 0,
            padA: layout === 2 ? 2 : 0,
            padB: layout === 2 ? 3 : 0,
            padC: layout === 2 ? 4 : 0,
          });
        });
      }
    }
  }
  return cases;
}

function runAll(blas: boolean): void {
  const prev = blasEnabled();
  setBlasEnabled(blas);
  try {
    allCases().forEach((t, i) => check(t, 1000 + i));
  } finally {
    setBlasEnabled(prev);
  }
}

Deno.test("sgemm: pure TypeScript path matches the float64 reference", () => {
  runAll(false);
});

Deno.test("sgemm: BLAS-enabled path matches the float64 reference", () => {
  runAll(true);
});

Deno.test("sgemm: k = 0 and alpha = 0 only scale C by beta", () => {
  for (const blas of [false, true]) {
    setBlasEnabled(blas);
    try {
      const c = new Float32Array([1, 2, 3, 4]);
      sgemm(false, false, 2, 2, 0, 1, new Float32Array(0), 0, 1, new Float32Array(0), 0, 2, 3, c, 0, 2);
      assert.deepEqual(Array.from(c), [3, 6, 9, 12]);
      const z = new Float32Array([NaN, NaN, NaN, NaN]);
      sgemm(false, false, 2, 2, 0, 1, new Float32Array(0), 0, 1, new Float32Array(0), 0, 2, 0, z, 0, 2);
      assert.deepEqual(Array.from(z), [0, 0, 0, 0]);
      const big = 40;
      const a = new Float32Array(big * big).fill(1), b = new Float32Array(big * big).fill(1);
      const d = new Float32Array(big * big).fill(2);
      sgemm(false, false, big, big, big, 0, a, 0, big, b, 0, big, 0.5, d, 0, big);
      assert.ok(d.every((v) => v === 1));
    } finally {
      setBlasEnabled(true);
    }
  }
});

const blasSkip = (() => {
  try {
    if (!Deno.statSync("/usr/lib/x86_64-linux-gnu/libopenblas.so.0").isFile) return "OpenBLAS not installed";
  } catch {
    return "OpenBLAS not installed";
  }
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return "no FFI permission";
  if (Deno.env.get("TENSOR_NO_BLAS") === "1") return "TENSOR_NO_BLAS=1";
  return null;
})();

Deno.test({
  name: "sgemm: the BLAS path really runs when OpenBLAS is installed" + (blasSkip ? ` (ignored: ${blasSkip})` : ""),
  ignore: blasSkip !== null,
  fn: sgemmUsesBlas,
});

function sgemmUsesBlas() {
  assert.equal(blasAvailable(), true);
  const n = 64;
  const a = new Float32Array(n * n).map(rng(1)), b = new Float32Array(n * n).map(rng(2));
  const c = new Float32Array(n * n);
  setBlasEnabled(true);
  const before = blasSgemmCalls();
  sgemm(false, true, n, n, n, 1, a, 0, n, b, 0, n, 0, c, 0, n);
  assert.equal(blasSgemmCalls(), before + 1, "a 64^3 product should go to cblas_sgemm");
  setBlasEnabled(false);
  try {
    sgemm(false, true, n, n, n, 1, a, 0, n, b, 0, n, 0, c, 0, n);
    assert.equal(blasSgemmCalls(), before + 1, "setBlasEnabled(false) must keep sgemm off BLAS");
  } finally {
    setBlasEnabled(true);
  }
  // Tiny products stay in TypeScript: the FFI call would cost more than the work.
  sgemm(false, false, 4, 4, 4, 1, a, 0, 4, b, 0, 4, 0, c, 0, 4);
  assert.equal(blasSgemmCalls(), before + 1);
}

Deno.test("OpenBLAS: loading it sets OPENBLAS_THREAD_TIMEOUT (idle threads sleep after 2^20 cycles) unless the user set it", async () => {
  const blas = new URL("../autodiff/backends/cpu/blas.ts", import.meta.url).href;
  const script = `import { blasLoaded } from "${blas}"; const ok = blasLoaded(); ` +
    `console.log(JSON.stringify([ok, Deno.env.get("OPENBLAS_THREAD_TIMEOUT") ?? null]));`;
  const run = async (env: Record<string, string>) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-config", script],
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return JSON.parse(new TextDecoder().decode(out.stdout)) as [boolean, string | null];
  };
  const [loaded, fresh] = await run({});
  assert.equal(loaded, true, "OpenBLAS is installed here (README); the test needs it");
  assert.equal(fresh, "20");
  assert.deepEqual(await run({ OPENBLAS_THREAD_TIMEOUT: "28" }), [true, "28"]);
});
