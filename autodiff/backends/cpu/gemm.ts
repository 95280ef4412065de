/**
 * Single-precision general matrix multiply for the CPU backend.
 *
 * Large products go to OpenBLAS through FFI when a host registered it ({@linkcode registerSgemm}; Deno does in
 * `deno_host.ts`, see `blas.ts`) and it is available; everything else
 * runs a cache-blocked pure TypeScript kernel: panels of `op(A)` and `op(B)` are packed into
 * contiguous scratch (reused across calls) and multiplied by a 4x4 register-blocked micro-kernel
 * that accumulates in float64 and rounds once when storing to `C`.
 *
 * @module
 */

/**
 * A host's BLAS `sgemm` (row-major, same arguments as {@linkcode sgemm}); returns false, doing nothing, when it
 * cannot take the call, so the TypeScript kernel runs instead.
 */
export type HostSgemm = (
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  offA: number,
  lda: number,
  b: Float32Array,
  offB: number,
  ldb: number,
  beta: number,
  c: Float32Array,
  offC: number,
  ldc: number,
) => boolean;

/** The registered BLAS: whether it loaded, and its sgemm. */
let host: { loaded: () => boolean; sgemm: HostSgemm } | null = null;

/**
 * Lends the CPU backend a native `sgemm` for large products (Deno's OpenBLAS through FFI, registered by
 * `deno_host.ts`). Runtimes without one (browsers) register nothing and use the TypeScript kernel.
 */
export function registerSgemm(loaded: () => boolean, sgemm: HostSgemm): void {
  host = { loaded, sgemm };
}

/** Rows of `C` produced by one micro-kernel call. */
const MR = 4;
/** Columns of `C` produced by one micro-kernel call. */
const NR = 4;
/** Depth of one packed panel (the `k` block). */
const KC = 256;
/** Rows of `op(A)` packed at once (the packed block stays in L2). */
const MC = 128;
/** Columns of `op(B)` packed at once. */
const NC = 2048;
/** Products with `m*n*k` at or below this stay in TypeScript: FFI call overhead would dominate. */
const BLAS_MIN_FLOPS = 4096;
/** Below this `m*n*k` the packing setup costs more than it saves; a direct loop is used. */
const SMALL_PRODUCT = 512;

/** Packed `op(A)` block, MR-row strips; float64 so the kernel's loads need no conversion. */
let packA = new Float64Array(MC * KC);
/** Packed `op(B)` block, NR-column strips. */
let packB = new Float64Array(KC * NC);

let useBlas = true;

/** Whether OpenBLAS was loaded (FFI permitted, library present, `TENSOR_NO_BLAS` not set to `1`). */
export function blasAvailable(): boolean {
  return host?.loaded() ?? false;
}

/** Enables or disables the OpenBLAS path; disabled forces the pure TypeScript kernel (tests, benchmarks). */
export function setBlasEnabled(on: boolean): void {
  useBlas = on;
}

/** Whether {@linkcode sgemm} may use OpenBLAS (it still needs {@linkcode blasAvailable}). */
export function blasEnabled(): boolean {
  return useBlas;
}

/**
 * Row-major single-precision GEMM:
 * `C[offC + i*ldc + j] = alpha * Σ_p opA(i,p) * opB(p,j) + beta * C[offC + i*ldc + j]`
 * for `0 <= i < m`, `0 <= j < n`, `0 <= p < k`, where
 * `opA(i,p) = transA ? A[offA + p*lda + i] : A[offA + i*lda + p]` and likewise for `B`
 * (`opB(p,j) = transB ? B[offB + j*ldb + p] : B[offB + p*ldb + j]`).
 *
 * With `beta == 0`, `C` is overwritten without being read (NaN in `C` does not propagate).
 * Only the `m` x `n` window of `C` is written; elements between rows (`ldc > n`) are untouched.
 */
export function sgemm(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  offA: number,
  lda: number,
  b: Float32Array,
  offB: number,
  ldb: number,
  beta: number,
  c: Float32Array,
  offC: number,
  ldc: number,
): void {
  if (m <= 0 || n <= 0) return;
  if (k < 0) k = 0;
  if (k === 0 || alpha === 0) {
    scaleC(m, n, beta, c, offC, ldc);
    return;
  }
  if (
    useBlas && m * n * k > BLAS_MIN_FLOPS &&
    inBounds(transA ? k : m, transA ? m : k, a, offA, lda) &&
    inBounds(transB ? n : k, transB ? k : n, b, offB, ldb) &&
    inBounds(m, n, c, offC, ldc) &&
    host !== null && host.sgemm(transA, transB, m, n, k, alpha, a, offA, lda, b, offB, ldb, beta, c, offC, ldc)
  ) {
    return;
  }
  if (m * n * k <= SMALL_PRODUCT) {
    smallGemm(transA, transB, m, n, k, alpha, a, offA, lda, b, offB, ldb, beta, c, offC, ldc);
    return;
  }
  scaleC(m, n, beta, c, offC, ldc);
  blockedGemm(transA, transB, m, n, k, alpha, a, offA, lda, b, offB, ldb, c, offC, ldc);
}

/** Whether a `rows` x `cols` row-major view at `off` with stride `ld` lies inside `x`. */
function inBounds(rows: number, cols: number, x: Float32Array, off: number, ld: number): boolean {
  return off >= 0 && off + (rows - 1) * ld + cols <= x.length;
}

/** `C = beta * C` on the m x n window; `beta == 0` writes zeros without reading. */
function scaleC(m: number, n: number, beta: number, c: Float32Array, offC: number, ldc: number): void {
  if (beta === 1) return;
  for (let i = 0; i < m; i++) {
    const row = offC + i * ldc;
    if (beta === 0) c.fill(0, row, row + n);
    else for (let j = row; j < row + n; j++) c[j] *= beta;
  }
}

/** Direct triple loop for tiny products. */
function smallGemm(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  offA: number,
  lda: number,
  b: Float32Array,
  offB: number,
  ldb: number,
  beta: number,
  c: Float32Array,
  offC: number,
  ldc: number,
): void {
  const aRow = transA ? 1 : lda, aCol = transA ? lda : 1;
  const bRow = transB ? 1 : ldb, bCol = transB ? ldb : 1;
  for (let i = 0; i < m; i++) {
    const ai = offA + i * aRow;
    const ci = offC + i * ldc;
    for (let j = 0; j < n; j++) {
      let s = 0;
      let pa = ai, pb = offB + j * bCol;
      for (let p = 0; p < k; p++) {
        s += a[pa] * b[pb];
        pa += aCol;
        pb += bRow;
      }
      c[ci + j] = beta === 0 ? alpha * s : alpha * s + beta * c[ci + j];
    }
  }
}

/** Packs `op(A)[i0:i0+mc, p0:p0+kc]` into MR-row strips: `packA[s*MR*kc + p*MR + r]`, zero-padded rows. */
function packABlock(
  transA: boolean,
  a: Float32Array,
  offA: number,
  lda: number,
  i0: number,
  mc: number,
  p0: number,
  kc: number,
): void {
  const pa = packA;
  let dst = 0;
  for (let s = 0; s < mc; s += MR) {
    const rows = Math.min(MR, mc - s);
    if (!transA) {
      // op(A)(i,p) = A[offA + i*lda + p]
      const base = offA + (i0 + s) * lda + p0;
      if (rows === MR) {
        const r0 = base, r1 = base + lda, r2 = base + 2 * lda, r3 = base + 3 * lda;
        for (let p = 0; p < kc; p++) {
          pa[dst] = a[r0 + p];
          pa[dst + 1] = a[r1 + p];
          pa[dst + 2] = a[r2 + p];
          pa[dst + 3] = a[r3 + p];
          dst += MR;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let r = 0; r < MR; r++) pa[dst + r] = r < rows ? a[base + r * lda + p] : 0;
          dst += MR;
        }
      }
    } else {
      // op(A)(i,p) = A[offA + p*lda + i]
      let src = offA + p0 * lda + i0 + s;
      if (rows === MR) {
        for (let p = 0; p < kc; p++) {
          pa[dst] = a[src];
          pa[dst + 1] = a[src + 1];
          pa[dst + 2] = a[src + 2];
          pa[dst + 3] = a[src + 3];
          dst += MR;
          src += lda;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let r = 0; r < MR; r++) pa[dst + r] = r < rows ? a[src + r] : 0;
          dst += MR;
          src += lda;
        }
      }
    }
  }
}

/** Packs `op(B)[p0:p0+kc, j0:j0+nc]` into NR-column strips: `packB[s*NR*kc + p*NR + q]`, zero-padded columns. */
function packBBlock(
  transB: boolean,
  b: Float32Array,
  offB: number,
  ldb: number,
  p0: number,
  kc: number,
  j0: number,
  nc: number,
): void {
  const pb = packB;
  let dst = 0;
  for (let s = 0; s < nc; s += NR) {
    const cols = Math.min(NR, nc - s);
    if (!transB) {
      // op(B)(p,j) = B[offB + p*ldb + j]
      let src = offB + p0 * ldb + j0 + s;
      if (cols === NR) {
        for (let p = 0; p < kc; p++) {
          pb[dst] = b[src];
          pb[dst + 1] = b[src + 1];
          pb[dst + 2] = b[src + 2];
          pb[dst + 3] = b[src + 3];
          dst += NR;
          src += ldb;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let q = 0; q < NR; q++) pb[dst + q] = q < cols ? b[src + q] : 0;
          dst += NR;
          src += ldb;
        }
      }
    } else {
      // op(B)(p,j) = B[offB + j*ldb + p]
      const base = offB + (j0 + s) * ldb + p0;
      if (cols === NR) {
        const c0 = base, c1 = base + ldb, c2 = base + 2 * ldb, c3 = base + 3 * ldb;
        for (let p = 0; p < kc; p++) {
          pb[dst] = b[c0 + p];
          pb[dst + 1] = b[c1 + p];
          pb[dst + 2] = b[c2 + p];
          pb[dst + 3] = b[c3 + p];
          dst += NR;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let q = 0; q < NR; q++) pb[dst + q] = q < cols ? b[base + q * ldb + p] : 0;
          dst += NR;
        }
      }
    }
  }
}

/** `C += alpha * op(A) op(B)` via packed blocks (C has already been scaled by beta). */
function blockedGemm(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  offA: number,
  lda: number,
  b: Float32Array,
  offB: number,
  ldb: number,
  c: Float32Array,
  offC: number,
  ldc: number,
): void {
  const ncMax = Math.min(NC, roundUp(n, NR));
  const kcMax = Math.min(KC, k);
  if (packB.length < kcMax * ncMax) packB = new Float64Array(kcMax * ncMax);
  const mcMax = Math.min(MC, roundUp(m, MR));
  if (packA.length < mcMax * kcMax) packA = new Float64Array(mcMax * kcMax);

  for (let j0 = 0; j0 < n; j0 += NC) {
    const nc = Math.min(NC, n - j0);
    for (let p0 = 0; p0 < k; p0 += KC) {
      const kc = Math.min(KC, k - p0);
      packBBlock(transB, b, offB, ldb, p0, kc, j0, nc);
      for (let i0 = 0; i0 < m; i0 += MC) {
        const mc = Math.min(MC, m - i0);
        packABlock(transA, a, offA, lda, i0, mc, p0, kc);
        macroKernel(mc, nc, kc, alpha, c, offC + i0 * ldc + j0, ldc);
      }
    }
  }
}

function roundUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

/** Multiplies the packed mc x kc block of A by the packed kc x nc block of B into C. */
function macroKernel(
  mc: number,
  nc: number,
  kc: number,
  alpha: number,
  c: Float32Array,
  offC: number,
  ldc: number,
): void {
  const pa = packA, pb = packB;
  const stripA = MR * kc, stripB = NR * kc;
  for (let jr = 0; jr < nc; jr += NR) {
    const bStart = (jr / NR) * stripB;
    const cols = Math.min(NR, nc - jr);
    for (let ir = 0; ir < mc; ir += MR) {
      const rows = Math.min(MR, mc - ir);
      let ao = (ir / MR) * stripA;
      let bo = bStart;
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
      let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
      let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      const aEnd = ao + stripA;
      while (ao < aEnd) {
        const a0 = pa[ao], a1 = pa[ao + 1], a2 = pa[ao + 2], a3 = pa[ao + 3];
        // One B element at a time keeps register pressure low enough for V8's allocator.
        let bv = pb[bo];
        c00 += a0 * bv;
        c10 += a1 * bv;
        c20 += a2 * bv;
        c30 += a3 * bv;
        bv = pb[bo + 1];
        c01 += a0 * bv;
        c11 += a1 * bv;
        c21 += a2 * bv;
        c31 += a3 * bv;
        bv = pb[bo + 2];
        c02 += a0 * bv;
        c12 += a1 * bv;
        c22 += a2 * bv;
        c32 += a3 * bv;
        bv = pb[bo + 3];
        c03 += a0 * bv;
        c13 += a1 * bv;
        c23 += a2 * bv;
        c33 += a3 * bv;
        ao += MR;
        bo += NR;
      }
      const co = offC + ir * ldc + jr;
      if (rows === MR && cols === NR) {
        let r = co;
        c[r] += alpha * c00;
        c[r + 1] += alpha * c01;
        c[r + 2] += alpha * c02;
        c[r + 3] += alpha * c03;
        r += ldc;
        c[r] += alpha * c10;
        c[r + 1] += alpha * c11;
        c[r + 2] += alpha * c12;
        c[r + 3] += alpha * c13;
        r += ldc;
        c[r] += alpha * c20;
        c[r + 1] += alpha * c21;
        c[r + 2] += alpha * c22;
        c[r + 3] += alpha * c23;
        r += ldc;
        c[r] += alpha * c30;
        c[r + 1] += alpha * c31;
        c[r + 2] += alpha * c32;
        c[r + 3] += alpha * c33;
      } else {
        storeEdge(c, co, ldc, rows, cols, alpha, [
          c00,
          c01,
          c02,
          c03,
          c10,
          c11,
          c12,
          c13,
          c20,
          c21,
          c22,
          c23,
          c30,
          c31,
          c32,
          c33,
        ]);
      }
    }
  }
}

/** Stores the valid `rows` x `cols` corner of a 4x4 accumulator tile. */
function storeEdge(
  c: Float32Array,
  co: number,
  ldc: number,
  rows: number,
  cols: number,
  alpha: number,
  acc: number[],
): void {
  for (let r = 0; r < rows; r++) {
    for (let q = 0; q < cols; q++) c[co + r * ldc + q] += alpha * acc[r * NR + q];
  }
}
