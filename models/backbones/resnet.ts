/**
 * ResNet-18/34/50 with torchvision's module tree and state-dict keys (`conv1.weight`, `bn1.running_mean`,
 * `layer1.0.conv1.weight`, `layer2.0.downsample.0.weight`, `fc.bias`, ...), so torchvision and timm
 * checkpoints load 1:1. The model builds only the stages up to the deepest feature a caller asks for (the
 * anomaly-detection encoder stops at layer3); {@linkcode loadResNetWeights} reads a `.pth` or
 * `.safetensors` file and ignores the keys of stages that were not built.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { add, avgPool2d, flatten, maxPool2d, relu } from "../../autodiff/ops/index.ts";
import { type Tensor, tidy } from "../../autodiff/tensor.ts";
import { Conv2d } from "../../nn/layers/conv.ts";
import { Linear } from "../../nn/layers/linear.ts";
import { BatchNorm2d } from "../../nn/layers/norm.ts";
import { Sequential } from "../../nn/layers/container.ts";
import { Module } from "../../nn/module.ts";
import { loadPthStateDict } from "../../nn/io/pth.ts";
import { loadSafetensors } from "../../nn/io/safetensors.ts";
import { toTensors } from "../../nn/io/common.ts";

/** The features a ResNet can return, in depth order. */
export type ResNetFeature = "stem" | "layer1" | "layer2" | "layer3" | "layer4" | "logits";

const ORDER: ResNetFeature[] = ["stem", "layer1", "layer2", "layer3", "layer4", "logits"];

/** Options shared by the constructors. */
export interface ResNetOptions {
  /** Features `forward` returns (default: all of stem..layer4 and logits). Stages past the deepest are not built. */
  features?: readonly ResNetFeature[];
  /** Classifier outputs (default 1000, as the ImageNet checkpoints). */
  numClasses?: number;
  /** Device of the parameters. */
  device?: Device;
}

/** torchvision `BasicBlock`: two 3×3 convolutions (expansion 1). */
export class BasicBlock extends Module {
  /** Output channels per input plane. */
  static readonly expansion = 1;
  /** 3×3, stride `stride`. */
  conv1: Conv2d;
  /** Batch norm after conv1. */
  bn1: BatchNorm2d;
  /** 3×3, stride 1. */
  conv2: Conv2d;
  /** Batch norm after conv2. */
  bn2: BatchNorm2d;
  /** 1×1 projection of the shortcut when the shape changes. */
  downsample: Sequential | null;

  /** A block from `inPlanes` to `planes` channels. */
  constructor(inPlanes: number, planes: number, stride: number, device?: Device) {
    super();
    this.conv1 = new Conv2d(inPlanes, planes, 3, { stride, padding: 1, bias: false, device });
    this.bn1 = new BatchNorm2d(planes, { device });
    this.conv2 = new Conv2d(planes, planes, 3, { padding: 1, bias: false, device });
    this.bn2 = new BatchNorm2d(planes, { device });
    this.downsample = shortcut(inPlanes, planes, stride, device);
  }

  /** relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)). */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const out = this.bn2.forward(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x)))));
      return relu(add(out, this.downsample ? this.downsample.forward(x) : x));
    });
  }
}

/** torchvision `Bottleneck` (ResNet v1.5: the stride sits on the 3×3 convolution; expansion 4). */
export class Bottleneck extends Module {
  /** Output channels per input plane. */
  static readonly expansion = 4;
  /** 1×1 reduction. */
  conv1: Conv2d;
  /** Batch norm after conv1. */
  bn1: BatchNorm2d;
  /** 3×3, stride `stride`. */
  conv2: Conv2d;
  /** Batch norm after conv2. */
  bn2: BatchNorm2d;
  /** 1×1 expansion to 4·planes. */
  conv3: Conv2d;
  /** Batch norm after conv3. */
  bn3: BatchNorm2d;
  /** 1×1 projection of the shortcut when the shape changes. */
  downsample: Sequential | null;

  /** A block from `inPlanes` to `4·planes` channels. */
  constructor(inPlanes: number, planes: number, stride: number, device?: Device) {
    super();
    this.conv1 = new Conv2d(inPlanes, planes, 1, { bias: false, device });
    this.bn1 = new BatchNorm2d(planes, { device });
    this.conv2 = new Conv2d(planes, planes, 3, { stride, padding: 1, bias: false, device });
    this.bn2 = new BatchNorm2d(planes, { device });
    this.conv3 = new Conv2d(planes, planes * 4, 1, { bias: false, device });
    this.bn3 = new BatchNorm2d(planes * 4, { device });
    this.downsample = shortcut(inPlanes, planes * 4, stride, device);
  }

  /** The three convolutions plus the shortcut, then relu. */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      let out = relu(this.bn1.forward(this.conv1.forward(x)));
      out = relu(this.bn2.forward(this.conv2.forward(out)));
      out = this.bn3.forward(this.conv3.forward(out));
      return relu(add(out, this.downsample ? this.downsample.forward(x) : x));
    });
  }
}

function shortcut(inPlanes: number, outPlanes: number, stride: number, device?: Device): Sequential | null {
  if (stride === 1 && inPlanes === outPlanes) return null;
  return new Sequential(
    new Conv2d(inPlanes, outPlanes, 1, { stride, bias: false, device }),
    new BatchNorm2d(outPlanes, { device }),
  );
}

type BlockClass = typeof BasicBlock | typeof Bottleneck;

/** The ResNet trunk with torchvision's layout. */
export class ResNet extends Module {
  /** 7×7 stride-2 stem convolution (3 → 64). */
  conv1: Conv2d;
  /** Stem batch norm. */
  bn1: BatchNorm2d;
  /** Stages 1..4 (null where not built). */
  layer1: Sequential | null = null;
  /** Stage 2. */
  layer2: Sequential | null = null;
  /** Stage 3. */
  layer3: Sequential | null = null;
  /** Stage 4. */
  layer4: Sequential | null = null;
  /** Classifier (only when logits are requested). */
  fc: Linear | null = null;
  /** The features `forward` returns. */
  readonly features: readonly ResNetFeature[];

  /** A ResNet with `blocks[i]` blocks of type `block` in stage i+1. */
  constructor(block: BlockClass, blocks: readonly [number, number, number, number], opts: ResNetOptions = {}) {
    super();
    const device = opts.device;
    this.features = opts.features ?? ORDER;
    for (const f of this.features) {
      if (!ORDER.includes(f)) throw new Error(`ResNet: unknown feature "${f}" (expected one of ${ORDER.join(", ")})`);
    }
    const deepest = Math.max(...this.features.map((f) => ORDER.indexOf(f)));
    this.conv1 = new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false, device });
    this.bn1 = new BatchNorm2d(64, { device });
    let inPlanes = 64;
    const stages: Sequential[] = [];
    [64, 128, 256, 512].forEach((planes, i) => {
      if (deepest < i + 1) return;
      const stage = new Sequential();
      for (let b = 0; b < blocks[i]; b++) {
        stage.append(new block(inPlanes, planes, b === 0 && i > 0 ? 2 : 1, device));
        inPlanes = planes * block.expansion;
      }
      stages.push(stage);
    });
    [this.layer1 = null, this.layer2 = null, this.layer3 = null, this.layer4 = null] = stages;
    if (deepest === ORDER.indexOf("logits")) {
      this.fc = new Linear(512 * block.expansion, opts.numClasses ?? 1000, { device });
    }
  }

  /**
   * Runs the trunk on normalised images (N, 3, H, W) and returns the requested features by name
   * (stem = after the max pool).
   */
  forward(x: Tensor): Partial<Record<ResNetFeature, Tensor>> {
    const out: Partial<Record<ResNetFeature, Tensor>> = {};
    const want = new Set(this.features);
    let h = maxPool2d(relu(this.bn1.forward(this.conv1.forward(x))), 3, { stride: 2, padding: 1 });
    if (want.has("stem")) out.stem = h;
    const stages = [this.layer1, this.layer2, this.layer3, this.layer4];
    for (let i = 0; i < 4; i++) {
      const stage = stages[i];
      if (!stage) break;
      h = stage.forward(h);
      const name = `layer${i + 1}` as ResNetFeature;
      if (want.has(name)) out[name] = h;
    }
    if (this.fc) out.logits = this.fc.forward(flatten(avgPool2dGlobal(h), 1));
    return out;
  }
}

function avgPool2dGlobal(x: Tensor): Tensor {
  return avgPool2d(x, [x.shape[2], x.shape[3]]);
}

/** ResNet-18 (BasicBlock, [2, 2, 2, 2]). */
export function resnet18(opts: ResNetOptions = {}): ResNet {
  return new ResNet(BasicBlock, [2, 2, 2, 2], opts);
}

/** ResNet-34 (BasicBlock, [3, 4, 6, 3]). */
export function resnet34(opts: ResNetOptions = {}): ResNet {
  return new ResNet(BasicBlock, [3, 4, 6, 3], opts);
}

/** ResNet-50 (Bottleneck, [3, 4, 6, 3]). */
export function resnet50(opts: ResNetOptions = {}): ResNet {
  return new ResNet(Bottleneck, [3, 4, 6, 3], opts);
}

/**
 * Loads torchvision-format weights from a `.pth` (torch.save of a state dict, or a checkpoint holding one)
 * or `.safetensors` file into `model`. Every key of the built model must be present with its shape; keys of
 * stages the model did not build (layer4, fc) are ignored, any other extra key is an error.
 */
export async function loadResNetWeights(model: ResNet, path: string): Promise<void> {
  const host = path.endsWith(".safetensors") ? (await loadSafetensors(path)).tensors : await loadPthStateDict(path);
  const device = model.conv1.weight.device;
  const own = new Set(model.stateDict().keys());
  const sd = toTensors(host, { device });
  const skipped: string[] = [];
  for (const key of [...sd.keys()]) {
    if (own.has(key)) continue;
    const stage = key.split(".")[0];
    if (
      (stage === "layer1" || stage === "layer2" || stage === "layer3" || stage === "layer4" || stage === "fc") &&
      model[stage] === null
    ) {
      sd.get(key)!.dispose();
      sd.delete(key);
      skipped.push(key);
    }
  }
  try {
    await model.loadStateDict(sd, { strict: true });
  } catch (e) {
    throw new Error(`loadResNetWeights(${path}): ${(e as Error).message}`);
  } finally {
    for (const t of sd.values()) t.dispose();
  }
}
