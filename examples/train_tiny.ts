/**
 * The smallest end-to-end use of the library: an SS2D block (MambaAD's 8 Hilbert scan directions) between two
 * linear layers learns a task that needs context from across the grid. Input: a random 8×8 map of 0/1 "seeds";
 * target at each cell: how many seeds lie above and to the left of it (the 2-D prefix sum, scaled). A per-cell
 * model cannot do this; the scans carry the count along their paths. Trained with AdamW; the loss is printed.
 *
 * Run: `deno run -A examples/train_tiny.ts [--device cpu|webgpu] [--steps 60] [--out out/examples/]`
 * (`--out` is accepted for symmetry with the other examples; nothing is written).
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  AdamW,
  cumsum,
  type Device,
  gt,
  initWebGPU,
  keep,
  Linear,
  manualSeed,
  mean,
  mseLoss,
  noGrad,
  rand,
  square,
  SS2D,
  sub,
  type Tensor,
  tidy,
} from "../mod.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    device: { type: "string", default: "cpu" },
    steps: { type: "string", default: "60" },
    out: { type: "string", default: "out/examples/" },
  },
});
const device = args.device as Device;
if (device !== "cpu" && device !== "webgpu") throw new Error(`--device must be cpu or webgpu, got ${device}`);
if (device === "webgpu") await initWebGPU();
const steps = Number(args.steps);

const SIZE = 8, BATCH = 16, WIDTH = 16;
manualSeed(0);

// the model: lift 1 channel to WIDTH, mix across the grid with SS2D, read one number per cell back out
const embed = new Linear(1, WIDTH, { device });
const ss2d = new SS2D(WIDTH, { dState: 8, device });
const head = new Linear(WIDTH, 1, { device });
const modules = [embed, ss2d, head];
const params = modules.flatMap((m) => m.parameters());
const opt = new AdamW(params, { lr: 1e-2, weightDecay: 1e-4 });

/** A fresh batch: seeds (B, H, W, 1) channels-last as SS2D wants, and their scaled 2-D prefix sums. */
function batch(): { x: Tensor; y: Tensor } {
  return tidy(() => {
    const x = gt(rand([BATCH, SIZE, SIZE, 1], { device }), 0.7).float();
    const y = cumsum(cumsum(x, 1), 2).mul(1 / 6); // about 0.3 seeds per cell: counts up to ~19 → ~3
    return { x, y };
  });
}

const forward = (x: Tensor) => head.forward(ss2d.forward(embed.forward(x)));

// a fixed batch to report progress on, so the numbers are comparable from step to step
const held = keep(Object.values(batch()));
const evalLoss = () => noGrad(() => tidy(() => mseLoss(forward(held[0]), held[1])).item());

console.log(`device ${device}, ${params.reduce((n, p) => n + p.size, 0)} parameters`);
// the loss of the best constant guess (the target's variance): beating it means using the context
const baseline = await noGrad(() => tidy(() => mean(square(sub(held[1], mean(held[1])))))).item();
console.log(`predicting the mean would give loss ${baseline.toFixed(4)}`);
const first = await evalLoss();
console.log(`step 0  loss ${first.toFixed(4)}`);
let last = first;
for (let step = 1; step <= steps; step++) {
  const { x, y } = batch();
  const loss = tidy(() => mseLoss(forward(x), y));
  loss.backward();
  opt.step();
  opt.zeroGrad();
  for (const t of [x, y, loss]) t.dispose();
  if (step % 10 === 0 || step === steps) {
    last = await evalLoss();
    console.log(`step ${step}  loss ${last.toFixed(4)}`);
  }
}
console.log(`final loss ${last.toFixed(4)} (first ${first.toFixed(4)}, ratio ${(last / first).toFixed(3)})`);
