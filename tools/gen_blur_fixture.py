#!/usr/bin/env python3
"""Reference outputs of scipy.ndimage.gaussian_filter (mode 'reflect', truncate 4.0) for tests/anomaly_map_test.ts.

Writes tests/fixtures/blur.json: a few random float32 maps (incl. sizes smaller than the 33-tap radius, so scipy
reflects repeatedly) and their filtered values, computed in float64.
Run: /usr/bin/python3 tools/gen_blur_fixture.py  (needs numpy and scipy: apt-get install -y python3-scipy)
"""
import json
import os

import numpy as np
import scipy
from scipy.ndimage import gaussian_filter

CASES = [
    # (batch, h, w, sigma)
    (2, 40, 36, 4.0),  # the default sigma, radius 16 < size (the 64×64 case is the official anomaly-map fixture)
    (1, 12, 20, 4.0),  # radius 16 > 12: repeated reflection
    (1, 5, 3, 2.5),  # tiny image, radius 10
    (2, 17, 9, 1.0),
]


def main():
    rng = np.random.default_rng(1234)
    cases = []
    for b, h, w, sigma in CASES:
        x = rng.standard_normal((b, h, w)).astype(np.float32)
        y = np.stack([gaussian_filter(x[i].astype(np.float64), sigma=sigma) for i in range(b)])
        cases.append({
            "shape": [b, h, w],
            "sigma": sigma,
            "x": [float(v) for v in x.ravel()],
            "y": [float(v) for v in y.ravel()],
        })
    out = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "blur.json")
    with open(out, "w") as f:
        json.dump({"generator": "tools/gen_blur_fixture.py", "scipy": scipy.__version__, "mode": "reflect",
                   "truncate": 4.0, "cases": cases}, f)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
