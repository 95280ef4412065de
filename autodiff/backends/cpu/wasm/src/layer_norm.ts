// AssemblyScript: layer normalisation over the middle axis of x viewed as (outer, size, inner), forward and
// backward, for tensors in the kernels' memory (the host's tensor heap). The same float64 arithmetic in the same
// order as the host's reference loops (autodiff/backends/cpu/layer_norm.ts), so the forward and dx are
// identical to them; a call covers outer indices [o0, o1) (rows of `size` when inner = 1), and the host spreads
// calls over threads. Absent operands (weight, bias, dx, the weight-gradient sums) have address 0.

@inline function f(p: usize, i: i32): f64 {
  return <f64>load<f32>(p + (<usize>i << 2));
}

@inline function put(p: usize, i: i32, v: f64): void {
  store<f32>(p + (<usize>i << 2), <f32>v);
}

@inline function d(p: usize, i: i32): f64 {
  return load<f64>(p + (<usize>i << 3));
}

@inline function setD(p: usize, i: i32, v: f64): void {
  store<f64>(p + (<usize>i << 3), v);
}

/** (x_a[i], x_b[i]) as float64 lanes. */
@inline function pair(a: usize, b: usize, i: i32): v128 {
  return f64x2.replace_lane(f64x2.splat(f(a, i)), 1, f(b, i));
}

/**
 * Rows o .. o+3 of the forward (inner = 1): the sums of rows (o, o+1) and (o+2, o+3) as the two lanes of two
 * float64 vectors, so each row's sums are still one chain in index order (the same results as the loop over one
 * row) while four chains overlap; the normalisation runs 2 elements a vector, the same float64 expression.
 */
@inline function forward4(
  px: usize, py: usize, w: usize, b: usize, mean: usize, rstd: usize, o: i32, size: i32, eps: f64,
): void {
  const rowBytes = <usize>size << 2;
  const p0 = px, p1 = px + rowBytes, p2 = px + 2 * rowBytes, p3 = px + 3 * rowBytes;
  let s01 = f64x2.splat(0), s23 = f64x2.splat(0);
  for (let i = 0; i < size; i++) {
    s01 = f64x2.add(s01, pair(p0, p1, i));
    s23 = f64x2.add(s23, pair(p2, p3, i));
  }
  const n = f64x2.splat(<f64>size);
  const m01 = f64x2.div(s01, n), m23 = f64x2.div(s23, n);
  let v01 = f64x2.splat(0), v23 = f64x2.splat(0);
  for (let i = 0; i < size; i++) {
    const d01 = f64x2.sub(pair(p0, p1, i), m01), d23 = f64x2.sub(pair(p2, p3, i), m23);
    v01 = f64x2.add(v01, f64x2.mul(d01, d01));
    v23 = f64x2.add(v23, f64x2.mul(d23, d23));
  }
  const e = f64x2.splat(eps), one = f64x2.splat(1);
  const r01 = f64x2.div(one, f64x2.sqrt(f64x2.add(f64x2.div(v01, n), e)));
  const r23 = f64x2.div(one, f64x2.sqrt(f64x2.add(f64x2.div(v23, n), e)));
  normalizeRow(p0, py, w, b, size, f64x2.extract_lane(m01, 0), f64x2.extract_lane(r01, 0), mean, rstd, o);
  normalizeRow(p1, py + rowBytes, w, b, size, f64x2.extract_lane(m01, 1), f64x2.extract_lane(r01, 1), mean, rstd, o + 1);
  normalizeRow(p2, py + 2 * rowBytes, w, b, size, f64x2.extract_lane(m23, 0), f64x2.extract_lane(r23, 0), mean, rstd, o + 2);
  normalizeRow(p3, py + 3 * rowBytes, w, b, size, f64x2.extract_lane(m23, 1), f64x2.extract_lane(r23, 1), mean, rstd, o + 3);
}

/** y = (x − m)·r·w + b over one row (w, b optional), 2 elements a float64 vector; writes the row's mean and rstd. */
@inline function normalizeRow(
  px: usize, py: usize, w: usize, b: usize, size: i32, m: f64, r: f64, mean: usize, rstd: usize, o: i32,
): void {
  put(mean, o, m);
  put(rstd, o, r);
  if (w && b) normalize(px, py, w, b, size, m, r, true, true);
  else if (w) normalize(px, py, w, b, size, m, r, true, false);
  else if (b) normalize(px, py, w, b, size, m, r, false, true);
  else normalize(px, py, w, b, size, m, r, false, false);
}

@inline function normalize(
  px: usize, py: usize, w: usize, b: usize, size: i32, m: f64, r: f64, hasW: bool, hasB: bool,
): void {
  const mv = f64x2.splat(m), rv = f64x2.splat(r);
  let i = 0;
  for (; i + 2 <= size; i += 2) {
    const at = <usize>i << 2;
    let v = f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(v128.load64_zero(px + at)), mv), rv);
    if (hasW) v = f64x2.mul(v, f64x2.promote_low_f32x4(v128.load64_zero(w + at)));
    if (hasB) v = f64x2.add(v, f64x2.promote_low_f32x4(v128.load64_zero(b + at)));
    v128.store64_lane(py + at, f32x4.demote_f64x2_zero(v), 0);
  }
  for (; i < size; i++) {
    let v = (f(px, i) - m) * r;
    if (hasW) v *= f(w, i);
    if (hasB) v += f(b, i);
    put(py, i, v);
  }
}

/**
 * y = (x − mean)·rstd·w + b; writes mean and rstd ((outer, inner), float32). eps is a float64 in two words.
 * scratch: 2·inner float64 (inner > 1).
 */
export function lnForward(
  x: usize, w: usize, b: usize, y: usize, mean: usize, rstd: usize,
  size: i32, inner: i32, epsLo: i32, epsHi: i32, o0: i32, o1: i32, scratch: usize,
): void {
  const eps = reinterpret<f64>((<u64>(<u32>epsHi) << 32) | <u64>(<u32>epsLo));
  if (inner === 1) {
    let o = o0;
    for (; o + 4 <= o1; o += 4) {
      const at = <usize>o * <usize>size << 2;
      forward4(x + at, y + at, w, b, mean, rstd, o, size, eps);
    }
    for (; o < o1; o++) {
      const px = x + (<usize>o * <usize>size << 2), py = y + (<usize>o * <usize>size << 2);
      let s: f64 = 0;
      for (let i = 0; i < size; i++) s += f(px, i);
      const m = s / <f64>size;
      let v: f64 = 0;
      for (let i = 0; i < size; i++) {
        const dv = f(px, i) - m;
        v += dv * dv;
      }
      const r = 1 / Math.sqrt(v / <f64>size + eps);
      put(mean, o, m);
      put(rstd, o, r);
      if (w && b) { for (let i = 0; i < size; i++) put(py, i, (f(px, i) - m) * r * f(w, i) + f(b, i)); }
      else if (w) { for (let i = 0; i < size; i++) put(py, i, (f(px, i) - m) * r * f(w, i)); }
      else if (b) { for (let i = 0; i < size; i++) put(py, i, (f(px, i) - m) * r + f(b, i)); }
      else { for (let i = 0; i < size; i++) put(py, i, (f(px, i) - m) * r); }
    }
    return;
  }
  const m = scratch, v = scratch + (<usize>inner << 3);
  for (let o = o0; o < o1; o++) {
    const base = x + (<usize>o * <usize>size * <usize>inner << 2), out = y + (<usize>o * <usize>size * <usize>inner << 2);
    memory.fill(scratch, 0, <usize>inner << 4);
    for (let s = 0; s < size; s++) {
      const row = base + (<usize>s * <usize>inner << 2);
      for (let i = 0; i < inner; i++) setD(m, i, d(m, i) + f(row, i));
    }
    for (let i = 0; i < inner; i++) setD(m, i, d(m, i) / <f64>size);
    for (let s = 0; s < size; s++) {
      const row = base + (<usize>s * <usize>inner << 2);
      for (let i = 0; i < inner; i++) {
        const dv = f(row, i) - d(m, i);
        setD(v, i, d(v, i) + dv * dv);
      }
    }
    for (let i = 0; i < inner; i++) {
      const r = 1 / Math.sqrt(d(v, i) / <f64>size + eps);
      setD(v, i, r);
      put(mean, o * inner + i, d(m, i));
      put(rstd, o * inner + i, r);
    }
    for (let s = 0; s < size; s++) {
      const row = base + (<usize>s * <usize>inner << 2), orow = out + (<usize>s * <usize>inner << 2);
      const ws: f64 = w ? f(w, s) : 1, bs: f64 = b ? f(b, s) : 0;
      for (let i = 0; i < inner; i++) put(orow, i, (f(row, i) - d(m, i)) * d(v, i) * ws + bs);
    }
  }
}

/**
 * Rows o .. o+3 of the backward (inner = 1) with every operand present (weight, dx, dw and db sums): the rows' sums
 * of g·w and g·w·x̂ as the lanes of two float64 vectors, one chain per row in index order as in the loop over one
 * row; dw and db add the 4 rows' terms in row order, and dx runs 2 elements a vector: the same results.
 */
@inline function backward4(
  pg: usize, px: usize, w: usize, mean: usize, rstd: usize, pd: usize, sw: usize, sb: usize, o: i32, size: i32,
): void {
  const rowBytes = <usize>size << 2;
  const m01 = f64x2.replace_lane(f64x2.splat(f(mean, o)), 1, f(mean, o + 1));
  const m23 = f64x2.replace_lane(f64x2.splat(f(mean, o + 2)), 1, f(mean, o + 3));
  const r01 = f64x2.replace_lane(f64x2.splat(f(rstd, o)), 1, f(rstd, o + 1));
  const r23 = f64x2.replace_lane(f64x2.splat(f(rstd, o + 2)), 1, f(rstd, o + 3));
  const g0 = pg, g1 = pg + rowBytes, g2 = pg + 2 * rowBytes, g3 = pg + 3 * rowBytes;
  const x0 = px, x1 = px + rowBytes, x2 = px + 2 * rowBytes, x3 = px + 3 * rowBytes;
  let sg01 = f64x2.splat(0), sg23 = f64x2.splat(0), sgx01 = f64x2.splat(0), sgx23 = f64x2.splat(0);
  for (let i = 0; i < size; i++) {
    const wi = f64x2.splat(f(w, i));
    const ga = pair(g0, g1, i), gb = pair(g2, g3, i);
    const xa = f64x2.mul(f64x2.sub(pair(x0, x1, i), m01), r01), xb = f64x2.mul(f64x2.sub(pair(x2, x3, i), m23), r23);
    const gwa = f64x2.mul(ga, wi), gwb = f64x2.mul(gb, wi);
    sg01 = f64x2.add(sg01, gwa);
    sg23 = f64x2.add(sg23, gwb);
    sgx01 = f64x2.add(sgx01, f64x2.mul(gwa, xa));
    sgx23 = f64x2.add(sgx23, f64x2.mul(gwb, xb));
    // dw += g·x̂, db += g, rows in order
    const gxa = f64x2.mul(ga, xa), gxb = f64x2.mul(gb, xb);
    setD(sw, i, d(sw, i) + f64x2.extract_lane(gxa, 0) + f64x2.extract_lane(gxa, 1) + f64x2.extract_lane(gxb, 0) + f64x2.extract_lane(gxb, 1));
    setD(sb, i, d(sb, i) + f64x2.extract_lane(ga, 0) + f64x2.extract_lane(ga, 1) + f64x2.extract_lane(gb, 0) + f64x2.extract_lane(gb, 1));
  }
  const n = f64x2.splat(<f64>size);
  sg01 = f64x2.div(sg01, n);
  sg23 = f64x2.div(sg23, n);
  sgx01 = f64x2.div(sgx01, n);
  sgx23 = f64x2.div(sgx23, n);
  dxRow(g0, x0, w, pd, size, f(mean, o), f(rstd, o), f64x2.extract_lane(sg01, 0), f64x2.extract_lane(sgx01, 0));
  dxRow(g1, x1, w, pd + rowBytes, size, f(mean, o + 1), f(rstd, o + 1), f64x2.extract_lane(sg01, 1), f64x2.extract_lane(sgx01, 1));
  dxRow(g2, x2, w, pd + 2 * rowBytes, size, f(mean, o + 2), f(rstd, o + 2), f64x2.extract_lane(sg23, 0), f64x2.extract_lane(sgx23, 0));
  dxRow(g3, x3, w, pd + 3 * rowBytes, size, f(mean, o + 3), f(rstd, o + 3), f64x2.extract_lane(sg23, 1), f64x2.extract_lane(sgx23, 1));
}

/** dx = r·(g·w − sg − x̂·sgx) over one row, 2 elements a float64 vector. */
@inline function dxRow(pg: usize, px: usize, w: usize, pd: usize, size: i32, m: f64, r: f64, sg: f64, sgx: f64): void {
  const mv = f64x2.splat(m), rv = f64x2.splat(r), sgv = f64x2.splat(sg), sgxv = f64x2.splat(sgx);
  let i = 0;
  for (; i + 2 <= size; i += 2) {
    const at = <usize>i << 2;
    const xh = f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(v128.load64_zero(px + at)), mv), rv);
    const gw = f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(pg + at)), f64x2.promote_low_f32x4(v128.load64_zero(w + at)));
    const v = f64x2.mul(rv, f64x2.sub(f64x2.sub(gw, sgv), f64x2.mul(xh, sgxv)));
    v128.store64_lane(pd + at, f32x4.demote_f64x2_zero(v), 0);
  }
  for (; i < size; i++) {
    const xh = (f(px, i) - m) * r;
    put(pd, i, r * (f(pg, i) * f(w, i) - sg - xh * sgx));
  }
}

/**
 * dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = gy·w, x̂ = (x − mean)·rstd, for outer indices [o0, o1); sw, sb
 * (size float64 each, zeroed here) get this call's share of dw = Σ gy·x̂ and db = Σ gy. scratch: 2·inner
 * float64 (inner > 1).
 */
export function lnBackward(
  gy: usize, x: usize, w: usize, mean: usize, rstd: usize, dx: usize, sw: usize, sb: usize,
  size: i32, inner: i32, o0: i32, o1: i32, scratch: usize,
): void {
  if (sw) memory.fill(sw, 0, <usize>size << 3);
  if (sb) memory.fill(sb, 0, <usize>size << 3);
  if (inner === 1) {
    let o = o0;
    if (w && dx && sw && sb) {
      for (; o + 4 <= o1; o += 4) {
        const at = <usize>o * <usize>size << 2;
        backward4(gy + at, x + at, w, mean, rstd, dx + at, sw, sb, o, size);
      }
    }
    for (; o < o1; o++) {
      const at = <usize>o * <usize>size << 2;
      const pg = gy + at, px = x + at, m = f(mean, o), r = f(rstd, o);
      let sg: f64 = 0, sgx: f64 = 0;
      for (let i = 0; i < size; i++) {
        const g = f(pg, i), xh = (f(px, i) - m) * r, gw = w ? g * f(w, i) : g;
        sg += gw;
        sgx += gw * xh;
        if (sw) setD(sw, i, d(sw, i) + g * xh);
        if (sb) setD(sb, i, d(sb, i) + g);
      }
      if (!dx) continue;
      sg /= <f64>size;
      sgx /= <f64>size;
      const pd = dx + at;
      for (let i = 0; i < size; i++) {
        const xh = (f(px, i) - m) * r;
        put(pd, i, r * ((w ? f(pg, i) * f(w, i) : f(pg, i)) - sg - xh * sgx));
      }
    }
    return;
  }
  const sg = scratch, sgx = scratch + (<usize>inner << 3);
  for (let o = o0; o < o1; o++) {
    const at = <usize>o * <usize>size * <usize>inner << 2, stat = o * inner;
    memory.fill(scratch, 0, <usize>inner << 4);
    for (let s = 0; s < size; s++) {
      const row = <usize>s * <usize>inner << 2, ws: f64 = w ? f(w, s) : 1;
      let accW: f64 = 0, accB: f64 = 0;
      for (let i = 0; i < inner; i++) {
        const g = f(gy + at + row, i), xh = (f(x + at + row, i) - f(mean, stat + i)) * f(rstd, stat + i);
        setD(sg, i, d(sg, i) + g * ws);
        setD(sgx, i, d(sgx, i) + g * ws * xh);
        accW += g * xh;
        accB += g;
      }
      if (sw) setD(sw, s, d(sw, s) + accW);
      if (sb) setD(sb, s, d(sb, s) + accB);
    }
    if (!dx) continue;
    for (let i = 0; i < inner; i++) {
      setD(sg, i, d(sg, i) / <f64>size);
      setD(sgx, i, d(sgx, i) / <f64>size);
    }
    for (let s = 0; s < size; s++) {
      const row = <usize>s * <usize>inner << 2, ws: f64 = w ? f(w, s) : 1;
      for (let i = 0; i < inner; i++) {
        const r = f(rstd, stat + i), xh = (f(x + at + row, i) - f(mean, stat + i)) * r;
        put(dx + at + row, i, r * (f(gy + at + row, i) * ws - d(sg, i) - xh * d(sgx, i)));
      }
    }
  }
}
