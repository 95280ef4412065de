"""Golden values for anomaly/data/image.ts and anomaly/viz/heatmap.ts.

Run with /usr/bin/python3 (Pillow 9.4, torchvision 0.14, matplotlib 3.6).

Masks go through the reference transform of docs/paper.md §1.10 step 6 (ADer DefaultAD): convert("L"), > 0 -> 0/255,
torchvision Resize((S, S), BILINEAR) on the PIL image, ToTensor, > 0.5. Images go through Resize, ToTensor and
Normalize(ImageNet). We store the 8-bit resized values as well, so a mismatch points at the resampler.

    /usr/bin/python3 tools/gen_mask_fixtures.py  # writes tests/fixtures/masks.json
"""
import json
import numpy as np
from PIL import Image
import torchvision.transforms as T

rng = np.random.default_rng(1234)

def mask_case(name, arr, size):
    img = Image.fromarray(arr.astype(np.uint8), mode="L")
    binm = Image.fromarray((np.array(img) > 0).astype(np.uint8) * 255, mode="L")
    resized = T.Resize((size, size), interpolation=T.InterpolationMode.BILINEAR)(binm)
    t = T.ToTensor()(resized)
    out = (t > 0.5).to(int).flatten().tolist()
    return dict(name=name, height=int(arr.shape[0]), width=int(arr.shape[1]), data=arr.astype(int).flatten().tolist(),
                size=size, resized=np.array(resized).astype(int).flatten().tolist(), expected=out)

cases = []
m4 = np.array([[0, 0, 0, 0], [0, 9, 255, 0], [0, 255, 1, 0], [0, 0, 0, 0]])
cases.append(mask_case("4x4 centre block -> 2x2", m4, 2))
cases.append(mask_case("4x4 centre block -> 8x8", m4, 8))
corner = np.zeros((4, 4)); corner[0, 0] = 3
cases.append(mask_case("4x4 one corner pixel -> 8x8", corner, 8))
cases.append(mask_case("4x4 one corner pixel -> 2x2", corner, 2))
cases.append(mask_case("5x7 random -> 3x3", (rng.random((5, 7)) > 0.6) * rng.integers(1, 256, (5, 7)), 3))
cases.append(mask_case("7x5 random -> 11x11", (rng.random((7, 5)) > 0.5) * 255, 11))
cases.append(mask_case("16x12 random -> 5x5", (rng.random((16, 12)) > 0.5) * 200, 5))
cases.append(mask_case("30x30 blob -> 8x8", np.pad(np.ones((9, 13)), ((10, 11), (6, 11))) * 255, 8))
# Ties: the resized value is exactly 127.5 before rounding; PIL rounds it to 128, which passes > 0.5.
cases.append(mask_case("2x2 left column -> 1x1 (tie)", np.array([[255, 0], [255, 0]]), 1))
cases.append(mask_case("6x8 three left columns -> 4x4 (tie)", np.tile((np.arange(8) < 3) * 255, (6, 1)), 4))
cases.append(mask_case("3x3 -> 3x3 identity", np.array([[0, 1, 0], [0, 0, 0], [255, 0, 2]]), 3))

images = []
for (h, w, s) in [(6, 9, 4), (5, 5, 12), (40, 33, 16)]:
    arr = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    img = Image.fromarray(arr, mode="RGB")
    resized = T.Resize((s, s), interpolation=T.InterpolationMode.BILINEAR)(img)
    t = T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))(T.ToTensor()(resized))
    images.append(dict(height=h, width=w, size=s, data=arr.astype(int).flatten().tolist(),
                       resized=np.array(resized).astype(int).flatten().tolist(),
                       tensor=[float(v) for v in t.numpy().astype(np.float32).flatten()]))

# matplotlib's jet colormap as 8-bit RGB (cmap(x, bytes=True)): the full 256-entry table and a few values.
jet = None
try:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import cm
    cmap = cm.get_cmap("jet")
    xs = [0.0, 0.25, 0.5, 0.75, 1.0]
    jet = dict(matplotlib=matplotlib.__version__, lut=cmap(np.arange(256), bytes=True)[:, :3].astype(int).tolist(),
               x=xs, rgb=cmap(np.array(xs), bytes=True)[:, :3].astype(int).tolist())
except ImportError:
    print("matplotlib not installed: no jet table")

json.dump(dict(generator="tools/gen_mask_fixtures.py", masks=cases, images=images, jet=jet),
          open("tests/fixtures/masks.json", "w"))
print(len(cases), "mask cases,", len(images), "image cases")
for c in cases[:4]:
    print(c["name"], c["resized"], c["expected"])
