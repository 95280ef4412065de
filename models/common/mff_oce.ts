/**
 * MFF_OCE, the bottleneck shared by MambaAD and Wave-MambaAD between the frozen encoder and the decoder:
 * a half-FPN multi-scale feature fusion (MFF) of the encoder features f1, f2, f3 followed by RD4AD's
 * one-class embedding (OCE), three timm `Bottleneck`s (planes 128, expansion 4). The module tree and the
 * state-dict keys are the official ones (`conv1`, `bn1`, `conv21`, `bn21`, ..., `bn_layer.0.downsample.0.weight`),
 * so the official checkpoints load 1:1.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { add, relu, silu } from "../../autodiff/ops/index.ts";
import { type Tensor, tidy } from "../../autodiff/tensor.ts";
import { Conv2d } from "../../nn/layers/conv.ts";
import { Sequential } from "../../nn/layers/container.ts";
import { BatchNorm2d, InstanceNorm2d } from "../../nn/layers/norm.ts";
import { Module } from "../../nn/module.ts";
import { kaimingNormal } from "../../nn/init.ts";

/**
 * The normalisation layer: `"batch"` = BatchNorm2d (MambaAD, docs/paper.md §1.2), `"instance"` =
 * InstanceNorm2d(affine=False, no running statistics) (Wave-MambaAD, docs/paper.md §3.1).
 */
export type MFFNorm = "batch" | "instance";

/** The MFF-level activation: ReLU (MambaAD) or SiLU (Wave-MambaAD). The Bottlenecks always use ReLU. */
export type MFFAct = "relu" | "silu";

/** Options of {@linkcode MFFOCE}. */
export interface MFFOCEOptions {
  /** MFFNormLayer layer everywhere, the Bottlenecks' included (default "batch"). */
  norm?: MFFNorm;
  /** Activation of the fusion part (default "relu"); the Bottlenecks keep ReLU either way. */
  act?: MFFAct;
  /** Device of the parameters and buffers. */
  device?: Device;
}

/** The MambaAD configuration (docs/paper.md §1.2): BatchNorm2d, ReLU. */
export const MAMBAAD_MFF_OCE: Readonly<{ norm: MFFNorm; act: MFFAct }> = { norm: "batch", act: "relu" };

/** The Wave-MambaAD configuration (docs/paper.md §3.1): InstanceNorm2d without affine everywhere, SiLU at the MFF level. */
export const WAVE_MAMBAAD_MFF_OCE: Readonly<{ norm: MFFNorm; act: MFFAct }> = { norm: "instance", act: "silu" };

/** The normalisation layer of an MFF_OCE: BatchNorm2d (MambaAD) or affine-free InstanceNorm2d (Wave-MambaAD). */
export type MFFNormLayer = BatchNorm2d | InstanceNorm2d;

function makeNorm(kind: MFFNorm, channels: number, device?: Device): MFFNormLayer {
  if (kind === "batch") return new BatchNorm2d(channels, { device });
  if (kind === "instance") return new InstanceNorm2d(channels, { device });
  throw new Error(`MFFOCE: unknown norm "${kind}" (expected "batch" or "instance")`);
}

/**
 * timm's `Bottleneck` as MFF_OCE builds it (docs/paper.md §1.2 step 5): 1×1 (in → planes) – norm – ReLU – 3×3
 * (planes → planes, the stride sits here) – norm – ReLU – 1×1 (planes → 4·planes) – norm, plus the shortcut
 * (identity, or `downsample` = 1×1 strided conv + norm), then ReLU. Keys `conv1..3`, `bn1..3`,
 * `downsample.0/1` as timm's.
 */
export class OCEBottleneck extends Module {
  /** Output channels per plane. */
  static readonly expansion = 4;
  /** 1×1 reduction, no bias. */
  conv1: Conv2d;
  /** MFFNormLayer after conv1. */
  bn1: MFFNormLayer;
  /** 3×3, stride `stride`, no bias. */
  conv2: Conv2d;
  /** MFFNormLayer after conv2. */
  bn2: MFFNormLayer;
  /** 1×1 expansion to 4·planes, no bias. */
  conv3: Conv2d;
  /** MFFNormLayer after conv3. */
  bn3: MFFNormLayer;
  /** Shortcut projection (1×1 strided conv + norm) when the shape changes, else null. */
  downsample: Sequential | null;

  /** A Bottleneck from `inPlanes` to `4·planes` channels; `downsample` adds the projection shortcut. */
  constructor(inPlanes: number, planes: number, stride: number, downsample: boolean, norm: MFFNorm, device?: Device) {
    super();
    const out = planes * OCEBottleneck.expansion;
    this.conv1 = new Conv2d(inPlanes, planes, 1, { bias: false, device });
    this.bn1 = makeNorm(norm, planes, device);
    this.conv2 = new Conv2d(planes, planes, 3, { stride, padding: 1, bias: false, device });
    this.bn2 = makeNorm(norm, planes, device);
    this.conv3 = new Conv2d(planes, out, 1, { bias: false, device });
    this.bn3 = makeNorm(norm, out, device);
    this.downsample = downsample
      ? new Sequential(new Conv2d(inPlanes, out, 1, { stride, bias: false, device }), makeNorm(norm, out, device))
      : null;
  }

  /** relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x)). */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = relu(this.bn1.forward(this.conv1.forward(x)));
      h = relu(this.bn2.forward(this.conv2.forward(h)));
      h = this.bn3.forward(this.conv3.forward(h));
      return relu(add(h, this.downsample ? this.downsample.forward(x) : x));
    });
  }
}

/**
 * MFF_OCE(Bottleneck, 3) of MambaAD and Wave-MambaAD (docs/paper.md §1.2; Wave-MambaAD's changes in §3.1).
 *
 * With encoder features f1 (B, 64, H, W), f2 (B, 128, H/2, W/2), f3 (B, 256, H/4, W/4) and σ the MFF-level
 * activation (ReLU or SiLU):
 *
 * 1. fpn0 = σ(bn1(conv1(f1))), conv1 3×3 s2 p1 64→128, no bias;
 * 2. fpn1 = σ(bn21(conv21(f2))) + fpn0, conv21 1×1 128→128 with bias;
 * 3. sv = σ(bn2(conv2(fpn1))) + σ(bn31(conv31(f3))), conv2 3×3 s2 p1 128→256 no bias, conv31 1×1 256→256 with bias;
 * 4. sv = σ(bnf(convf(sv))), convf 1×1 256→256 with bias;
 * 5. y = bn_layer(sv): three Bottlenecks 256→512 (the first with stride 2 and a projection shortcut), 512→512, 512→512.
 *
 * The output is (B, 512, H/8, W/8). With `norm: "instance"` the norms are InstanceNorm2d(affine=False) and have
 * no parameters or buffers (1,450,624 parameters instead of 1,458,304); their statistics are per sample, so
 * train and eval agree. With `norm: "batch"`, eval mode uses the running statistics.
 */
export class MFFOCE extends Module {
  /** 3×3 stride-2 conv on f1 (64 → 128), no bias. */
  conv1: Conv2d;
  /** MFFNormLayer after conv1. */
  bn1: MFFNormLayer;
  /** 3×3 stride-2 conv on fpn1 (128 → 256), no bias. */
  conv2: Conv2d;
  /** MFFNormLayer after conv2. */
  bn2: MFFNormLayer;
  /** 1×1 conv on f2 (128 → 128), with bias. */
  conv21: Conv2d;
  /** MFFNormLayer after conv21. */
  bn21: MFFNormLayer;
  /** 1×1 conv on f3 (256 → 256), with bias. */
  conv31: Conv2d;
  /** MFFNormLayer after conv31. */
  bn31: MFFNormLayer;
  /** 1×1 fusion conv (256 → 256), with bias. */
  convf: Conv2d;
  /** MFFNormLayer after convf. */
  bnf: MFFNormLayer;
  /** The one-class embedding: three Bottlenecks, 256 → 512 at half the resolution. */
  bn_layer: Sequential;
  /** The norm kind. */
  readonly norm: MFFNorm;
  /** The MFF-level activation. */
  readonly act: MFFAct;

  /**
   * Builds the block and initialises it as the official constructor (docs/paper.md §1.2, "Init"): every Conv2d
   * weight, the Bottlenecks' included, kaiming_normal(mode=fan_out, nonlinearity=relu); conv biases keep
   * PyTorch's default U(±1/√fan_in); BatchNorm weight 1, bias 0.
   */
  constructor(opts: MFFOCEOptions = {}) {
    super();
    const norm = opts.norm ?? "batch", act = opts.act ?? "relu", device = opts.device;
    if (act !== "relu" && act !== "silu") throw new Error(`MFFOCE: unknown act "${act}" (expected "relu" or "silu")`);
    this.norm = norm;
    this.act = act;
    this.conv1 = new Conv2d(64, 128, 3, { stride: 2, padding: 1, bias: false, device });
    this.bn1 = makeNorm(norm, 128, device);
    this.conv2 = new Conv2d(128, 256, 3, { stride: 2, padding: 1, bias: false, device });
    this.bn2 = makeNorm(norm, 256, device);
    this.conv21 = new Conv2d(128, 128, 1, { device });
    this.bn21 = makeNorm(norm, 128, device);
    this.conv31 = new Conv2d(256, 256, 1, { device });
    this.bn31 = makeNorm(norm, 256, device);
    this.convf = new Conv2d(256, 256, 1, { device });
    this.bnf = makeNorm(norm, 256, device);
    // the official _make_layer with inplanes 256: three timm Bottlenecks of planes 128 (out 4·128 = 512), the
    // first strided with a projection shortcut (keys bn_layer.0.downsample.{0,1}.*)
    this.bn_layer = new Sequential(
      new OCEBottleneck(256, 128, 2, true, norm, device),
      new OCEBottleneck(512, 128, 1, false, norm, device),
      new OCEBottleneck(512, 128, 1, false, norm, device),
    );
    for (const m of this.modules()) {
      if (m instanceof Conv2d) kaimingNormal(m.weight, { mode: "fanOut", nonlinearity: "relu" });
    }
  }

  #act(x: Tensor): Tensor {
    return this.act === "silu" ? silu(x) : relu(x);
  }

  /** Fuses f1 (B, 64, H, W), f2 (B, 128, H/2, W/2), f3 (B, 256, H/4, W/4) into (B, 512, H/8, W/8). */
  forward(f1: Tensor, f2: Tensor, f3: Tensor): Tensor {
    return tidy(() => {
      const fpn0 = this.#act(this.bn1.forward(this.conv1.forward(f1)));
      const fpn1 = add(this.#act(this.bn21.forward(this.conv21.forward(f2))), fpn0);
      let sv = add(
        this.#act(this.bn2.forward(this.conv2.forward(fpn1))),
        this.#act(this.bn31.forward(this.conv31.forward(f3))),
      );
      sv = this.#act(this.bnf.forward(this.convf.forward(sv)));
      return this.bn_layer.forward(sv);
    });
  }
}
