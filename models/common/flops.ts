/**
 * A multiply-accumulate counter equivalent to fvcore 0.1.5's default handles (1 FLOP = 1 MAC), as the
 * official parameter files count (`mambaad_params.json`, `wave_mambaad_params.json`: `flops.by_op`; docs/paper.md §0).
 *
 * fvcore traces the model and counts these aten ops; every other op (elementwise, reshapes, the selective scan
 * as an opaque PythonOp, activations) counts 0:
 * - `_convolution`: out_numel · (C_in / groups) · kh · kw (batch included);
 * - `linear`: out_numel · in_features; `matmul`: numel(a) · b.shape[-1];
 * - `einsum`: numpy's `einsum_path` "Optimized FLOP count" / 2, floored — numpy prints that count with 4
 *   significant digits and fvcore parses the printed string, so each einsum's count is rounded that way;
 * - `batch_norm`: in eval numel · (2 with affine, else 1); in training numel · (5 with affine, else 4);
 * - `layer_norm`, `group_norm`, `instance_norm`: numel · (5 with affine, else 4);
 * - `adaptive_avg_pool2d`: input numel.
 *
 * Since ES module exports cannot be patched, the counter instead wraps the `forward` of every module
 * instance of a known class (Conv2d, Linear, the norms) and the composite blocks whose official code calls
 * these ops functionally: SS2D / D_SS2D (the x_proj and dt_proj einsums, from the scan's input shape; D_SS2D
 * once per frequency band, as its official forward),
 * ChannelMamba (in_proj as `weight @ x` and dt_proj as `weight @ x.t()`, both aten::matmul) and ChannelFreqAdapt (the two adaptive
 * average pools per head). It runs one real forward pass, then restores the modules.
 *
 * @module
 */

import { numel } from "../../autodiff/shape.ts";
import type { Tensor } from "../../autodiff/tensor.ts";
import type { Module } from "../../nn/module.ts";
import { Conv2d } from "../../nn/layers/conv.ts";
import { Linear } from "../../nn/layers/linear.ts";
import { BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm, LayerNorm2d } from "../../nn/layers/norm.ts";
import { DSS2D, SelectiveScan2dBase } from "../../nn/ssm/ss2d.ts";
import { ChannelMamba } from "../../nn/ssm/channel_mamba.ts";
import { ChannelFreqAdapt } from "../wave_mambaad/lfss.ts";
import { FeedForward } from "../wave_mambaad/dse.ts";

/** The result of {@linkcode countFlops}. */
export interface FlopCount {
  /** Total MACs. */
  total: number;
  /** MACs per fvcore op name (`aten::_convolution`, `aten::linear`, ...). */
  byOp: Record<string, number>;
  /** MACs per top-level child module (first key segment; "" for ops of the root itself). */
  byTopLevelModule: Record<string, number>;
  /** MACs per module key at depth 2 (e.g. "net_s.layers_up.0"), for stage-level checks. */
  bySecondLevelModule: Record<string, number>;
}

/** fvcore's einsum count: floor(float(f"{2·P:.3e}") / 2) for a two-operand contraction over P index tuples. */
export function einsumMacs(p: number): number {
  return Math.floor(Number((2 * p).toExponential(3)) / 2);
}

type Counts = [op: string, macs: number][];

function isTensor(v: unknown): v is Tensor {
  return typeof v === "object" && v !== null && Array.isArray((v as Tensor).shape) && "dtype" in (v as object);
}

/** The fvcore-equivalent count of one call of a leaf module of a known class, or null for other modules. */
function leafCounts(m: Module, args: unknown[], out: unknown, asMatmul: Set<Module>): Counts | null {
  const x = args[0];
  if (!isTensor(x)) return null;
  if (m instanceof Conv2d) {
    if (!isTensor(out)) return null;
    const [kh, kw] = m.kernelSize;
    return [["aten::_convolution", numel(out.shape) * (m.inChannels / m.groups) * kh * kw]];
  }
  if (m instanceof Linear) {
    if (!isTensor(out)) return null;
    return [[asMatmul.has(m) ? "aten::matmul" : "aten::linear", numel(out.shape) * m.inFeatures]];
  }
  if (m instanceof BatchNorm2d) {
    const affine = m.weight !== null;
    const useBatchStats = m.training || m.running_mean === null;
    return [["aten::batch_norm", numel(x.shape) * (useBatchStats ? (affine ? 5 : 4) : (affine ? 2 : 1))]];
  }
  if (m instanceof InstanceNorm2d) return [["aten::instance_norm", numel(x.shape) * (m.weight !== null ? 5 : 4)]];
  if (m instanceof LayerNorm || m instanceof LayerNorm2d) {
    return [["aten::layer_norm", numel(x.shape) * ((m as LayerNorm).weight ? 5 : 4)]];
  }
  if (m instanceof GroupNorm) return [["aten::group_norm", numel(x.shape) * ((m as GroupNorm).weight ? 5 : 4)]];
  return null;
}

/** The extra (functional) ops of composite blocks, counted on top of their children's modules. */
function compositeCounts(m: Module, args: unknown[]): Counts | null {
  const x = args[0];
  if (!isTensor(x)) return null;
  if (m instanceof ChannelMamba) {
    // u (B, h, 1, C′): a sequence of L = C′ tokens of width h; dt = dt_proj.weight (h, R) @ dt_low.t() per branch
    const [b, h, , l] = x.shape;
    return [["aten::matmul", 2 * b * l * m.dtRank * h]];
  }
  if (m instanceof FeedForward) {
    // project_in runs functionally (its weight carries the channel shuffle): the official 1×1 convolution
    const [b, , h, w] = x.shape;
    return [["aten::_convolution", b * 2 * m.hidden * h * w * m.dim]];
  }
  if (m instanceof SelectiveScan2dBase) {
    // in_proj runs functionally (as its two halves, see SS2D.project): the official linear over (B, H, W, C)
    return [["aten::linear", (numel(x.shape) / x.shape[x.ndim - 1]) * m.in_proj.outFeatures * m.in_proj.inFeatures]];
  }
  if (m instanceof ChannelFreqAdapt) {
    // per head: adaptive_avg_pool2d to (h, 1) of x, then to (1, w) of f; both inputs are (B, C′, h, w)
    return [["aten::adaptive_avg_pool2d", 2 * numel(x.shape)]];
  }
  return null;
}

/**
 * Counts the MACs of `run()` (one forward pass of `model`, e.g. `() => model.forward(images)`) the way fvcore
 * does (see the module doc). The modules are restored afterwards, even when `run` throws.
 */
export function countFlops(model: Module, run: () => unknown): FlopCount {
  const byOp: Record<string, number> = {};
  const byTop: Record<string, number> = {};
  const bySecond: Record<string, number> = {};
  const restore: (() => void)[] = [];
  const add = (key: string, counts: Counts): void => {
    const parts = key.split(".");
    const top = parts[0] ?? "";
    const second = parts.slice(0, 3).join(".");
    for (const [op, macs] of counts) {
      if (macs === 0) continue;
      byOp[op] = (byOp[op] ?? 0) + macs;
      byTop[top] = (byTop[top] ?? 0) + macs;
      bySecond[second] = (bySecond[second] ?? 0) + macs;
    }
  };
  const modules: [string, Module][] = [["", model], ...model.namedModules().filter(([k]) => k !== "")];
  const seen = new Set<Module>();
  // the official ChannelMamba (mamba_simple style) computes in_proj as `weight @ x`: an aten::matmul
  const asMatmul = new Set<Module>();
  for (const [, m] of modules) if (m instanceof ChannelMamba) asMatmul.add(m.in_proj);
  try {
    for (const [key, m] of modules) {
      if (seen.has(m)) continue;
      seen.add(m);
      const own = Object.prototype.hasOwnProperty.call(m, "forward");
      const orig = (m as unknown as { forward: (...a: unknown[]) => unknown }).forward;
      Object.defineProperty(m, "forward", {
        configurable: true,
        writable: true,
        value: (...args: unknown[]) => {
          const out = orig.apply(m, args);
          const c = leafCounts(m, args, out, asMatmul) ?? compositeCounts(m, args);
          if (c) add(key, c);
          return out;
        },
      });
      if (m instanceof SelectiveScan2dBase) {
        // scan(xs (B, K, D, L)): x_dbl = einsum("b k d l, k c d -> b k c l"), dts = einsum("b k r l, k d r -> b k d l")
        const s = m as unknown as { scan: (xs: Tensor) => Tensor; x_proj_weight: Tensor; dtRank: number };
        const ownScan = Object.prototype.hasOwnProperty.call(m, "scan");
        const origScan = s.scan;
        Object.defineProperty(m, "scan", {
          configurable: true,
          writable: true,
          value: (xs: Tensor) => {
            const [b, k, d, l] = xs.shape;
            const c = s.x_proj_weight.shape[1];
            // the official D_SS2D runs forward_core once per band (HL, LH, HH: a third of the batch each), so
            // its einsums are counted (and rounded) per band
            const calls = m instanceof DSS2D && b % 3 === 0 ? 3 : 1;
            const bb = b / calls;
            for (let i = 0; i < calls; i++) {
              add(key, [
                ["aten::einsum", einsumMacs(bb * k * c * d * l)],
                ["aten::einsum", einsumMacs(bb * k * d * s.dtRank * l)],
              ]);
            }
            return origScan.call(m, xs);
          },
        });
        restore.push(() => {
          if (ownScan) Object.defineProperty(m, "scan", { configurable: true, writable: true, value: origScan });
          else delete (m as unknown as Record<string, unknown>).scan;
        });
      }
      restore.push(() => {
        if (own) Object.defineProperty(m, "forward", { configurable: true, writable: true, value: orig });
        else delete (m as unknown as Record<string, unknown>).forward;
      });
    }
    run();
  } finally {
    for (const r of restore.reverse()) r();
  }
  const total = Object.values(byOp).reduce((a, b) => a + b, 0);
  return { total, byOp, byTopLevelModule: byTop, bySecondLevelModule: bySecond };
}
