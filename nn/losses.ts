/**
 * Loss functions as `torch.nn.functional`: mseLoss, l1Loss, crossEntropy, and the cosine similarity /
 * distance the anomaly-detection models train with.
 *
 * @module
 */

import {
  abs,
  affine,
  cast,
  clamp,
  div,
  expand,
  gather,
  logSoftmax,
  mean,
  mul,
  ne,
  neg,
  sqrt,
  squeeze,
  sub,
  sum,
  unsqueeze,
  where,
} from "../autodiff/ops/index.ts";
import { broadcastShapes, fmt, normAxis } from "../autodiff/ops/util.ts";
import { noGrad, record, type Tensor, tidy } from "../autodiff/tensor.ts";

/** How a loss reduces its per-element values: "mean" (default), "sum", or "none" (unreduced). */
export type Reduction = "mean" | "sum" | "none";

/** Options of the elementwise losses. */
export interface LossOptions {
  /** "mean" (default), "sum" or "none". */
  reduction?: Reduction;
}

function reduce(op: string, x: Tensor, reduction: Reduction): Tensor {
  if (reduction === "mean") return mean(x);
  if (reduction === "sum") return sum(x);
  if (reduction === "none") return x;
  throw new Error(`${op}: unknown reduction "${reduction}" (expected "mean", "sum" or "none")`);
}

function checkPair(op: string, input: Tensor, target: Tensor): void {
  if (input.shape.join() !== target.shape.join()) {
    throw new Error(`${op}: input ${fmt(input.shape)} and target ${fmt(target.shape)} must have the same shape`);
  }
}

/** Mean squared error, (input - target)², reduced. input and target have the same shape. */
export function mseLoss(input: Tensor, target: Tensor, opts: LossOptions = {}): Tensor {
  checkPair("mseLoss", input, target);
  const d = sub(input, target);
  return reduce("mseLoss", mul(d, d), opts.reduction ?? "mean");
}

/** Mean absolute error, |input - target|, reduced. input and target have the same shape. */
export function l1Loss(input: Tensor, target: Tensor, opts: LossOptions = {}): Tensor {
  checkPair("l1Loss", input, target);
  return reduce("l1Loss", abs(sub(input, target)), opts.reduction ?? "mean");
}

/**
 * max(‖x‖₂, eps) along `axis` (keepdim) with PyTorch 1.13's gradient: torch clamps the computed norm in place
 * under no_grad, so its backward still sends x / max(‖x‖, eps) even where the clamp is active.
 */
function clampedNorm(x: Tensor, axis: number, eps: number): Tensor {
  const out = noGrad(() => tidy(() => clamp(sqrt(sum(mul(x, x), axis, true)), eps)));
  return record("cosineSimilarityNorm", out, [x], [x, out], (g, [xs, n]) => [mul(g, div(xs, n))]);
}

/**
 * Cosine similarity along `dim` exactly as `torch.nn.functional.cosine_similarity` in PyTorch 1.13:
 * Σ (a / max(‖a‖, eps)) · (b / max(‖b‖, eps)), with a and b broadcast to a common shape and `dim` removed.
 * (Each norm is clamped separately; the older formula a·b / √max(‖a‖²‖b‖², eps²) differs for tiny vectors.)
 */
export function cosineSimilarity(a: Tensor, b: Tensor, dim = 1, eps = 1e-8): Tensor {
  const shape = broadcastShapes("cosineSimilarity", a.shape, b.shape);
  const ax = shape.join() === a.shape.join() ? a : expand(a, shape);
  const bx = shape.join() === b.shape.join() ? b : expand(b, shape);
  const axis = normAxis("cosineSimilarity", dim, shape.length, shape);
  return sum(mul(div(ax, clampedNorm(ax, axis, eps)), div(bx, clampedNorm(bx, axis, eps))), axis);
}

/** 1 - {@linkcode cosineSimilarity}(a, b, dim, eps) (unreduced: the reduced `dim` is removed). */
export function cosineDistance(a: Tensor, b: Tensor, dim = 1, eps = 1e-8): Tensor {
  return affine(cosineSimilarity(a, b, dim, eps), -1, 1);
}

/** Options of {@linkcode crossEntropy}. */
export interface CrossEntropyOptions extends LossOptions {
  /** ε in [0, 1]: the target becomes (1-ε)·one_hot + ε/C (default 0). */
  labelSmoothing?: number;
  /** Class-index targets equal to this contribute nothing, nor count in the mean (default -100). */
  ignoreIndex?: number;
}

/**
 * Cross entropy of logits against targets, as `torch.nn.functional.cross_entropy` (without class weights).
 * logits (N, C, d1, ...) or (C); target either int32 class indices (N, d1, ...) or () for unbatched input,
 * or float32 class probabilities with the logits' shape. "mean" divides by the number of non-ignored
 * targets (class indices) or by N·d1·... (probabilities).
 */
export function crossEntropy(logits: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const reduction = opts.reduction ?? "mean";
  const eps = opts.labelSmoothing ?? 0;
  const ignoreIndex = opts.ignoreIndex ?? -100;
  if (!(eps >= 0 && eps <= 1)) throw new RangeError(`crossEntropy: labelSmoothing must be in [0, 1], got ${eps}`);
  if (logits.ndim === 1) {
    // unbatched (C): a batch of one, then drop the batch dim
    const out = crossEntropy(unsqueeze(logits, 0), unsqueeze(target, 0), opts);
    return reduction === "none" ? squeeze(out, 0) : out;
  }
  const c = logits.shape[1];
  const logp = logSoftmax(logits, 1);
  if (target.dtype === "float32") {
    checkPair("crossEntropy", logits, target);
    const t = eps > 0 ? affine(target, 1 - eps, eps / c) : target;
    return reduce("crossEntropy", neg(sum(mul(logp, t), 1)), reduction);
  }
  if (target.dtype !== "int32") {
    throw new TypeError(
      `crossEntropy: target must be int32 class indices or float32 probabilities, got ${target.dtype}`,
    );
  }
  const want = [logits.shape[0], ...logits.shape.slice(2)];
  if (target.shape.join() !== want.join()) {
    throw new Error(
      `crossEntropy: target ${fmt(target.shape)} does not match logits ${fmt(logits.shape)} (expected ${fmt(want)})`,
    );
  }
  const range = target.storage.valueRange;
  if (range && (range[1] >= c || (range[0] < 0 && range[0] !== ignoreIndex))) {
    const bad = range[1] >= c ? range[1] : range[0];
    throw new RangeError(`crossEntropy: target class ${bad} is out of range for ${c} classes`);
  }
  const valid = ne(target, ignoreIndex);
  const safe = where(valid, target, 0);
  let loss = neg(squeeze(gather(logp, 1, unsqueeze(safe, 1)), 1));
  if (eps > 0) {
    // (1-ε)·nll + ε·mean_c(-log p_c)
    loss = sub(affine(loss, 1 - eps, 0), affine(mean(logp, 1), eps, 0));
  }
  const validF = cast(valid, "float32");
  loss = mul(loss, validF);
  if (reduction === "mean") return div(sum(loss), sum(validF));
  return reduce("crossEntropy", loss, reduction);
}
