/**
 * A per-kernel profile of a backend: every kernel method of the backend object is wrapped with a timer
 * for the duration of a region. Kernel families that take an op name (`unary`, `binary`, `reduce`) are
 * split by op. On WebGPU the times are host recording times (kernels run asynchronously);
 * {@linkcode profileGpu} measures the kernels' execution on the GPU itself, with timestamp queries.
 *
 * @module
 */
import type { Backend } from "../autodiff/backend.ts";
import type { Runtime } from "../autodiff/backends/webgpu/runtime.ts";

/** Calls and total milliseconds per kernel. */
export type KernelProfile = Record<string, { calls: number; ms: number }>;

const BY_OP = new Set(["unary", "binary", "reduce"]);
const SKIP = new Set(["memory", "resetPeakMemory", "sync", "read", "device"]);

/**
 * Wraps every kernel method of `backend` with `around(name, call)` (name split by op for `unary`, `binary`,
 * `reduce`); returns the function that restores the originals.
 */
function wrapKernels(backend: Backend, around: (name: string, call: () => unknown) => unknown): () => void {
  const target = backend as unknown as Record<string, unknown>;
  const originals = new Map<string, (...a: unknown[]) => unknown>();
  for (const key of Object.keys(target)) {
    const f = target[key];
    if (typeof f !== "function" || SKIP.has(key)) continue;
    originals.set(key, f as (...a: unknown[]) => unknown);
    target[key] = function (this: unknown, ...args: unknown[]) {
      const name = BY_OP.has(key) ? `${key}:${args[0]}` : key;
      return around(name, () => (f as (...a: unknown[]) => unknown).apply(this, args));
    };
  }
  return () => {
    for (const [key, f] of originals) target[key] = f;
  };
}

/** The profile sorted by time, milliseconds rounded to 0.1. */
function sortedProfile(prof: KernelProfile): KernelProfile {
  const sorted = Object.entries(prof).sort((a, b) => b[1].ms - a[1].ms);
  return Object.fromEntries(sorted.map(([k, v]) => [k, { calls: v.calls, ms: Number(v.ms.toFixed(1)) }]));
}

/** Runs `fn` with every kernel of `backend` timed; returns the profile, sorted by time. */
export async function profileKernels(backend: Backend, fn: () => Promise<void>): Promise<KernelProfile> {
  const prof: KernelProfile = {};
  const restore = wrapKernels(backend, (name, call) => {
    const t0 = performance.now();
    try {
      return call();
    } finally {
      const e = (prof[name] ??= { calls: 0, ms: 0 });
      e.calls++;
      e.ms += performance.now() - t0;
    }
  });
  try {
    await fn();
  } finally {
    restore();
  }
  return sortedProfile(prof);
}

/** The profile as aligned text lines (kernel, calls, ms, share of the total). */
export function formatProfile(prof: KernelProfile, wallMs: number): string {
  const lines = [
    `wall ${wallMs.toFixed(0)} ms; kernels ${Object.values(prof).reduce((a, b) => a + b.ms, 0).toFixed(0)} ms`,
  ];
  for (const [k, v] of Object.entries(prof)) {
    if (v.ms < wallMs * 0.002) continue;
    lines.push(
      `  ${k.padEnd(34)} ${String(v.calls).padStart(7)} calls ${v.ms.toFixed(0).padStart(8)} ms ${
        (100 * v.ms / wallMs).toFixed(1).padStart(5)
      } %`,
    );
  }
  return lines.join("\n");
}

/**
 * GPU execution time of every dispatch `fn` makes on a WebGPU backend (timestamp queries, one pass per dispatch),
 * summed by the backend call that made it and the kernel's label (`call/label`). `calls` counts dispatches, not
 * backend calls. Throws where the adapter lacks `timestamp-query`.
 */
export async function profileGpu(backend: Backend, fn: () => Promise<void>): Promise<KernelProfile> {
  const rt = (backend as unknown as { runtime?: Runtime }).runtime;
  if (!rt?.startGpuTimer) throw new Error("GPU timing needs the WebGPU backend");
  const stack: string[] = [];
  const restore = wrapKernels(backend, (name, call) => {
    stack.push(name);
    try {
      return call();
    } finally {
      stack.pop();
    }
  });
  // lazy elementwise kernels run when a later call (or a read) needs them: they count under that call
  rt.startGpuTimer((d) => `${stack.at(-1) ?? "read"}${d.label ? `/${d.label}` : ""}`);
  let done = false;
  try {
    await fn();
    done = true;
  } finally {
    restore();
    if (!done) await rt.stopGpuTimer().catch(() => {}); // timing ends with the failure, which propagates
  }
  const totals = await rt.stopGpuTimer();
  return sortedProfile(Object.fromEntries([...totals].map(([k, v]) => [k, { calls: v.dispatches, ms: v.ms }])));
}
