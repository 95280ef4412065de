/**
 * Wave-MambaAD's High-Frequency State Space module, HFSS (Eq. 5, docs/paper.md §3.4): the official `D_SS2D`
 * ({@linkcode DSS2D}) with one named entry point, the decoding switch and the scan-direction ablations of the
 * paper's Table 3. Channels-last (3·B, h, w, C) holding [HL; LH; HH] → the same shape.
 *
 * @module
 */

import { hfssScanOrders, type HfssScanSet, type ScanOrder } from "../../nn/ssm/scan_order.ts";
import { DSS2D, type HfssDecode, type SS2DOptions } from "../../nn/ssm/ss2d.ts";

// The per-band scan orders (Eq. 5 and the Table 3 ablations) live in one table, `hfssScanOrders` of
// nn/ssm/scan_order.ts; Eq. 5 itself is computed by `DSS2D.forward` in nn/ssm/ss2d.ts (see HFSS below).
export { DSS2D, type HfssDecode, hfssScanOrders, type HfssScanSet };

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
  // Eq. 5 is `DSS2D.forward` (nn/ssm/ss2d.ts): in_proj and the depthwise conv + SiLU, then per band [HL; LH; HH]
  // its scan order and the time-reversed copy (K = 2) through the shared selective scan, out_fwd + flip(out_bwd),
  // the decoding (`decode`), out_norm, the SiLU(z) gate and out_proj.

  /** An HFSS block for width `dModel` (C). */
  constructor(dModel: number, opts: HFSSOptions = {}) {
    super(dModel, { ...opts, orders: opts.orders ?? hfssScanOrders.official });
  }
}
