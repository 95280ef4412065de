/**
 * Makes the playground's built-in checkpoint, `web/assets/tiny_wave_mambaad_64.safetensors`: a small Wave-MambaAD
 * (64 px, Wavelet-Mamba blocks in the two finest stages only) trained briefly with `deno task train` on the synthetic dataset,
 * then made small enough to commit:
 *
 * - the frozen encoder (`model.net_t.*`) is left out: training used a random encoder (no `--encoder-weights`), which
 *   the model rebuilds bit for bit from the run's seed (`manualSeed(config.seed)` before `createModel`, as
 *   `loadTrainedModel` does); the header says so (`extra.encoder = "seeded"`), and the playground's loader
 *   (`web/checkpoint.ts`) accepts a file without encoder only when it says so;
 * - the optimizer state is dropped (inference only);
 * - the rest is stored as float16 (the loader widens it to float32 exactly).
 *
 * Run: `deno run -A tools/gen_playground_checkpoint.ts [--epochs 2] [--work out/playground_ckpt]`. It also writes
 * `web/assets/synthetic_*.png`, the built-in test images (a normal and a defective one).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { generateSyntheticDataset } from "../anomaly/data/synthetic.ts";
import { loadSafetensors, saveSafetensors } from "../nn/io/safetensors.ts";
import type { HostTensor } from "../nn/io/common.ts";
import { TINY_MODEL_CONFIG } from "../web/compute.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    epochs: { type: "string", default: "2" },
    work: { type: "string", default: "out/playground_ckpt" },
    out: { type: "string", default: "web/assets" },
  },
});
const work = args.work!, out = args.out!;

await Deno.remove(work, { recursive: true }).catch(() => {});
const data = join(work, "data"), run = join(work, "run");
await generateSyntheticDataset(data, { seed: 0, trainPerClass: 12, testGoodPerClass: 2, testPerDefect: 1, size: 64 });

const train = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    "main.ts",
    "train",
    "--data",
    data,
    "--dataset",
    "folder",
    "--size",
    "64",
    "--epochs",
    args.epochs!,
    "--batch",
    "8",
    "--device",
    "cpu",
    "--model-config",
    JSON.stringify(TINY_MODEL_CONFIG),
    "--out",
    run,
  ],
  stdout: "inherit",
  stderr: "inherit",
});
if (!(await train.output()).success) throw new Error("train failed");

const { tensors, metadata } = await loadSafetensors(join(run, "checkpoint.safetensors"));
const header = JSON.parse(metadata!.checkpoint);
if (header.config.encoderWeights) throw new Error("the encoder was not random: it must be stored");
delete header.optimizer;
delete header.schedule;
header.extra = {
  ...(header.extra ?? {}),
  encoder: "seeded",
  note: "built-in playground checkpoint (tools/gen_playground_checkpoint.ts): the random frozen encoder is not " +
    "stored; manualSeed(config.seed) before createModel rebuilds it. Weights stored as float16.",
};
const kept = new Map<string, HostTensor>();
const dtypes: Record<string, "F16"> = {};
for (const [k, t] of tensors) {
  if (!k.startsWith("model.") || k.startsWith("model.net_t.")) continue;
  kept.set(k, t);
  if (t.dtype === "float32") dtypes[k] = "F16";
}
await Deno.mkdir(out, { recursive: true });
const file = join(out, "tiny_wave_mambaad_64.safetensors");
await saveSafetensors(file, kept, { metadata: { checkpoint: JSON.stringify(header) }, dtypes });
console.log(`wrote ${file} (${(await Deno.stat(file)).size} bytes, ${kept.size} tensors)`);

// the built-in test images: one normal, one defective, of the first synthetic class
for (const [name, dir] of [["synthetic_good.png", "test/good"], ["synthetic_defect.png", "test/missing"]]) {
  const cls = join(data, "weave", dir);
  const first = [...Deno.readDirSync(cls)].map((e) => e.name).sort()[0];
  await Deno.copyFile(join(cls, first), join(out, name));
  console.log(`wrote ${join(out, name)}`);
}
