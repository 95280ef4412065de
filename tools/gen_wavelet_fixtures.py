#!/usr/bin/python3
"""Generates tests/fixtures/wavelet/pywt_haar.json: PyWavelets' 2-D Haar transform of small random inputs, the
reference that tests/wavelet_test.ts maps onto the MWCNN / Wave-MambaAD convention of nn/wavelet/haar.ts.

Run from the repository root:  /usr/bin/python3 tools/gen_wavelet_fixtures.py
(needs numpy and PyWavelets: `apt-get install -y python3-pywt`). Deterministic (numpy seed 0).

Mapping (checked by the test, derived from the filters): PyWavelets' Haar has dec_lo = [1, 1]/sqrt(2) and
dec_hi = [-1, 1]/sqrt(2); as a convolution followed by keeping the odd samples, its detail along an axis is
(first - second)/sqrt(2), the opposite sign of the MWCNN code's (second - first). `pywt.dwt2(x, 'haar')` returns
(cA, (cH, cV, cD)) where cH is the detail along axis -2 (rows: top - bottom), cV along axis -1 (columns:
left - right) and cD along both. With a = x[2i,2j], b = x[2i+1,2j], c = x[2i,2j+1], d = x[2i+1,2j+1]:

    cA = (a+b+c+d)/2 =  LL
    cH = (a-b+c-d)/2 = -LH
    cV = (a+b-c-d)/2 = -HL
    cD = (a-b-c+d)/2 =  HH

so LL = cA, HL = -cV, LH = -cH, HH = cD (same scale: both are orthonormal, factor 1/2 per 2x2 block), and
iwt([LL; HL; LH; HH]) = pywt.idwt2((LL, (-LH, -HL, HH)), 'haar'). For even sizes and a length-2 filter the
boundary mode does not matter; the default 'symmetric' is used.

File format (JSON)::

    {"generator", "pywt", "numpy", "mapping",
     "dwt": {"shape": [B, C, H, W], "x": [...], "cA": [...], "cH": [...], "cV": [...], "cD": [...]},
     "idwt": {"shape": [B, C, h, w], "cA": [...], "cH": [...], "cV": [...], "cD": [...], "x": [...]}}

Arrays are flat row-major lists of float64 values. Every input value is a float32 number (so the test feeds
exactly the values PyWavelets saw); the outputs are PyWavelets' float64 results.
"""

import json
import os

import numpy as np
import pywt

OUT = os.path.join("tests", "fixtures", "wavelet", "pywt_haar.json")


def f32(a):
    return a.astype(np.float32).astype(np.float64)


def main():
    rng = np.random.default_rng(0)
    # non-square planes so that a row/column mix-up cannot pass
    x = f32(rng.standard_normal((2, 3, 6, 8)))
    cA, (cH, cV, cD) = pywt.dwt2(x, "haar", axes=(-2, -1))

    bands = [f32(rng.standard_normal((2, 3, 5, 4))) for _ in range(4)]
    rec = pywt.idwt2((bands[0], (bands[1], bands[2], bands[3])), "haar", axes=(-2, -1))

    flat = lambda a: [float(v) for v in np.ravel(a)]
    doc = {
        "generator": "tools/gen_wavelet_fixtures.py",
        "pywt": pywt.__version__,
        "numpy": np.__version__,
        "mapping": "LL = cA, HL = -cV, LH = -cH, HH = cD",
        "dwt": {
            "shape": list(x.shape),
            "x": flat(x),
            "cA": flat(cA),
            "cH": flat(cH),
            "cV": flat(cV),
            "cD": flat(cD),
        },
        "idwt": {
            "shape": list(bands[0].shape),
            "cA": flat(bands[0]),
            "cH": flat(bands[1]),
            "cV": flat(bands[2]),
            "cD": flat(bands[3]),
            "x": flat(rec),
        },
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
