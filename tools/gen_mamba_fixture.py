"""Golden fixture for the 1-D Mamba block (tests/fixtures/mamba_block.safetensors), run with /usr/bin/python3.

mamba_ssm is not installable here, so this is a literal port of `Mamba.forward`'s reference path
(mamba_simple.py with causal_conv1d and the CUDA scan unavailable): in_proj → conv1d (padding d_conv−1,
truncated to L) → SiLU → x_proj → dt_proj.weight → selective_scan_ref(u, dt, A, B, C, D, z, dt_proj.bias,
delta_softplus=True) → out_proj. Parameters are random (not the Mamba init) so every term matters.
Keys: input.x, param.<mamba_ssm name>, output.y, upstream.y, grad.input.x, grad.param.<name>.
"""
import json
import os
import struct

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "mamba_block.safetensors")


def selective_scan_ref(u, delta, A, B, C, D, z, delta_bias):
    delta = F.softplus(delta + delta_bias[..., None])
    batch, dim, L = u.shape
    dA = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    dBu = torch.einsum("bdl,bnl,bdl->bdln", delta, B, u)
    x = u.new_zeros((batch, dim, A.shape[1]))
    ys = []
    for i in range(L):
        x = dA[:, :, i] * x + dBu[:, :, i]
        ys.append(torch.einsum("bdn,bn->bd", x, C[:, :, i]))
    y = torch.stack(ys, dim=2)
    out = y + u * D[:, None]
    return out * F.silu(z)


def main():
    torch.manual_seed(0)
    d_model, d_state, d_conv, expand = 16, 8, 4, 2
    d_inner, dt_rank = expand * d_model, 1
    shapes = {
        "in_proj.weight": (2 * d_inner, d_model),
        "conv1d.weight": (d_inner, 1, d_conv),
        "conv1d.bias": (d_inner,),
        "x_proj.weight": (dt_rank + 2 * d_state, d_inner),
        "dt_proj.weight": (d_inner, dt_rank),
        "dt_proj.bias": (d_inner,),
        "A_log": (d_inner, d_state),
        "D": (d_inner,),
        "out_proj.weight": (d_model, d_inner),
    }
    p = {k: (0.3 * torch.randn(s)).requires_grad_() for k, s in shapes.items()}
    x = torch.randn(2, 13, d_model, requires_grad=True)
    L = x.shape[1]
    xz = x @ p["in_proj.weight"].T
    xs, z = xz.chunk(2, dim=-1)
    u = F.conv1d(xs.transpose(1, 2), p["conv1d.weight"], p["conv1d.bias"], padding=d_conv - 1, groups=d_inner)[..., :L]
    u = F.silu(u)
    x_dbl = u.transpose(1, 2) @ p["x_proj.weight"].T
    dt, B, C = torch.split(x_dbl, [dt_rank, d_state, d_state], dim=-1)
    dt = (dt @ p["dt_proj.weight"].T).transpose(1, 2)
    A = -torch.exp(p["A_log"])
    y = selective_scan_ref(u, dt, A, B.transpose(1, 2), C.transpose(1, 2), p["D"], z.transpose(1, 2), p["dt_proj.bias"])
    out = y.transpose(1, 2) @ p["out_proj.weight"].T
    r = torch.randn(out.shape)
    (out * r).sum().backward()
    t = {"input.x": x.detach(), "output.y": out.detach(), "upstream.y": r, "grad.input.x": x.grad}
    for k, v in p.items():
        t[f"param.{k}"] = v.detach()
        t[f"grad.param.{k}"] = v.grad
    header, blobs, off = {}, [], 0
    for k in sorted(t):
        b = t[k].contiguous().numpy().astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(t[k].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(OUT, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    print(OUT, os.path.getsize(OUT))


if __name__ == "__main__":
    main()
