/**
 * Batched matmul `C[b] = op(A[b]) @ op(B[b])`: register-blocked, no workgroup memory (fastest on
 * lavapipe). Each thread computes a TM×TN block of C, walking k four steps at a time with `vec4`
 * loads wherever the layout and alignment allow, and scalar loads otherwise. Rows/columns past the
 * edge are clamped on load and skipped on store, so any m, n, k works.
 *
 * @module
 */

import type { MatmulParams } from "../../backend.ts";
import type { GPUBuf, Runtime } from "./runtime.ts";
import { fill } from "./elementwise.ts";
import { realize } from "./fusion.ts";
import { bindings, MAX_GROUPS, uniforms } from "./templates.ts";

/** Register tile and workgroup shape of the matmul kernel. */
export interface MatmulTile {
  /** Rows of C per thread (multiple of 4). */
  tm: number;
  /** Columns of C per thread (multiple of 4). */
  tn: number;
  /** Workgroup width (threads along n). */
  wgx: number;
  /** Workgroup height (threads along m). */
  wgy: number;
}

/**
 * Large products: 16×16 per thread, one row of 16 threads per workgroup (A addresses then depend on
 * the workgroup only). Best measured on lavapipe; loads are what cost there, so big register tiles win.
 */
const LARGE_TILE: MatmulTile = { tm: 16, tn: 16, wgx: 16, wgy: 1 };
/** Small or thin products: 4×4 per thread so edge threads waste little work. */
const SMALL_TILE: MatmulTile = { tm: 4, tn: 4, wgx: 8, wgy: 8 };
/**
 * Hardware GPUs: 16×16 threads of 4×4 (a 64×64 block of C per workgroup). 256 accumulators per thread
 * would spill and starve occupancy there, so the lavapipe tile is not used on real GPUs.
 */
const GPU_TILE: MatmulTile = { tm: 4, tn: 4, wgx: 16, wgy: 16 };
let override: MatmulTile | null = null;

/** Forces one tile for every matmul (for tuning); `null` restores the size-based choice. */
export function setMatmulTile(tile: MatmulTile | null): void {
  override = tile;
}

/** The tile used for an m×n result on a software (`software`) or hardware adapter. */
export function chooseTile(m: number, n: number, software = true): MatmulTile {
  if (override) return override;
  if (m < 32 || n < 32) return SMALL_TILE;
  return software ? LARGE_TILE : GPU_TILE;
}

/** Layout facts that select a kernel variant. */
interface Variant {
  transA: boolean;
  transB: boolean;
  /** A loads are vec4 (along k when !transA, along m when transA). */
  vecA: boolean;
  /** B loads are vec4 (along n when !transB, along k when transB). */
  vecB: boolean;
  /** C stores are vec4 (n % 4 == 0). */
  vecC: boolean;
}

const COMP = ["x", "y", "z", "w"];
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Generates the WGSL of one matmul variant; `decl` declares its storage buffers A, B, C ({@linkcode bindings}). */
export function matmulCode(tile: MatmulTile, v: Variant, decl: string): string {
  const { tm, tn, wgx, wgy } = tile;
  const u = uniforms([["M", "u32", 0], ["N", "u32", 0], ["K", "u32", 0], ["sa", "u32", 0], ["sb", "u32", 0], [
    "boff",
    "u32",
    0,
  ]]);
  const aKvec = !v.transA && v.vecA; // A vec4 along k
  const bKvec = v.transB && v.vecB; // B vec4 along k
  const L: string[] = [];
  // Per-thread row/column bases (clamped so edge threads never read out of bounds).
  for (const i of range(tm)) {
    if (!v.transA) {
      L.push(`let ar${i} = ${aKvec ? "(" : ""}aBase + min(row0 + ${i}u, M - 1u) * K${aKvec ? ") / 4u" : ""};`);
    } else if (!v.vecA) L.push(`let ac${i} = min(row0 + ${i}u, M - 1u);`);
  }
  if (v.transA && v.vecA) {
    for (const q of range(tm / 4)) {
      L.push(`let aq${q} = min(row0 / 4u + ${q}u, M / 4u - 1u);`);
    }
  }
  for (const j of range(tn)) {
    if (v.transB) {
      L.push(`let br${j} = ${bKvec ? "(" : ""}bBase + min(col0 + ${j}u, N - 1u) * K${bKvec ? ") / 4u" : ""};`);
    } else if (!v.vecB) L.push(`let bc${j} = min(col0 + ${j}u, N - 1u);`);
  }
  if (!v.transB && v.vecB) {
    for (const q of range(tn / 4)) {
      L.push(`let bq${q} = min(col0 / 4u + ${q}u, N / 4u - 1u);`);
    }
  }
  for (const i of range(tm)) for (const q of range(tn / 4)) L.push(`var c${i}_${q} = vec4<f32>(0.0);`);

  /** Statements computing one k step; `k` is a WGSL u32 expression, `t` the step inside a vec4 group. */
  const kStep = (k: string, t: number, inMain: boolean): string[] => {
    const S: string[] = [];
    const aVal: string[] = [];
    for (const i of range(tm)) {
      if (aKvec) aVal.push(`a${i}.${COMP[t]}`);
      else if (!v.transA) aVal.push(`A[ar${i} + ${k}]`);
      else if (v.vecA) aVal.push(`a${Math.floor(i / 4)}_${t}.${COMP[i % 4]}`);
      else aVal.push(`A[aBase + (${k}) * M + ac${i}]`);
    }
    if (v.transA && v.vecA) {
      for (const q of range(tm / 4)) S.push(`let a${q}_${t} = A[aBase / 4u + (${k}) * (M / 4u) + aq${q}];`);
    }
    const bVec: string[] = [];
    for (const q of range(tn / 4)) {
      if (!v.transB && v.vecB) {
        S.push(`let b${q}_${t} = B[bBase / 4u + (${k}) * (N / 4u) + bq${q}];`);
        bVec.push(`b${q}_${t}`);
      } else if (!v.transB) {
        bVec.push(`vec4<f32>(${range(4).map((u) => `B[bBase + (${k}) * N + bc${4 * q + u}]`).join(", ")})`);
      } else if (bKvec) {
        bVec.push(`vec4<f32>(${range(4).map((u) => `b${4 * q + u}.${COMP[t]}`).join(", ")})`);
      } else {
        bVec.push(`vec4<f32>(${range(4).map((u) => `B[br${4 * q + u} + ${k}]`).join(", ")})`);
      }
    }
    if (!inMain && (aKvec || bKvec)) throw new Error("unreachable: k tail with k-vectorised loads");
    for (const q of range(tn / 4)) {
      if (bVec[q].startsWith("vec4")) {
        S.push(`let bv${q}_${t} = ${bVec[q]};`);
        bVec[q] = `bv${q}_${t}`;
      }
    }
    for (const i of range(tm)) {
      S.push(`let av${i}_${t} = ${aVal[i]};`);
      for (const q of range(tn / 4)) S.push(`c${i}_${q} = fma(vec4<f32>(av${i}_${t}), ${bVec[q]}, c${i}_${q});`);
    }
    return S;
  };

  const main: string[] = [];
  for (const i of range(tm)) if (aKvec) main.push(`let a${i} = A[ar${i} + kk / 4u];`);
  for (const j of range(tn)) if (bKvec) main.push(`let b${j} = B[br${j} + kk / 4u];`);
  for (const t of range(4)) main.push(...kStep(`kk + ${t}u`, t, true));
  L.push(`let K4 = K & ~3u;`);
  L.push(`for (var kk = 0u; kk < K4; kk += 4u) {\n      ${main.join("\n      ")}\n    }`);
  if (!aKvec && !bKvec) L.push(`for (var k = K4; k < K; k++) {\n      ${kStep("k", 0, false).join("\n      ")}\n    }`);
  // Stores.
  for (const i of range(tm)) {
    const st: string[] = [];
    for (const q of range(tn / 4)) {
      if (v.vecC) st.push(`if (col0 / 4u + ${q}u < N / 4u) { C[cRow / 4u + col0 / 4u + ${q}u] = c${i}_${q}; }`);
      else {
        for (const w of range(4)) {
          st.push(`if (col0 + ${4 * q + w}u < N) { C[cRow + col0 + ${4 * q + w}u] = c${i}_${q}.${COMP[w]}; }`);
        }
      }
    }
    L.push(
      `if (row0 + ${i}u < M) {\n      let cRow = cBase + (row0 + ${i}u) * N;\n      ${st.join("\n      ")}\n    }`,
    );
  }
  return u.decl + decl +
    `@compute @workgroup_size(${wgx}, ${wgy})
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let M = P.M;
    let N = P.N;
    let K = P.K;
    let row0 = ${wgy === 1 ? "wid.y" : "g.y"} * ${tm}u;
    let col0 = g.x * ${tn}u;
    if (row0 >= M || col0 >= N) { return; }
    let bt = wid.z + P.boff;
    let aBase = bt * P.sa;
    let bBase = bt * P.sb;
    let cBase = bt * M * N;
    ${L.join("\n    ")}
}
`;
}

/** `matmul`: batched, with transposes and batch strides (0 = broadcast); output (batch, m, n). */
export function matmul(rt: Runtime, a: GPUBuf, b: GPUBuf, p: MatmulParams): GPUBuf {
  const { batch, m, n, k, transA, transB, strideA, strideB } = p;
  const out = rt.alloc(batch * m * n, "float32");
  if (batch * m * n === 0) return out;
  if (k === 0) {
    rt.free(out);
    return fill(rt, batch * m * n, 0, "float32");
  }
  const tile = chooseTile(m, n, rt.software);
  // Lazy operands are computed first, not inlined into the loads: a fused load re-evaluates its expression for
  // every thread that reads it (n/tn or m/tm times) and loses the vec4 loads and the unrolled k loop. Measured on
  // lavapipe (Wave-MambaAD training step, 64², batch 2): the matmuls took 5.2 s of GPU time fused and 1.6 s
  // unfused including the extra elementwise kernels, and the fused kernels added about 60 s of compilation.
  if (a.expr) realize(rt, a);
  if (b.expr) realize(rt, b);
  const variant: Variant = {
    transA,
    transB,
    vecA: (transA ? m % 4 === 0 : k % 4 === 0) && strideA % 4 === 0,
    vecB: (transB ? k % 4 === 0 : n % 4 === 0) && strideB % 4 === 0,
    vecC: n % 4 === 0,
  };
  const vec = (on: boolean) => (on ? "vec4<f32>" : "f32");
  const bd = bindings([["A", a, "read", vec(variant.vecA)], ["B", b, "read", vec(variant.vecB)], [
    "C",
    out,
    "rw",
    vec(variant.vecC),
  ]]);
  const code = matmulCode(tile, variant, bd.decl);
  const gx = Math.ceil(n / (tile.tn * tile.wgx));
  const gy = Math.ceil(m / (tile.tm * tile.wgy));
  if (gx > MAX_GROUPS || gy > MAX_GROUPS) throw new Error(`WebGPU matmul too large: ${m}x${n}`);
  for (let b0 = 0; b0 < batch; b0 += MAX_GROUPS) {
    const u = uniforms([["M", "u32", m], ["N", "u32", n], ["K", "u32", k], ["sa", "u32", strideA], [
      "sb",
      "u32",
      strideB,
    ], ["boff", "u32", b0]]);
    rt.dispatch({
      code,
      uniforms: u,
      buffers: bd.buffers,
      groups: [gx, gy, Math.min(MAX_GROUPS, batch - b0)],
    });
  }
  return out;
}
