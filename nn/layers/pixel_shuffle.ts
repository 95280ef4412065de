/**
 * `PixelShuffle` and `PixelUnshuffle`, as torch: channel blocks ⇄ spatial blocks.
 *
 * @module
 */

import { permute, reshape } from "../../autodiff/ops/index.ts";
import type { Tensor } from "../../autodiff/tensor.ts";
import { Module } from "../module.ts";

/**
 * (N, C·r², H, W) → (N, C, H·r, W·r): output pixel (h·r + i, w·r + j) of channel c is input channel
 * c·r² + i·r + j at (h, w).
 */
export class PixelShuffle extends Module {
  /** The upscale factor r. */
  readonly upscaleFactor: number;

  /** A pixel shuffle by `upscaleFactor`. */
  constructor(upscaleFactor: number) {
    super();
    if (!Number.isInteger(upscaleFactor) || upscaleFactor < 1) {
      throw new Error(`PixelShuffle: upscale factor must be a positive integer, got ${upscaleFactor}`);
    }
    this.upscaleFactor = upscaleFactor;
  }

  /** Rearranges x (N, C·r², H, W). */
  forward(x: Tensor): Tensor {
    const r = this.upscaleFactor;
    if (x.ndim !== 4 || x.shape[1] % (r * r) !== 0) {
      throw new Error(`PixelShuffle(${r}): expected (N, C·${r * r}, H, W), input shape [${x.shape}]`);
    }
    const [n, c, h, w] = x.shape;
    const oc = c / (r * r);
    const t = permute(reshape(x, [n, oc, r, r, h, w]), [0, 1, 4, 2, 5, 3]);
    return reshape(t, [n, oc, h * r, w * r]);
  }
}

/** The inverse of {@linkcode PixelShuffle}: (N, C, H·r, W·r) → (N, C·r², H, W). */
export class PixelUnshuffle extends Module {
  /** The downscale factor r. */
  readonly downscaleFactor: number;

  /** A pixel unshuffle by `downscaleFactor`. */
  constructor(downscaleFactor: number) {
    super();
    if (!Number.isInteger(downscaleFactor) || downscaleFactor < 1) {
      throw new Error(`PixelUnshuffle: downscale factor must be a positive integer, got ${downscaleFactor}`);
    }
    this.downscaleFactor = downscaleFactor;
  }

  /** Rearranges x (N, C, H·r, W·r). */
  forward(x: Tensor): Tensor {
    const r = this.downscaleFactor;
    if (x.ndim !== 4 || x.shape[2] % r !== 0 || x.shape[3] % r !== 0) {
      throw new Error(`PixelUnshuffle(${r}): expected (N, C, H·${r}, W·${r}), input shape [${x.shape}]`);
    }
    const [n, c, h, w] = x.shape;
    const t = permute(reshape(x, [n, c, h / r, r, w / r, r]), [0, 1, 3, 5, 2, 4]);
    return reshape(t, [n, c * r * r, h / r, w / r]);
  }
}
