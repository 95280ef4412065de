#!/usr/bin/python3
"""Generates the weight-file fixtures of tests/io_test.ts in tests/fixtures/io/ (PyTorch 1.13).

Run from the repository root:  /usr/bin/python3 tools/gen_io_fixtures.py
(safetensors files are written by the `safetensors` Python package when it is importable, e.g. with
PYTHONPATH pointing at an unpacked wheel; otherwise by the hand-written writer below, which follows the
format spec and the package's ordering rules.) Output is deterministic (torch.manual_seed(0)).

Files (all small, < 1 MB together):

  pth/dtypes.pth           dict: one tensor per storage type (float, double, half, bfloat16, long, int,
                           short, char, byte, bool), with -0, inf, nan, subnormals, int32 limits
  pth/views.pth            dict of views of one shared storage: transposed, step slices, offsets,
                           a 0-d element, a stride-0 expand, an empty slice, plus the base itself
  pth/parameter.pth        dict of nn.Parameters (requires_grad True and False)
  pth/state_dict.pth       an nn.Module state_dict: OrderedDict with `_metadata` (set by BUILD)
  pth/checkpoint.pth       nested checkpoint {"state_dict": ..., "epoch": 3, ...} with non-tensor values
  pth/repacked.pth         views.pth + dtypes records re-zipped by hand: top folder "my_model", no alignment
                           (float32 records at offsets not divisible by 4: the copy path)
  pth/zip64.pth            dtypes.pth re-zipped with zip64 records everywhere, top folder "z64"
  pth/int64_overflow.pth   a long tensor holding 2**40 (must be refused: int64 is loaded as int32)
  bad/legacy.pth           torch.save(..., _use_new_zipfile_serialization=False)
  bad/forbidden_global.pth a zip made by hand whose data.pkl references os.system
  bad/compressed.pth       dtypes.pth re-zipped with deflate (torch.save never compresses)
  st/dtypes.safetensors    F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL tensors (+ a scalar, an empty tensor),
                           __metadata__ {"format": "pt", "note": ...}
  st/empty.safetensors     no tensors, no metadata
  bad/i64_overflow.safetensors  an I64 tensor holding -2**40
  expected.json            the expected loaded value of every fixture, in the tagged encoding below

Tagged encoding of loaded values (tests/io_test.ts turns what it loads into the same form):
  tensor      {"$tensor": {"dtype": "float32"|"int32"|"bool", "shape": [...], "source": <file dtype>,
                           "values": [...]}}   values flattened row-major after conversion to the loaded
                           dtype (float32 values as exact doubles, "nan"/"inf"/"-inf" as strings, bool 0/1)
  dict        {"$dict": [[key, value], ...]} (+ "$class": "collections.OrderedDict", + "$attrs": {...})
  tuple/list  [...]
  bytes       {"$bytes": [..]};  int beyond 2**53: {"$int": "<decimal>"};  float nan/inf: {"$float": "nan"}
"""
import collections
import io
import json
import math
import os
import pickle
import struct
import sys
import zipfile
import zlib

import torch

OUT = os.path.join("tests", "fixtures", "io")

try:
    from safetensors.torch import save_file as st_save_file  # type: ignore
except Exception:  # pragma: no cover - depends on the machine
    st_save_file = None

LOADED = {
    torch.float32: ("float32", "float32"), torch.float64: ("float32", "float64"),
    torch.float16: ("float32", "float16"), torch.bfloat16: ("float32", "bfloat16"),
    torch.int64: ("int32", "int64"), torch.int32: ("int32", "int32"), torch.int16: ("int32", "int16"),
    torch.int8: ("int32", "int8"), torch.uint8: ("int32", "uint8"), torch.bool: ("bool", "bool"),
}
ST_NAME = {
    torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


def num(x):
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
    return x


def enc_tensor(t, source=None):
    dtype, src = LOADED[t.dtype]
    if dtype == "float32":
        vals = t.detach().to(torch.float32).flatten().tolist()
    else:
        vals = [int(v) for v in t.detach().to(torch.int64).flatten().tolist()]
    return {"$tensor": {"dtype": dtype, "shape": list(t.shape), "source": source or src,
                        "values": [num(v) for v in vals]}}


def enc(v):
    if isinstance(v, torch.Tensor):
        return enc_tensor(v)
    if isinstance(v, dict):
        out = {"$dict": [[enc(k), enc(x)] for k, x in v.items()]}
        if isinstance(v, collections.OrderedDict):
            out["$class"] = "collections.OrderedDict"
            meta = getattr(v, "_metadata", None)
            if meta is not None:
                out["$attrs"] = {"_metadata": enc(meta)}
        return out
    if isinstance(v, (list, tuple)):
        return [enc(x) for x in v]
    if isinstance(v, (set, frozenset)):
        return {"$set": sorted(enc(x) for x in v)}
    if isinstance(v, bytes):
        return {"$bytes": list(v)}
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return v if abs(v) <= 2**53 - 1 else {"$int": str(v)}
    if isinstance(v, float):
        return v if math.isfinite(v) else {"$float": num(v)}
    raise TypeError(type(v))


# ---------------------------------------------------------------------------------------------------
# A small zip writer (stored entries) with control over alignment, zip64 and compression.

def write_zip(path, entries, align=1, zip64=False, deflate=False, lead=b""):
    """entries: [(name, bytes)]. align>1 pads local extra fields so data starts at multiples of align."""
    buf = bytearray(lead)
    central = []
    for name, data in entries:
        nb = name.encode()
        crc = zlib.crc32(data) & 0xFFFFFFFF
        payload = data
        method = 0
        if deflate:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            payload = c.compress(data) + c.flush()
            method = 8
        offset = len(buf)
        extra = b""
        if zip64:
            extra = struct.pack("<HHQQ", 1, 16, len(data), len(payload))
        if align > 1:
            base = offset + 30 + len(nb) + len(extra)
            pad = (-(base + 4)) % align
            extra += struct.pack("<HH", 0x4246, pad) + b"Z" * pad  # same idea as PyTorch's "FB" padding
        csize = 0xFFFFFFFF if zip64 else len(payload)
        usize = 0xFFFFFFFF if zip64 else len(data)
        buf += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if zip64 else 20, 0, method, 0, 0x21, crc, csize, usize,
                           len(nb), len(extra))
        buf += nb + extra + payload
        central.append((nb, crc, len(payload), len(data), offset, method))
    cd_start = len(buf)
    for nb, crc, csz, usz, off, method in central:
        if zip64:
            extra = struct.pack("<HHQQQ", 1, 24, usz, csz, off)
            buf += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, method, 0, 0x21, crc, 0xFFFFFFFF,
                               0xFFFFFFFF, len(nb), len(extra), 0, 0, 0, 0, 0xFFFFFFFF)
        else:
            extra = b""
            buf += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, csz, usz, len(nb),
                               0, 0, 0, 0, 0, off)
        buf += nb + extra
    cd_size = len(buf) - cd_start
    n = len(central)
    if zip64:
        rec = len(buf)
        buf += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, cd_size, cd_start)
        buf += struct.pack("<IIQI", 0x07064B50, 0, rec, 1)
        buf += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    else:
        buf += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, cd_size, cd_start, 0)
    with open(path, "wb") as f:
        f.write(bytes(buf))
    return bytes(buf)


def zip_records(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def rename_top(records, top):
    return [(top + "/" + name.split("/", 1)[1], data) for name, data in records]


# ---------------------------------------------------------------------------------------------------
# Safetensors: the package when present, else a writer following the spec and the package's order rules.

ST_ORDER = ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64"]


def st_write(path, tensors, metadata=None):
    if st_save_file is not None:
        st_save_file(tensors, path, metadata=metadata)
        return
    items = sorted(tensors.items(), key=lambda kv: (-ST_ORDER.index(ST_NAME[kv[1].dtype]), kv[0]))
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    blobs = []
    off = 0
    for name, t in items:
        t = t.contiguous()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().tobytes()
        else:
            raw = t.numpy().tobytes()
        header[name] = {"dtype": ST_NAME[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---------------------------------------------------------------------------------------------------

class Evil:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    for sub in ("pth", "st", "bad"):
        os.makedirs(os.path.join(OUT, sub), exist_ok=True)
    expected = {"pth": {}, "safetensors": {}, "errors": {}}

    def save_pth(name, obj, **kw):
        path = os.path.join(OUT, "pth", name)
        torch.save(obj, path, **kw)
        expected["pth"]["pth/" + name] = enc(obj)
        return path

    floats = [0.0, -0.0, 1.0, -2.5, 3.140625, 1e-3, 65504.0, 6e-8, -1e-5, float("inf"), float("-inf"),
              float("nan")]
    dtypes = {
        "float32": torch.tensor(floats + [1e-40, 3.4e38], dtype=torch.float32).reshape(2, 7),
        "float64": torch.tensor(floats + [1e-300, 0.1], dtype=torch.float64).reshape(7, 2),
        "float16": torch.tensor(floats + [5.96e-8, -65504.0], dtype=torch.float16),
        "bfloat16": torch.tensor(floats + [1e38, -3e-39], dtype=torch.bfloat16).reshape(2, 1, 7),
        "int64": torch.tensor([0, 1, -1, 2**31 - 1, -2**31, 123456789], dtype=torch.int64).reshape(3, 2),
        "int32": torch.tensor([0, 7, -7, 2**31 - 1, -2**31], dtype=torch.int32),
        "int16": torch.tensor([0, 300, -300, 32767, -32768], dtype=torch.int16),
        "int8": torch.tensor([0, 5, -5, 127, -128], dtype=torch.int8),
        "uint8": torch.tensor([0, 1, 128, 255], dtype=torch.uint8).reshape(2, 2),
        "bool": torch.tensor([True, False, False, True, True], dtype=torch.bool),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
    }
    dtypes_path = save_pth("dtypes.pth", dtypes)

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) * 0.5 - 3
    views = {
        "base": base,
        "transposed": base.t(),
        "step": base[:, ::2],
        "step_rows": base[::3, 1::2],
        "row": base[2],
        "col": base[:, 3],
        "narrow": base[1:3, 2:5],
        "element": base[3, 4],
        "expanded": base[1:2, :].expand(3, 6),
        "empty": base[:0],
        "permuted3d": base.reshape(2, 3, 4).permute(2, 0, 1),
        "long_view": torch.arange(10, dtype=torch.int64)[2:9:3],
    }
    assert not views["transposed"].is_contiguous() and not views["step"].is_contiguous()
    views_path = save_pth("views.pth", views)

    params = {
        "weight": torch.nn.Parameter(torch.randn(3, 4)),
        "frozen": torch.nn.Parameter(torch.arange(4, dtype=torch.float32), requires_grad=False),
    }
    torch.save(params, os.path.join(OUT, "pth", "parameter.pth"))
    expected["pth"]["pth/parameter.pth"] = enc({k: v.data for k, v in params.items()})

    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].num_batches_tracked += 7
    sd = net.state_dict()
    assert hasattr(sd, "_metadata")
    save_pth("state_dict.pth", sd)

    checkpoint = {
        "state_dict": sd,
        "epoch": 3,
        "lr": 0.001,
        "name": "smallnet é",
        "history": [1.5, 0.75, float("nan")],
        "flags": (True, False, None),
        "big": 2**62,
        "neg": -5,
        "blob": b"\x00\x01ab\xff",
        "optimizer": {"step": 10, "betas": (0.9, 0.999)},
        "nested": {"a": {"b": [1, 2, {"c": "d"}]}, 7: "int key"},
    }
    save_pth("checkpoint.pth", checkpoint)

    over = torch.tensor([1, 2**40, 3], dtype=torch.int64)
    torch.save({"ids": over}, os.path.join(OUT, "pth", "int64_overflow.pth"))
    expected["errors"]["pth/int64_overflow.pth"] = "1099511627776.*does not fit in int32"

    # re-zipped variants of real torch.save archives
    recs = zip_records(views_path)
    recs = rename_top(recs, "my_model")
    recs.insert(0, ("my_model/.odd", b"x"))  # shift every record by an odd amount
    data = write_zip(os.path.join(OUT, "pth", "repacked.pth"), recs, align=1, lead=b"")
    misaligned = 0
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for i in z.infolist():
            if "/data/" in i.filename:
                start = i.header_offset + 30 + len(i.filename.encode()) + len(i.extra)
                misaligned += start % 4 != 0
    assert misaligned > 0, "repacked.pth should have float32 records at unaligned offsets"
    expected["pth"]["pth/repacked.pth"] = expected["pth"]["pth/views.pth"]

    write_zip(os.path.join(OUT, "pth", "zip64.pth"), rename_top(zip_records(dtypes_path), "z64"), align=64,
              zip64=True)
    expected["pth"]["pth/zip64.pth"] = expected["pth"]["pth/dtypes.pth"]

    # files that must be refused
    torch.save({"w": torch.ones(2)}, os.path.join(OUT, "bad", "legacy.pth"), _use_new_zipfile_serialization=False)
    expected["errors"]["bad/legacy.pth"] = "unsupported legacy format.*torch\\.save\\(obj, path\\)"
    write_zip(os.path.join(OUT, "bad", "forbidden_global.pth"),
              [("archive/data.pkl", pickle.dumps({"x": Evil()}, protocol=2)), ("archive/version", b"3\n")], align=64)
    expected["errors"]["bad/forbidden_global.pth"] = "refusing to load global '(posix|os|nt)\\.system'"
    write_zip(os.path.join(OUT, "bad", "compressed.pth"), zip_records(dtypes_path), deflate=True)
    expected["errors"]["bad/compressed.pth"] = "compressed \\(method 8\\)"
    torch.save(torch.nn.Linear(2, 1), os.path.join(OUT, "bad", "whole_module.pth"))
    expected["errors"]["bad/whole_module.pth"] = "refusing to load global 'torch\\.nn\\.modules\\.linear\\.Linear'"
    recs = zip_records(views_path)
    recs = [(n, d[:-4] if n.endswith("/data/0") else d) for n, d in recs]
    write_zip(os.path.join(OUT, "bad", "short_record.pth"), recs, align=64)
    expected["errors"]["bad/short_record.pth"] = "storage record '.*data/0' has 92 bytes but 24 float32 elements need 96"

    class FakeStorage:
        pass

    class FakeTensor:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2,
                    (FakeStorage(), 1, (4, 3), (3, 1), False, collections.OrderedDict()))

    class StoragePickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, FakeStorage):
                return ("storage", torch.FloatStorage, "0", "cpu", 12)
            return None

    pkl = io.BytesIO()
    StoragePickler(pkl, protocol=2).dump({"w": FakeTensor()})
    write_zip(os.path.join(OUT, "bad", "view_out_of_range.pth"),
              [("archive/data.pkl", pkl.getvalue()), ("archive/data/0", bytes(48)), ("archive/version", b"3\n")],
              align=64)
    expected["errors"]["bad/view_out_of_range.pth"] = "reaches element 12 of storage '0', which has 12 elements"

    # plain pickles of every protocol the interpreter reads (no tensors)
    plain = {"ints": [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31, 2**53 - 1, -2**63, 2**100],
             "floats": [0.5, -0.0, 1e300, float("inf")], "str": "h\u00e9llo \U0001F600", "bytes": b"\x00\xffab",
             "tuple": (1, (2, 3), ()), "nested": [{"a": None}, True, False], "set": {1, 2, 3},
             "frozen": frozenset({"x"}), "od": collections.OrderedDict([("k", 1), ("j", 2)]), 5: "int key",
             "shared": [[1, 2]] * 2}
    expected["pickles"] = {f"protocol{p}": {"b64": __import__("base64").b64encode(pickle.dumps(plain, protocol=p))
                                            .decode(), "value": enc(plain)} for p in range(1, 6)}

    # safetensors
    st = {
        "f32": torch.tensor(floats + [1e-40, 3.4e38], dtype=torch.float32).reshape(7, 2),
        "f16": torch.tensor(floats + [5.96e-8, -65504.0], dtype=torch.float16).reshape(2, 7),
        "bf16": torch.tensor(floats + [1e38, -3e-39], dtype=torch.bfloat16),
        # F64 values exactly representable in float32, so that the loaded file re-serialises to the same bytes
        # (pth/dtypes.pth covers double -> float32 rounding)
        "f64": torch.tensor(floats + [2.0**-130, 0.1], dtype=torch.float64).float().double(),
        "i64": torch.tensor([0, 1, -1, 2**31 - 1, -2**31], dtype=torch.int64),
        "i32": torch.tensor([[0, 7], [-7, 2**31 - 1]], dtype=torch.int32),
        "i16": torch.tensor([0, 300, -300, 32767, -32768], dtype=torch.int16),
        "i8": torch.tensor([0, 5, -5, 127, -128], dtype=torch.int8),
        "u8": torch.tensor([0, 1, 128, 255, 7], dtype=torch.uint8),
        "bool": torch.tensor([[True, False, True]], dtype=torch.bool),
        "scalar": torch.tensor(-1.25),
        "empty": torch.zeros(0, 4),
        "z.last": torch.randn(3, 5),
        "a.first": torch.randn(2),
    }
    meta = {"format": "pt", "note": "weights \u00e9 \"quoted\""}
    st_write(os.path.join(OUT, "st", "dtypes.safetensors"), st, metadata=meta)
    expected["safetensors"]["st/dtypes.safetensors"] = {
        "metadata": meta,
        "tensors": {k: enc_tensor(v, ST_NAME[v.dtype]) for k, v in st.items()},
    }
    st_write(os.path.join(OUT, "st", "empty.safetensors"), {})
    expected["safetensors"]["st/empty.safetensors"] = {"metadata": {}, "tensors": {}}
    st_write(os.path.join(OUT, "bad", "i64_overflow.safetensors"),
             {"ids": torch.tensor([5, -2**40], dtype=torch.int64)})
    expected["errors"]["bad/i64_overflow.safetensors"] = "-1099511627776.*does not fit in int32"

    expected["generator"] = "tools/gen_io_fixtures.py"
    expected["torch"] = torch.__version__
    expected["safetensors_writer"] = "safetensors package" if st_save_file is not None else "hand-written"
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=False, allow_nan=False, ensure_ascii=False)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, fs in os.walk(OUT) for n in fs)
    print(f"wrote {OUT} ({total} bytes), safetensors by {expected['safetensors_writer']}", file=sys.stderr)


if __name__ == "__main__":
    main()
