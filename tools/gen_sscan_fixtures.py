"""Golden values for the selective scan: tests/fixtures/sscan.json.

A literal port of `selective_scan_ref` (state-spaces/mamba @ e9594ce1c732,
mamba_ssm/ops/selective_scan_interface.py; real A only), run in float32 on CPU with PyTorch 1.13.
Each case stores the inputs, out, last_state, R and the gradient of sum(out * R) for every input.

Run: /usr/bin/python3 tools/gen_sscan_fixtures.py
"""
import json
import os

import torch
import torch.nn.functional as F


def repeat_groups(t, dim):
    """einops `repeat(t, "B G N L -> B (G H) N L", H=dim // G)` (einops is not installed here)."""
    return t.repeat_interleave(dim // t.shape[1], dim=1)


def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       return_last_state=False):
    """u: (b d l), delta: (b d l), A: (d n), B/C: (d n) or (b n l) or (b g n l), D: (d), z: (b d l)."""
    dtype_in = u.dtype
    u = u.float()
    delta = delta.float()
    if delta_bias is not None:
        delta = delta + delta_bias[..., None].float()
    if delta_softplus:
        delta = F.softplus(delta)
    batch, dim, dstate = u.shape[0], A.shape[0], A.shape[1]
    is_variable_B = B.dim() >= 3
    is_variable_C = C.dim() >= 3
    B = B.float()
    C = C.float()
    x = A.new_zeros((batch, dim, dstate))
    ys = []
    deltaA = torch.exp(torch.einsum('bdl,dn->bdln', delta, A))
    if not is_variable_B:
        deltaB_u = torch.einsum('bdl,dn,bdl->bdln', delta, B, u)
    else:
        if B.dim() == 3:
            deltaB_u = torch.einsum('bdl,bnl,bdl->bdln', delta, B, u)
        else:
            B = repeat_groups(B, dim)
            deltaB_u = torch.einsum('bdl,bdnl,bdl->bdln', delta, B, u)
    if is_variable_C and C.dim() == 4:
        C = repeat_groups(C, dim)
    last_state = None
    for i in range(u.shape[2]):
        x = deltaA[:, :, i] * x + deltaB_u[:, :, i]
        if not is_variable_C:
            y = torch.einsum('bdn,dn->bd', x, C)
        else:
            if C.dim() == 3:
                y = torch.einsum('bdn,bn->bd', x, C[:, :, i])
            else:
                y = torch.einsum('bdn,bdn->bd', x, C[:, :, :, i])
        if i == u.shape[2] - 1:
            last_state = x
        ys.append(y)
    y = torch.stack(ys, dim=2)  # (batch dim L)
    out = y if D is None else y + u * D[:, None]  # rearrange(D, "d -> d 1")
    if z is not None:
        out = out * F.silu(z)
    out = out.to(dtype=dtype_in)
    return out if not return_last_state else (out, last_state)


CASES = [
    # name, batch, D, L, N, G (0: fixed (D, N) B/C), z, D, delta_bias, softplus
    ("g2_L37_all", 2, 8, 37, 4, 2, True, True, True, True),
    ("g1_L130_plain", 1, 4, 130, 3, 1, False, False, False, False),
    ("g4_L130_nosoftplus_D", 1, 8, 130, 5, 4, False, True, True, False),
    ("fixed_L37_z_softplus", 2, 6, 37, 4, 0, True, False, True, True),
    ("fixed_L64_D", 1, 3, 64, 2, 0, False, True, False, False),
    ("g3_L65_z", 1, 3, 65, 16, 3, True, True, False, True),
]


def make_case(name, batch, dim, L, N, G, has_z, has_D, has_bias, softplus, seed):
    g = torch.Generator().manual_seed(seed)
    rn = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    inp = {
        "u": rn(batch, dim, L),
        "delta": rn(batch, dim, L) * 0.5 + (0.0 if softplus else 0.6),
        "A": -torch.exp(0.5 * rn(dim, N)),
    }
    if G == 0:
        inp["B"], inp["C"] = rn(dim, N), rn(dim, N)
    else:
        inp["B"], inp["C"] = rn(batch, G, N, L), rn(batch, G, N, L)
    if has_D:
        inp["D"] = rn(dim)
    if has_z:
        inp["z"] = rn(batch, dim, L)
    if has_bias:
        inp["delta_bias"] = 0.5 * rn(dim)
    if not softplus:
        inp["delta"] = inp["delta"].abs() + 0.05  # a positive step without softplus
    R = rn(batch, dim, L)
    leaves = {k: v.clone().requires_grad_(True) for k, v in inp.items()}
    out, last = selective_scan_ref(leaves["u"], leaves["delta"], leaves["A"], leaves["B"], leaves["C"],
                                   D=leaves.get("D"), z=leaves.get("z"), delta_bias=leaves.get("delta_bias"),
                                   delta_softplus=softplus, return_last_state=True)
    (out * R).sum().backward()
    # 9 significant digits round-trip float32
    t = lambda x: {"shape": list(x.shape), "data": [float(f"{v:.9g}") for v in x.detach().reshape(-1).tolist()]}  # noqa: E731
    return {
        "name": name,
        "deltaSoftplus": softplus,
        "inputs": {k: t(v) for k, v in inp.items()},
        "out": t(out),
        "lastState": t(last),
        "R": t(R),
        "grads": {k: t(v.grad) for k, v in leaves.items()},
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    cases = [make_case(*c, seed=100 + i) for i, c in enumerate(CASES)]
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "sscan.json")
    with open(path, "w") as f:
        json.dump({"source": "tools/gen_sscan_fixtures.py (selective_scan_ref, torch " + torch.__version__ + ")",
                   "cases": cases}, f, separators=(",", ":"))
    print("wrote", path)
