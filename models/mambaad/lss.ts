/**
 * MambaAD's LSS module (Locality-enhanced State Space module, docs/paper.md §1.5): a chain of HSS blocks (the
 * global branch) beside two local conv branches (5×5 and 7×7 depthwise), fused by a 1×1 conv and a
 * residual, on channels-last maps (B, H, W, C). Field names follow the official `LSSModule` of MambaAD's
 * `model/mambaad.py` (`smm_blocks.*`, `conv1b7`, `conv1a7`, `conv1b5`, `conv1a5`, `conv55`, `conv77`,
 * `finalconv11`), so official checkpoints load unchanged. ADer's copy (`ConvBNSSMBlock`) also registers an
 * unused depthwise `conv33`; neither the official fixture nor the MambaAD key list has it, so it is not built.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { add, concat, permute } from "../../autodiff/ops/index.ts";
import { type Tensor, tidy } from "../../autodiff/tensor.ts";
import { SiLU } from "../../nn/layers/activation.ts";
import { Sequential } from "../../nn/layers/container.ts";
import { Conv2d } from "../../nn/layers/conv.ts";
import { InstanceNorm2d } from "../../nn/layers/norm.ts";
import { Module } from "../../nn/module.ts";
import { convFanOutInit } from "../../nn/ssm/init.ts";
import type { ScanOrder } from "../../nn/ssm/scan_order.ts";
import { HSSBlock } from "./hss.ts";

/**
 * The LSS initialisation (docs/paper.md §1.5, the official `LSSModule._init_weights`): the conv fan-out init
 * {@linkcode convFanOutInit} of nn/ssm/init.ts, in place on every Conv2d inside a module. Returns the module.
 */
export const lssInit: <M extends Module>(module: M) => M = convFanOutInit;

/** Options of {@linkcode LSSModule}. */
export interface LSSModuleOptions {
  /** Stochastic-depth rate shared by every HSS block of the module (default 0; docs/paper.md §1.3). */
  dropPath?: number;
  /** SSM state size N (default 16). */
  dState?: number;
  /** The H = W the module is built for: registers the HSS blocks' official scan tables (default null: none). */
  size?: number | null;
  /** Scan directions of the HSS blocks (default: MambaAD's 8 Hilbert directions, docs/paper.md §1.7). */
  directions?: readonly ScanOrder[];
  /** Apply {@linkcode lssInit} at construction, as the official constructor does (default true). */
  init?: boolean;
  /** Device of the parameters. */
  device?: Device;
}

/** 1×1 conv (C→C, bias) → InstanceNorm2d(C) (affine off, eps 1e-5) → SiLU, keys `0.weight`, `0.bias`. */
function pointwise(c: number, device?: Device): Sequential {
  return new Sequential(new Conv2d(c, c, 1, { device }), new InstanceNorm2d(c), new SiLU());
}

/** Depthwise k×k conv (pad k//2, no bias) → InstanceNorm2d(C) → SiLU, key `0.weight`. */
function depthwise(c: number, k: number, device?: Device): Sequential {
  return new Sequential(
    new Conv2d(c, c, k, { padding: Math.floor(k / 2), groups: c, bias: false, device }),
    new InstanceNorm2d(c),
    new SiLU(),
  );
}

/**
 * LSS module (docs/paper.md §1.5), channels-last (B, H, W, C) → same:
 * `ssm = HSS_n(…HSS_1(x))`; on x channels-first, `out5 = conv1a5(conv55(conv1b5(x)))` and
 * `out7 = conv1a7(conv77(conv1b7(x)))`; `out = finalconv11(concat[ssm, out5, out7]) + x`.
 * Parameters: n·HSS(C) + 4·(C² + C) + 25C + 49C + 3C² + C (the conv part is 33,728 for C = 64, docs/paper.md §1.12).
 */
export class LSSModule extends Module {
  /** Width C. */
  readonly hidden: number;
  /** The HSS chain (`smm_blocks.0`, `smm_blocks.1`, ...). */
  smm_blocks: HSSBlock[];
  /** 7×7 branch: 1×1 before. */
  conv1b7: Sequential;
  /** 7×7 branch: 1×1 after. */
  conv1a7: Sequential;
  /** 5×5 branch: 1×1 before. */
  conv1b5: Sequential;
  /** 5×5 branch: 1×1 after. */
  conv1a5: Sequential;
  /** 5×5 depthwise. */
  conv55: Sequential;
  /** 7×7 depthwise. */
  conv77: Sequential;
  /** 1×1, 3C → C, with bias. */
  finalconv11: Conv2d;

  /** An LSS module of width `hidden` with `depth` HSS blocks. */
  constructor(hidden: number, depth: number, opts: LSSModuleOptions = {}) {
    super();
    if (!Number.isInteger(depth) || depth < 1) throw new Error(`LSSModule(${hidden}): depth must be ≥ 1, got ${depth}`);
    const device = opts.device;
    this.hidden = hidden;
    this.smm_blocks = Array.from(
      { length: depth },
      () =>
        new HSSBlock(hidden, {
          dropPath: opts.dropPath ?? 0,
          dState: opts.dState,
          size: opts.size,
          directions: opts.directions,
          device,
        }),
    );
    this.conv1b7 = pointwise(hidden, device);
    this.conv1a7 = pointwise(hidden, device);
    this.conv1b5 = pointwise(hidden, device);
    this.conv1a5 = pointwise(hidden, device);
    this.conv55 = depthwise(hidden, 5, device);
    this.conv77 = depthwise(hidden, 7, device);
    this.finalconv11 = new Conv2d(3 * hidden, hidden, 1, { device });
    if (opts.init ?? true) lssInit(this);
  }

  /** x (B, H, W, C) → (B, H, W, C). */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      if (x.ndim !== 4 || x.shape[3] !== this.hidden) {
        throw new Error(
          `LSSModule(${this.hidden}): expected a channels-last (B, H, W, ${this.hidden}) input, got [${x.shape}]`,
        );
      }
      let ssm = x;
      for (const blk of this.smm_blocks) ssm = blk.forward(ssm);
      const xc = permute(x, [0, 3, 1, 2]);
      const out7 = this.conv1a7.forward(this.conv77.forward(this.conv1b7.forward(xc)));
      const out5 = this.conv1a5.forward(this.conv55.forward(this.conv1b5.forward(xc)));
      const fused = this.finalconv11.forward(concat([permute(ssm, [0, 3, 1, 2]), out5, out7], 1));
      return permute(add(fused, xc), [0, 2, 3, 1]);
    });
  }
}
