#!/usr/bin/env bash
# The GPU check of issue 12: everything a machine with a hardware GPU should confirm, in one go, written to ONE
# JSON file (default gpu_check.json, or $1): the WebGPU half of the test suite (test files with WebGPU variants,
# CI=1 so a missing adapter fails), the core bench (`bench/bench.ts --json`), and for Wave-MambaAD and MambaAD at
# 256²: inference img/s at batch 1, 8 and 16 with peak memory, the training step at batch 16, and dispatch counts
# (tools/gpu_check_models.ts). See README "GPU check" for what to carry to a bare machine.
set -u
cd "$(dirname "$0")/.."
OUT="${1:-gpu_check.json}"
WORK="$(mktemp -d)"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

# Deno: the carried xz of the binary (.gpu/deno.xz) wins over one on PATH.
DENO="$(command -v deno || true)"
if [ -f .gpu/deno.xz ]; then
  xz -dc .gpu/deno.xz > "$WORK/deno" && chmod +x "$WORK/deno" && DENO="$WORK/deno"
fi
if [ -z "$DENO" ]; then echo "gpu_check: no deno (carry .gpu/deno.xz)" >&2; exit 1; fi

# Vulkan loader: carried .deb files (.gl/*.deb, see README) when the machine has no libvulkan.so.1.
if ! ldconfig -p 2>/dev/null | grep -q libvulkan.so.1 && ls .gl/*.deb >/dev/null 2>&1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
NV_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$NV_ICD" ]; then export VK_DRIVER_FILES="$NV_ICD"; fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
  > "$WORK/gpu.txt" 2>/dev/null

TESTS="tests/webgpu_backend_test.ts tests/webgpu_fusion_test.ts tests/ops_golden_test.ts tests/autodiff_test.ts
  tests/selective_scan_test.ts tests/ss2d_test.ts tests/depthwise_test.ts tests/wavelet_test.ts tests/maxpool_test.ts
  tests/wave_model_test.ts tests/mambaad_model_test.ts"
echo "gpu_check: tests" >&2
CI=1 "$DENO" test -A $TESTS > "$WORK/tests.txt" 2>&1
TEST_RC=$?
echo "gpu_check: core bench" >&2
"$DENO" run -A bench/bench.ts --json 2> "$WORK/bench.log" | tail -n 1 > "$WORK/bench.json"
echo "gpu_check: models at 256²" >&2
"$DENO" run -A tools/gpu_check_models.ts 2> "$WORK/models.log" | tail -n 1 > "$WORK/models.json"

"$DENO" run -A - "$WORK" "$OUT" "$TEST_RC" <<'TS'
const [work, out, rc] = Deno.args;
const read = (f: string) => { try { return Deno.readTextFileSync(`${work}/${f}`); } catch { return ""; } };
const json = (f: string) => { try { return JSON.parse(read(f)); } catch (e) { return { error: String(e), log: read(f).slice(-2000) }; } };
const tests = read("tests.txt").replace(/\x1b\[[0-9;]*m/g, "");
const summary = tests.match(/(ok|FAILED) \| (\d+) passed(?: \(\d+ steps\))? \| (\d+) failed/);
const failures = [...tests.matchAll(/^(.*) => .*$/gm)].map((m) => m[0]).slice(0, 50);
const result = {
  date: new Date().toISOString(),
  gpu: read("gpu.txt").trim(),
  tests: { exit_code: Number(rc), passed: Number(summary?.[2] ?? 0), failed: Number(summary?.[3] ?? -1), failures },
  bench: json("bench.json"),
  models: json("models.json"),
};
Deno.writeTextFileSync(out, JSON.stringify(result, null, 2) + "\n");
console.log(`gpu_check: wrote ${out}`);
TS
