/**
 * The CPU backend's tiled transpose path of `stridedCopyInto` (permutes that move the source's innermost dim,
 * at sizes where the tiles apply, with partial tiles) against index arithmetic done here on the host.
 */
import { assertPermuted } from "./util.ts";
import { permute, tensor } from "../mod.ts";

const cases: { shape: number[]; dims: number[] }[] = [
  { shape: [2, 37, 70], dims: [0, 2, 1] },
  { shape: [3, 33, 5, 40], dims: [0, 2, 3, 1] }, // channels-first → channels-last
  { shape: [2, 45, 34, 3], dims: [0, 3, 1, 2] }, // channels-last → channels-first
  { shape: [64, 96], dims: [1, 0] },
  { shape: [2, 3, 32, 64], dims: [3, 1, 0, 2] },
];

for (const { shape, dims } of cases) {
  Deno.test(`permute [${shape}] by [${dims}] (cpu) = host index arithmetic`, async () => {
    const n = shape.reduce((a, b) => a * b, 1);
    const src = Float32Array.from({ length: n }, (_, i) => i);
    const out = await permute(tensor(src, { shape }), dims).data();
    assertPermuted(out, src, shape, dims);
  });
}
