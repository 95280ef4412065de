#!/usr/bin/env python3
"""Writes a reduced copy of an official block fixture (../shared/official/<name>.safetensors).

Python 3 standard library only. The copy keeps every `input.*`, `param.*`, `output.*`, `upstream.*`,
`grad.input.*` entry and `loss`, and only the `grad.param.*` entries of a handful of parameters: every 1-D
parameter (biases, norm weights) plus the weights named with --keep (default: `conv1.weight`, the first conv).
Float tensors are written as F32 (F64 entries are narrowed); int64 entries are copied as they are. The
header's `__metadata__.fixture` JSON gets a `reduced_from` field listing what was dropped.

Usage:
  /usr/bin/python3 tools/reduce_official_fixture.py NAME [--src ../shared/official] \
      [--dst tests/fixtures/official] [--keep KEY ...] [--max-mb 3]

Exits with status 2 (writing nothing) when the copy would exceed --max-mb. Note: a fixture's parameters alone
set a floor on its size (MFF_OCE: 1.45 M float32 parameters = 5.8 MB), and float32 draws do not compress.
"""

import argparse
import json
import os
import struct
import sys


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for key, info in header.items():
        a, b = info["data_offsets"]
        tensors[key] = (info["dtype"], info["shape"], raw[base + a : base + b])
    return meta, tensors


def f64_to_f32(data):
    count = len(data) // 8
    return struct.pack("<%df" % count, *struct.unpack("<%dd" % count, data))


def write_safetensors(path, meta, tensors):
    # 8-byte tensors first so every tensor starts at a multiple of its element size (as the official files)
    order = sorted(tensors, key=lambda k: 0 if tensors[k][0] in ("I64", "F64") else 1)
    header = {"__metadata__": meta}
    offset = 0
    for key in order:
        dtype, shape, data = tensors[key]
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for key in order:
            f.write(tensors[key][2])
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--src", default=os.path.join(here, "..", "..", "shared", "official"))
    ap.add_argument("--dst", default=os.path.join(here, "..", "tests", "fixtures", "official"))
    ap.add_argument("--keep", nargs="*", default=["conv1.weight"], help="parameter keys whose gradient is kept")
    ap.add_argument("--max-mb", type=float, default=3.0)
    args = ap.parse_args()

    meta, tensors = read_safetensors(os.path.join(args.src, args.name + ".safetensors"))
    out, dropped = {}, []
    for key, (dtype, shape, data) in tensors.items():
        if key.startswith("grad.param."):
            pkey = key[len("grad.param.") :]
            if len(shape) != 1 and pkey not in args.keep:
                dropped.append(key)
                continue
        if dtype == "F64":
            dtype, data = "F32", f64_to_f32(data)
        out[key] = (dtype, shape, data)

    if "fixture" in meta:
        fx = json.loads(meta["fixture"])
        fx["reduced_from"] = {
            "file": args.name + ".safetensors",
            "kept_grad_params": sorted(k[len("grad.param.") :] for k in out if k.startswith("grad.param.")),
            "dropped": dropped,
            "tool": "tools/reduce_official_fixture.py",
        }
        meta = dict(meta, fixture=json.dumps(fx))

    size = sum(len(t[2]) for t in out.values())
    if size > args.max_mb * 1e6:
        params = sum(len(t[2]) for k, t in out.items() if k.startswith("param."))
        print(
            f"{args.name}: the reduced copy would be {size / 1e6:.2f} MB > {args.max_mb} MB "
            f"(its param.* entries alone are {params / 1e6:.2f} MB); nothing written",
            file=sys.stderr,
        )
        sys.exit(2)
    os.makedirs(args.dst, exist_ok=True)
    dst = os.path.join(args.dst, args.name + ".safetensors")
    write_safetensors(dst, meta, out)
    print(f"{dst}: {os.path.getsize(dst) / 1e6:.2f} MB, {len(out)} entries, {len(dropped)} gradients dropped")


if __name__ == "__main__":
    main()
