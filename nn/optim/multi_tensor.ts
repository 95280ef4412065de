/**
 * Multi-tensor paths of the optimisers on WebGPU: the lazy results of a step (each parameter's new value and
 * its new state tensors) are computed together, several parameters per kernel, and gradient clipping sums the
 * squares of all gradients in a few kernels. Elsewhere (CPU) these are no-ops / return null.
 *
 * @module
 */

import type { Device } from "../../autodiff/backend.ts";
import { getBackend } from "../../autodiff/device.ts";
import { Tensor } from "../../autodiff/tensor.ts";
import { type GPUBuf, Runtime } from "../../autodiff/backends/webgpu/runtime.ts";
import { realizeTogether, sumOfSquares } from "../../autodiff/backends/webgpu/multi_tensor.ts";

let enabled = true;

/** Turns the multi-tensor paths off (each parameter then computes on its own, as on the CPU): tests, A/B timing. */
export function setMultiTensor(on: boolean): void {
  enabled = on;
}

function runtimeOf(device: Device): Runtime | null {
  if (!enabled) return null;
  const rt = (getBackend(device) as { runtime?: unknown }).runtime;
  return rt instanceof Runtime ? rt : null;
}

/**
 * Computes the pending values of the tensors of `slots` (each slot: tensors of one size, e.g. a parameter and
 * its state) in as few kernels as possible on WebGPU; nothing to do on other backends.
 */
export function realizeSlots(slots: readonly (readonly Tensor[])[]): void {
  const byDevice = new Map<Device, GPUBuf[][]>();
  for (const slot of slots) {
    const live = slot.filter((t) => !t.disposed);
    if (live.length === 0) continue;
    const device = live[0].device;
    if (live.some((t) => t.device !== device)) continue;
    let list = byDevice.get(device);
    if (!list) byDevice.set(device, list = []);
    list.push(live.map((t) => t.buffer as GPUBuf));
  }
  for (const [device, list] of byDevice) {
    const rt = runtimeOf(device);
    if (rt) realizeTogether(rt, list);
  }
}

/** Σ g² over every element of `grads` as a 0-d tensor, in a few kernels on WebGPU; null on other backends. */
export function sumOfSquaresMulti(grads: readonly Tensor[], device: Device): Tensor | null {
  const rt = runtimeOf(device);
  if (!rt) return null;
  return Tensor.fromBuffer(sumOfSquares(rt, grads.map((g) => g.buffer as GPUBuf)), [], "float32", device);
}
