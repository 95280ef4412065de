/**
 * MambaAD's decoder `MambaUPNet` (docs/paper.md §1.3): four `LSSLayer_up` stages of LSS modules, the last three
 * preceded by a PatchExpand2D, with the official module tree and state-dict keys (`layers_up.i.blocks.j.*`,
 * `layers_up.i.upsample.*`), so the `net_s.*` part of an official checkpoint loads unchanged.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { permute } from "../../autodiff/ops/index.ts";
import type { Tensor } from "../../autodiff/tensor.ts";
import { Module } from "../../nn/module.ts";
import { mambaadDirections, type ScanOrder } from "../../nn/ssm/scan_order.ts";
import { dropPathSchedule, mambaUPNetInit } from "../common/decoder.ts";
import { PatchExpand2D } from "../common/patch_expand.ts";
import { MAMBAAD_DEPTHS, MAMBAAD_DIMS } from "./config.ts";
import { LSSModule } from "./lss.ts";

/**
 * How `LSSLayer_up` splits a stage depth into LSS modules (docs/paper.md §1.3): depth % 3 == 0 → depth/3 modules of
 * 3 HSS blocks; else depth % 2 == 0 → depth/2 modules of 2. Returns the HSS count per module.
 */
export function lssSplit(depth: number): number[] {
  if (depth % 3 === 0) return new Array(depth / 3).fill(3);
  if (depth % 2 === 0) return new Array(depth / 2).fill(2);
  throw new Error(`LSSLayer_up: depth ${depth} is neither a multiple of 3 nor of 2`);
}

/**
 * The stochastic-depth rates of the decoder (docs/paper.md §1.3): dpr = linspace(0, rate, Σ depths) reversed; stage i
 * takes dpr[Σ depths[:i] .. Σ depths[:i+1]) and its LSS module j uses element j of that slice. For the
 * official [3, 4, 6, 3] and 0.2: [[0.2], [0.16, 0.1467], [0.1067, 0.0933], [0.0267]].
 */
export function decoderDropPaths(depths: readonly number[], rate: number): number[][] {
  const dpr = dropPathSchedule(rate, depths.reduce((a, b) => a + b, 0));
  let start = 0;
  return depths.map((d) => {
    const slice = dpr.slice(start, start + d);
    start += d;
    return lssSplit(d).map((_, j) => slice[j]);
  });
}

/** Options of {@linkcode LSSLayerUp}. */
export interface LSSLayerUpOptions {
  /** One stochastic-depth rate per LSS module. */
  dropPaths: readonly number[];
  /** SSM state size N. */
  dState?: number;
  /** The stage's H = W (registers the official scan tables; null: none). */
  size?: number | null;
  /** Scan directions. */
  directions?: readonly ScanOrder[];
  /** Start with a PatchExpand2D(dim) (input 2·dim channels at half the size). */
  upsample: boolean;
  /** Device of the parameters. */
  device?: Device;
}

/**
 * One decoder stage, the official `LSSLayer_up` (docs/paper.md §1.3): optional `upsample` (PatchExpand2D), then the
 * LSS modules `blocks.0..`. Channels-last (B, H, W, C) throughout. Keys: `blocks.j.*`, then `upsample.*`
 * (the official registration order).
 */
export class LSSLayerUp extends Module {
  /** The LSS modules. */
  blocks: LSSModule[];
  /** PatchExpand2D(dim) before the blocks (stages 1..3), else null. */
  upsample: PatchExpand2D | null;

  /** A stage of width `dim` with `depth` HSS blocks split by {@linkcode lssSplit}. */
  constructor(dim: number, depth: number, opts: LSSLayerUpOptions) {
    super();
    const split = lssSplit(depth);
    if (opts.dropPaths.length !== split.length) {
      throw new Error(
        `LSSLayerUp: ${split.length} LSS modules need as many drop-path rates, got ${opts.dropPaths.length}`,
      );
    }
    this.blocks = split.map((n, j) =>
      new LSSModule(dim, n, {
        dropPath: opts.dropPaths[j],
        dState: opts.dState,
        size: opts.size,
        directions: opts.directions,
        device: opts.device,
      })
    );
    this.upsample = opts.upsample ? new PatchExpand2D(dim, { device: opts.device }) : null;
  }

  /** x (B, H, W, 2C) with upsample, (B, H, W, C) without → (B, H', W', C). */
  forward(x: Tensor): Tensor {
    let h = this.upsample ? this.upsample.forward(x) : x;
    for (const b of this.blocks) h = b.forward(h);
    return h;
  }
}

/** Options of {@linkcode MambaADDecoder}. */
export interface MambaUPNetOptions {
  /** Widths per stage, coarsest first (default [512, 256, 128, 64]). */
  dims?: readonly number[];
  /** HSS blocks per stage (default [3, 4, 6, 3]). */
  depths?: readonly number[];
  /** SSM state size N (default 16). */
  dState?: number;
  /** Decoder stochastic-depth rate (default 0.2). */
  dropPathRate?: number;
  /** Scan directions (default: the 8 Hilbert directions of docs/paper.md §1.7). */
  directions?: readonly ScanOrder[];
  /**
   * H = W of the bottleneck output, the first stage's scan size (default 8 = 256/32); stage i scans
   * inputSize·2^i. Registers the official scan tables at those sizes; null builds none.
   */
  inputSize?: number | null;
  /** Device of the parameters. */
  device?: Device;
}

export { mambaUPNetInit };

/**
 * The MambaAD decoder, the official `MambaUPNet` of MambaAD (docs/paper.md §1.3): (B, 512, h, w) channels-first → [g1 (B, 64, 8h, 8w), g2 (B, 128, 4h, 4w),
 * g3 (B, 256, 2h, 2w)], channels-first, finest first (the outputs of stages 3, 2, 1; stage 0's is not returned).
 * 15,986,624 parameters with the official dims/depths (+ 39,296 scan-table entries at 256², docs/paper.md §1.12).
 */
export class MambaADDecoder extends Module {
  /** The four stages (`layers_up.0..3`). */
  layers_up: LSSLayerUp[];
  /** Widths per stage. */
  readonly dims: readonly number[];

  /** Builds the stages, then applies {@linkcode mambaUPNetInit} (the official order). */
  constructor(opts: MambaUPNetOptions = {}) {
    super();
    const dims = opts.dims ?? MAMBAAD_DIMS, depths = opts.depths ?? MAMBAAD_DEPTHS;
    if (dims.length !== depths.length) {
      throw new Error(`MambaUPNet: ${dims.length} dims but ${depths.length} depths`);
    }
    this.dims = dims;
    const dprs = decoderDropPaths(depths, opts.dropPathRate ?? 0.2);
    const inputSize = opts.inputSize === undefined ? 8 : opts.inputSize;
    const directions = opts.directions ?? mambaadDirections();
    this.layers_up = dims.map((dim, i) =>
      new LSSLayerUp(dim, depths[i], {
        dropPaths: dprs[i],
        dState: opts.dState ?? 16,
        size: inputSize === null ? null : inputSize * 2 ** i,
        directions,
        upsample: i > 0,
        device: opts.device,
      })
    );
    mambaUPNetInit(this);
  }

  /** x (B, dims[0], h, w) channels-first → the stage 3, 2, 1 outputs channels-first (finest first). */
  forward(x: Tensor): Tensor[] {
    if (x.ndim !== 4 || x.shape[1] !== this.dims[0]) {
      throw new Error(`MambaUPNet: expected a (B, ${this.dims[0]}, h, w) input, got [${x.shape}]`);
    }
    let h = permute(x, [0, 2, 3, 1]);
    const outs: Tensor[] = [];
    this.layers_up.forEach((layer, i) => {
      h = layer.forward(h);
      if (i !== 0) outs.unshift(permute(h, [0, 3, 1, 2]));
    });
    return outs;
  }
}

/** The official class name of {@linkcode MambaADDecoder} (MambaAD's `model/mambaad.py`). */
export { MambaADDecoder as MambaUPNet };
