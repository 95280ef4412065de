/**
 * The Haar wavelet transform of Wave-MambaAD: differentiable `dwt` / `iwt` (the MWCNN-style `dwt_init` and
 * `iwt_init` of the official code) and the parameter-free `DWT` / `IWT` modules.
 *
 * Per 2×2 block, a = x[2i,2j], b = x[2i+1,2j] (row below), c = x[2i,2j+1] (column right), d = x[2i+1,2j+1]:
 *
 * ```text
 * LL = ( a + b + c + d)/2      a = (LL − HL − LH + HH)/2
 * HL = (−a − b + c + d)/2      b = (LL − HL + LH − HH)/2
 * LH = (−a + b − c + d)/2      c = (LL + HL − LH − HH)/2
 * HH = ( a − b − c + d)/2      d = (LL + HL + LH + HH)/2
 * ```
 *
 * `dwt` maps (B, C, H, W) to (4B, C, H/2, W/2), the bands stacked on the batch axis as [LL; HL; LH; HH];
 * `iwt` maps it back. Example: x = [[1, 2], [3, 4]] gives LL 5, HL 1, LH 2, HH 0.
 *
 * Gradients. Per block the DWT is y = M·v with v = (a, b, c, d) and M = ½·[[1,1,1,1], [−1,−1,1,1], [−1,1,−1,1],
 * [1,−1,−1,1]]. Every row of M has norm ½·√4 = 1 and the rows are mutually orthogonal, so M is orthogonal:
 * M⁻¹ = Mᵀ. The IWT's matrix (rows a, b, c, d above) is exactly Mᵀ: ½·[[1,−1,−1,1], [1,−1,1,−1], [1,1,−1,−1],
 * [1,1,1,1]]. Hence the vector-Jacobian products are, with constant factor exactly 1:
 * d/dx ⟨R, dwt(x)⟩ = Mᵀ R = iwt(R), and d/dy ⟨R, iwt(y)⟩ = (Mᵀ)ᵀ R = M R = dwt(R).
 * The official code has one ½ per transform (on the taps in `dwt_init`, on the sub-bands in `iwt_init`): it is
 * the ½ of M and of Mᵀ, and it is what makes M orthonormal, so the adjoint is the inverse with no extra factor.
 * (With taps s·(±1) instead, Mᵀ = 4s²·M⁻¹, so the adjoint would be 4s² times the inverse.)
 * Both rules are written with the recorded ops themselves (`iwt`, `dwt`).
 *
 * Odd sizes: the official code slices `x[:, :, 0::2]` and `x[:, :, 1::2]` and adds them, which fails with a
 * size mismatch for an odd height or width (ceil vs floor), and `iwt_init` needs a batch divisible by 4. Both
 * functions throw a clear error naming the shape instead.
 *
 * @module
 */

import { record, Tensor } from "../../autodiff/tensor.ts";
import { fmt, requireFloat } from "../../autodiff/ops/util.ts";
import { Module } from "../module.ts";

/**
 * Haar DWT: x (B, C, H, W) float32 with H and W even → (4B, C, H/2, W/2), the sub-bands [LL; HL; LH; HH]
 * concatenated along the batch axis (official `DWT` / `dwt_init`). Differentiable; its gradient is `iwt`.
 * @throws {Error} when x is not 4-D or H or W is odd.
 */
export function dwt(x: Tensor): Tensor {
  requireFloat("dwt", x);
  if (x.ndim !== 4) throw new Error(`dwt: expected a 4-D (B, C, H, W) input, got ${fmt(x.shape)}`);
  const [b, c, h, w] = x.shape;
  if (h % 2 !== 0 || w % 2 !== 0) {
    throw new Error(`dwt: height and width must be even, got input shape ${fmt(x.shape)}`);
  }
  const buf = x.backend.haarDwt(x.buffer, b, c, h, w);
  const out = Tensor.fromBuffer(buf, [4 * b, c, h / 2, w / 2], "float32", x.device);
  return record("dwt", out, [x], [], (g) => [iwt(g)]);
}

/**
 * Haar IWT: y (4B, C, h, w) float32 holding [LL; HL; LH; HH] along the batch axis → (B, C, 2h, 2w)
 * (official `IWT` / `iwt_init`); the exact inverse of {@linkcode dwt}. Differentiable; its gradient is `dwt`.
 * @throws {Error} when y is not 4-D or its batch is not a multiple of 4.
 */
export function iwt(y: Tensor): Tensor {
  requireFloat("iwt", y);
  if (y.ndim !== 4) throw new Error(`iwt: expected a 4-D (4B, C, h, w) input, got ${fmt(y.shape)}`);
  const [b4, c, h, w] = y.shape;
  if (b4 % 4 !== 0) {
    throw new Error(
      `iwt: the batch must be a multiple of 4 (the sub-bands LL, HL, LH, HH), got input shape ${fmt(y.shape)}`,
    );
  }
  const b = b4 / 4;
  const buf = y.backend.haarIwt(y.buffer, b, c, h, w);
  const out = Tensor.fromBuffer(buf, [b, c, 2 * h, 2 * w], "float32", y.device);
  return record("iwt", out, [y], [], (g) => [dwt(g)]);
}

/** The official `DWT` module: {@linkcode dwt} as a parameter-free {@linkcode Module}. */
export class DWT extends Module {
  /** (B, C, H, W) → (4B, C, H/2, W/2) as [LL; HL; LH; HH]. */
  forward(x: Tensor): Tensor {
    return dwt(x);
  }
}

/** The official `IWT` module: {@linkcode iwt} as a parameter-free {@linkcode Module}. */
export class IWT extends Module {
  /** (4B, C, h, w) as [LL; HL; LH; HH] → (B, C, 2h, 2w). */
  forward(y: Tensor): Tensor {
    return iwt(y);
  }
}
