/**
 * Matrix products: `bmm` (the differentiable primitive on 3-D operands, with transposes and a
 * broadcast batch of one) and `matmul` with torch.matmul's semantics on top of it.
 *
 * @module
 */

import { record, Tensor } from "../tensor.ts";
import { add } from "./elementwise.ts";
import { sum } from "./reduce.ts";
import { expand, reshape, squeeze, unsqueeze } from "./shape.ts";
import { broadcastShapes, fmt, numel, requireFloat, sameDevice } from "./util.ts";

/** Options of {@linkcode bmm}. */
export interface BmmOptions {
  /** a holds (batch, k, m): use its transpose. */
  transA?: boolean;
  /** b holds (batch, n, k): use its transpose. */
  transB?: boolean;
}

/**
 * Batched product of 3-D tensors: op(a)[i] @ op(b)[i]. A batch of 1 on either side is broadcast
 * (read with stride 0, its gradient summed over the batch).
 */
export function bmm(a: Tensor, b: Tensor, opts: BmmOptions = {}): Tensor {
  const transA = opts.transA ?? false, transB = opts.transB ?? false;
  sameDevice("bmm", a, b);
  requireFloat("bmm", a, "a");
  requireFloat("bmm", b, "b");
  if (a.ndim !== 3 || b.ndim !== 3) {
    throw new Error(`bmm: expected 3-D tensors, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  }
  const [ba, a1, a2] = a.shape, [bb, b1, b2] = b.shape;
  const m = transA ? a2 : a1, k = transA ? a1 : a2;
  const kb = transB ? b2 : b1, n = transB ? b1 : b2;
  if (k !== kb) {
    throw new Error(
      `matmul: inner dims differ: ${fmt(a.shape)}${transA ? "ᵀ" : ""} @ ${fmt(b.shape)}${
        transB ? "ᵀ" : ""
      } (${k} vs ${kb})`,
    );
  }
  if (ba !== bb && ba !== 1 && bb !== 1) throw new Error(`bmm: batch sizes ${ba} and ${bb} differ`);
  const batch = Math.max(ba, bb);
  const buf = a.backend.matmul(a.buffer, b.buffer, {
    batch,
    m,
    n,
    k,
    transA,
    transB,
    strideA: ba === 1 ? 0 : m * k,
    strideB: bb === 1 ? 0 : k * n,
  });
  const out = Tensor.fromBuffer(buf, [batch, m, n], "float32", a.device);
  return record("matmul", out, [a, b], [a, b], (g, [sa, sb]) => {
    // C = opA(A) opB(B): dA and dB written so that no explicit transpose is materialised
    let ga: Tensor | null = null, gb: Tensor | null = null;
    if (a.requiresGrad) {
      ga = transA ? bmm(sb, g, { transA: transB, transB: true }) : bmm(g, sb, { transB: !transB });
      if (ba === 1 && batch > 1) ga = sum(ga, 0, true);
    }
    if (b.requiresGrad) {
      gb = transB ? bmm(g, sa, { transA: true, transB: transA }) : bmm(sa, g, { transA: !transA });
      if (bb === 1 && batch > 1) gb = sum(gb, 0, true);
    }
    return [ga, gb];
  });
}

/**
 * Matrix product with torch.matmul's semantics: 1-D operands are promoted (and the added dim removed),
 * batch dims broadcast.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  sameDevice("matmul", a, b);
  requireFloat("matmul", a, "a");
  requireFloat("matmul", b, "b");
  if (a.ndim === 0 || b.ndim === 0) {
    throw new Error(`matmul: both arguments need at least 1 dim, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  }
  if (a.ndim === 1 && b.ndim === 1) {
    if (a.shape[0] !== b.shape[0]) {
      throw new Error(`matmul: vectors of different lengths ${fmt(a.shape)} and ${fmt(b.shape)}`);
    }
    return reshape(bmm(reshape(a, [1, 1, -1]), reshape(b, [1, -1, 1])), []);
  }
  const ka = a.shape[a.ndim - 1], kb = b.ndim === 1 ? b.shape[0] : b.shape[b.ndim - 2];
  if (ka !== kb) throw new Error(`matmul: inner dims differ: ${fmt(a.shape)} @ ${fmt(b.shape)} (${ka} vs ${kb})`);
  if (a.ndim === 1) return squeeze(matmul(unsqueeze(a, 0), b), -2);
  if (b.ndim === 1) return squeeze(matmul(a, unsqueeze(b, -1)), -1);
  const [m, k] = a.shape.slice(-2), n = b.shape[b.ndim - 1];
  const batchA = a.shape.slice(0, -2), batchB = b.shape.slice(0, -2);
  const batch = broadcastShapes("matmul", batchA, batchB);
  const nb = numel(batch);
  // a shared right operand: fold a's batch into its rows (one large GEMM instead of many small ones)
  if (numel(batchB) === 1) {
    const out = bmm(reshape(a, [1, numel(batchA) * m, k]), reshape(b, [1, k, n]));
    return reshape(out, [...batch, m, n]);
  }
  const a3 = numel(batchA) === 1
    ? reshape(a, [1, m, k])
    : reshape(batchA.join() === batch.join() ? a : expand(a, [...batch, m, k]), [nb, m, k]);
  const b3 = reshape(batchB.join() === batch.join() ? b : expand(b, [...batch, k, n]), [nb, k, n]);
  return reshape(bmm(a3, b3), [...batch, m, n]);
}

/**
 * torch.nn.functional.linear: `x @ weightᵀ + bias` for x (..., in), weight (out, in), bias (out). The
 * weight is read transposed in place (no copy), and the batch dims fold into one GEMM.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  sameDevice("linear", x, weight, ...(bias ? [bias] : []));
  requireFloat("linear", x, "input");
  requireFloat("linear", weight, "weight");
  if (weight.ndim !== 2 || x.ndim < 1 || x.shape[x.ndim - 1] !== weight.shape[1]) {
    throw new Error(
      `linear: input ${fmt(x.shape)} does not match weight ${fmt(weight.shape)} (expected last dim ${weight.shape[1]})`,
    );
  }
  const [out, inF] = weight.shape;
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== out)) {
    throw new Error(`linear: bias ${fmt(bias.shape)} must have shape [${out}]`);
  }
  const y = bmm(reshape(x, [1, -1, inF]), reshape(weight, [1, out, inF]), { transB: true });
  const shaped = reshape(y, [...x.shape.slice(0, -1), out]);
  return bias ? add(shaped, bias) : shaped;
}
