/**
 * The selective scan of Mamba (S6), with the semantics of `selective_scan_ref` (state-spaces/mamba):
 *
 * 1. δ = delta + deltaBias[d], then softplus(δ) when `deltaSoftplus`.
 * 2. `h_l = exp(δ_l·A[d]) ⊙ h_{l−1} + δ_l·B_l·u_l` from h_{−1} = 0 (zero-order hold for A, Euler for B).
 * 3. `y_l = Σ_n h_l[n]·C_l[n]`, `out = (y + D[d]·u) · silu(z)`.
 *
 * {@linkcode selectiveScan} runs the fused backend kernels; its gradient rule saves only the inputs and the
 * states at chunk boundaries and recomputes the rest. {@linkcode selectiveScanReference} composes the same
 * maths from ordinary tensor ops (for tests and benchmarks; it materialises the full state).
 *
 * @module
 */

import type { SelectiveScanInputs, SelectiveScanParams } from "../../autodiff/backend.ts";
import {
  add,
  exp,
  expand,
  mul,
  permute,
  reshape,
  silu,
  slice,
  softplus,
  stack,
  sum,
  unsqueeze,
} from "../../autodiff/ops/index.ts";
import { record, Tensor } from "../../autodiff/tensor.ts";

/** Steps between the states the forward stores for the backward. */
export const SELECTIVE_SCAN_CHUNK = 64;

/** Options of {@linkcode selectiveScan} and {@linkcode selectiveScanReference}. */
export interface SelectiveScanOptions {
  /** Skip term D, shape (channels). */
  D?: Tensor | null;
  /** Gate z, shape (batch, channels, length): the output is multiplied by silu(z). */
  z?: Tensor | null;
  /** Added to delta before the softplus, shape (channels). */
  deltaBias?: Tensor | null;
  /** Apply softplus to delta + deltaBias (default false). */
  deltaSoftplus?: boolean;
  /** Also return the last state h_{L−1}, (batch, channels, dState) (default false). */
  returnLastState?: boolean;
}

/** Output and last state of a scan with `returnLastState`. */
export interface SelectiveScanResult {
  /** (batch, channels, length). */
  out: Tensor;
  /** h_{L−1}, (batch, channels, dState); not differentiable (it carries no gradient rule). */
  lastState: Tensor;
}

const fmt = (s: readonly number[]) => `[${s.join(", ")}]`;

/** Validates the arguments and returns the kernel parameters. */
function checkArgs(
  op: string,
  u: Tensor,
  delta: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  opts: SelectiveScanOptions,
): SelectiveScanParams {
  const fail = (msg: string): never => {
    throw new Error(`${op}: ${msg}`);
  };
  const all: [string, Tensor | null | undefined][] = [
    ["u", u],
    ["delta", delta],
    ["A", A],
    ["B", B],
    ["C", C],
    ["D", opts.D],
    ["z", opts.z],
    ["deltaBias", opts.deltaBias],
  ];
  for (const [name, t] of all) {
    if (!t) continue;
    if (t.dtype !== "float32") fail(`${name} must be float32, got ${t.dtype}`);
    if (t.device !== u.device) fail(`${name} is on ${t.device} but u is on ${u.device}`);
  }
  if (u.ndim !== 3) fail(`u must be (batch, channels, length), got ${fmt(u.shape)}`);
  const [batch, channels, length] = u.shape;
  if (length < 1) fail(`u must have a length ≥ 1, got ${fmt(u.shape)}`);
  const same = (name: string, t: Tensor) => {
    if (t.shape.join() !== u.shape.join()) {
      fail(`${name} must have u's shape (batch, channels, length) ${fmt(u.shape)}, got ${fmt(t.shape)}`);
    }
  };
  same("delta", delta);
  if (opts.z) same("z", opts.z);
  if (A.ndim !== 2 || A.shape[0] !== channels) {
    fail(`A must be (channels, dState) with channels = ${channels} (from u ${fmt(u.shape)}), got ${fmt(A.shape)}`);
  }
  const dState = A.shape[1];
  let groups = -1;
  for (const [name, t] of [["B", B], ["C", C]] as const) {
    let g: number;
    if (t.ndim === 2) {
      if (t.shape[0] !== channels || t.shape[1] !== dState) {
        fail(`${name} as fixed (channels, dState) must be ${fmt([channels, dState])}, got ${fmt(t.shape)}`);
      }
      g = 0;
    } else if (t.ndim === 3 || t.ndim === 4) {
      // (batch, dState, length) is one group
      g = t.ndim === 3 ? 1 : t.shape[1];
      const want = [batch, g, dState, length];
      const have = t.ndim === 3 ? [t.shape[0], 1, t.shape[1], t.shape[2]] : t.shape;
      if (have.join() !== want.join() || g < 1 || channels % g !== 0) {
        fail(
          `${name} must be (channels, dState) ${fmt([channels, dState])}, (batch, dState, length) ` +
            `${fmt([batch, dState, length])} or (batch, groups, dState, length) with groups dividing ` +
            `channels = ${channels}; got ${fmt(t.shape)} (u ${fmt(u.shape)}, A ${fmt(A.shape)})`,
        );
      }
    } else {
      g = fail(
        `${name} must be 2-D (channels, dState) or 3-/4-D (batch, [groups,] dState, length), got ${fmt(t.shape)}`,
      );
    }
    if (groups >= 0 && g !== groups) {
      fail(`B ${fmt(B.shape)} and C ${fmt(C.shape)} must have the same layout (fixed or the same groups)`);
    }
    groups = g;
  }
  for (const [name, t] of [["D", opts.D], ["deltaBias", opts.deltaBias]] as const) {
    if (t && (t.ndim !== 1 || t.shape[0] !== channels)) {
      fail(`${name} must be (channels) = ${fmt([channels])}, got ${fmt(t.shape)}`);
    }
  }
  return {
    batch,
    channels,
    length,
    dState,
    groups,
    chunk: SELECTIVE_SCAN_CHUNK,
    hasD: !!opts.D,
    hasZ: !!opts.z,
    hasDeltaBias: !!opts.deltaBias,
    deltaSoftplus: opts.deltaSoftplus ?? false,
  };
}

/**
 * The fused selective scan: u, delta (batch, channels, length), A (channels, dState), B and C either
 * (channels, dState) or (batch, groups, dState, length) (groups dividing channels; (batch, dState, length)
 * means one group). Returns `out` (batch, channels, length), or `{ out, lastState }` with `returnLastState`.
 * Differentiable with respect to every tensor argument through one gradient rule that calls the backend's
 * backward kernel; it saves the inputs and the states at every {@linkcode SELECTIVE_SCAN_CHUNK}-th step only.
 */
export function selectiveScan(
  u: Tensor,
  delta: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  opts: SelectiveScanOptions & { returnLastState: true },
): SelectiveScanResult;
/** The fused scan without `returnLastState`: returns out (batch, channels, length). */
export function selectiveScan(
  u: Tensor,
  delta: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  opts?: SelectiveScanOptions,
): Tensor;
export function selectiveScan(
  u: Tensor,
  delta: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  opts: SelectiveScanOptions = {},
): Tensor | SelectiveScanResult {
  const p = checkArgs("selectiveScan", u, delta, A, B, C, opts);
  const D = opts.D ?? null, z = opts.z ?? null, deltaBias = opts.deltaBias ?? null;
  const inputs = [u, delta, A, B, C, D, z, deltaBias];
  const bufs = (ts: (Tensor | null)[]): SelectiveScanInputs => ({
    u: ts[0]!.buffer,
    delta: ts[1]!.buffer,
    A: ts[2]!.buffer,
    B: ts[3]!.buffer,
    C: ts[4]!.buffer,
    D: ts[5]?.buffer ?? null,
    z: ts[6]?.buffer ?? null,
    deltaBias: ts[7]?.buffer ?? null,
  });
  const backend = u.backend, device = u.device;
  const res = backend.selectiveScanForward(bufs(inputs), p, opts.returnLastState ?? false);
  const out = Tensor.fromBuffer(res.out, u.shape, "float32", device);
  const nChunks = Math.ceil(p.length / p.chunk);
  const chunkStates = Tensor.fromBuffer(res.chunkStates, [p.batch, p.channels, nChunks, p.dState], "float32", device);
  const present: Tensor[] = [];
  const where = inputs.map((t) => (t ? present.push(t) - 1 : -1));
  record("selectiveScan", out, present, [...present, chunkStates], (g, saved) => {
    const ts = where.map((k) => (k >= 0 ? saved[k] : null));
    const gr = g.backend.selectiveScanBackward(bufs(ts), saved[saved.length - 1].buffer, g.buffer, p);
    const all = [gr.du, gr.ddelta, gr.dA, gr.dB, gr.dC, gr.dD, gr.dz, gr.ddeltaBias];
    const grads: Tensor[] = [];
    all.forEach((buf, k) => {
      if (buf) grads[where[k]] = Tensor.fromBuffer(buf, inputs[k]!.shape, "float32", g.device);
    });
    return grads;
  });
  chunkStates.dispose();
  if (!opts.returnLastState) return out;
  const lastState = Tensor.fromBuffer(res.lastState!, [p.batch, p.channels, p.dState], "float32", device);
  return { out, lastState };
}

/**
 * The selective scan composed from ordinary tensor ops, as `selective_scan_ref`: it materialises
 * exp(δ·A) and δ·B·u as (batch, channels, length, dState) tensors and steps the recurrence over the length
 * with slices. Same arguments and results as {@linkcode selectiveScan}; every output is differentiable.
 * Meant for tests and benchmarks (memory and dispatches grow with length · dState).
 */
export function selectiveScanReference(
  u: Tensor,
  delta: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  opts: SelectiveScanOptions & { returnLastState: true },
): SelectiveScanResult;
/** The composed reference without `returnLastState`: returns out (batch, channels, length). */
export function selectiveScanReference(
  u: Tensor,
  delta: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  opts?: SelectiveScanOptions,
): Tensor;
export function selectiveScanReference(
  u: Tensor,
  delta: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  opts: SelectiveScanOptions = {},
): Tensor | SelectiveScanResult {
  const p = checkArgs("selectiveScanReference", u, delta, A, B, C, opts);
  const { batch, channels, length, dState, groups } = p;
  let dl = delta;
  if (opts.deltaBias) dl = add(dl, reshape(opts.deltaBias, [1, channels, 1]));
  if (p.deltaSoftplus) dl = softplus(dl);
  // (batch, channels, length, dState) per-channel B/C
  const perChannel = (t: Tensor): Tensor => {
    if (groups === 0) return expand(reshape(t, [1, channels, 1, dState]), [batch, channels, length, dState]);
    const g = reshape(t, [batch, groups, 1, dState, length]);
    const e = reshape(expand(g, [batch, groups, channels / groups, dState, length]), [batch, channels, dState, length]);
    return permute(e, [0, 1, 3, 2]);
  };
  const Bc = perChannel(B), Cc = perChannel(C);
  const dl4 = unsqueeze(dl, 3); // (batch, channels, length, 1)
  const deltaA = exp(mul(dl4, reshape(A, [1, channels, 1, dState])));
  const deltaBu = mul(mul(dl4, unsqueeze(u, 3)), Bc);
  let h: Tensor | null = null;
  const ys: Tensor[] = [];
  for (let l = 0; l < length; l++) {
    const bu = reshape(slice(deltaBu, 2, l, l + 1), [batch, channels, dState]);
    h = h ? add(mul(reshape(slice(deltaA, 2, l, l + 1), [batch, channels, dState]), h), bu) : bu;
    ys.push(sum(mul(h, reshape(slice(Cc, 2, l, l + 1), [batch, channels, dState])), 2));
  }
  let out = stack(ys, 2);
  if (opts.D) out = add(out, mul(u, reshape(opts.D, [1, channels, 1])));
  if (opts.z) out = mul(out, silu(opts.z));
  return opts.returnLastState ? { out, lastState: h! } : out;
}
