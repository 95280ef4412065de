/**
 * Scan orders for 2-D state-space models: how an `h × w` feature map is unrolled into a sequence of length
 * `L = h·w` for a selective scan, and how the scan's output is put back in place.
 *
 * Convention: `permutation(h, w)[t]` is the row-major flat spatial index (`row · w + col`) read at sequence
 * position `t`, so encoding is `seq[t] = x_flat[perm[t]]` (`indexSelect(x, lAxis, indices(h, w, device))`) and
 * decoding is `out[perm[t]] = seq[t]`, i.e. `out = indexSelect(seq, lAxis, inverseIndices(h, w, device))`.
 *
 * Orders: {@linkcode rowMajor}, {@linkcode columnMajor}, {@linkcode snake}, {@linkcode antiDiagonalZigzag},
 * {@linkcode hilbert} (MambaAD), {@linkcode diagonal} (Wave-MambaAD's HH scan), and the compositions
 * {@linkcode reversed}, {@linkcode transpose}, {@linkcode rot90}, {@linkcode flipH}, {@linkcode flipV}. The direction
 * sets of the models are {@linkcode mambaadDirections}, {@linkcode vmambaDirections} and {@linkcode hfssOrders}.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { keep, Tensor } from "../../autodiff/tensor.ts";
import { hilbertPermutation } from "./hilbert.ts";

/** A way of unrolling an `h × w` grid into a sequence of length `h·w`. */
export interface ScanOrder {
  /**
   * A name that identifies the permutation (compositions spell out their structure, e.g.
   * `reversed(transpose(hilbert))`). Orders with the same name give the same permutations; the tensor cache
   * relies on it.
   */
  readonly name: string;
  /** Sequence position → row-major flat spatial index (`row · w + col`); a fresh array of length `h·w`. */
  permutation(h: number, w: number): Int32Array;
  /** Row-major flat spatial index → sequence position (the inverse of {@linkcode ScanOrder.permutation}). */
  inverse(h: number, w: number): Int32Array;
  /**
   * {@linkcode ScanOrder.permutation} as a 1-D int32 tensor on `device`, for `indexSelect` along the sequence axis.
   * Cached per (name, h, w, device) and kept out of every `tidy` scope: do not dispose it, call
   * {@linkcode clearScanOrderCache} instead.
   */
  indices(h: number, w: number, device: Device): Tensor;
  /** {@linkcode ScanOrder.inverse} as a cached 1-D int32 tensor on `device` (same rules as `indices`). */
  inverseIndices(h: number, w: number, device: Device): Tensor;
}

function checkSize(name: string, h: number, w: number): void {
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) {
    throw new RangeError(`scan order ${name}: the grid size must be two positive integers, got ${h}×${w}`);
  }
}

/** Inverts a permutation of `0..n-1`. */
export function invertPermutation(perm: Int32Array): Int32Array {
  const inv = new Int32Array(perm.length).fill(-1);
  for (let t = 0; t < perm.length; t++) {
    const p = perm[t];
    if (p < 0 || p >= perm.length || inv[p] !== -1) {
      throw new Error(`invertPermutation: entry ${t} (${p}) makes this not a permutation of 0..${perm.length - 1}`);
    }
    inv[p] = t;
  }
  return inv;
}

/** Cached index tensors, by `name|h|w|device|kind`. */
const tensorCache = new Map<string, Tensor>();

/**
 * Disposes every index tensor cached by {@linkcode ScanOrder.indices} / {@linkcode ScanOrder.inverseIndices} (on
 * every device). Tensors handed out before stay valid only until this call; later calls create fresh ones.
 */
export function clearScanOrderCache(): void {
  for (const t of tensorCache.values()) t.dispose();
  tensorCache.clear();
}

/** Number of index tensors currently cached (for tests and memory accounting). */
export function scanOrderCacheSize(): number {
  return tensorCache.size;
}

/**
 * Base of the built-in orders: subclasses compute the permutation once per size; this class memoises it,
 * derives the inverse and caches the device tensors.
 */
abstract class BaseScanOrder implements ScanOrder {
  #perms = new Map<string, Int32Array>();
  #invs = new Map<string, Int32Array>();

  /** @param name the order's identifying name */
  constructor(readonly name: string) {}

  /** Computes the permutation of an `h × w` grid (sizes already checked). */
  protected abstract compute(h: number, w: number): Int32Array;

  #perm(h: number, w: number): Int32Array {
    checkSize(this.name, h, w);
    const key = `${h}x${w}`;
    let p = this.#perms.get(key);
    if (!p) {
      p = this.compute(h, w);
      if (p.length !== h * w) {
        throw new Error(`scan order ${this.name}: computed ${p.length} entries for a ${h}×${w} grid`);
      }
      this.#invs.set(key, invertPermutation(p)); // also checks that it is a permutation
      this.#perms.set(key, p);
    }
    return p;
  }

  permutation(h: number, w: number): Int32Array {
    return this.#perm(h, w).slice();
  }

  inverse(h: number, w: number): Int32Array {
    this.#perm(h, w);
    return this.#invs.get(`${h}x${w}`)!.slice();
  }

  #cached(h: number, w: number, device: Device, inv: boolean): Tensor {
    const key = `${this.name}|${h}|${w}|${device}|${inv ? "inv" : "fwd"}`;
    const hit = tensorCache.get(key);
    if (hit && !hit.disposed) return hit;
    this.#perm(h, w);
    const data = (inv ? this.#invs : this.#perms).get(`${h}x${w}`)!;
    const t = keep(Tensor.fromHost(data, [data.length], "int32", device));
    tensorCache.set(key, t);
    return t;
  }

  indices(h: number, w: number, device: Device): Tensor {
    return this.#cached(h, w, device, false);
  }

  inverseIndices(h: number, w: number, device: Device): Tensor {
    return this.#cached(h, w, device, true);
  }
}

/** An order given by a function of the grid size. */
class FnOrder extends BaseScanOrder {
  constructor(name: string, readonly fn: (h: number, w: number) => Int32Array) {
    super(name);
  }
  protected compute(h: number, w: number): Int32Array {
    return this.fn(h, w);
  }
}

/** Row-major ("sweep"): rows top to bottom, each left to right. The identity permutation. */
export const rowMajor: ScanOrder = new FnOrder("rowMajor", (h, w) => Int32Array.from({ length: h * w }, (_, i) => i));

/**
 * Column-major: columns left to right, each top to bottom. Equal to `transpose(rowMajor)`, which is how VMamba and
 * Wave-MambaAD's 'vertical' scan produce it (transpose the map, then read it row-major).
 */
export const columnMajor: ScanOrder = new FnOrder("columnMajor", (h, w) => {
  const p = new Int32Array(h * w);
  let t = 0;
  for (let c = 0; c < w; c++) for (let r = 0; r < h; r++) p[t++] = r * w + c;
  return p;
});

/** Boustrophedon (MambaAD's 'scan' type): row-major with every odd row (1, 3, ...) read right to left. */
export const snake: ScanOrder = new FnOrder("snake", (h, w) => {
  const p = new Int32Array(h * w);
  let t = 0;
  for (let r = 0; r < h; r++) {
    for (let k = 0; k < w; k++) p[t++] = r * w + (r % 2 === 0 ? k : w - 1 - k);
  }
  return p;
});

/**
 * JPEG-style zig-zag over the anti-diagonals `s = row + col` (MambaAD's 'zigzag' type): even `s` runs up and to the
 * right (row decreasing), odd `s` down and to the left (row increasing). For square grids this is exactly the
 * official table; rectangular grids use the same rule clipped to the grid.
 */
export const antiDiagonalZigzag: ScanOrder = new FnOrder("antiDiagonalZigzag", (h, w) => {
  const p = new Int32Array(h * w);
  let t = 0;
  for (let s = 0; s <= h + w - 2; s++) {
    if (s % 2 === 0) {
      for (let c = Math.max(0, s - h + 1); c <= Math.min(s, w - 1); c++) p[t++] = (s - c) * w + c;
    } else {
      for (let r = Math.max(0, s - w + 1); r <= Math.min(s, h - 1); r++) p[t++] = r * w + (s - r);
    }
  }
  return p;
});

/**
 * MambaAD's Hilbert curve (`HSCANS(size, scan_type='hilbert')`), see {@linkcode hilbertPermutation}: starts at the
 * top-left corner, moves one grid step at a time and ends at the top-right corner.
 *
 * @throws RangeError (from `permutation`, `indices`, ...) unless `h === w` is a power of two: the official table is
 * not a permutation for other sizes, and it is only defined for square maps.
 */
export const hilbert: ScanOrder = new FnOrder("hilbert", (h, w) => {
  if (h !== w) {
    throw new RangeError(`hilbert scan: the grid must be square with a power-of-two side, got ${h}×${w}`);
  }
  return hilbertPermutation(h);
});

/**
 * Wave-MambaAD's 'diagonal' scan (`SCANS('diagonal')`, used for the HH band): the main diagonal `(i, i)` first,
 * then the strict upper triangle (`col > row`) in row-major order, then the strict lower triangle (`col < row`) in
 * row-major order. For s = 4: `0,5,10,15, 1,2,3,6,7,11, 4,8,9,12,13,14`. Square grids give exactly the official
 * table; rectangular ones use the same rule with the diagonal `(i, i)`, `i < min(h, w)`.
 */
export const diagonal: ScanOrder = new FnOrder("diagonal", (h, w) => {
  const p = new Int32Array(h * w);
  let t = 0;
  for (let i = 0; i < Math.min(h, w); i++) p[t++] = i * w + i;
  for (let r = 0; r < h; r++) for (let c = r + 1; c < w; c++) p[t++] = r * w + c;
  for (let r = 0; r < h; r++) for (let c = 0; c < Math.min(r, w); c++) p[t++] = r * w + c;
  return p;
});

/** An order of a transformed image: `base` scans `view(x)`, whose pixel `(i, j)` is `x[map(i, j)]`. */
class ViewOrder extends BaseScanOrder {
  constructor(
    name: string,
    readonly base: ScanOrder,
    /** whether the view has the transposed shape (w × h) */
    readonly swaps: boolean,
    /** view coordinates → source `[row, col]`, for a source of h × w */
    readonly map: (i: number, j: number, h: number, w: number) => readonly [number, number],
  ) {
    super(name);
  }
  protected compute(h: number, w: number): Int32Array {
    const [vh, vw] = this.swaps ? [w, h] : [h, w];
    const q = this.base.permutation(vh, vw);
    const p = new Int32Array(q.length);
    for (let t = 0; t < q.length; t++) {
      const i = Math.floor(q[t] / vw), j = q[t] % vw;
      const [r, c] = this.map(i, j, h, w);
      p[t] = r * w + c;
    }
    return p;
  }
}

/** `order` run backwards in time: `perm[t] = order.perm[L - 1 - t]` (the `torch.flip(xs, dims=[-1])` branch). */
export function reversed(order: ScanOrder): ScanOrder {
  return new FnOrder(`reversed(${order.name})`, (h, w) => order.permutation(h, w).reverse());
}

/**
 * `order` applied to the transposed map (`torch.transpose(x, 2, 3)`, shape w × h): pixel `(i, j)` of the view is
 * `x[j, i]`. `transpose(rowMajor)` is column-major.
 *
 * Note on nesting: `transpose(rot90(o))` scans `rot90(transpose(x))`; the image transforms apply innermost-last. To
 * scan `transpose(rot90(x))` with `o` (MambaAD's direction 3) write `rot90(transpose(o))`.
 */
export function transpose(order: ScanOrder): ScanOrder {
  return new ViewOrder(`transpose(${order.name})`, order, true, (i, j) => [j, i]);
}

/**
 * `order` applied to `torch.rot90(x, k, dims=(2, 3))` (counter-clockwise quarter turns, any integer `k`, taken
 * mod 4). For k = 1 the view (w × h) has `view[i, j] = x[j, w - 1 - i]`; k = 2: `x[h - 1 - i, w - 1 - j]`; k = 3:
 * `x[h - 1 - j, i]`. k ≡ 0 returns `order` itself.
 */
export function rot90(order: ScanOrder, k = 1): ScanOrder {
  if (!Number.isInteger(k)) throw new RangeError(`rot90: k must be an integer, got ${k}`);
  const kk = ((k % 4) + 4) % 4;
  if (kk === 0) return order;
  const name = `rot90_${kk}(${order.name})`;
  if (kk === 1) return new ViewOrder(name, order, true, (i, j, _h, w) => [j, w - 1 - i]);
  if (kk === 2) return new ViewOrder(name, order, false, (i, j, h, w) => [h - 1 - i, w - 1 - j]);
  return new ViewOrder(name, order, true, (i, j, h) => [h - 1 - j, i]);
}

/** `order` applied to the map mirrored left-right (`torch.flip(x, dims=[3])`): `view[i, j] = x[i, w - 1 - j]`. */
export function flipH(order: ScanOrder): ScanOrder {
  return new ViewOrder(`flipH(${order.name})`, order, false, (i, j, _h, w) => [i, w - 1 - j]);
}

/** `order` applied to the map mirrored top-bottom (`torch.flip(x, dims=[2])`): `view[i, j] = x[h - 1 - i, j]`. */
export function flipV(order: ScanOrder): ScanOrder {
  return new ViewOrder(`flipV(${order.name})`, order, false, (i, j, h) => [h - 1 - i, j]);
}

/** `[order, reversed(order)]`: a scan and its time-reversed copy (the K = 2 layout of Wave-MambaAD's HFSS). */
export function bidirectional(order: ScanOrder): ScanOrder[] {
  return [order, reversed(order)];
}

/**
 * MambaAD's 8 scan directions (SS2D with `scan_type='hilbert'`, `num_direction=8`), in the official order, with
 * `P` the Hilbert scan: k0 = P(x), k1 = P(transpose(x)), k2 = P(rot90(x)), k3 = P(transpose(rot90(x))) (which is P
 * of x mirrored left-right), and k4..k7 = k0..k3 reversed in time. Decoding each with its inverse reproduces the
 * official merge (decode, then transpose / rot90 k=3 back). Requires square power-of-two maps.
 */
export function mambaadDirections(): ScanOrder[] {
  const forward = [hilbert, transpose(hilbert), rot90(hilbert, 1), rot90(transpose(hilbert), 1)];
  return [...forward, ...forward.map(reversed)];
}

/**
 * VMamba-v0's 4 cross-scan directions (`forward_corev0`): row-major, column-major, reversed row-major, reversed
 * column-major. (MambaAD with `num_direction=4` is `hilbert` and `transpose(hilbert)` with their reverses: the first
 * half of {@linkcode mambaadDirections} and its reverses.)
 */
export function vmambaDirections(): ScanOrder[] {
  return [rowMajor, columnMajor, reversed(rowMajor), reversed(columnMajor)];
}

/**
 * Wave-MambaAD's HFSS (`D_SS2D`) band orders, in the batch order of its input `[HL; LH; HH]`: HL → row-major
 * ('horizontal'), LH → column-major ('vertical': transpose, then row-major), HH → {@linkcode diagonal}. Each band is
 * scanned by its order and by the time-reversed copy (K = 2, see {@linkcode bidirectional}).
 *
 * Official quirk (docs/paper.md §3.4): the code decodes all three bands with the identity, so its LH and HH outputs stay in
 * scan order; reproducing that is the SS2D module's choice (decode with `rowMajor` instead of the band's order).
 */
export function hfssOrders(): [hl: ScanOrder, lh: ScanOrder, hh: ScanOrder] {
  const [hl, lh, hh] = hfssScanOrders.official;
  return [hl, lh, hh];
}

/** The names of {@linkcode hfssScanOrders}: the official orders and the scan-direction ablations of Table 3. */
export type HfssScanSet = "official" | "horizontal" | "vertical" | "noDiagonal";

/**
 * The one table of HFSS per-band scan orders [HL, LH, HH]. `official` is Eq. 5 (horizontal, vertical, diagonal; see
 * {@linkcode hfssOrders}). The ablations of docs/paper.md §3.9 (Table 3) are not in the official code; these are our
 * reading of them: `horizontal` / `vertical` scan every band in that one direction, `noDiagonal` scans HH row-major
 * instead of diagonally.
 */
export const hfssScanOrders: Readonly<Record<HfssScanSet, readonly ScanOrder[]>> = {
  official: [rowMajor, columnMajor, diagonal],
  horizontal: [rowMajor, rowMajor, rowMajor],
  vertical: [columnMajor, columnMajor, columnMajor],
  noDiagonal: [rowMajor, columnMajor, rowMajor],
};

/** The official `scan_type` strings this module implements (MambaAD `HSCANS` / Wave-MambaAD `SCANS`, D_SS2D bands). */
export type OfficialScanType = "sweep" | "scan" | "zigzag" | "hilbert" | "diagonal" | "horizontal" | "vertical";

/**
 * The order for an official `scan_type` string: 'sweep' and 'horizontal' → {@linkcode rowMajor}, 'vertical' →
 * {@linkcode columnMajor} (transpose, then sweep), 'scan' → {@linkcode snake}, 'zigzag' →
 * {@linkcode antiDiagonalZigzag}, 'hilbert' → {@linkcode hilbert}, 'diagonal' → {@linkcode diagonal}.
 *
 * @throws Error for other strings ('zorder' and 'spiral' exist in the official code but no config uses them and
 * they are not implemented here)
 */
export function scanOrderForType(type: string): ScanOrder {
  const table: Record<OfficialScanType, ScanOrder> = {
    sweep: rowMajor,
    horizontal: rowMajor,
    vertical: columnMajor,
    scan: snake,
    zigzag: antiDiagonalZigzag,
    hilbert,
    diagonal,
  };
  const o = (table as Record<string, ScanOrder>)[type];
  if (!o || !Object.hasOwn(table, type)) {
    throw new Error(`scan type '${type}' is not implemented (known: ${Object.keys(table).join(", ")})`);
  }
  return o;
}
