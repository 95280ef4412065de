"""Generates the ResNet-34 golden fixture with PyTorch 1.13 + torchvision 0.14 (run with /usr/bin/python3).

A real torchvision resnet34 state dict is 87 MB, too big to commit. This script builds one with the exact
torchvision keys, shapes and dtypes, but every floating tensor is a strided *view* into one of a few small
shared storages (one per kind of tensor, pre-scaled so activations stay well conditioned). torch.save then
writes each shared storage once, so the file is small, and it exercises the .pth reader's shared
storages, storage offsets and non-contiguous strides on top of the plain format. The features of
layer1..layer3 for a fixed input are computed by torchvision's own forward in eval mode.

Outputs (tests/fixtures/resnet/):
- resnet34_views.pth: the state dict (fc included, as in the real checkpoint).
- resnet34_features.safetensors: input.x (2, 3, 64, 64), output.stem (after maxpool), output.layer1..layer3.
"""

import math
import os
from collections import OrderedDict

import torch
import torchvision

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "resnet")
BASE = 1 << 15  # elements per shared storage


def strides_for(shape, gen):
    """Odd, overlapping strides so that the largest index stays below BASE."""
    nd = len(shape)
    if nd == 0:
        return ()
    st = [1] * nd
    # innermost dims contiguous, outer dims jump by a random odd step
    budget = BASE - 1
    for d in range(nd - 1, -1, -1):
        if d == nd - 1:
            st[d] = 1
        else:
            inner = sum((shape[k] - 1) * st[k] for k in range(d + 1, nd))
            room = max(1, (budget - inner) // max(1, shape[d] - 1) // (d + 1))
            st[d] = int(torch.randint(1, max(2, min(room, 97)), (1,), generator=gen)) | 1
    return tuple(st)


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = torchvision.models.resnet34()
    sd = model.state_dict()

    def base(scale, shift=0.0, positive=False):
        t = torch.randn(BASE, generator=gen)
        return (torch.exp(0.2 * t) if positive else t * scale + shift).contiguous()

    bases = {}
    views = OrderedDict()
    for key, v in sd.items():
        if not v.dtype.is_floating_point:
            views[key] = v.clone()
            continue
        if key.endswith("running_var"):
            kind, make = "var", lambda: base(0, positive=True)
        elif key.endswith("running_mean"):
            kind, make = "mean", lambda: base(0.1)
        elif key.endswith("bn1.weight") or key.endswith("bn2.weight") or key.endswith("downsample.1.weight"):
            kind, make = "gamma", lambda: base(0.1, 1.0)
        elif key.endswith(".bias"):
            kind, make = "beta", lambda: base(0.1)
        else:
            fan_in = v[0].numel()
            kind = f"w{fan_in}"
            make = lambda fan_in=fan_in: base(math.sqrt(1.0 / fan_in))  # noqa: E731
        if kind not in bases:
            bases[kind] = make()
        s = bases[kind]
        st = strides_for(list(v.shape), gen)
        span = sum((n - 1) * k for n, k in zip(v.shape, st)) + 1
        offset = int(torch.randint(0, BASE - span + 1, (1,), generator=gen))
        views[key] = s.as_strided(v.shape, st, offset)
    model.load_state_dict(views)
    model.eval()
    os.makedirs(OUT, exist_ok=True)
    torch.save(views, os.path.join(OUT, "resnet34_views.pth"))

    x = torch.randn(2, 3, 64, 64, generator=gen)
    with torch.no_grad():
        stem = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        l1 = model.layer1(stem)
        l2 = model.layer2(l1)
        l3 = model.layer3(l2)
    tensors = {"input.x": x, "output.stem": stem, "output.layer1": l1, "output.layer2": l2, "output.layer3": l3}
    write_safetensors(os.path.join(OUT, "resnet34_features.safetensors"), tensors)
    for k, t in tensors.items():
        print(k, tuple(t.shape), float(t.abs().max()))
    print("storages:", len(bases), "file:", os.path.getsize(os.path.join(OUT, "resnet34_views.pth")), "bytes")


def write_safetensors(path, tensors):
    """Minimal safetensors writer (F32 only), so the fixture needs no extra package."""
    import json
    import struct

    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        b = tensors[k].contiguous().numpy().astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(tensors[k].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


if __name__ == "__main__":
    main()
