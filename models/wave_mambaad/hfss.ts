/**
 * Wave-MambaAD's High-Frequency State Space module, HFSS (Eq. 5, docs/paper.md §3.4): the official `D_SS2D`
 * ({@linkcode DSS2D}) with one named entry point, the decoding switch and the scan-direction ablations of the
 * paper's Table 3. Channels-last (3·B, h, w, C) holding [HL; LH; HH] → the same shape.
 *
 * @module
 */

import { columnMajor, diagonal, rowMajor, type ScanOrder } from "../../nn/ssm/scan_order.ts";
import { DSS2D, type HfssDecode, type SS2DOptions } from "../../nn/ssm/ss2d.ts";

export { DSS2D, type HfssDecode };

/**
 * Per-band scan orders [HL, LH, HH] of HFSS. `official` is Eq. 5 (horizontal, vertical, diagonal). The ablations
 * of docs/paper.md §3.9 (Table 3) are not in the official code; these are our reading of them: `horizontal` /
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
  /** One set of scan parameters for the three bands (official true) or one per band. */
  sharedBands?: boolean;
}

/**
 * HFSS (Eq. 5): D_SS2D with K = 2 (each band's order and its reverse), all three bands sharing one set of weights
 * (official; `sharedBands: false` gives each band its own scan parameters). With the default orders this is exactly
 * {@linkcode DSS2D}; other orders are the direction ablations or new variants. The scan tables registered for the
 * state dict stay the official ones whatever the orders.
 */
export class HFSS extends DSS2D {
  /** An HFSS block for width `dModel` (C). */
  constructor(dModel: number, opts: HFSSOptions = {}) {
    super(dModel, { ...opts, orders: opts.orders ?? hfssScanOrders.official });
  }
}
