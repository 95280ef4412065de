/**
 * Scan orders (nn/ssm/scan_order.ts): every order is a permutation with a matching inverse (on the host and
 * through `indexSelect` on every device of `testDevices()`), the Hilbert curve moves one grid step at a time and
 * matches the docs/paper.md §1.7 test vectors, MambaAD's 8 directions reproduce the official `scans.index_flat` /
 * `index_flat_inv` of tests/fixtures/official/mambaad_ss2d.safetensors through the official transposes and
 * rotations, and the HFSS orders reproduce wave_d_ss2d.safetensors' `scans_h/v/d` tables.
 */
import assert from "node:assert/strict";
import type { Device } from "../autodiff/backend.ts";
import { indexSelect } from "../autodiff/ops/indexing.ts";
import { Tensor, tidy } from "../autodiff/tensor.ts";
import { loadSafetensors } from "../nn/io/safetensors.ts";
import { hilbertDecode2d, hilbertPermutation } from "../nn/ssm/hilbert.ts";
import {
  antiDiagonalZigzag,
  bidirectional,
  clearScanOrderCache,
  columnMajor,
  diagonal,
  flipH,
  flipV,
  hfssOrders,
  hilbert,
  invertPermutation,
  mambaadDirections,
  reversed,
  rot90,
  rowMajor,
  type ScanOrder,
  scanOrderCacheSize,
  scanOrderForType,
  snake,
  transpose,
  vmambaDirections,
} from "../nn/ssm/scan_order.ts";
import { testDevices } from "./util.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const fixtures = new URL("./fixtures/official/", import.meta.url);

const SIZES: [number, number][] = [[1, 1], [2, 3], [4, 4], [5, 7], [8, 8], [16, 16]];
const isPow2Square = (h: number, w: number) => h === w && (h & (h - 1)) === 0;

/** Every order the module offers, with compositions, and whether it accepts an h × w grid. */
function allOrders(): { order: ScanOrder; accepts: (h: number, w: number) => boolean }[] {
  const any = (_h: number, _w: number) => true;
  const basics: ScanOrder[] = [rowMajor, columnMajor, snake, antiDiagonalZigzag, diagonal];
  const out = basics.flatMap((o) => [
    o,
    reversed(o),
    transpose(o),
    rot90(o, 1),
    rot90(o, 2),
    rot90(o, 3),
    rot90(o, -1),
    flipH(o),
    flipV(o),
    flipH(transpose(reversed(o))),
  ]).map((order) => ({ order, accepts: any }));
  for (const o of [...mambaadDirections(), flipV(hilbert), rot90(hilbert, 2)]) {
    out.push({ order: o, accepts: isPow2Square });
  }
  return out;
}

function isPermutation(p: Int32Array, n: number): boolean {
  if (p.length !== n) return false;
  const seen = new Uint8Array(n);
  for (const v of p) {
    if (v < 0 || v >= n || seen[v]) return false;
    seen[v] = 1;
  }
  return true;
}

Deno.test("scan orders: every order is a permutation and inverse composes to the identity (host)", opts, () => {
  for (const { order, accepts } of allOrders()) {
    for (const [h, w] of SIZES) {
      if (!accepts(h, w)) {
        assert.throws(() => order.permutation(h, w), RangeError, `${order.name} ${h}x${w} should throw`);
        continue;
      }
      const p = order.permutation(h, w);
      const inv = order.inverse(h, w);
      assert.ok(isPermutation(p, h * w), `${order.name} ${h}x${w} is not a permutation: ${p}`);
      for (let t = 0; t < p.length; t++) assert.equal(inv[p[t]], t, `${order.name} ${h}x${w}`);
      for (let i = 0; i < p.length; i++) assert.equal(p[inv[i]], i, `${order.name} ${h}x${w}`);
    }
  }
});

Deno.test("scan orders: permutation() returns a fresh copy; bad sizes throw", opts, () => {
  const p = snake.permutation(3, 3);
  p.fill(0);
  assert.deepEqual(Array.from(snake.permutation(3, 3)), [0, 1, 2, 5, 4, 3, 6, 7, 8]);
  assert.throws(() => rowMajor.permutation(0, 3), RangeError);
  assert.throws(() => rowMajor.permutation(2.5, 3), RangeError);
  assert.throws(() => hilbert.permutation(6, 6), /power-of-two/);
  assert.throws(() => hilbert.permutation(4, 8), /square/);
  assert.throws(() => invertPermutation(Int32Array.from([0, 0, 1])), /not a permutation/);
});

Deno.test("scan orders: small hand-checked tables", opts, () => {
  const arr = (o: ScanOrder, h: number, w: number) => Array.from(o.permutation(h, w));
  assert.deepEqual(arr(rowMajor, 2, 3), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(arr(columnMajor, 2, 3), [0, 3, 1, 4, 2, 5]);
  assert.deepEqual(arr(transpose(rowMajor), 2, 3), arr(columnMajor, 2, 3));
  assert.deepEqual(arr(reversed(rowMajor), 2, 3), [5, 4, 3, 2, 1, 0]);
  assert.deepEqual(arr(snake, 2, 3), [0, 1, 2, 5, 4, 3]);
  // JPEG zig-zag, as MambaAD's 'zigzag'
  assert.deepEqual(arr(antiDiagonalZigzag, 3, 3), [0, 1, 3, 6, 4, 2, 5, 7, 8]);
  assert.deepEqual(arr(antiDiagonalZigzag, 2, 3), [0, 1, 3, 4, 2, 5]);
  // docs/paper.md §3.4, s = 4
  assert.deepEqual(arr(diagonal, 4, 4), [0, 5, 10, 15, 1, 2, 3, 6, 7, 11, 4, 8, 9, 12, 13, 14]);
  assert.deepEqual(arr(diagonal, 2, 3), [0, 4, 1, 2, 5, 3]);
  // torch.rot90(x, 1) of [[0,1,2],[3,4,5]] is [[2,5],[1,4],[0,3]]
  assert.deepEqual(arr(rot90(rowMajor, 1), 2, 3), [2, 5, 1, 4, 0, 3]);
  assert.deepEqual(arr(rot90(rowMajor, 2), 2, 3), [5, 4, 3, 2, 1, 0]);
  assert.deepEqual(arr(rot90(rowMajor, 3), 2, 3), [3, 0, 4, 1, 5, 2]);
  assert.deepEqual(arr(rot90(rowMajor, -1), 2, 3), [3, 0, 4, 1, 5, 2]);
  assert.equal(rot90(snake, 4), snake);
  assert.deepEqual(arr(flipH(rowMajor), 2, 3), [2, 1, 0, 5, 4, 3]);
  assert.deepEqual(arr(flipV(rowMajor), 2, 3), [3, 4, 5, 0, 1, 2]);
  assert.deepEqual(bidirectional(diagonal).map((o) => o.name), ["diagonal", "reversed(diagonal)"]);
  assert.equal(scanOrderForType("hilbert"), hilbert);
  assert.equal(scanOrderForType("scan"), snake);
  assert.equal(scanOrderForType("vertical"), columnMajor);
  assert.throws(() => scanOrderForType("zorder"), /not implemented/);
  assert.throws(() => scanOrderForType("toString"), /not implemented/);
});

Deno.test("hilbert: docs/paper.md §1.7 test vectors, unit steps, corners", opts, () => {
  assert.deepEqual(Array.from(hilbert.permutation(1, 1)), [0]);
  assert.deepEqual(Array.from(hilbert.permutation(2, 2)), [0, 2, 3, 1]);
  assert.deepEqual(Array.from(hilbert.permutation(4, 4)), [0, 1, 5, 4, 8, 12, 13, 9, 10, 14, 15, 11, 7, 6, 2, 3]);
  // deno-fmt-ignore
  const size8 = [0,8,9,1,2,3,11,10,18,19,27,26,25,17,16,24,32,33,41,40,48,56,57,49,50,58,59,51,43,42,34,35,36,37,45,44,52,60,61,53,54,62,63,55,47,46,38,39,31,23,22,30,29,28,20,21,13,12,4,5,6,14,15,7];
  assert.deepEqual(Array.from(hilbert.permutation(8, 8)), size8);
  const starts: Record<number, number[]> = {
    16: [0, 1, 17, 16, 32, 48],
    32: [0, 32, 33, 1, 2, 3],
    64: [0, 1, 65, 64, 128, 192],
  };
  for (const s of [2, 4, 8, 16, 32, 64]) {
    const p = hilbertPermutation(s);
    assert.ok(isPermutation(p, s * s), `size ${s}`);
    if (starts[s]) assert.deepEqual(Array.from(p.subarray(0, 6)), starts[s], `size ${s} start`);
    assert.equal(p[0], 0, `size ${s} starts top-left`);
    assert.equal(p[p.length - 1], s - 1, `size ${s} ends top-right`);
    for (let t = 1; t < p.length; t++) {
      const [r0, c0] = [Math.floor(p[t - 1] / s), p[t - 1] % s];
      const [r1, c1] = [Math.floor(p[t] / s), p[t] % s];
      assert.equal(Math.abs(r1 - r0) + Math.abs(c1 - c0), 1, `size ${s}: step ${t} is not a unit step`);
    }
  }
  // the first-order curve: h = 0..3 → (loc0, loc1) = (0,0), (0,1), (1,1), (1,0)
  assert.deepEqual([0, 1, 2, 3].map((h) => hilbertDecode2d(h, 1)), [[0, 0], [0, 1], [1, 1], [1, 0]]);
  // every direction of MambaAD is a unit-step path too
  for (const o of mambaadDirections()) {
    const p = o.permutation(16, 16);
    for (let t = 1; t < p.length; t++) {
      const d = Math.abs(Math.floor(p[t] / 16) - Math.floor(p[t - 1] / 16)) + Math.abs((p[t] % 16) - (p[t - 1] % 16));
      assert.equal(d, 1, `${o.name} step ${t}`);
    }
  }
});

// ---- the official tables ----------------------------------------------------------------------------

async function indexTables(file: string): Promise<Map<string, Int32Array>> {
  const { tensors } = await loadSafetensors(new URL(file, fixtures));
  const out = new Map<string, Int32Array>();
  for (const [name, t] of tensors) {
    if (!name.includes("index_flat")) continue;
    assert.equal(t.sourceDtype, "I64", name);
    assert.equal(t.dtype, "int32", name);
    out.set(name, Int32Array.from(t.data as Int32Array));
  }
  return out;
}

/** torch.transpose(x, 2, 3) of an h × w map stored row-major → a w × h map. */
function torchTranspose(x: Int32Array, h: number, w: number): Int32Array {
  const y = new Int32Array(x.length);
  for (let i = 0; i < w; i++) for (let j = 0; j < h; j++) y[i * h + j] = x[j * w + i];
  return y;
}

/** torch.flip along rows (dim 2) or columns (dim 3) of an h × w map. */
function torchFlip(x: Int32Array, h: number, w: number, dim: 2 | 3): Int32Array {
  const y = new Int32Array(x.length);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) y[i * w + j] = dim === 2 ? x[(h - 1 - i) * w + j] : x[i * w + (w - 1 - j)];
  }
  return y;
}

/**
 * torch.rot90(x, k, dims=(2, 3)) as PyTorch implements it: k = 1 is `flip(x, [3]).transpose(2, 3)`, k = 3 is
 * `flip(x, [2]).transpose(2, 3)`. Returns the map and its new shape.
 */
function torchRot90(x: Int32Array, h: number, w: number, k: 1 | 3): [Int32Array, number, number] {
  return [torchTranspose(torchFlip(x, h, w, k === 1 ? 3 : 2), h, w), w, h];
}

/** The official `encode`: `zeros.scatter_(2, index_flat_inv, x)`, i.e. `seq[inv[i]] = x[i]`. */
function officialEncode(x: Int32Array, indexFlatInv: Int32Array): Int32Array {
  const seq = new Int32Array(x.length);
  for (let i = 0; i < x.length; i++) seq[indexFlatInv[i]] = x[i];
  return seq;
}

/** The official `decode`: `zeros.scatter_(2, index_flat, seq)`, i.e. `out[flat[t]] = seq[t]`. */
function officialDecode(seq: Int32Array, indexFlat: Int32Array): Int32Array {
  const out = new Int32Array(seq.length);
  for (let t = 0; t < seq.length; t++) out[indexFlat[t]] = seq[t];
  return out;
}

const arange = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

Deno.test("MambaAD: the 8 directions equal the official SS2D encode/decode of mambaad_ss2d", opts, async () => {
  const tables = await indexTables("mambaad_ss2d.safetensors");
  assert.deepEqual([...tables.keys()].sort(), ["param.scans.index_flat", "param.scans.index_flat_inv"]);
  const flat = tables.get("param.scans.index_flat")!;
  const flatInv = tables.get("param.scans.index_flat_inv")!;
  const H = 8, W = 8, L = H * W;
  assert.equal(flat.length, L);
  // the official table is the Hilbert permutation itself, its inverse the argsort
  assert.deepEqual(Array.from(hilbert.permutation(H, W)), Array.from(flat));
  assert.deepEqual(Array.from(hilbert.inverse(H, W)), Array.from(flatInv));

  // forward_core: encode a map whose values are their own flat indices, so each sequence *is* the permutation
  const x = arange(L);
  const [r, rh, rw] = torchRot90(x, H, W, 1);
  const fwd = [
    officialEncode(x, flatInv),
    officialEncode(torchTranspose(x, H, W), flatInv),
    officialEncode(r, flatInv),
    officialEncode(torchTranspose(r, rh, rw), flatInv),
  ];
  const expected = [...fwd, ...fwd.map((s) => s.slice().reverse())];
  const dirs = mambaadDirections();
  assert.equal(dirs.length, 8);
  for (let k = 0; k < 8; k++) {
    assert.deepEqual(Array.from(dirs[k].permutation(H, W)), Array.from(expected[k]), `direction ${k} ${dirs[k].name}`);
  }
  // direction 3 is the Hilbert scan of x mirrored left-right (docs/paper.md §1.7)
  assert.deepEqual(Array.from(dirs[3].permutation(H, W)), Array.from(flipH(hilbert).permutation(H, W)));

  // merge: the official decode of a sequence holding its own positions gives the inverse permutation
  for (let k = 0; k < 8; k++) {
    let seq = arange(L);
    if (k >= 4) seq = seq.reverse(); // inv_y = flip(out_y[:, K/2:])
    let y = officialDecode(seq, flat);
    const j = k % 4;
    if (j === 1) y = torchTranspose(y, W, H); // .view(B, -1, W, H) then transpose
    if (j === 2) y = torchRot90(y, W, H, 3)[0];
    if (j === 3) y = torchRot90(torchTranspose(y, W, H), H, W, 3)[0];
    assert.deepEqual(Array.from(dirs[k].inverse(H, W)), Array.from(y), `inverse of direction ${k} ${dirs[k].name}`);
  }
});

Deno.test("Wave-MambaAD: the HFSS orders equal wave_d_ss2d's scans_h / scans_v / scans_d", opts, async () => {
  const tables = await indexTables("wave_d_ss2d.safetensors");
  const names = ["scans_h", "scans_v", "scans_d"];
  assert.deepEqual(
    [...tables.keys()].sort(),
    names.flatMap((n) => [`param.${n}.index_flat`, `param.${n}.index_flat_inv`]).sort(),
  );
  const H = 8, W = 8, L = H * W;
  const x = arange(L);
  const get = (n: string, inv: boolean) => tables.get(`param.${n}.index_flat${inv ? "_inv" : ""}`)!;
  // D_SS2D.forward_core: horizontal encodes x, vertical encodes transpose(x), diagonal encodes x
  const expected = [
    officialEncode(x, get("scans_h", true)),
    officialEncode(torchTranspose(x, H, W), get("scans_v", true)),
    officialEncode(x, get("scans_d", true)),
  ];
  const [hl, lh, hh] = hfssOrders();
  assert.deepEqual([hl.name, lh.name, hh.name], ["rowMajor", "columnMajor", "diagonal"]);
  for (const [i, o] of [hl, lh, hh].entries()) {
    assert.deepEqual(Array.from(o.permutation(H, W)), Array.from(expected[i]), `${names[i]} → ${o.name}`);
    const [fwd, bwd] = bidirectional(o);
    assert.deepEqual(Array.from(bwd.permutation(H, W)), Array.from(fwd.permutation(H, W)).reverse());
  }
  // the tables themselves: scans_h and scans_v are both the identity (the vertical scan comes from the transpose)
  assert.deepEqual(Array.from(get("scans_h", false)), Array.from(rowMajor.permutation(H, W)));
  assert.deepEqual(Array.from(get("scans_v", false)), Array.from(rowMajor.permutation(H, W)));
  assert.deepEqual(Array.from(get("scans_d", false)), Array.from(diagonal.permutation(H, W)));
  assert.deepEqual(Array.from(get("scans_d", true)), Array.from(diagonal.inverse(H, W)));
});

Deno.test("VMamba directions: row, column and their reverses", opts, () => {
  const d = vmambaDirections();
  assert.deepEqual(d.map((o) => o.name), ["rowMajor", "columnMajor", "reversed(rowMajor)", "reversed(columnMajor)"]);
  assert.deepEqual(Array.from(d[3].permutation(2, 3)), [5, 2, 4, 1, 3, 0]);
});

Deno.test("scan orders: indexSelect with cached index tensors round-trips on every device", opts, async () => {
  const devices: Device[] = await testDevices();
  clearScanOrderCache();
  for (const device of devices) {
    for (const { order, accepts } of allOrders()) {
      for (const [h, w] of [[2, 3], [5, 7], [8, 8]] as [number, number][]) {
        if (!accepts(h, w)) continue;
        const L = h * w, C = 3;
        const host = Float32Array.from({ length: C * L }, (_, i) => i * 0.5 - 7);
        const x = Tensor.fromHost(host, [C, L], "float32", device);
        const idx = order.indices(h, w, device);
        const inv = order.inverseIndices(h, w, device);
        assert.equal(idx.dtype, "int32");
        assert.deepEqual(idx.shape, [L]);
        assert.equal(order.indices(h, w, device), idx, "cached");
        const seq = indexSelect(x, 1, idx);
        const back = indexSelect(seq, 1, inv);
        const p = order.permutation(h, w);
        const seqHost = await seq.data();
        for (let c = 0; c < C; c++) {
          for (let t = 0; t < L; t++) assert.equal(seqHost[c * L + t], host[c * L + p[t]], `${order.name} ${device}`);
        }
        assert.deepEqual(Array.from(await back.data()), Array.from(host), `${order.name} ${h}x${w} on ${device}`);
        assert.deepEqual(Array.from(await idx.data()), Array.from(p));
        x.dispose();
        seq.dispose();
        back.dispose();
      }
    }
  }
  assert.ok(scanOrderCacheSize() > 0);
  const t = rowMajor.indices(4, 4, devices[0]);
  clearScanOrderCache();
  assert.equal(scanOrderCacheSize(), 0);
  assert.ok(t.disposed, "clearScanOrderCache disposes the cached tensors");
  const t2 = rowMajor.indices(4, 4, devices[0]);
  assert.ok(!t2.disposed && t2 !== t);
  clearScanOrderCache();
});

Deno.test("scan orders: a cached index tensor survives tidy scopes", opts, () => {
  clearScanOrderCache();
  let inner: Tensor | null = null;
  tidy(() => {
    inner = hilbert.indices(4, 4, "cpu"); // created inside the scope and not returned
    return 0;
  });
  assert.ok(inner !== null && !(inner as Tensor).disposed, "kept out of the tidy scope");
  assert.equal(hilbert.indices(4, 4, "cpu"), inner);
  assert.equal(scanOrderCacheSize(), 1);
  clearScanOrderCache();
});
