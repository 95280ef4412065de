#!/usr/bin/python3
"""Generates the golden-value op fixtures, tests/fixtures/ops.json, with PyTorch (1.13, float32, CPU).

Run from the repository root:  /usr/bin/python3 tools/gen_op_fixtures.py
The output is deterministic (torch.manual_seed(0); single-threaded torch).

File format (JSON)::

    {
      "version": 1,
      "generator": "tools/gen_op_fixtures.py",
      "torch": "<torch version>",
      "cases": [Case, ...]
    }

    Case = {
      "name":   "add/broadcast_3x1x5_1x4x1",   unique, "<op>/<description>"
      "group":  "binary",                      test group: shape | binary | compare | unary | reduce | matmul | nn
      "tol":    "elementwise" | "reduction",    forward tolerance class (see tests/ops_golden_test.ts)
      "op":     "add",                          exported function of mod.ts
      "args":   [...],                          positional call arguments, see below
      "inputs": [Input, ...],
      "outputs": [Output, ...],                 one entry, or several for ops returning Tensor[] (split, chunk)
      "upstream": [Values | null, ...],         per output: R (output's shape, float32), null for int/bool outputs
      "grads":  [Values | null, ...]            per input: d(sum_k sum(out_k * R_k))/d input, with the shape of
                                                the input *before* its permute; null when the input has no grad
    }

    Input  = {"shape": [...], "dtype": "float32" | "int32" | "bool", "values": Values,
              "requiresGrad": bool, "permute": [dims] (optional)}
             The test builds tensor(values, {shape, dtype, requiresGrad}) -- the leaf whose .grad is checked --
             and, when "permute" is present, calls permute(leaf, dims) and passes that (non-contiguous) view
             to the op. The expected values were computed from the same permuted torch tensor.
    Output = {"shape": [...], "dtype": ..., "values": Values}

    Values: float32 data is a string: standard base64 of the little-endian IEEE float32 bytes, row-major
            (exact round trip). int32 and bool data is a plain JSON array of integers (bool as 0/1).

    Call arguments: JSON values passed as they are, except
      {"$t": i}  -> the i-th input tensor (after its permute, if any); arrays of these for concat/stack;
      null       -> undefined (an omitted optional argument; for conv2d's bias both mean "no bias").
    Option objects use the TypeScript API's camelCase keys.

Every case's torch reference is computed by calling the torch mirror of the TypeScript function (OPS below)
with the same arguments, so the call arguments and the expected values cannot drift apart. Inputs are chosen
away from points where an op is not differentiable or has ties (kinks of relu/abs/clamp, equal maxima, log/sqrt
near 0).
"""

import base64
import json
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_num_threads(1)
warnings.filterwarnings("ignore", message="Using padding='same'")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "ops.json")


# --------------------------------------------------------------------------------------------------
# Torch mirrors of the TypeScript API (same positional arguments, same option keys).
# --------------------------------------------------------------------------------------------------

def _dims(x, dims):
    if dims is None:
        return list(range(x.dim()))
    if isinstance(dims, int):
        return [dims]
    return list(dims)


def _scalar_like(b, ref):
    return b if isinstance(b, torch.Tensor) else torch.tensor(b, dtype=ref.dtype)


def t_slice(x, dim, start=None, end=None, step=1):
    idx = [slice(None)] * x.dim()
    idx[dim] = slice(start, end, step)
    return x[tuple(idx)]


def t_pad(x, pads, opts=None):
    opts = opts or {}
    mode = opts.get("mode") or "constant"
    if mode == "constant":
        return F.pad(x, pads, mode="constant", value=opts.get("value") or 0.0)
    return F.pad(x, pads, mode=mode)


def t_where(c, a, b):
    return torch.where(c.bool(), a, b)


def t_max(x, dims=None, keepdim=False):
    return torch.amax(x, dim=_dims(x, dims), keepdim=bool(keepdim))


def t_min(x, dims=None, keepdim=False):
    return torch.amin(x, dim=_dims(x, dims), keepdim=bool(keepdim))


def t_var(x, dims=None, opts=None, std=False):
    opts = opts or {}
    unbiased = opts.get("unbiased", True)
    keepdim = opts.get("keepdim", False)
    f = torch.std if std else torch.var
    return f(x, dim=_dims(x, dims), unbiased=unbiased, keepdim=keepdim)


def t_argmax(x, dim=None, keepdim=False):
    if dim is None:
        assert not keepdim
        return torch.argmax(x).to(torch.int32)
    return torch.argmax(x, dim=dim, keepdim=bool(keepdim)).to(torch.int32)


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else v


def t_conv2d(x, w, b=None, opts=None):
    opts = opts or {}
    return F.conv2d(x, w, b, stride=_pair(opts.get("stride", 1)), padding=_pair(opts.get("padding", 0)),
                    dilation=_pair(opts.get("dilation", 1)), groups=opts.get("groups", 1))


def t_maxpool(x, k, opts=None):
    opts = opts or {}
    return F.max_pool2d(x, _pair(k), stride=_pair(opts.get("stride", k)), padding=_pair(opts.get("padding", 0)),
                        dilation=_pair(opts.get("dilation", 1)))


def t_avgpool(x, k, opts=None):
    opts = opts or {}
    return F.avg_pool2d(x, _pair(k), stride=_pair(opts.get("stride", k)), padding=_pair(opts.get("padding", 0)),
                        count_include_pad=opts.get("countIncludePad", True))


def t_interpolate(x, opts):
    mode = opts["mode"]
    ac = opts.get("alignCorners", False) if mode == "bilinear" else None
    return F.interpolate(x, size=_pair(opts.get("size")), scale_factor=_pair(opts.get("scaleFactor")), mode=mode,
                         align_corners=ac)


OPS = {
    # shape
    "reshape": lambda x, s: x.reshape(s),
    "flatten": lambda x, s=0, e=-1: torch.flatten(x, s, e),
    "permute": lambda x, d: x.permute(d),
    "transpose": lambda x, a, b: x.transpose(a, b),
    "expand": lambda x, s: x.expand(*s),
    "broadcastTo": lambda x, s: torch.broadcast_to(x, s),
    "slice": t_slice,
    "concat": lambda xs, d: torch.cat(xs, d),
    "stack": lambda xs, d: torch.stack(xs, d),
    "split": lambda x, s, d: list(torch.split(x, s, d)),
    "chunk": lambda x, c, d: list(torch.chunk(x, c, d)),
    "pad": t_pad,
    "flip": lambda x, d: torch.flip(x, d),
    "rot90": lambda x, k=1, d=(0, 1): torch.rot90(x, k, d),
    "gather": lambda x, d, i: torch.gather(x, d, i.long()),
    "indexSelect": lambda x, d, i: torch.index_select(x, d, i.long()),
    "scatterAdd": lambda x, d, i, s: torch.scatter_add(x, d, i.long(), s),
    # binary
    "add": lambda a, b: torch.add(a, b),
    "sub": lambda a, b: torch.sub(a, b),
    "mul": lambda a, b: torch.mul(a, b),
    "div": lambda a, b: torch.div(a, b),
    "pow": lambda a, b: torch.pow(a, b),
    "maximum": lambda a, b: torch.maximum(a, _scalar_like(b, a)),
    "minimum": lambda a, b: torch.minimum(a, _scalar_like(b, a)),
    # compare
    "eq": lambda a, b: torch.eq(a, b),
    "ne": lambda a, b: torch.ne(a, b),
    "lt": lambda a, b: torch.lt(a, b),
    "le": lambda a, b: torch.le(a, b),
    "gt": lambda a, b: torch.gt(a, b),
    "ge": lambda a, b: torch.ge(a, b),
    "where": t_where,
    # unary
    "neg": torch.neg,
    "abs": torch.abs,
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "rsqrt": torch.rsqrt,
    "sin": torch.sin,
    "cos": torch.cos,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "gelu": lambda x: F.gelu(x),
    "silu": F.silu,
    "softplus": lambda x: F.softplus(x, beta=1, threshold=20),
    "clamp": lambda x, lo=None, hi=None: torch.clamp(x, lo, hi),
    # reductions
    "sum": lambda x, d=None, k=False: torch.sum(x, dim=_dims(x, d), keepdim=bool(k)),
    "mean": lambda x, d=None, k=False: torch.mean(x, dim=_dims(x, d), keepdim=bool(k)),
    "max": t_max,
    "min": t_min,
    "variance": lambda x, d=None, o=None: t_var(x, d, o),
    "std": lambda x, d=None, o=None: t_var(x, d, o, std=True),
    "argmax": t_argmax,
    "logsumexp": lambda x, d, k=False: torch.logsumexp(x, dim=_dims(x, d), keepdim=bool(k)),
    "softmax": lambda x, d: torch.softmax(x, d),
    "logSoftmax": lambda x, d: torch.log_softmax(x, d),
    "cumsum": lambda x, d: torch.cumsum(x, d),
    # matmul
    "matmul": torch.matmul,
    "linear": F.linear,
    # nn
    "conv2d": t_conv2d,
    "maxPool2d": t_maxpool,
    "avgPool2d": t_avgpool,
    "adaptiveAvgPool2d": lambda x, s: F.adaptive_avg_pool2d(x, _pair(s)),
    "interpolate": t_interpolate,
}


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------

class Inp:
    def __init__(self, base, dtype, rg, permute):
        self.base = base
        self.dtype = dtype
        self.rg = rg
        self.permute = permute


def _away(t, points, margin=0.05, gen=None):
    """Resamples elements of t closer than margin to any of the points (gen() draws a fresh tensor)."""
    for _ in range(100):
        bad = torch.zeros_like(t, dtype=torch.bool)
        for p in points:
            bad |= (t - p).abs() < margin
        if not bad.any():
            return t
        t = torch.where(bad, gen(), t)
    raise RuntimeError("could not move values away from kinks")


def inp(shape, kind="randn", rg=None, permute=None, scale=1.0, lo=-1.0, hi=1.0, avoid=None, values=None):
    """kind: randn (times scale) | uniform [lo, hi) | pos (0.5..2) | signed (±[0.5,2)) | distinct
    (shuffled, 0.1 apart) | int [lo, hi) | bool | values (given)."""
    shape = list(shape)
    dtype = "float32"
    if values is not None:
        t = torch.as_tensor(values)
        if t.dtype == torch.bool:
            dtype = "bool"
        elif not t.dtype.is_floating_point:
            t, dtype = t.to(torch.int32), "int32"
        else:
            t = t.to(torch.float32)
        t = t.reshape(shape)
    elif kind == "randn":
        def gen():
            return torch.randn(shape) * scale
        t = gen()
        if avoid is not None:
            t = _away(t, avoid, gen=gen)
    elif kind == "uniform":
        t = lo + (hi - lo) * torch.rand(shape)
    elif kind == "pos":
        t = 0.5 + 1.5 * torch.rand(shape)
    elif kind == "signed":
        t = (0.5 + 1.5 * torch.rand(shape)) * torch.where(torch.rand(shape) < 0.5, -1.0, 1.0)
    elif kind == "distinct":
        n = int(np.prod(shape)) if shape else 1
        t = ((torch.randperm(n).to(torch.float32) - n / 2) * 0.1 * scale).reshape(shape)
    elif kind == "int":
        t = torch.randint(int(lo), int(hi), shape, dtype=torch.int32)
        dtype = "int32"
    elif kind == "bool":
        t = torch.rand(shape) < 0.5
        dtype = "bool"
    else:
        raise ValueError(kind)
    if rg is None:
        rg = dtype == "float32"
    return Inp(t.contiguous(), dtype, bool(rg), list(permute) if permute is not None else None)


def T(i):
    return {"$t": i}


def enc(t):
    t = t.detach().contiguous()
    if t.dtype == torch.float32:
        return base64.b64encode(t.numpy().astype("<f4").tobytes()).decode("ascii")
    if t.dtype == torch.bool:
        return [int(v) for v in t.reshape(-1).tolist()]
    assert t.dtype == torch.int32, t.dtype
    return [int(v) for v in t.reshape(-1).tolist()]


def dtype_name(t):
    return {torch.float32: "float32", torch.int32: "int32", torch.bool: "bool"}[t.dtype]


# --------------------------------------------------------------------------------------------------
# Case construction
# --------------------------------------------------------------------------------------------------

CASES = []
NAMES = set()

GROUP_TOL = {"shape": "elementwise", "binary": "elementwise", "compare": "elementwise", "unary": "elementwise",
             "reduce": "reduction", "matmul": "reduction", "nn": "reduction"}


def resolve(a, ts):
    if isinstance(a, dict) and set(a.keys()) == {"$t"}:
        return ts[a["$t"]]
    if isinstance(a, list) and a and all(isinstance(v, dict) and set(v.keys()) == {"$t"} for v in a):
        return [ts[v["$t"]] for v in a]
    return a


def case(group, op, desc, inputs, args, check=None):
    name = f"{op}/{desc}"
    assert name not in NAMES, name
    NAMES.add(name)
    leaves = []
    views = []
    for i in inputs:
        leaf = i.base.clone()
        if i.rg:
            assert i.dtype == "float32"
            leaf.requires_grad_(True)
        leaves.append(leaf)
        views.append(leaf.permute(i.permute) if i.permute is not None else leaf)
    call = [resolve(a, views) for a in args]
    # trailing None arguments are omitted (defaults); inner Nones stay None
    while call and call[-1] is None:
        call.pop()
    out = OPS[op](*call)
    outs = out if isinstance(out, list) else [out]
    if check is not None:
        check(call, outs)
    ups = []
    loss = None
    for o in outs:
        if o.dtype == torch.float32:
            r = torch.randn(o.shape)
            ups.append(r)
            if o.requires_grad:
                term = (o * r).sum()
                loss = term if loss is None else loss + term
        else:
            ups.append(None)
    grads = [None] * len(inputs)
    rg_idx = [k for k, i in enumerate(inputs) if i.rg]
    if rg_idx and loss is not None:
        gs = torch.autograd.grad(loss, [leaves[k] for k in rg_idx], allow_unused=True)
        for k, g in zip(rg_idx, gs):
            grads[k] = g if g is not None else torch.zeros_like(leaves[k])
    rec = {
        "name": name,
        "group": group,
        "tol": GROUP_TOL[group],
        "op": op,
        "args": args,
        "inputs": [],
        "outputs": [{"shape": list(o.shape), "dtype": dtype_name(o), "values": enc(o)} for o in outs],
        "upstream": [enc(r) if r is not None else None for r in ups],
        "grads": [enc(g) if g is not None else None for g in grads],
    }
    for i in inputs:
        d = {"shape": list(i.base.shape), "dtype": i.dtype, "values": enc(i.base), "requiresGrad": i.rg}
        if i.permute is not None:
            d["permute"] = i.permute
        rec["inputs"].append(d)
    CASES.append(rec)


def no_ties_binary(call, outs):
    a, b = call[0], call[1]
    b = b if isinstance(b, torch.Tensor) else torch.tensor(b)
    assert ((a - b).abs() > 1e-3).all(), "maximum/minimum inputs tie"


def distinct_check(call, outs):
    x = call[0].detach().reshape(-1)
    assert x.unique().numel() == x.numel(), "values are not distinct"


# ---------------------------------------------------------------------------------------------- shape

def shape_cases():
    g = "shape"
    case(g, "reshape", "3x4x5_to_6x10", [inp([3, 4, 5])], [T(0), [6, 10]])
    case(g, "reshape", "infer_minus1", [inp([3, 4, 5])], [T(0), [-1, 5]])
    case(g, "reshape", "7x13_to_13x7", [inp([7, 13])], [T(0), [13, 7]])
    case(g, "reshape", "add_size1_dims", [inp([2, 3])], [T(0), [3, 1, 2]])
    case(g, "reshape", "permuted_noncontig", [inp([3, 4, 5], permute=[2, 0, 1])], [T(0), [5, 12]])
    case(g, "reshape", "to_scalar", [inp([1, 1])], [T(0), []])
    case(g, "flatten", "default", [inp([2, 3, 4, 5])], [T(0)])
    case(g, "flatten", "start1", [inp([2, 3, 4, 5])], [T(0), 1])
    case(g, "flatten", "start1_end2", [inp([2, 3, 4, 5])], [T(0), 1, 2])
    case(g, "flatten", "negative_dims", [inp([2, 3, 4, 5])], [T(0), -3, -2])
    case(g, "flatten", "permuted", [inp([3, 4, 5], permute=[1, 2, 0])], [T(0)])
    case(g, "permute", "3d", [inp([2, 3, 4])], [T(0), [2, 0, 1]])
    case(g, "permute", "negative_dims", [inp([2, 3, 4])], [T(0), [-1, -3, -2]])
    case(g, "permute", "4d_size1", [inp([2, 1, 3, 4])], [T(0), [3, 1, 0, 2]])
    case(g, "transpose", "2d_7x13", [inp([7, 13])], [T(0), 0, 1])
    case(g, "transpose", "3d_negative", [inp([2, 3, 4])], [T(0), -1, 0])
    case(g, "expand", "3x1_to_3x4", [inp([3, 1])], [T(0), [3, 4]])
    case(g, "expand", "1x4x1_to_2x4x3", [inp([1, 4, 1])], [T(0), [2, 4, 3]])
    case(g, "expand", "new_leading_dims", [inp([3, 1])], [T(0), [2, 3, 5]])
    case(g, "expand", "minus1_keeps", [inp([3, 1])], [T(0), [-1, 4]])
    case(g, "broadcastTo", "5_to_4x5", [inp([5])], [T(0), [4, 5]])
    case(g, "broadcastTo", "3x1x5_to_3x4x5", [inp([3, 1, 5])], [T(0), [3, 4, 5]])
    case(g, "broadcastTo", "scalar_to_2x3", [inp([])], [T(0), [2, 3]])
    case(g, "slice", "dim1_2_9", [inp([7, 13])], [T(0), 1, 2, 9])
    case(g, "slice", "dim0_step2", [inp([7, 13])], [T(0), 0, None, None, 2])
    case(g, "slice", "negative_start", [inp([7, 13])], [T(0), 1, -5])
    case(g, "slice", "negative_end", [inp([7, 13])], [T(0), 0, 1, -2])
    case(g, "slice", "end_only", [inp([7, 13])], [T(0), 0, None, 3])
    case(g, "slice", "negative_dim_step3", [inp([2, 3, 13])], [T(0), -1, 1, 12, 3])
    case(g, "slice", "end_past_size", [inp([7, 4])], [T(0), 0, 1, 100])
    case(g, "slice", "permuted", [inp([3, 4, 5], permute=[2, 0, 1])], [T(0), 1, 1, 3])
    case(g, "concat", "dim0", [inp([2, 3]), inp([4, 3])], [[T(0), T(1)], 0])
    case(g, "concat", "three_dim_minus1", [inp([2, 3]), inp([2, 5]), inp([2, 1])], [[T(0), T(1), T(2)], -1])
    case(g, "concat", "3d_dim1", [inp([2, 3, 4]), inp([2, 1, 4])], [[T(0), T(1)], 1])
    case(g, "concat", "permuted_input", [inp([4, 2, 3], permute=[1, 0, 2]), inp([2, 2, 3], rg=False)],
         [[T(0), T(1)], 1])
    case(g, "stack", "dim0", [inp([3, 4]), inp([3, 4]), inp([3, 4])], [[T(0), T(1), T(2)], 0])
    case(g, "stack", "dim_minus1", [inp([3, 4]), inp([3, 4])], [[T(0), T(1)], -1])
    case(g, "stack", "dim1", [inp([2, 3]), inp([2, 3])], [[T(0), T(1)], 1])
    case(g, "split", "size3_uneven", [inp([7, 4])], [T(0), 3, 0])
    case(g, "split", "sections", [inp([7, 4])], [T(0), [2, 5], 0])
    case(g, "split", "dim_minus1", [inp([3, 8])], [T(0), 4, -1])
    case(g, "chunk", "7_into_3", [inp([7, 4])], [T(0), 3, 0])
    case(g, "chunk", "6_into_4_gives_3", [inp([3, 6])], [T(0), 4, 1])
    case(g, "chunk", "dim_minus1", [inp([2, 8])], [T(0), 2, -1])
    case(g, "pad", "constant_last_dim", [inp([3, 4])], [T(0), [1, 2]])
    case(g, "pad", "constant_two_dims_value", [inp([3, 4])], [T(0), [1, 0, 2, 1], {"value": 0.5}])
    case(g, "pad", "constant_4d", [inp([1, 2, 3, 4])], [T(0), [1, 1, 2, 0], {"mode": "constant"}])
    case(g, "pad", "reflect_1d", [inp([1, 2, 5])], [T(0), [2, 1], {"mode": "reflect"}])
    case(g, "pad", "reflect_2d", [inp([1, 2, 4, 5])], [T(0), [1, 2, 2, 1], {"mode": "reflect"}])
    case(g, "flip", "dim0", [inp([3, 4, 5])], [T(0), [0]])
    case(g, "flip", "dims_0_2", [inp([3, 4, 5])], [T(0), [0, 2]])
    case(g, "flip", "dim_minus1", [inp([7, 13])], [T(0), [-1]])
    case(g, "flip", "permuted", [inp([3, 4, 5], permute=[2, 1, 0])], [T(0), [1]])
    case(g, "rot90", "k1", [inp([3, 4])], [T(0)])
    case(g, "rot90", "k2", [inp([3, 4])], [T(0), 2])
    case(g, "rot90", "k3", [inp([3, 4])], [T(0), 3])
    case(g, "rot90", "k_minus1", [inp([3, 4])], [T(0), -1])
    case(g, "rot90", "3d_dims_1_2", [inp([2, 3, 4])], [T(0), 1, [1, 2]])
    case(g, "gather", "dim1_duplicates", [inp([3, 5]), inp([3, 4], "int", lo=0, hi=5)], [T(0), 1, T(1)])
    case(g, "gather", "dim0", [inp([4, 5]), inp([2, 5], "int", lo=0, hi=4)], [T(0), 0, T(1)])
    case(g, "gather", "3d_dim_minus1", [inp([2, 3, 4]), inp([2, 3, 6], "int", lo=0, hi=4)], [T(0), -1, T(1)])
    case(g, "gather", "index_smaller", [inp([4, 5]), inp([2, 3], "int", lo=0, hi=5)], [T(0), 1, T(1)])
    case(g, "gather", "permuted", [inp([5, 3], permute=[1, 0]), inp([3, 2], "int", lo=0, hi=5)], [T(0), 1, T(1)])
    case(g, "indexSelect", "dim0", [inp([5, 4]), inp([4], values=np.array([4, 0, 2, 2], np.int32))], [T(0), 0, T(1)])
    case(g, "indexSelect", "dim_minus1", [inp([3, 6]), inp([3], values=np.array([5, 1, 1], np.int32))],
         [T(0), -1, T(1)])
    case(g, "indexSelect", "3d_dim1", [inp([2, 4, 3]), inp([5], "int", lo=0, hi=4)], [T(0), 1, T(1)])
    case(g, "scatterAdd", "dim1_duplicates", [inp([3, 5]), inp([3, 4], "int", lo=0, hi=5), inp([3, 4])],
         [T(0), 1, T(1), T(2)])
    case(g, "scatterAdd", "dim0", [inp([4, 3]), inp([6, 3], "int", lo=0, hi=4), inp([6, 3])], [T(0), 0, T(1), T(2)])
    case(g, "scatterAdd", "3d_dim_minus1_src_nograd",
         [inp([2, 3, 4]), inp([2, 3, 5], "int", lo=0, hi=4), inp([2, 3, 5], rg=False)], [T(0), -1, T(1), T(2)])


# ---------------------------------------------------------------------------------------------- binary

def binary_cases():
    g = "binary"

    def b_inputs(op, shape_a, shape_b, **kw):
        # operand distributions per op: div needs |b| away from 0, pow a positive base
        ka, kb = "randn", "randn"
        if op == "div":
            kb = "signed"
        if op == "pow":
            ka = "pos"
        return inp(shape_a, ka, permute=kw.get("pa")), inp(shape_b, kb, rg=kw.get("rgb"), permute=kw.get("pb"))

    for op in ["add", "sub", "mul", "div", "pow", "maximum", "minimum"]:
        chk = no_ties_binary if op in ("maximum", "minimum") else None
        a, b = b_inputs(op, [7, 13], [7, 13])
        case(g, op, "same_shape_7x13", [a, b], [T(0), T(1)], chk)
        a, b = b_inputs(op, [3, 1, 5], [1, 4, 1])
        case(g, op, "broadcast_3x1x5_1x4x1", [a, b], [T(0), T(1)], chk)
        a, b = b_inputs(op, [4, 5], [5])
        case(g, op, "broadcast_4x5_5", [a, b], [T(0), T(1)], chk)
        a, b = b_inputs(op, [5], [4, 5])
        case(g, op, "broadcast_5_4x5", [a, b], [T(0), T(1)], chk)
        a, b = b_inputs(op, [1, 1], [3, 1], rgb=False)
        case(g, op, "size1_dims_b_nograd", [a, b], [T(0), T(1)], chk)
        a, b = b_inputs(op, [3, 4, 5], [4, 5, 3], pa=[1, 2, 0])
        case(g, op, "permuted_a", [a, b], [T(0), T(1)], chk)
        a, b = b_inputs(op, [2, 3], [])
        case(g, op, "zero_dim_tensor_b", [a, b], [T(0), T(1)], chk)
        a = b_inputs(op, [3, 4], [1])[0]
        scalar = {"add": 2.5, "sub": -1.25, "mul": 3.0, "div": 0.75, "pow": 2, "maximum": 0.3, "minimum": -0.2}[op]
        if op in ("maximum", "minimum"):
            a = inp([3, 4], avoid=[scalar])
        case(g, op, "scalar_b", [a], [T(0), scalar], chk)
    for p in [0.5, -1.5, 3]:
        case(g, "pow", f"scalar_exp_{p}".replace(".", "p").replace("-", "m"), [inp([4, 5], "pos")], [T(0), p])


# ---------------------------------------------------------------------------------------------- compare

def compare_cases():
    g = "compare"
    a = torch.randn(4, 5)
    b = torch.where(torch.rand(4, 5) < 0.4, a, torch.randn(4, 5))
    ai = torch.randint(-3, 3, (3, 4), dtype=torch.int32)
    bi = torch.randint(-3, 3, (3, 4), dtype=torch.int32)
    for op in ["eq", "ne", "lt", "le", "gt", "ge"]:
        case(g, op, "float_with_ties", [inp([4, 5], values=a, rg=False), inp([4, 5], values=b, rg=False)],
             [T(0), T(1)])
        x = torch.tensor([[-1.0, 0.5, 0.25], [0.5, 2.0, 0.5]])
        case(g, op, "float_scalar", [inp([2, 3], values=x, rg=False)], [T(0), 0.5])
        case(g, op, "int32", [inp([3, 4], values=ai), inp([3, 4], values=bi)], [T(0), T(1)])
        case(g, op, "int32_broadcast", [inp([3, 1], "int", lo=-2, hi=2), inp([1, 4], "int", lo=-2, hi=2)],
             [T(0), T(1)])
        case(g, op, "int32_scalar", [inp([2, 5], "int", lo=-2, hi=3)], [T(0), 1])
        case(g, op, "permuted_float", [inp([3, 4], rg=False, permute=[1, 0]), inp([4, 3], rg=False)], [T(0), T(1)])
    case(g, "where", "same_shape", [inp([3, 4], "bool"), inp([3, 4]), inp([3, 4])], [T(0), T(1), T(2)])
    case(g, "where", "broadcast_cond_and_b", [inp([3, 1], "bool"), inp([3, 4]), inp([4])], [T(0), T(1), T(2)])
    case(g, "where", "cond_1d_b_scalar_tensor", [inp([4], "bool"), inp([3, 4]), inp([])], [T(0), T(1), T(2)])
    case(g, "where", "permuted_a_nograd_b", [inp([2, 3, 4], "bool"), inp([4, 2, 3], permute=[1, 2, 0]),
                                            inp([2, 3, 4], rg=False)], [T(0), T(1), T(2)])


# ---------------------------------------------------------------------------------------------- unary

def unary_cases():
    g = "unary"
    specs = {
        "neg": dict(),
        "abs": dict(avoid=[0.0]),
        "exp": dict(),
        "log": dict(kind="pos"),
        "sqrt": dict(kind="pos"),
        "rsqrt": dict(kind="pos"),
        "sin": dict(scale=2.0),
        "cos": dict(scale=2.0),
        "tanh": dict(scale=2.0),
        "sigmoid": dict(scale=3.0),
        "relu": dict(avoid=[0.0]),
        "gelu": dict(scale=2.0),
        "silu": dict(scale=2.0),
        "softplus": dict(scale=5.0),
    }
    for op, kw in specs.items():
        kind = kw.get("kind", "randn")
        extra = {k: v for k, v in kw.items() if k != "kind"}
        case(g, op, "7x13", [inp([7, 13], kind, **extra)], [T(0)])
        case(g, op, "permuted_3x4x5", [inp([3, 4, 5], kind, permute=[1, 2, 0], **extra)], [T(0)])
        case(g, op, "size1_dims", [inp([1, 5, 1], kind, **extra)], [T(0)])
    case(g, "exp", "zero_dim", [inp([])], [T(0)])
    case(g, "softplus", "beyond_threshold",
         [inp([8], values=np.array([-30.0, -21.0, -5.0, 0.3, 15.0, 19.5, 20.5, 30.0], np.float32))], [T(0)])
    case(g, "clamp", "min_max", [inp([7, 13], avoid=[-0.5, 0.5])], [T(0), -0.5, 0.5])
    case(g, "clamp", "min_only", [inp([4, 5], avoid=[0.2])], [T(0), 0.2])
    case(g, "clamp", "max_only", [inp([4, 5], avoid=[-0.1])], [T(0), None, -0.1])
    case(g, "clamp", "permuted", [inp([3, 4, 5], avoid=[-1.0, 0.0], permute=[2, 0, 1])], [T(0), -1.0, 0.0])


# ---------------------------------------------------------------------------------------------- reduce

def reduce_cases():
    g = "reduce"
    for op in ["sum", "mean"]:
        case(g, op, "all", [inp([3, 4, 5])], [T(0)])
        case(g, op, "all_keepdim", [inp([3, 4])], [T(0), None, True])
        case(g, op, "dim1", [inp([3, 4, 5])], [T(0), 1])
        case(g, op, "dim_minus1_keepdim", [inp([3, 4, 5])], [T(0), -1, True])
        case(g, op, "dims_0_2", [inp([3, 4, 5])], [T(0), [0, 2]])
        case(g, op, "dims_0_2_keepdim", [inp([3, 4, 5])], [T(0), [0, 2], True])
        case(g, op, "dims_negative_pair", [inp([2, 3, 4, 5])], [T(0), [-1, -3]])
        case(g, op, "7x13_dim0", [inp([7, 13])], [T(0), 0])
        case(g, op, "size1_dim", [inp([3, 1, 4])], [T(0), 1])
        case(g, op, "permuted_dim0", [inp([3, 4, 5], permute=[2, 0, 1])], [T(0), 0])
    for op in ["max", "min"]:
        case(g, op, "all", [inp([3, 4, 5], "distinct")], [T(0)], distinct_check)
        case(g, op, "dim1", [inp([3, 4, 5], "distinct")], [T(0), 1], distinct_check)
        case(g, op, "dim_minus1_keepdim", [inp([7, 13], "distinct")], [T(0), -1, True], distinct_check)
        case(g, op, "dims_0_2_keepdim", [inp([3, 4, 5], "distinct")], [T(0), [0, 2], True], distinct_check)
        case(g, op, "dims_0_2", [inp([3, 4, 5], "distinct")], [T(0), [0, 2]], distinct_check)
        case(g, op, "permuted", [inp([3, 4, 5], "distinct", permute=[1, 2, 0])], [T(0), 1], distinct_check)
    for op in ["variance", "std"]:
        case(g, op, "all_default", [inp([3, 4, 5])], [T(0)])
        case(g, op, "dim1_biased", [inp([3, 4, 5])], [T(0), 1, {"unbiased": False}])
        case(g, op, "dims_0_2_keepdim", [inp([3, 4, 5])], [T(0), [0, 2], {"keepdim": True}])
        case(g, op, "dim_minus1_unbiased_keepdim", [inp([7, 13])], [T(0), -1, {"unbiased": True, "keepdim": True}])
        case(g, op, "permuted", [inp([3, 4, 5], permute=[2, 0, 1])], [T(0), 0])
    case(g, "argmax", "flattened", [inp([3, 4, 5], "distinct", rg=False)], [T(0)], distinct_check)
    case(g, "argmax", "dim1", [inp([3, 4, 5], "distinct", rg=False)], [T(0), 1], distinct_check)
    case(g, "argmax", "dim_minus1_keepdim", [inp([7, 13], "distinct", rg=False)], [T(0), -1, True], distinct_check)
    case(g, "argmax", "permuted", [inp([3, 4, 5], "distinct", rg=False, permute=[2, 0, 1])], [T(0), 2],
         distinct_check)
    case(g, "logsumexp", "dim1", [inp([3, 4, 5], scale=3.0)], [T(0), 1])
    case(g, "logsumexp", "dims_0_2_keepdim", [inp([3, 4, 5], scale=3.0)], [T(0), [0, 2], True])
    case(g, "logsumexp", "dim_minus1", [inp([7, 13], scale=3.0)], [T(0), -1])
    case(g, "logsumexp", "large_values", [inp([2, 3], values=np.array([[100.0, 101.0, 99.0], [-50.0, -49.5, -52.0]],
                                                                      np.float32))], [T(0), 1])
    for op in ["softmax", "logSoftmax"]:
        case(g, op, "dim_minus1", [inp([3, 4, 5], scale=2.0)], [T(0), -1])
        case(g, op, "dim0", [inp([3, 4, 5], scale=2.0)], [T(0), 0])
        case(g, op, "7x13_dim1", [inp([7, 13], scale=2.0)], [T(0), 1])
        case(g, op, "permuted_dim1", [inp([3, 4, 5], scale=2.0, permute=[2, 0, 1])], [T(0), 1])
        case(g, op, "size1_dim", [inp([3, 1, 4])], [T(0), 1])
        case(g, op, "large_values", [inp([2, 3], values=np.array([[100.0, 101.0, 99.0], [-50.0, -49.5, -52.0]],
                                                                 np.float32))], [T(0), -1])
    case(g, "cumsum", "dim0", [inp([7, 13])], [T(0), 0])
    case(g, "cumsum", "dim_minus1", [inp([3, 4, 5])], [T(0), -1])
    case(g, "cumsum", "dim1_3d", [inp([3, 4, 5])], [T(0), 1])
    case(g, "cumsum", "permuted", [inp([3, 4, 5], permute=[1, 2, 0])], [T(0), 2])
    case(g, "cumsum", "1d", [inp([9])], [T(0), 0])


# ---------------------------------------------------------------------------------------------- matmul

def matmul_cases():
    g = "matmul"
    mm = [
        ("1d_1d", [5], [5], {}),
        ("1d_2d", [4], [4, 3], {}),
        ("2d_1d", [3, 4], [4], {}),
        ("2d_7x13_13x5", [7, 13], [13, 5], {}),
        ("batched_3d_2d", [2, 3, 4], [4, 5], {}),
        ("batched_2d_3d", [3, 4], [2, 4, 5], {}),
        ("batched_broadcast", [2, 1, 3, 4], [3, 4, 5], {}),
        ("batched_1d_3d", [4], [2, 4, 3], {}),
        ("batched_3d_1d", [2, 3, 4], [4], {}),
        ("size1_dims", [1, 1, 4], [1, 4, 1], {}),
        ("transposed_a", [4, 3], [4, 5], {"pa": [1, 0]}),
        ("transposed_b", [3, 4], [5, 4], {"pb": [1, 0]}),
        ("permuted_batched", [3, 2, 4], [2, 4, 5], {"pa": [1, 0, 2]}),
        ("b_nograd", [3, 4], [4, 2], {"rgb": False}),
    ]
    for name, sa, sb, kw in mm:
        case(g, "matmul", name, [inp(sa, permute=kw.get("pa")), inp(sb, permute=kw.get("pb"), rg=kw.get("rgb"))],
             [T(0), T(1)])
    # F.linear: x @ weightᵀ + bias
    case(g, "linear", "bias_2d", [inp([7, 13]), inp([5, 13]), inp([5])], [T(0), T(1), T(2)])
    case(g, "linear", "no_bias_3d", [inp([2, 3, 4]), inp([6, 4])], [T(0), T(1)])
    case(g, "linear", "permuted_input", [inp([4, 3, 2], permute=[2, 1, 0]), inp([5, 4]), inp([5])], [T(0), T(1), T(2)])
    case(g, "linear", "1d_input", [inp([4]), inp([3, 4]), inp([3])], [T(0), T(1), T(2)])


# ---------------------------------------------------------------------------------------------- nn

def nn_cases():
    g = "nn"
    x = lambda *s, **kw: inp(list(s), **kw)  # noqa: E731
    case(g, "conv2d", "basic_bias", [x(2, 3, 7, 9), x(4, 3, 3, 3), x(4)], [T(0), T(1), T(2)])
    case(g, "conv2d", "stride2_pad1", [x(2, 3, 7, 9), x(4, 3, 3, 3), x(4)], [T(0), T(1), T(2), {"stride": 2, "padding": 1}])
    case(g, "conv2d", "stride_pad_tuples", [x(1, 2, 7, 13), x(3, 2, 3, 5), x(3)],
         [T(0), T(1), T(2), {"stride": [2, 1], "padding": [1, 2]}])
    case(g, "conv2d", "padding_same_odd_kernel", [x(1, 2, 6, 7), x(3, 2, 3, 5), x(3)],
         [T(0), T(1), T(2), {"padding": "same"}])
    case(g, "conv2d", "padding_same_even_kernel", [x(1, 2, 6, 7), x(3, 2, 2, 4), x(3)],
         [T(0), T(1), T(2), {"padding": "same"}])
    case(g, "conv2d", "padding_same_dilation2", [x(1, 2, 7, 7), x(2, 2, 3, 3), x(2)],
         [T(0), T(1), T(2), {"padding": "same", "dilation": 2}])
    case(g, "conv2d", "padding_valid", [x(1, 2, 6, 7), x(3, 2, 3, 3), x(3)], [T(0), T(1), T(2), {"padding": "valid"}])
    case(g, "conv2d", "dilation2", [x(1, 2, 9, 9), x(2, 2, 3, 3), x(2)], [T(0), T(1), T(2), {"dilation": 2}])
    case(g, "conv2d", "groups2", [x(1, 4, 6, 6), x(6, 2, 3, 3), x(6)], [T(0), T(1), T(2), {"groups": 2, "padding": 1}])
    case(g, "conv2d", "depthwise", [x(1, 3, 5, 5), x(3, 1, 3, 3)], [T(0), T(1), None, {"groups": 3}])
    case(g, "conv2d", "no_bias_null", [x(2, 2, 5, 6), x(3, 2, 3, 3)], [T(0), T(1), None, {"padding": 1}])
    case(g, "conv2d", "no_bias_omitted", [x(1, 2, 5, 6), x(3, 2, 2, 2)], [T(0), T(1)])
    case(g, "conv2d", "kernel_1x1", [x(2, 3, 4, 5), x(4, 3, 1, 1), x(4)], [T(0), T(1), T(2)])
    case(g, "conv2d", "permuted_input", [x(2, 7, 9, 3, permute=[0, 3, 1, 2]), x(4, 3, 3, 3), x(4)],
         [T(0), T(1), T(2), {"padding": 1}])
    case(g, "conv2d", "x_nograd", [x(1, 2, 5, 5, rg=False), x(2, 2, 3, 3), x(2)], [T(0), T(1), T(2)])

    d = dict(kind="distinct")
    case(g, "maxPool2d", "k2", [x(2, 3, 8, 8, **d)], [T(0), 2], distinct_check)
    case(g, "maxPool2d", "k3_s2_p1", [x(1, 2, 7, 9, **d)], [T(0), 3, {"stride": 2, "padding": 1}], distinct_check)
    case(g, "maxPool2d", "k3_s1_overlap", [x(1, 1, 5, 6, **d)], [T(0), 3, {"stride": 1}], distinct_check)
    case(g, "maxPool2d", "kernel_stride_tuples", [x(1, 2, 7, 13, **d)], [T(0), [2, 3], {"stride": [1, 2]}],
         distinct_check)
    case(g, "maxPool2d", "dilation2", [x(1, 2, 9, 9, **d)], [T(0), 2, {"stride": 2, "dilation": 2}], distinct_check)
    case(g, "maxPool2d", "odd_floor", [x(1, 1, 7, 13, **d)], [T(0), 2], distinct_check)
    case(g, "avgPool2d", "k2", [x(2, 3, 8, 8)], [T(0), 2])
    case(g, "avgPool2d", "k3_s2_p1_include_pad", [x(1, 2, 7, 9)], [T(0), 3, {"stride": 2, "padding": 1}])
    case(g, "avgPool2d", "k3_s2_p1_exclude_pad", [x(1, 2, 7, 9)],
         [T(0), 3, {"stride": 2, "padding": 1, "countIncludePad": False}])
    case(g, "avgPool2d", "kernel_tuple_7x13", [x(1, 2, 7, 13)], [T(0), [3, 2]])
    case(g, "adaptiveAvgPool2d", "7x13_to_3x5", [x(2, 2, 7, 13)], [T(0), [3, 5]])
    case(g, "adaptiveAvgPool2d", "to_1", [x(2, 3, 5, 6)], [T(0), 1])
    case(g, "adaptiveAvgPool2d", "upsample_4x6_from_3x4", [x(1, 2, 3, 4)], [T(0), [4, 6]])
    case(g, "adaptiveAvgPool2d", "identity", [x(1, 2, 4, 5)], [T(0), [4, 5]])
    case(g, "interpolate", "bilinear_size", [x(1, 2, 3, 4)], [T(0), {"size": [5, 7], "mode": "bilinear"}])
    case(g, "interpolate", "bilinear_size_align_corners", [x(1, 2, 3, 4)],
         [T(0), {"size": [5, 7], "mode": "bilinear", "alignCorners": True}])
    case(g, "interpolate", "bilinear_scale2", [x(2, 1, 3, 4)], [T(0), {"scaleFactor": 2, "mode": "bilinear"}])
    case(g, "interpolate", "bilinear_downsample", [x(1, 2, 7, 13)], [T(0), {"size": [3, 5], "mode": "bilinear"}])
    case(g, "interpolate", "bilinear_downsample_align_corners", [x(1, 1, 7, 13)],
         [T(0), {"size": [3, 5], "mode": "bilinear", "alignCorners": True}])
    case(g, "interpolate", "nearest_scale2", [x(1, 2, 3, 4)], [T(0), {"scaleFactor": 2, "mode": "nearest"}])
    case(g, "interpolate", "nearest_scale_tuple", [x(1, 1, 3, 4)], [T(0), {"scaleFactor": [2, 3], "mode": "nearest"}])
    case(g, "interpolate", "nearest_size", [x(1, 2, 3, 4)], [T(0), {"size": [5, 7], "mode": "nearest"}])
    case(g, "interpolate", "nearest_downsample", [x(1, 1, 7, 13)], [T(0), {"size": [3, 5], "mode": "nearest"}])
    case(g, "interpolate", "bilinear_permuted", [x(1, 3, 4, 2, permute=[0, 3, 1, 2])],
         [T(0), {"size": 6, "mode": "bilinear"}])


def main():
    shape_cases()
    binary_cases()
    compare_cases()
    unary_cases()
    reduce_cases()
    matmul_cases()
    nn_cases()
    missing = set(OPS) - {c["op"] for c in CASES}
    assert not missing, f"ops without cases: {sorted(missing)}"
    doc = {"version": 1, "generator": "tools/gen_op_fixtures.py", "torch": torch.__version__, "cases": CASES}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    text = json.dumps(doc, separators=(",", ":"))
    with open(OUT, "w") as f:
        f.write(text + "\n")
    print(f"{len(CASES)} cases, {len(text) / 1e6:.3f} MB -> {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
