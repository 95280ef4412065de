/**
 * State-space blocks: the fused selective scan, scan orders (as the `scanOrders` namespace, since their
 * compositions share names with tensor ops: `scanOrders.transpose(scanOrders.hilbert)`), SS2D / D_SS2D, the
 * channel Mamba and the 1-D Mamba block.
 *
 * @module
 */

export {
  SELECTIVE_SCAN_CHUNK,
  selectiveScan,
  type SelectiveScanOptions,
  selectiveScanReference,
  type SelectiveScanResult,
} from "./selective_scan.ts";
export * as scanOrders from "./scan_order.ts";
export type { ScanOrder } from "./scan_order.ts";
export { DSS2D, type HfssDecode, ScanTables, SelectiveScan2dBase, SS2D, type SS2DOptions } from "./ss2d.ts";
export { ChannelMamba, type ChannelMambaOptions } from "./channel_mamba.ts";
export { CausalConv1d, Mamba, type MambaOptions } from "./mamba.ts";
