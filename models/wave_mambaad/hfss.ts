/**
 * Wave-MambaAD's High-Frequency State Space module, HFSS (Eq. 5, PAPER.md §3.4): the official `D_SS2D`
 * ({@linkcode DSS2D}) with one named entry point, the decoding switch and the scan-direction ablations of the
 * paper's Table 3. Channels-last (3·B, h, w, C) holding [HL; LH; HH] → the same shape.
 *
 * @module
 */

import { add, concat, flip, indexSelect, reshape, split, stack } from "../../autodiff/ops/index.ts";
import type { Tensor } from "../../autodiff/tensor.ts";
import { columnMajor, diagonal, rowMajor, type ScanOrder } from "../../nn/ssm/scan_order.ts";
import { DSS2D, type HfssDecode, type SS2DOptions } from "../../nn/ssm/ss2d.ts";

export { DSS2D, type HfssDecode };

/**
 * Per-band scan orders [HL, LH, HH] of HFSS. `official` is Eq. 5 (horizontal, vertical, diagonal). The ablations
 * of PAPER.md §3.9 (Table 3) are not in the official code; these are our reading of them: `horizontal` /
 * `vertical` scan every band in that one direction, `noDiagonal` scans HH row-major instead of diagonally.
 */
export const hfssScanOrders: Readonly<
  Record<"official" | "horizontal" | "vertical" | "noDiagonal", readonly ScanOrder[]>
> = {
  official: [rowMajor, columnMajor, diagonal],
  horizontal: [rowMajor, rowMajor, rowMajor],
  vertical: [columnMajor, columnMajor, columnMajor],
  noDiagonal: [rowMajor, columnMajor, rowMajor],
};

/** Options of {@linkcode HFSS}. */
export interface HFSSOptions extends SS2DOptions {
  /** Sub-band size h = w: registers the official scan tables (`scans_h/v/d.index_flat[_inv]`); null: none. */
  size?: number | null;
  /**
   * "official" (default): every band decoded as row-major, so LH′ and HH′ stay in scan order (the official
   * code); "inverse": each band's permutation is inverted (the paper's text).
   */
  decode?: HfssDecode;
  /** Per-band scan orders [HL, LH, HH] (default {@linkcode hfssScanOrders}.official). */
  orders?: readonly ScanOrder[];
}

/**
 * HFSS (Eq. 5): D_SS2D with K = 2 (each band's order and its reverse), all three bands sharing one set of weights.
 * With the default orders this is exactly {@linkcode DSS2D}; other orders are the direction ablations. The scan
 * tables registered for the state dict stay the official ones whatever the orders.
 */
export class HFSS extends DSS2D {
  /** The per-band scan orders [HL, LH, HH]. */
  readonly orders: readonly ScanOrder[];
  readonly #custom: boolean;

  /** An HFSS block for width `dModel` (C). */
  constructor(dModel: number, opts: HFSSOptions = {}) {
    super(dModel, opts);
    const orders = opts.orders ?? hfssScanOrders.official;
    if (orders.length !== 3) throw new Error(`HFSS: expected 3 scan orders [HL, LH, HH], got ${orders.length}`);
    this.orders = orders;
    this.#custom = orders.some((o, i) => o !== hfssScanOrders.official[i]);
  }

  /** x (3·B, h, w, C) = [HL; LH; HH] → (3·B, h, w, C). */
  override forward(x: Tensor): Tensor {
    if (!this.#custom) return super.forward(x);
    const [b3, h, w] = x.shape;
    if (b3 % 3 !== 0) throw new Error(`HFSS: the batch must stack 3 bands [HL; LH; HH], got shape [${x.shape}]`);
    const { xc, z } = this.project(x);
    const l = h * w, d = this.dInner, device = x.device;
    const bands = split(reshape(xc, [b3, d, l]), b3 / 3, 0);
    const xs = concat(
      bands.map((band, i) => {
        const seq = indexSelect(band, 2, this.orders[i].indices(h, w, device));
        return stack([seq, flip(seq, [2])], 1);
      }),
      0,
    );
    const [fwd, bwd] = split(this.scan(xs), 1, 1);
    const merged = split(add(reshape(fwd, [b3, d, l]), flip(reshape(bwd, [b3, d, l]), [2])), b3 / 3, 0);
    const y = concat(
      merged.map((m, i) =>
        this.decode === "inverse" ? indexSelect(m, 2, this.orders[i].inverseIndices(h, w, device)) : m
      ),
      0,
    );
    return this.finish(y, z);
  }
}
