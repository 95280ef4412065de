#!/usr/bin/python3
"""Generates the golden-value nn fixtures, tests/fixtures/nn.json, with PyTorch (1.13, float32, CPU).

Run from the repository root:  /usr/bin/python3 tools/gen_nn_fixtures.py
The output is deterministic (torch.manual_seed(0); single-threaded torch).

File format (JSON)::

    {"version": 1, "generator": "tools/gen_nn_fixtures.py", "torch": "<version>", "cases": [Case, ...]}

    Layer case = {
      "name":  "Conv2d/3x3_pad1",            unique
      "kind":  "layer",
      "layer": "Conv2d",                     class exported by nn/index.ts
      "args":  [3, 4, 3],                    positional constructor arguments (same in torch and TypeScript)
      "opts":  {"padding": 1},               TypeScript option object (camelCase); torch gets the snake_case kwargs
      "train": true | false,                 module mode for the forward
      "tol":   "elementwise" | "reduction",  forward tolerance class (see tests/nn_modules_test.ts)
      "state": {key: Tensor},                the module's state dict (parameters perturbed away from their
                                             defaults, running statistics random); load it with loadStateDict
      "input": Tensor, "output": Tensor,
      "upstream": Values,                    R, with the output's shape
      "gradInput": Values,                   d sum(out * R) / d input
      "gradParams": {key: Values},           d sum(out * R) / d parameter, for every parameter
      "stateAfter": {key: Tensor}            every buffer after the forward (running statistics in train mode)
    }
    Loss case = {
      "name", "kind": "loss", "fn": "mseLoss" (export of nn/index.ts), "tol",
      "inputs": [Tensor + {"requiresGrad": bool}, ...],  tensor arguments, in order
      "args":  [...],                        further positional arguments after the tensors (may be empty)
      "output": Tensor, "upstream": Values, "grads": [Values | null, ...]   per input
    }
    Tensor = {"shape": [...], "dtype": "float32" | "int32", "values": Values}
    Values: float32 data is standard base64 of the little-endian float32 bytes, row-major; int32 data is a
            JSON array of integers (int64 tensors such as num_batches_tracked are written as int32).
"""

import base64
import json
import os
import re
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_num_threads(1)
warnings.filterwarnings("ignore", message="Using padding='same'")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "nn.json")


class LayerNorm2d(nn.LayerNorm):
    """VMamba's channels-first LayerNorm: permute to channels-last, layer_norm over C, permute back."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


TORCH_LAYERS = {
    "Linear": nn.Linear, "Conv2d": nn.Conv2d, "BatchNorm2d": nn.BatchNorm2d, "InstanceNorm2d": nn.InstanceNorm2d,
    "LayerNorm": nn.LayerNorm, "LayerNorm2d": LayerNorm2d, "GroupNorm": nn.GroupNorm, "PixelShuffle": nn.PixelShuffle,
    "PixelUnshuffle": nn.PixelUnshuffle, "ReLU": nn.ReLU, "SiLU": nn.SiLU, "GELU": nn.GELU, "Sigmoid": nn.Sigmoid,
    "Tanh": nn.Tanh,
}


def snake(k):
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), k)


def b64(t):
    a = t.detach().to(torch.float32).contiguous().numpy().astype("<f4")
    return base64.b64encode(a.tobytes()).decode("ascii")


def enc(t):
    if t.dtype in (torch.int64, torch.int32):
        return {"shape": list(t.shape), "dtype": "int32", "values": [int(v) for v in t.reshape(-1).tolist()]}
    return {"shape": list(t.shape), "dtype": "float32", "values": b64(t)}


def perturb(module):
    """Moves parameters and running statistics away from their defaults so that every term is exercised."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("weight") and p.dim() == 1:
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.3 * torch.randn_like(p))
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.2 * torch.randn_like(b))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand_like(b))
            elif name.endswith("num_batches_tracked"):
                b.fill_(3)


def layer_case(name, layer, args, opts, input_shape, train=False, tol="reduction"):
    module = TORCH_LAYERS[layer](*args, **{snake(k): v for k, v in opts.items()})
    perturb(module)
    module.train(train)
    state = {k: enc(v) for k, v in module.state_dict().items()}
    x = torch.randn(*input_shape, requires_grad=True)
    y = module(x)
    r = torch.randn_like(y)
    (y * r).sum().backward()
    return {
        "name": name, "kind": "layer", "layer": layer, "args": args, "opts": opts, "train": train, "tol": tol,
        "state": state, "input": enc(x), "output": enc(y), "upstream": b64(r), "gradInput": b64(x.grad),
        "gradParams": {k: b64(p.grad) for k, p in module.named_parameters()},
        "stateAfter": {k: enc(b) for k, b in module.named_buffers()},
    }


def loss_case(name, fn, inputs, args=(), opts=None, tol="reduction"):
    """inputs: list of (tensor, requires_grad)."""
    opts = opts or {}
    leaves = [t.clone().requires_grad_(rg) for t, rg in inputs]
    kw = {snake(k): v for k, v in opts.items()}
    if fn == "mseLoss":
        y = F.mse_loss(*leaves, *args, **kw)
    elif fn == "l1Loss":
        y = F.l1_loss(*leaves, *args, **kw)
    elif fn == "cosineSimilarity":
        y = F.cosine_similarity(*leaves, *args)
    elif fn == "cosineDistance":
        y = 1 - F.cosine_similarity(*leaves, *args)
    elif fn == "crossEntropy":
        logits, target = leaves
        y = F.cross_entropy(logits, target.long() if target.dtype == torch.int32 else target, *args, **kw)
    else:
        raise ValueError(fn)
    r = torch.randn_like(y)
    (y * r).sum().backward()
    specs = []
    for t, (_, rg) in zip(leaves, inputs):
        s = enc(t)
        s["requiresGrad"] = rg
        specs.append(s)
    return {
        "name": name, "kind": "loss", "fn": fn, "args": list(args), "opts": opts, "tol": tol, "inputs": specs,
        "output": enc(y), "upstream": b64(r), "grads": [b64(t.grad) if rg else None for t, (_, rg) in zip(leaves, inputs)],
    }


def cases():
    out = []
    L = layer_case
    # Linear
    out.append(L("Linear/2d", "Linear", [5, 4], {}, [3, 5]))
    out.append(L("Linear/3d_no_bias", "Linear", [6, 3], {"bias": False}, [2, 4, 6]))
    # Conv2d variants
    out.append(L("Conv2d/3x3_pad1", "Conv2d", [3, 4, 3], {"padding": 1}, [2, 3, 6, 6]))
    out.append(L("Conv2d/3x3_stride2_no_bias", "Conv2d", [3, 5, 3], {"stride": 2, "padding": 1, "bias": False},
                 [2, 3, 7, 7]))
    out.append(L("Conv2d/1x1", "Conv2d", [4, 6, 1], {}, [2, 4, 5, 5]))
    out.append(L("Conv2d/same_dilation2", "Conv2d", [2, 3, 3], {"padding": "same", "dilation": 2}, [1, 2, 8, 8]))
    out.append(L("Conv2d/same_even_kernel", "Conv2d", [2, 3, 4], {"padding": "same"}, [1, 2, 6, 6]))
    out.append(L("Conv2d/groups2_rect", "Conv2d", [4, 6, [3, 5]], {"padding": [1, 2], "groups": 2}, [2, 4, 6, 7]))
    out.append(L("Conv2d/depthwise", "Conv2d", [4, 4, 3], {"padding": 1, "groups": 4}, [2, 4, 5, 5]))
    out.append(L("Conv2d/7x7_stride2_pad3", "Conv2d", [3, 4, 7], {"stride": 2, "padding": 3, "bias": False},
                 [1, 3, 12, 12]))
    # norms
    out.append(L("BatchNorm2d/train", "BatchNorm2d", [4], {}, [3, 4, 5, 5], train=True))
    out.append(L("BatchNorm2d/eval", "BatchNorm2d", [4], {}, [3, 4, 5, 5], train=False))
    out.append(L("BatchNorm2d/train_momentum_no_affine", "BatchNorm2d", [3], {"momentum": 0.3, "affine": False},
                 [2, 3, 4, 4], train=True))
    out.append(L("BatchNorm2d/no_running_stats_eval", "BatchNorm2d", [3], {"trackRunningStats": False},
                 [2, 3, 4, 4], train=False))
    out.append(L("InstanceNorm2d/default", "InstanceNorm2d", [4], {}, [2, 4, 5, 5], train=True))
    out.append(L("InstanceNorm2d/affine", "InstanceNorm2d", [4], {"affine": True}, [2, 4, 5, 5], train=True))
    out.append(L("InstanceNorm2d/running_stats_train", "InstanceNorm2d", [3], {"affine": True, "trackRunningStats": True},
                 [2, 3, 4, 4], train=True))
    out.append(L("InstanceNorm2d/running_stats_eval", "InstanceNorm2d", [3], {"trackRunningStats": True},
                 [2, 3, 4, 4], train=False))
    out.append(L("LayerNorm/last_dim", "LayerNorm", [8], {}, [2, 3, 8]))
    out.append(L("LayerNorm/last_two_dims_eps", "LayerNorm", [[3, 4]], {"eps": 1e-6}, [2, 3, 4]))
    out.append(L("LayerNorm/no_affine", "LayerNorm", [6], {"elementwiseAffine": False}, [4, 6]))
    out.append(L("LayerNorm2d/default", "LayerNorm2d", [5], {}, [2, 5, 3, 4]))
    out.append(L("GroupNorm/4d", "GroupNorm", [2, 6], {}, [2, 6, 3, 3]))
    out.append(L("GroupNorm/3d_no_affine", "GroupNorm", [3, 6], {"affine": False, "eps": 1e-3}, [2, 6, 5]))
    # shape and activations
    out.append(L("PixelShuffle/r2", "PixelShuffle", [2], {}, [2, 8, 3, 3], tol="elementwise"))
    out.append(L("PixelUnshuffle/r2", "PixelUnshuffle", [2], {}, [2, 2, 4, 6], tol="elementwise"))
    for act, opts in [("ReLU", {}), ("SiLU", {}), ("GELU", {}), ("GELU", {"approximate": "tanh"}), ("Sigmoid", {}),
                      ("Tanh", {})]:
        tag = act + ("/tanh" if opts else "/default")
        out.append(L(tag, act, [], opts, [3, 4, 5], tol="elementwise"))
    # losses
    a, b = torch.randn(4, 6), torch.randn(4, 6)
    for red in ["mean", "sum", "none"]:
        out.append(loss_case(f"mseLoss/{red}", "mseLoss", [(a, True), (b, True)], opts={"reduction": red}))
        out.append(loss_case(f"l1Loss/{red}", "l1Loss", [(a, True), (b, False)], opts={"reduction": red}))
    f1, f2 = torch.randn(2, 8, 3, 3), torch.randn(2, 8, 3, 3)
    out.append(loss_case("cosineSimilarity/dim1_maps", "cosineSimilarity", [(f1, True), (f2, True)], args=[1]))
    out.append(loss_case("cosineSimilarity/last_dim_broadcast", "cosineSimilarity",
                         [(torch.randn(3, 5), True), (torch.randn(1, 5), True)], args=[-1]))
    tiny = torch.tensor([[1e-9, 0.0], [3.0, 4.0]])
    out.append(loss_case("cosineSimilarity/tiny_norm_clamped", "cosineSimilarity",
                         [(tiny, True), (torch.tensor([[1e-9, 0.0], [1.0, -2.0]]), True)], args=[1, 1e-8]))
    out.append(loss_case("cosineDistance/dim1", "cosineDistance", [(f1, True), (f2, True)], args=[1]))
    logits = torch.randn(5, 4)
    target = torch.tensor([0, 3, 1, 2, 3], dtype=torch.int32)
    for red in ["mean", "sum", "none"]:
        out.append(loss_case(f"crossEntropy/{red}", "crossEntropy", [(logits, True), (target, False)],
                             opts={"reduction": red}))
    out.append(loss_case("crossEntropy/label_smoothing", "crossEntropy", [(logits, True), (target, False)],
                         opts={"labelSmoothing": 0.1}))
    out.append(loss_case("crossEntropy/ignore_index_smoothing", "crossEntropy",
                         [(logits, True), (torch.tensor([0, -100, 1, 2, -100], dtype=torch.int32), False)],
                         opts={"labelSmoothing": 0.2}))
    out.append(loss_case("crossEntropy/spatial", "crossEntropy",
                         [(torch.randn(2, 3, 2, 2), True), (torch.randint(0, 3, (2, 2, 2), dtype=torch.int32), False)]))
    out.append(loss_case("crossEntropy/probabilities", "crossEntropy",
                         [(logits, True), (torch.softmax(torch.randn(5, 4), 1), False)], opts={"labelSmoothing": 0.1}))
    return out


def main():
    doc = {"version": 1, "generator": "tools/gen_nn_fixtures.py", "torch": torch.__version__, "cases": cases()}
    names = [c["name"] for c in doc["cases"]]
    assert len(names) == len(set(names)), "duplicate case names"
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(names)} cases to {os.path.relpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
