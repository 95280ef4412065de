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
    for (let o = o0; o < o1; o++) {
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
    for (let o = o0; o < o1; o++) {
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
