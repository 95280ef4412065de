/**
 * 2-D selective-scan blocks (docs/paper.md §1.6 and §3.4): {@linkcode SS2D}, parameterised by its list of scan
 * orders (VMamba's 4 directions, MambaAD's 8 Hilbert directions, ...) and merging by summing the
 * un-permuted outputs; and {@linkcode DSS2D}, Wave-MambaAD's HFSS, which scans each high-frequency band in
 * its own direction (and its reverse) with shared weights.
 *
 * Both use VMamba's layout and parameter names (`in_proj`, `conv2d`, `x_proj_weight`, `dt_projs_weight`,
 * `dt_projs_bias`, `A_logs`, `Ds`, `out_norm`, `out_proj`, and the scan tables `scans*.index_flat[_inv]`) so
 * official checkpoints load without renaming, and Mamba's initialisation (docs/paper.md §1.8). Inputs and outputs are
 * channels-last (B, H, W, C), as inside the decoders.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import {
  add,
  bmm,
  concat,
  exp,
  flip,
  indexSelect,
  linear,
  matmul,
  mul,
  neg,
  permute,
  reshape,
  silu,
  split,
  stack,
  tensor,
} from "../../autodiff/ops/index.ts";
import { type Tensor, tidy } from "../../autodiff/tensor.ts";
import { uniform } from "../init.ts";
import { Conv2d } from "../layers/conv.ts";
import { Linear } from "../layers/linear.ts";
import { LayerNorm } from "../layers/norm.ts";
import { buffer, Module, Parameter } from "../module.ts";
import { diagonal, hfssOrders, hilbert, mambaadDirections, rowMajor, type ScanOrder } from "./scan_order.ts";
import { aLogInit, dtBiasInit, ssmSizes } from "./init.ts";
import { selectiveScan } from "./selective_scan.ts";

/** Options of the 2-D selective-scan blocks. */
export interface SS2DOptions {
  /** State size N (default 16). */
  dState?: number;
  /** Depthwise conv kernel (default 3). */
  dConv?: number;
  /** Inner width D = expand·C (default 2). */
  expand?: number;
  /** Rank R of the dt projection (default ceil(C/16)). */
  dtRank?: number;
  /** Device of the parameters. */
  device?: Device;
}

/** The scan table buffers the official modules register (`index_flat`, `index_flat_inv`, shape (1, 1, L)). */
export class ScanTables extends Module {
  /** Sequence position → flat spatial index. */
  index_flat: Tensor;
  /** Its inverse. */
  index_flat_inv: Tensor;

  /** The tables of `order` on a size × size grid. */
  constructor(order: ScanOrder, size: number, device?: Device) {
    super();
    const l = size * size;
    this.index_flat = buffer(tensor(order.permutation(size, size), { shape: [1, 1, l], dtype: "int32", device }));
    this.index_flat_inv = buffer(tensor(order.inverse(size, size), { shape: [1, 1, l], dtype: "int32", device }));
  }
}

/** The projections and scan parameters shared by SS2D and D_SS2D (docs/paper.md §1.8 initialisation). */
export abstract class SelectiveScan2dBase extends Module {
  /** Model width C. */
  readonly dModel: number;
  /** Inner width D. */
  readonly dInner: number;
  /** State size N. */
  readonly dState: number;
  /** dt rank R. */
  readonly dtRank: number;
  /** Number of scan directions K per sequence. */
  readonly k: number;
  /** C → 2D (x and z), no bias. */
  in_proj: Linear;
  /** Depthwise D×D conv with bias. */
  conv2d: Conv2d;
  /** (K, R + 2N, D). */
  x_proj_weight: Parameter;
  /** (K, D, R). */
  dt_projs_weight: Parameter;
  /** (K, D). */
  dt_projs_bias: Parameter;
  /** (K·D, N): A = −exp(A_logs). */
  A_logs: Parameter;
  /** (K·D). */
  Ds: Parameter;
  /** LayerNorm(D). */
  out_norm: LayerNorm;
  /** D → C, no bias. */
  out_proj: Linear;

  /** Builds the projections and scan parameters for width `dModel` and `k` directions. */
  constructor(dModel: number, k: number, opts: SS2DOptions) {
    super();
    const device = opts.device;
    this.dModel = dModel;
    ({ dState: this.dState, dInner: this.dInner, dtRank: this.dtRank } = ssmSizes(dModel, opts));
    this.k = k;
    const d = this.dInner, n = this.dState, r = this.dtRank;
    this.in_proj = new Linear(dModel, 2 * d, { bias: false, device });
    const dConv = opts.dConv ?? 3;
    this.conv2d = new Conv2d(d, d, dConv, { groups: d, padding: (dConv - 1) / 2, device });
    // x_proj: K stacked nn.Linear(D, R + 2N) weights, default init U(±1/√D)
    this.x_proj_weight = new Parameter(uniform([k, r + 2 * n, d], -1 / Math.sqrt(d), 1 / Math.sqrt(d), { device }));
    // dt_proj: U(±R^-0.5) weights; bias = inverse softplus of dt ~ log-uniform in [0.001, 0.1], clamped ≥ 1e-4
    this.dt_projs_weight = new Parameter(uniform([k, d, r], -(r ** -0.5), r ** -0.5, { device }));
    this.dt_projs_bias = new Parameter(tensor(dtBiasInit(k * d), { shape: [k, d], device }));
    // S4D-real: A_logs[k·D + d, n] = ln(n + 1)
    this.A_logs = new Parameter(tensor(aLogInit(k * d, n), { shape: [k * d, n], device }));
    this.Ds = new Parameter(tensor(new Float32Array(k * d).fill(1), { device }));
    this.out_norm = new LayerNorm(d, { device });
    this.out_proj = new Linear(d, dModel, { bias: false, device });
  }

  /**
   * in_proj, then x through the depthwise conv and SiLU (channels-first) and z kept channels-last. in_proj runs as
   * its two halves: x's straight into the conv's channels-first layout (the GEMM reads the input transposed in
   * place), z's channels-last, the same dot products as splitting the (B, H, W, 2D) map and permuting x's half,
   * without those two copies forward and their two backward. (The flop counter counts it as the official
   * `in_proj` linear, see models/common/flops.ts.)
   */
  protected project(x: Tensor): { xc: Tensor; z: Tensor } {
    if (x.ndim !== 4 || x.shape[3] !== this.in_proj.inFeatures) {
      throw new Error(
        `${this.constructor.name}: expected a (B, H, W, ${this.in_proj.inFeatures}) input, got [${x.shape}]`,
      );
    }
    const [b, h, w, c] = x.shape, d = this.dInner;
    const [wx, wz] = split(this.in_proj.weight, d, 0);
    const [bx, bz] = this.in_proj.bias ? split(this.in_proj.bias, d, 0) : [null, null];
    let xs = reshape(bmm(reshape(wx, [1, d, c]), reshape(x, [b, h * w, c]), { transB: true }), [b, d, h, w]);
    if (bx) xs = add(xs, reshape(bx, [1, d, 1, 1]));
    const xc = silu(this.conv2d.forward(xs)); // (B, D, H, W)
    return { xc, z: linear(x, wz, bz) };
  }

  /**
   * The K selective scans over xs (B, K, D, L): x_dbl = W_x[k]·seq, dt = W_dt[k]·dt_low, then one fused scan
   * with B and C grouped per direction. Returns (B, K, D, L).
   */
  protected scan(xs: Tensor): Tensor {
    const [b, k, d, l] = xs.shape;
    const n = this.dState, r = this.dtRank;
    const xDbl = matmul(this.x_proj_weight, xs); // (B, K, R + 2N, L)
    const [dtLow, bs, cs] = split(xDbl, [r, n, n], 2);
    const dts = matmul(this.dt_projs_weight, dtLow); // (B, K, D, L)
    const y = selectiveScan(
      reshape(xs, [b, k * d, l]),
      reshape(dts, [b, k * d, l]),
      neg(exp(this.A_logs)),
      bs,
      cs,
      { D: this.Ds, deltaBias: reshape(this.dt_projs_bias, [k * d]), deltaSoftplus: true },
    );
    return reshape(y, [b, k, d, l]);
  }

  /** out_norm over D, the SiLU(z) gate and out_proj: y (B, D, L) → (B, H, W, C). */
  protected finish(y: Tensor, z: Tensor): Tensor {
    const [b, h, w] = z.shape;
    const yl = reshape(permute(y, [0, 2, 1]), [b, h, w, this.dInner]);
    return this.out_proj.forward(mul(this.out_norm.forward(yl), silu(z)));
  }
}

/**
 * SS2D (Eq. 2 of VMamba; MambaAD's HSS core): K scan directions over the same map, each direction's output
 * mapped back to row-major order, summed.
 */
export class SS2D extends SelectiveScan2dBase {
  /** The directions, in the order their parameters are stacked. */
  readonly directions: readonly ScanOrder[];
  /** The official scan tables (MambaAD: the Hilbert curve of `size`), kept for checkpoint compatibility. */
  scans: ScanTables | null;

  /**
   * An SS2D over `directions` (default: MambaAD's 8 Hilbert directions). `size` (the H = W the official
   * module is built for) registers its `scans` tables; pass null to skip them.
   */
  constructor(
    dModel: number,
    opts: SS2DOptions & { directions?: readonly ScanOrder[]; size?: number | null } = {},
  ) {
    const directions = opts.directions ?? mambaadDirections();
    super(dModel, directions.length, opts);
    this.directions = directions;
    this.scans = opts.size ? new ScanTables(hilbert, opts.size, opts.device) : null;
  }

  /** x (B, H, W, C) → (B, H, W, C). */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const [b, h, w] = x.shape;
      const { xc, z } = this.project(x);
      const flat = reshape(xc, [b, this.dInner, h * w]);
      const device = x.device;
      // cross-scan: one sequence per direction
      const xs = stack(this.directions.map((o) => indexSelect(flat, 2, o.indices(h, w, device))), 1);
      const ys = this.scan(xs);
      // cross-merge: back to row-major order, summed
      const perDirection = split(ys, 1, 1);
      let y: Tensor | null = null;
      this.directions.forEach((o, k) => {
        const yk = indexSelect(reshape(perDirection[k], [b, this.dInner, h * w]), 2, o.inverseIndices(h, w, device));
        y = y ? add(y, yk) : yk;
      });
      return this.finish(y!, z);
    });
  }
}

/** How D_SS2D maps each band's output back to the grid. */
export type HfssDecode =
  /** The official code: every band is decoded as row-major, so LH and HH outputs stay in scan order. */
  | "official"
  /** The corrected version (the paper's text): each band's permutation is inverted. */
  | "inverse";

/**
 * D_SS2D, Wave-MambaAD's HFSS (Eq. 5, docs/paper.md §3.4): the batch holds [HL; LH; HH] (3·B), scanned row-major,
 * column-major and along the diagonal order respectively, each with its time-reversed copy (K = 2). All bands
 * share the weights; the two directions are merged as out_fwd + flip(out_bwd).
 */
export class DSS2D extends SelectiveScan2dBase {
  /** The per-band decoding (the official quirk by default). */
  readonly decode: HfssDecode;
  /** HL table (row-major). */
  scans_h: ScanTables | null;
  /** LH table (the official code transposes and then reads row-major: an identity table). */
  scans_v: ScanTables | null;
  /** HH table (diagonal order). */
  scans_d: ScanTables | null;
  /** The per-band scan orders [HL, LH, HH] (official: row-major, column-major, diagonal). */
  readonly orders: readonly ScanOrder[];

  /** Whether the three bands share one set of scan parameters (official) or each has its own K = 2 slice. */
  readonly sharedBands: boolean;

  /**
   * A D_SS2D for width `dModel`; `size` registers the official scan tables. `sharedBands: false` gives every band
   * its own scan parameters (x_proj, dt_proj, A, D: K = 6 = 3 bands × 2 directions; the projections, conv and
   * norm stay shared) instead of the official single set. `orders` replaces the bands' scan orders (the official
   * scan tables registered for the state dict stay as they are).
   */
  constructor(
    dModel: number,
    opts: SS2DOptions & {
      size?: number | null;
      decode?: HfssDecode;
      sharedBands?: boolean;
      orders?: readonly ScanOrder[];
    } = {},
  ) {
    const sharedBands = opts.sharedBands ?? true;
    super(dModel, sharedBands ? 2 : 6, opts);
    this.sharedBands = sharedBands;
    this.orders = opts.orders ?? hfssOrders();
    if (this.orders.length !== 3) {
      throw new Error(`DSS2D: expected 3 scan orders [HL, LH, HH], got ${this.orders.length}`);
    }
    this.decode = opts.decode ?? "official";
    const s = opts.size, device = opts.device;
    this.scans_h = s ? new ScanTables(rowMajor, s, device) : null;
    this.scans_v = s ? new ScanTables(rowMajor, s, device) : null;
    this.scans_d = s ? new ScanTables(diagonal, s, device) : null;
  }

  /** x (3·B, H, W, C) = [HL; LH; HH] → (3·B, H, W, C). */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const [b3, h, w] = x.shape;
      if (b3 % 3 !== 0) throw new Error(`DSS2D: the batch must stack 3 bands [HL; LH; HH], got shape [${x.shape}]`);
      const { xc, z } = this.project(x);
      const l = h * w, d = this.dInner, device = x.device;
      const bands = split(reshape(xc, [b3, d, l]), b3 / 3, 0);
      // per band: its order and the time-reversed sequence (K = 2)
      const pairs = bands.map((band, i) => {
        const seq = indexSelect(band, 2, this.orders[i].indices(h, w, device));
        return stack([seq, flip(seq, [2])], 1); // (B, 2, D, L)
      });
      // shared weights: the bands ride along the batch (3B, 2, D, L); own weights: along K (B, 6, D, L)
      const ys = this.sharedBands ? this.scan(concat(pairs, 0)) : this.scan(concat(pairs, 1));
      const perBand = this.sharedBands ? split(ys, b3 / 3, 0) : split(ys, 2, 1);
      const merged = perBand.map((yb) => {
        const [fwd, bwd] = split(yb, 1, 1);
        return add(reshape(fwd, [b3 / 3, d, l]), flip(reshape(bwd, [b3 / 3, d, l]), [2]));
      });
      const y = concat(
        merged.map((m, i) =>
          this.decode === "inverse" ? indexSelect(m, 2, this.orders[i].inverseIndices(h, w, device)) : m
        ),
        0,
      );
      return this.finish(y, z);
    });
  }
}
