/**
 * Memory accounting across backends.
 *
 * @module
 */

import type { Device, MemoryInfo } from "./backend.ts";
import { getBackend } from "./device.ts";

/** Live memory per initialised backend. */
export type MemoryStats = Partial<Record<Device, MemoryInfo>>;

/** Live bytes and buffers per initialised backend (buffers held by tensors, not the reuse pool). */
export function memoryStats(): MemoryStats {
  const out: MemoryStats = {};
  for (const d of ["cpu", "webgpu"] as Device[]) {
    try {
      out[d] = getBackend(d).memory();
    } catch {
      // not initialised
    }
  }
  return out;
}

/** Restarts every initialised backend's peak (`MemoryInfo.peakBytes`) at its live bytes, to measure a region. */
export function resetPeakMemory(): void {
  for (const d of ["cpu", "webgpu"] as Device[]) {
    try {
      getBackend(d).resetPeakMemory();
    } catch {
      // not initialised
    }
  }
}
