/**
 * Wave-MambaAD's Dual-branch Spatial Enhancement, DSE (Eq. 8, docs/paper.md §3.6): the official `FeedForward`.
 * Channels-first (B, C, H, W) → (B, C, H, W).
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { conv2d, geluCrossGate, indexSelect } from "../../autodiff/ops/index.ts";
import { keep, Tensor, tidy } from "../../autodiff/tensor.ts";
import { Conv2d } from "../../nn/layers/conv.ts";
import { Module } from "../../nn/module.ts";

/** Options of {@linkcode FeedForward}. */
export interface FeedForwardOptions {
  /** Hidden width factor: hid = floor(expansion·dim) (official 2.66). */
  expansion?: number;
  /** Biases on the three convolutions (official false). */
  bias?: boolean;
  /** Device of the parameters. */
  device?: Device;
}

/**
 * DSE (Eq. 8): project_in (1×1, C → 2·hid) → channel shuffle (2 groups) → depthwise 3×3 → split into x1, x2 →
 * x = GELU(x1)·x2 + GELU(x2)·x1 (exact erf GELU) → project_out (1×1, hid → C). hid = floor(2.66·C); no biases.
 * Parameters: `project_in`, `dwconv3`, `project_out` as the official module (35,700 for C = 64).
 */
export class FeedForward extends Module {
  /** Input/output channels C. */
  readonly dim: number;
  /** Hidden width hid. */
  readonly hidden: number;
  /** 1×1, C → 2·hid. */
  project_in: Conv2d;
  /** Depthwise 3×3 on 2·hid channels. */
  dwconv3: Conv2d;
  /** 1×1, hid → C. */
  project_out: Conv2d;

  /** A DSE block for `dim` channels. */
  constructor(dim: number, opts: FeedForwardOptions = {}) {
    super();
    const bias = opts.bias ?? false, device = opts.device;
    this.dim = dim;
    // int(dim * ffn_expansion_factor) in Python
    this.hidden = Math.floor(dim * (opts.expansion ?? 2.66));
    const hid2 = 2 * this.hidden;
    this.project_in = new Conv2d(dim, hid2, 1, { bias, device });
    this.dwconv3 = new Conv2d(hid2, hid2, 3, { padding: 1, groups: hid2, bias, device });
    this.project_out = new Conv2d(this.hidden, dim, 1, { bias, device });
  }

  /** x (B, C, H, W) → (B, C, H, W). */
  forward(x: Tensor): Tensor {
    const pin = this.project_in;
    if (x.ndim !== 4 || x.shape[1] !== this.dim) {
      throw new Error(`FeedForward(${this.dim}): expected a (B, ${this.dim}, H, W) input, got shape [${x.shape}]`);
    }
    return tidy(() => {
      // the official `channel_shuffle(x, groups=2)` after project_in, folded into its weight: permuting a 1×1
      // conv's output channels is permuting its weight's rows, the same dot products exactly, and saves copying
      // the (B, 2·hid, H, W) map forward and its gradient backward
      const order = this.#shuffleOrder(x.device);
      const shuffled = conv2d(x, indexSelect(pin.weight, 0, order), pin.bias ? indexSelect(pin.bias, 0, order) : null);
      const t = this.dwconv3.forward(shuffled);
      return this.project_out.forward(geluCrossGate(t, 1)); // x1, x2 = the two channel halves
    });
  }

  #orders = new Map<Device, Tensor>();

  /** The 2-group channel shuffle's order as an int32 index: new channel 2i = old i, 2i + 1 = old hid + i. */
  #shuffleOrder(device: Device): Tensor {
    const hit = this.#orders.get(device);
    if (hit && !hit.disposed) return hit;
    const hid = this.hidden, order = new Int32Array(2 * hid);
    for (let i = 0; i < hid; i++) [order[2 * i], order[2 * i + 1]] = [i, hid + i];
    const t = keep(Tensor.fromHost(order, [2 * hid], "int32", device));
    this.#orders.set(device, t);
    return t;
  }
}
