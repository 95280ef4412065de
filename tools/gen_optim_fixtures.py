#!/usr/bin/python3
"""Generates the optimiser, LR-schedule and gradient-clipping fixtures, tests/fixtures/optim.json, with PyTorch
(1.13, float32, CPU, the default single-tensor optimiser code paths).

Run from the repository root:  /usr/bin/python3 tools/gen_optim_fixtures.py
The output is deterministic (torch.manual_seed(0); single-threaded torch).

File format (JSON)::

    {
      "version": 1,
      "generator": "tools/gen_optim_fixtures.py",
      "torch": "<torch version>",
      "optimizers": [OptCase, ...],
      "schedules": [ScheduleCase, ...],
      "clip": [ClipCase, ...]
    }

    OptCase = {
      "name": "adam/amsgrad",
      "optimizer": "sgd" | "adam" | "adamw",
      "groups": [{"params": [i, ...], <camelCase options of that group>}, ...],
      "defaults": {<camelCase options>},             the optimiser's constructor options
      "params": [Tensor, ...],                       initial values of every parameter (groups index into this)
      "grads": [[Tensor | null, ...], ...],          per step (3), per parameter (null: that parameter has no grad)
      "after": {"1": [Tensor, ...], "3": [Tensor, ...]}   parameters after 1 and after 3 steps
    }

    ScheduleCase = {
      "name": "steplr", "kind": "StepLR" | "MultiStepLR" | "CosineAnnealingLR" | "TimmStepLR" | "LinearWarmup",
      "options": {...},                              camelCase options of the TypeScript class
      "main": {"kind": ..., "options": {...}},       LinearWarmup only: the wrapped schedule
      "baseLrs": [lr, ...],                          one per param group
      "lrs": [[lr, ...], ...],                       getLastLr() after construction and after each of 30 step()s
      "exact": true | false,                         whether lrs must match bit for bit
      "closedForm": [[lr, ...], ...]                 CosineAnnealingLR only: torch's _get_closed_form_lr per step
    }

    ClipCase = {
      "name": ..., "maxNorm": number, "normType": number | "inf",
      "grads": [Tensor | null, ...], "clipped": [Tensor | null, ...], "totalNorm": number (float32 value)
    }

    Tensor = {"shape": [...], "values": base64 of little-endian float32, row-major}

Learning rates are host numbers (float64) and JSON keeps them exactly. The step-type schedules (StepLR, MultiStepLR) are
recorded from torch's chainable step() (what a training loop sees); CosineAnnealingLR's chainable form accumulates
rounding, so its case also stores torch's closed form, which the TypeScript schedule reproduces bit for bit. timm is not
installed here: TimmStepLR and LinearWarmup follow timm's StepLRScheduler._get_lr, transcribed below.
"""

import base64
import json
import math
import os
import sys

import numpy as np
import torch

torch.manual_seed(0)
torch.set_num_threads(1)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "optim.json")
SHAPES = [[5, 3], [7]]
STEPS = 3


def enc(t):
    a = t.detach().contiguous().numpy().astype("<f4")
    return {"shape": list(t.shape), "values": base64.b64encode(a.tobytes()).decode("ascii")}


# --------------------------------------------------------------------------------------------------
# optimisers
# --------------------------------------------------------------------------------------------------

SNAKE = {"weightDecay": "weight_decay"}


def torch_opts(opts):
    out = {}
    for k, v in opts.items():
        out[SNAKE.get(k, k)] = tuple(v) if k == "betas" else v
    return out


CTORS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def opt_case(name, kind, defaults, groups=None, missing_grad=None):
    """groups: list of (param indices, per-group options); default one group with every parameter.
    missing_grad: (step, param index) pairs where that parameter gets no grad."""
    missing_grad = set(missing_grad or [])
    params = [torch.randn(s) for s in SHAPES]
    init = [enc(p) for p in params]
    grads = [[None if (k, i) in missing_grad else torch.randn(s) * 0.5 for i, s in enumerate(SHAPES)]
             for k in range(STEPS)]
    groups = groups or [(list(range(len(SHAPES))), {})]
    leaves = [p.clone().requires_grad_(True) for p in params]
    opt = CTORS[kind]([dict(params=[leaves[i] for i in idx], **torch_opts(o)) for idx, o in groups],
                      **torch_opts(defaults))
    after = {}
    for k in range(STEPS):
        for leaf, g in zip(leaves, grads[k]):
            leaf.grad = None if g is None else g.clone()
        opt.step()
        if k + 1 in (1, 3):
            after[str(k + 1)] = [enc(p) for p in leaves]
    return {
        "name": name,
        "optimizer": kind,
        "defaults": defaults,
        "groups": [dict(params=idx, **o) for idx, o in groups],
        "params": init,
        "grads": [[None if g is None else enc(g) for g in gs] for gs in grads],
        "after": after,
    }


def optimizer_cases():
    cases = []
    cases.append(opt_case("sgd/plain", "sgd", {"lr": 0.1}))
    cases.append(opt_case("sgd/momentum", "sgd", {"lr": 0.05, "momentum": 0.9}))
    cases.append(opt_case("sgd/momentum_dampening", "sgd", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3}))
    cases.append(opt_case("sgd/nesterov", "sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True}))
    cases.append(opt_case("sgd/weight_decay", "sgd", {"lr": 0.1, "momentum": 0.5, "weightDecay": 0.01}))
    cases.append(opt_case("sgd/maximize", "sgd", {"lr": 0.1, "momentum": 0.9, "maximize": True}))
    cases.append(opt_case("adam/plain", "adam", {"lr": 0.01}))
    cases.append(opt_case("adam/weight_decay", "adam", {"lr": 0.01, "betas": [0.8, 0.99], "weightDecay": 0.1}))
    cases.append(opt_case("adam/amsgrad", "adam", {"lr": 0.01, "amsgrad": True, "eps": 1e-6}))
    cases.append(opt_case("adam/maximize", "adam", {"lr": 0.01, "maximize": True}))
    cases.append(opt_case("adamw/plain", "adamw", {"lr": 0.01}))
    cases.append(opt_case("adamw/paper", "adamw",
                          {"lr": 0.005, "betas": [0.9, 0.999], "eps": 1e-8, "weightDecay": 1e-4}))
    cases.append(opt_case("adamw/amsgrad", "adamw", {"lr": 0.01, "weightDecay": 0.05, "amsgrad": True}))
    # two groups with their own lr and weight decay (param 1 is 1-D: the recipe's no-decay group)
    cases.append(opt_case("adamw/groups", "adamw", {"lr": 0.005, "weightDecay": 1e-4},
                          groups=[([1], {"weightDecay": 0.0}), ([0], {"lr": 0.02, "weightDecay": 0.1})]))
    cases.append(opt_case("sgd/groups", "sgd", {"lr": 0.1, "momentum": 0.9},
                          groups=[([0], {}), ([1], {"lr": 0.01, "weightDecay": 0.5, "momentum": 0.0})]))
    # a parameter without a grad at a step is skipped (its state does not advance)
    cases.append(opt_case("adam/missing_grad", "adam", {"lr": 0.01}, missing_grad=[(0, 1), (2, 0)]))
    cases.append(opt_case("sgd/missing_grad", "sgd", {"lr": 0.1, "momentum": 0.9}, missing_grad=[(1, 0)]))
    return cases


# --------------------------------------------------------------------------------------------------
# schedules
# --------------------------------------------------------------------------------------------------

SCHED_STEPS = 30


def torch_schedule(base_lrs, make):
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in base_lrs]
    opt = torch.optim.SGD(groups, lr=base_lrs[0])
    sched = make(opt)
    lrs = [list(sched.get_last_lr())]
    closed = [list(sched._get_closed_form_lr())] if hasattr(sched, "_get_closed_form_lr") else None
    for _ in range(SCHED_STEPS):
        opt.step()
        sched.step()
        lrs.append(list(sched.get_last_lr()))
        if closed is not None:
            closed.append(list(sched._get_closed_form_lr()))
    return lrs, closed


def timm_step_lr(base, t, decay_t, decay_rate, warmup_t=0, warmup_lr_init=0.0):
    """timm.scheduler.StepLRScheduler._get_lr (timm 0.9), one group."""
    if t < warmup_t:
        warmup_step = (base - warmup_lr_init) / warmup_t
        return warmup_lr_init + t * warmup_step
    return base * (decay_rate ** (t // decay_t))


def schedule_cases():
    lr_sched = torch.optim.lr_scheduler
    cases = []
    base = [0.005, 0.02]

    lrs, _ = torch_schedule(base, lambda o: lr_sched.StepLR(o, step_size=7, gamma=0.1))
    cases.append({"name": "steplr", "kind": "StepLR", "options": {"stepSize": 7, "gamma": 0.1},
                  "baseLrs": base, "lrs": lrs, "exact": True})
    lrs, _ = torch_schedule(base, lambda o: lr_sched.StepLR(o, step_size=4, gamma=0.7))
    cases.append({"name": "steplr_0.7", "kind": "StepLR", "options": {"stepSize": 4, "gamma": 0.7},
                  "baseLrs": base, "lrs": lrs, "exact": True})
    lrs, _ = torch_schedule(base, lambda o: lr_sched.MultiStepLR(o, milestones=[3, 10, 10, 21], gamma=0.3))
    cases.append({"name": "multisteplr", "kind": "MultiStepLR", "options": {"milestones": [3, 10, 10, 21], "gamma": 0.3},
                  "baseLrs": base, "lrs": lrs, "exact": True})
    for t_max, eta_min in [(30, 0.0), (12, 1e-4)]:
        lrs, closed = torch_schedule(base, lambda o: lr_sched.CosineAnnealingLR(o, T_max=t_max, eta_min=eta_min))
        cases.append({"name": f"cosine_T{t_max}_eta{eta_min}", "kind": "CosineAnnealingLR",
                      "options": {"tMax": t_max, "etaMin": eta_min}, "baseLrs": base, "lrs": lrs, "exact": False,
                      "closedForm": closed})
    # timm StepLR as in the recipe: decay_t = int(0.8 * epochs) * iters/epoch, rate 0.1, warmup 0
    for name, decay_t, rate, warmup_t, warmup_init in [("timm_steplr", 24, 0.1, 0, 0.0),
                                                       ("timm_steplr_multi", 8, 0.1, 0, 0.0),
                                                       ("timm_steplr_warmup", 10, 0.5, 5, 1e-4)]:
        lrs = [[timm_step_lr(b, t, decay_t, rate, warmup_t, warmup_init) for b in base]
               for t in range(SCHED_STEPS + 1)]
        options = {"decayT": decay_t, "decayRate": rate}
        if warmup_t:
            options.update({"warmupT": warmup_t, "warmupLrInit": warmup_init})
        cases.append({"name": name, "kind": "TimmStepLR", "options": options, "baseLrs": base, "lrs": lrs,
                      "exact": True})
    # LinearWarmup over timm StepLR ("overlay", timm's own warmup) equals timm's warmup_t/warmup_lr_init
    lrs = [[timm_step_lr(b, t, 10, 0.5, 5, 1e-4) for b in base] for t in range(SCHED_STEPS + 1)]
    cases.append({"name": "warmup_overlay_timm", "kind": "LinearWarmup",
                  "options": {"warmupSteps": 5, "warmupLrInit": 1e-4, "mode": "overlay"},
                  "main": {"kind": "TimmStepLR", "options": {"decayT": 10, "decayRate": 0.5}},
                  "baseLrs": base, "lrs": lrs, "exact": True})
    # "sequential": warmup for 4 steps, then StepLR counted from the end of the warmup (torch SequentialLR order)
    main, _ = torch_schedule(base, lambda o: lr_sched.StepLR(o, step_size=6, gamma=0.5))
    lrs = [[0.0 + t * ((b - 0.0) / 4) for b in base] for t in range(4)] + main[:SCHED_STEPS + 1 - 4]
    cases.append({"name": "warmup_sequential_steplr", "kind": "LinearWarmup",
                  "options": {"warmupSteps": 4, "warmupLrInit": 0.0, "mode": "sequential"},
                  "main": {"kind": "StepLR", "options": {"stepSize": 6, "gamma": 0.5}},
                  "baseLrs": base, "lrs": lrs, "exact": True})
    return cases


# --------------------------------------------------------------------------------------------------
# clip_grad_norm_
# --------------------------------------------------------------------------------------------------

def clip_case(name, max_norm, norm_type, scale, with_none=False):
    grads = [torch.randn(s) * scale for s in SHAPES + [[2, 3, 2]]]
    if with_none:
        grads[1] = None
    leaves = [torch.zeros(s, requires_grad=True) for s in SHAPES + [[2, 3, 2]]]
    for leaf, g in zip(leaves, grads):
        leaf.grad = None if g is None else g.clone()
    total = torch.nn.utils.clip_grad_norm_(leaves, max_norm, norm_type)
    return {
        "name": name, "maxNorm": max_norm, "normType": "inf" if norm_type == math.inf else norm_type,
        "grads": [None if g is None else enc(g) for g in grads],
        "clipped": [None if leaf.grad is None else enc(leaf.grad) for leaf in leaves],
        "totalNorm": float(total),
    }


def clip_cases():
    return [
        clip_case("l2_clipped", 5.0, 2.0, 3.0),
        clip_case("l2_unclipped", 5.0, 2.0, 0.1),
        clip_case("l2_with_missing_grad", 1.0, 2.0, 1.0, with_none=True),
        clip_case("l1", 2.0, 1.0, 1.0),
        clip_case("inf", 0.5, math.inf, 1.0),
        clip_case("l3", 1.5, 3.0, 1.0),
    ]


def main():
    doc = {"version": 1, "generator": "tools/gen_optim_fixtures.py", "torch": torch.__version__,
           "optimizers": optimizer_cases(), "schedules": schedule_cases(), "clip": clip_cases()}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    text = json.dumps(doc, separators=(",", ":"))
    with open(OUT, "w") as f:
        f.write(text + "\n")
    print(f"{len(doc['optimizers'])} optimiser, {len(doc['schedules'])} schedule, {len(doc['clip'])} clip cases, "
          f"{len(text) / 1e3:.1f} kB -> {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
