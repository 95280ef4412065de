/**
 * Optional OpenBLAS binding through Deno FFI. The library is opened lazily on first use; when it
 * cannot be loaded (missing library, no `--allow-ffi`, `TENSOR_NO_BLAS=1`) every entry point
 * reports "unavailable" and callers fall back to the pure TypeScript kernels.
 *
 * @module
 */

/** `CblasRowMajor` from cblas.h. */
const CBLAS_ROW_MAJOR = 101;
/** `CblasNoTrans` from cblas.h. */
const CBLAS_NO_TRANS = 111;
/** `CblasTrans` from cblas.h. */
const CBLAS_TRANS = 112;

/** Library names tried, in order, by {@linkcode Deno.dlopen}. */
const LIBRARY_CANDIDATES: readonly string[] = [
  "libopenblas.so.0",
  "libopenblas.so",
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "libcblas.so.3",
];

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32", // order
      "i32", // transA
      "i32", // transB
      "i32", // m
      "i32", // n
      "i32", // k
      "f32", // alpha
      "buffer", // A
      "i32", // lda
      "buffer", // B
      "i32", // ldb
      "f32", // beta
      "buffer", // C
      "i32", // ldc
    ],
    result: "void",
  },
} as const;

type BlasLibrary = Deno.DynamicLibrary<typeof SYMBOLS>;

/** `undefined`: not tried yet; `null`: tried and unavailable. */
let library: BlasLibrary | null | undefined;
/** Number of `cblas_sgemm` calls made so far (lets tests confirm the BLAS path really runs). */
let sgemmCalls = 0;

function envDisabled(): boolean {
  try {
    return Deno.env.get("TENSOR_NO_BLAS") === "1";
  } catch {
    // No --allow-env: the variable cannot be read, so it cannot disable anything.
    return false;
  }
}

/**
 * How long OpenBLAS's idle threads wait for the next call before they sleep, as 2^N cycles (its
 * `OPENBLAS_THREAD_TIMEOUT`, read once when the library loads). Its default, 2^28 (about 0.1 s), keeps them
 * spinning on `sched_yield` between GEMMs while the backend's own kernel threads need the cores: on a 2-core
 * machine the spinning took a quarter of all CPU time during Wave-MambaAD inference. 2^20 (about 0.3 ms) still
 * spans the back-to-back GEMMs of a convolution. Measured in one process against the default (two copies of the
 * library, passes alternating): inference 1.14× faster, a training step the same (2^16 and 2^4 made training
 * slower: every GEMM waited for a thread to wake). A value the user set wins.
 */
export const OPENBLAS_THREAD_TIMEOUT = 20;

function setThreadTimeout(): void {
  try {
    if (Deno.env.get("OPENBLAS_THREAD_TIMEOUT") === undefined) {
      Deno.env.set("OPENBLAS_THREAD_TIMEOUT", String(OPENBLAS_THREAD_TIMEOUT));
    }
  } catch {
    // No --allow-env: OpenBLAS keeps its default.
  }
}

function load(): BlasLibrary | null {
  if (library !== undefined) return library;
  library = null;
  if (envDisabled()) return library;
  if (typeof Deno === "undefined" || typeof Deno.dlopen !== "function") return library;
  setThreadTimeout();
  for (const name of LIBRARY_CANDIDATES) {
    try {
      library = Deno.dlopen(name, SYMBOLS);
      break;
    } catch {
      // Not found, missing symbol or no FFI permission: try the next candidate.
    }
  }
  return library;
}

/** Whether an OpenBLAS (or other CBLAS) library with `cblas_sgemm` could be loaded. */
export function blasLoaded(): boolean {
  return load() !== null;
}

/** How many times `cblas_sgemm` has been called through {@linkcode cblasSgemm} in this process. */
export function blasSgemmCalls(): number {
  return sgemmCalls;
}

/**
 * Calls `cblas_sgemm` in row-major order on the given sub-ranges. Returns `false` (and does
 * nothing) when the library is not loaded or the arguments are outside what CBLAS accepts, so the
 * caller can run its own kernel instead.
 *
 * The arrays are passed starting at their offsets; `A`, `B` and `C` must contain every element the
 * operation touches (the caller checks this).
 */
export function cblasSgemm(
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
): boolean {
  const lib = load();
  if (lib === null) return false;
  // CBLAS row-major leading-dimension rules; anything else would make xerbla print and return.
  if (lda < Math.max(1, transA ? m : k)) return false;
  if (ldb < Math.max(1, transB ? k : n)) return false;
  if (ldc < Math.max(1, n)) return false;
  const maxI32 = 0x7fffffff;
  if (m > maxI32 || n > maxI32 || k > maxI32 || lda > maxI32 || ldb > maxI32 || ldc > maxI32) return false;
  sgemmCalls++;
  lib.symbols.cblas_sgemm(
    CBLAS_ROW_MAJOR,
    transA ? CBLAS_TRANS : CBLAS_NO_TRANS,
    transB ? CBLAS_TRANS : CBLAS_NO_TRANS,
    m,
    n,
    k,
    alpha,
    offA === 0 ? a : a.subarray(offA),
    lda,
    offB === 0 ? b : b.subarray(offB),
    ldb,
    beta,
    offC === 0 ? c : c.subarray(offC),
    ldc,
  );
  return true;
}
