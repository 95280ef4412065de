/**
 * Compute pipelines cached by WGSL source and entry point, with explicit bind group layouts.
 *
 * @module
 */

/** How a kernel binds one resource: a uniform block, a read-only or a read-write storage buffer. */
export type BindingKind = "uniform" | "read" | "rw";

/** A compiled kernel: pipeline plus the layout of its single bind group. */
export interface CachedPipeline {
  /** The pipeline. */
  pipeline: GPUComputePipeline;
  /** Layout of bind group 0. */
  layout: GPUBindGroupLayout;
}

/** Caches pipelines keyed by WGSL source (+ entry point); shader compilation is slow on lavapipe. */
export class PipelineCache {
  #device: GPUDevice;
  #pipelines = new Map<string, CachedPipeline>();
  #layouts = new Map<string, GPUBindGroupLayout>();

  /** A cache on `device`. */
  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /** Number of compiled pipelines. */
  get size(): number {
    return this.#pipelines.size;
  }

  /** The pipeline for `code` (bindings numbered 0.. in the order of `bindings`). */
  get(code: string, bindings: readonly BindingKind[], entryPoint: string = "main"): CachedPipeline {
    // the source itself is the key of `main` kernels: building `entry\ncode` copies and rehashes the whole
    // source on every dispatch (about 5 µs for 4 KB, a quarter of the recording time)
    const key = entryPoint === "main" ? code : `${entryPoint}\n${code}`;
    const hit = this.#pipelines.get(key);
    if (hit) return hit;
    const layout = this.#layout(bindings);
    const module = this.#device.createShaderModule({ code });
    const pipeline = this.#device.createComputePipeline({
      layout: this.#device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint },
    });
    const entry = { pipeline, layout };
    this.#pipelines.set(key, entry);
    return entry;
  }

  #layout(bindings: readonly BindingKind[]): GPUBindGroupLayout {
    const key = bindings.join(",");
    let layout = this.#layouts.get(key);
    if (!layout) {
      layout = this.#device.createBindGroupLayout({
        entries: bindings.map((kind, binding) => ({
          binding,
          visibility: GPUShaderStage.COMPUTE,
          // uniforms at a dynamic offset into the per-submit uniform buffer (see bind_group_cache.ts)
          buffer: kind === "uniform"
            ? { type: "uniform", hasDynamicOffset: true }
            : { type: kind === "read" ? "read-only-storage" : "storage" },
        })),
      });
      this.#layouts.set(key, layout);
    }
    return layout;
  }
}
