/**
 * `Tensor`: shape, dtype, device, reference-counted storage, and the reverse-mode tape.
 *
 * Each differentiable op attaches a {@linkcode GradNode} to its output: the inputs, the tensors the
 * backward rule needs (saved as extra references to their storage), and the rule itself written with
 * other tensor ops. `backward()` walks the nodes in reverse topological order, accumulates leaf
 * gradients into `.grad`, and then releases the saved tensors.
 *
 * @module
 */

import type { Backend, BackendBuffer, Device, DType, HostArray } from "./backend.ts";
import { getBackend } from "./device.ts";
import * as ops from "./ops/index.ts";
import { joinScattered } from "./ops/scattered.ts";
import { numel } from "./shape.ts";

/** Shared storage of one or more tensors (reshape shares; everything else copies). */
export class Storage {
  /** The backend buffer. */
  readonly buffer: BackendBuffer;
  /** The backend that owns the buffer. */
  readonly backend: Backend;
  /** Number of live tensors using this storage. */
  refs = 1;
  /**
   * Known [min, max] of an int32 storage (set for host uploads and argmax results): index ops check it
   * up front, since a WebGPU kernel cannot raise an error for an out-of-range index.
   */
  valueRange: [number, number] | null = null;
  /** Wraps a buffer with one reference. */
  constructor(buffer: BackendBuffer, backend: Backend) {
    this.buffer = buffer;
    this.backend = backend;
  }
  /** Drops one reference; frees the buffer with the last one. */
  release(): void {
    if (--this.refs === 0) this.backend.free(this.buffer);
  }
}

/** One recorded op: how to send an output gradient back to its inputs. */
export interface GradNode {
  /** The op's name (for error messages). */
  readonly op: string;
  /** The op's tensor inputs, in order. */
  readonly inputs: readonly Tensor[];
  /** Gradient rule: output grad → one grad (or null) per input. */
  backward: ((grad: Tensor) => (Tensor | null)[]) | null;
  /** Saved references released after backward. */
  saved: Tensor[];
}

// ---- grad mode and scopes -------------------------------------------------------------------------

let gradEnabled = true;
const scopes: Set<Tensor>[] = [];

/** Whether ops currently record the tape. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording gradients (like `torch.no_grad()`). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Runs `fn` with gradient recording set to `enabled`. */
export function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = enabled;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

function collectTensors(value: unknown, into: Set<Tensor>, depth = 0): void {
  if (depth > 4 || value === null || typeof value !== "object") return;
  if (value instanceof Tensor) {
    into.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectTensors(v, into, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, into, depth + 1);
  }
}

/**
 * Runs `fn` and disposes every tensor created inside it except the ones it returns (found in the
 * returned value, arrays and plain objects included), which move to the enclosing scope. `fn` must be
 * synchronous.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    // nothing created inside can be reached any more
    for (const t of scope) t.dispose();
    throw e;
  } finally {
    scopes.pop();
  }
  if (result instanceof Promise) throw new Error("tidy: fn must be synchronous (it returned a Promise)");
  const keep = new Set<Tensor>();
  collectTensors(result, keep);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (keep.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Removes tensors from every enclosing `tidy` scope so they outlive it. Returns its argument. */
export function keep<T extends Tensor | Tensor[]>(t: T): T {
  for (const x of Array.isArray(t) ? t : [t]) for (const s of scopes) s.delete(x);
  return t;
}

// ---- the tensor -------------------------------------------------------------------------------------

let nextId = 1;

/** An n-dimensional array on a device, with optional gradient tracking. */
export class Tensor {
  /** Unique id (for debugging and graph walks). */
  readonly id: number = nextId++;
  /** Dimensions, row-major. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Device of the storage. */
  readonly device: Device;
  /** Whether gradients flow to/through this tensor. */
  requiresGrad = false;
  /** Accumulated gradient (leaves only). */
  grad: Tensor | null = null;
  /** The op that produced this tensor, when recorded. */
  node: GradNode | null = null;
  #storage: Storage | null;

  /** Wraps a storage (taking one reference to it). Prefer the creation functions. */
  constructor(storage: Storage, shape: readonly number[], dtype: DType, device: Device) {
    this.#storage = storage;
    this.shape = Object.freeze(shape.slice());
    this.dtype = dtype;
    this.device = device;
    scopes[scopes.length - 1]?.add(this);
  }

  /** Wraps a fresh backend buffer. */
  static fromBuffer(buffer: BackendBuffer, shape: readonly number[], dtype: DType, device: Device): Tensor {
    return new Tensor(new Storage(buffer, getBackend(device)), shape, dtype, device);
  }

  /** Uploads host data. */
  static fromHost(data: HostArray, shape: readonly number[], dtype: DType, device: Device): Tensor {
    const backend = getBackend(device);
    const t = Tensor.fromBuffer(backend.upload(data, dtype), shape, dtype, device);
    if (dtype === "int32") {
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < data.length; i++) {
        const v = data[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      t.storage.valueRange = [lo, hi];
    }
    return t;
  }

  /** Number of elements. */
  get size(): number {
    return numel(this.shape);
  }
  /** Number of dimensions. */
  get ndim(): number {
    return this.shape.length;
  }
  /** Whether the storage was released. */
  get disposed(): boolean {
    return this.#storage === null;
  }
  /** The storage; throws if disposed. */
  get storage(): Storage {
    if (!this.#storage) throw new Error(`tensor #${this.id} [${this.shape}] was disposed and cannot be used`);
    return this.#storage;
  }
  /** The backend buffer; throws if disposed. */
  get buffer(): BackendBuffer {
    return this.storage.buffer;
  }
  /** The backend of this tensor's device. */
  get backend(): Backend {
    return this.storage.backend;
  }

  /** A new tensor object sharing this storage with another shape of the same size. */
  shareWithShape(shape: readonly number[]): Tensor {
    const s = this.storage;
    s.refs++;
    return new Tensor(s, shape, this.dtype, this.device);
  }

  /**
   * Replaces this tensor's data with `src`'s (same shape and dtype) by sharing `src`'s storage: the way
   * optimizers update parameters in place while the parameter object (and its identity) stays.
   */
  assign(src: Tensor): this {
    if (src.shape.join() !== this.shape.join() || src.dtype !== this.dtype || src.device !== this.device) {
      throw new Error(
        `assign: source ${src.dtype} [${src.shape}] on ${src.device} does not match ${this.dtype} [${this.shape}] on ${this.device}`,
      );
    }
    if (this.node) throw new Error("assign: only leaf tensors can be assigned (this one was produced by an op)");
    const s = src.storage;
    s.refs++;
    this.#storage?.release();
    this.#storage = s;
    return this;
  }

  /** Releases this tensor's reference to its storage (idempotent). */
  dispose(): void {
    if (this.#storage) {
      this.#storage.release();
      this.#storage = null;
    }
    for (const s of scopes) s.delete(this);
  }

  /** `using t = ...` support. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Copies the data to the host (contiguous, row-major). */
  data(): Promise<HostArray> {
    return this.backend.read(this.buffer);
  }

  /** The data as a (nested) JS array. */
  async array(): Promise<unknown> {
    const flat = Array.from(await this.data());
    const build = (dim: number, off: number): unknown => {
      if (dim === this.shape.length) return flat[off];
      const stride = numel(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, off + i * stride));
    };
    return build(0, 0);
  }

  /** The value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item: expected a tensor with one element, got shape [${this.shape}]`);
    return (await this.data())[0];
  }

  /** A copy on another device (same tensor if already there); differentiable. */
  to(device: Device): Tensor {
    return ops.to(this, device);
  }

  /** A tensor sharing storage, cut from the graph. */
  detach(): Tensor {
    return this.shareWithShape(this.shape);
  }

  /** Sets `requiresGrad` in place (leaves only); returns this. */
  requiresGrad_(on = true): this {
    if (this.node && !on) throw new Error("requiresGrad_(false) on a non-leaf tensor: use detach()");
    if (on && this.dtype !== "float32") {
      throw new Error(`requiresGrad_: only float32 tensors can require gradients, got ${this.dtype}`);
    }
    this.requiresGrad = on;
    return this;
  }

  /** Frees the accumulated gradient. */
  zeroGrad(): void {
    this.grad?.dispose();
    this.grad = null;
  }

  /**
   * Reverse-mode differentiation from this tensor. `grad` defaults to ones for a one-element tensor.
   * With `retainGraph` false (default) the saved tensors are released afterwards.
   */
  backward(grad?: Tensor, options: { retainGraph?: boolean } = {}): void {
    backward(this, grad, options.retainGraph ?? false);
  }

  /** A short description. */
  toString(): string {
    return `Tensor(shape=[${this.shape}], dtype=${this.dtype}, device=${this.device}${
      this.requiresGrad ? ", requiresGrad" : ""
    })`;
  }

  // ---- method forms of common ops (see ops/ for docs) -------------------------------------------------
  /** {@linkcode ops.add} */
  add(b: Tensor | number): Tensor {
    return ops.add(this, b);
  }
  /** {@linkcode ops.sub} */
  sub(b: Tensor | number): Tensor {
    return ops.sub(this, b);
  }
  /** {@linkcode ops.mul} */
  mul(b: Tensor | number): Tensor {
    return ops.mul(this, b);
  }
  /** {@linkcode ops.div} */
  div(b: Tensor | number): Tensor {
    return ops.div(this, b);
  }
  /** {@linkcode ops.pow} */
  pow(b: Tensor | number): Tensor {
    return ops.pow(this, b);
  }
  /** {@linkcode ops.neg} */
  neg(): Tensor {
    return ops.neg(this);
  }
  /** {@linkcode ops.exp} */
  exp(): Tensor {
    return ops.exp(this);
  }
  /** {@linkcode ops.log} */
  log(): Tensor {
    return ops.log(this);
  }
  /** {@linkcode ops.sqrt} */
  sqrt(): Tensor {
    return ops.sqrt(this);
  }
  /** {@linkcode ops.relu} */
  relu(): Tensor {
    return ops.relu(this);
  }
  /** {@linkcode ops.sigmoid} */
  sigmoid(): Tensor {
    return ops.sigmoid(this);
  }
  /** {@linkcode ops.tanh} */
  tanh(): Tensor {
    return ops.tanh(this);
  }
  /** {@linkcode ops.matmul} */
  matmul(b: Tensor): Tensor {
    return ops.matmul(this, b);
  }
  /** {@linkcode ops.reshape} */
  reshape(shape: readonly number[]): Tensor {
    return ops.reshape(this, shape);
  }
  /** {@linkcode ops.flatten} */
  flatten(startDim = 0, endDim = -1): Tensor {
    return ops.flatten(this, startDim, endDim);
  }
  /** {@linkcode ops.permute} */
  permute(dims: readonly number[]): Tensor {
    return ops.permute(this, dims);
  }
  /** {@linkcode ops.transpose} */
  transpose(d0: number, d1: number): Tensor {
    return ops.transpose(this, d0, d1);
  }
  /** {@linkcode ops.expand} */
  expand(shape: readonly number[]): Tensor {
    return ops.expand(this, shape);
  }
  /** {@linkcode ops.unsqueeze} */
  unsqueeze(dim: number): Tensor {
    return ops.unsqueeze(this, dim);
  }
  /** {@linkcode ops.squeeze} */
  squeeze(dim?: number | number[]): Tensor {
    return ops.squeeze(this, dim);
  }
  /** {@linkcode ops.slice} */
  slice(dim: number, start?: number, end?: number, step = 1): Tensor {
    return ops.slice(this, dim, start, end, step);
  }
  /** {@linkcode ops.sum} */
  sum(dims?: number | readonly number[], keepdim = false): Tensor {
    return ops.sum(this, dims, keepdim);
  }
  /** {@linkcode ops.mean} */
  mean(dims?: number | readonly number[], keepdim = false): Tensor {
    return ops.mean(this, dims, keepdim);
  }
  /** {@linkcode ops.max} */
  max(dims?: number | readonly number[], keepdim = false): Tensor {
    return ops.max(this, dims, keepdim);
  }
  /** {@linkcode ops.min} */
  min(dims?: number | readonly number[], keepdim = false): Tensor {
    return ops.min(this, dims, keepdim);
  }
  /** {@linkcode ops.argmax} */
  argmax(dim?: number, keepdim = false): Tensor {
    return ops.argmax(this, dim, keepdim);
  }
  /** {@linkcode ops.cast} to float32. */
  float(): Tensor {
    return ops.cast(this, "float32");
  }
  /** {@linkcode ops.cast} to int32. */
  int(): Tensor {
    return ops.cast(this, "int32");
  }
  /** A contiguous copy (differentiable). */
  clone(): Tensor {
    return ops.clone(this);
  }
}

// ---- recording ----------------------------------------------------------------------------------------

/**
 * Attaches a gradient rule to `out` if grad mode is on and any input requires grad. `save` lists the
 * tensors the rule reads; they are kept alive (extra storage references) until backward releases them.
 * Returns `out`.
 */
export function record(
  op: string,
  out: Tensor,
  inputs: readonly Tensor[],
  save: readonly Tensor[],
  rule: (grad: Tensor, saved: Tensor[]) => (Tensor | null)[],
): Tensor {
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad)) return out;
  const saved = save.map((t) => {
    const s = t.storage;
    s.refs++;
    // not registered in any scope: owned by the node
    const ref = new Tensor(s, t.shape, t.dtype, t.device);
    keep(ref);
    return ref;
  });
  out.requiresGrad = true;
  out.node = { op, inputs, saved, backward: (g) => rule(g, saved) };
  return out;
}

/** A slice's gradient: `g` (the slice's shape) is the input's gradient at `offset` with `strides`, zero elsewhere. */
export interface ScatteredPiece {
  g: Tensor;
  strides: readonly number[];
  offset: number;
}

const scatteredAt = new WeakMap<Tensor, { strides: readonly number[]; offset: number }>();

/**
 * Marks `g`, returned by a backward rule, as its input's gradient only at `offset` with `strides` (zero elsewhere):
 * backward() keeps such pieces apart and joins an input's pieces once (split's chunks become one concat) instead
 * of writing each into a zero tensor of the input's shape and adding them up.
 */
export function markScattered(g: Tensor, strides: readonly number[], offset: number): Tensor {
  scatteredAt.set(g, { strides, offset });
  return g;
}

function topoSort(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // iterative DFS (deep graphs would overflow the JS stack)
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i];
      if (c.requiresGrad && !seen.has(c)) {
        seen.add(c);
        stack.push([c, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}

function backward(root: Tensor, grad: Tensor | undefined, retainGraph: boolean): void {
  if (!root.requiresGrad) {
    throw new Error("backward: the tensor does not require grad (no input had requiresGrad, or it ran under noGrad)");
  }
  if (!grad && root.size !== 1) {
    throw new Error(`backward: grad can be implied only for one-element outputs, got shape [${root.shape}]`);
  }
  if (grad && grad.shape.join() !== root.shape.join()) {
    throw new Error(`backward: grad shape [${grad.shape}] does not match the output shape [${root.shape}]`);
  }
  const order = topoSort(root);
  const grads = new Map<Tensor, Tensor>();
  // slice gradients, kept apart until their input's gradient is needed (see markScattered)
  const pieces = new Map<Tensor, ScatteredPiece[]>();
  /** t's whole gradient: its dense sum plus its joined pieces; removed from the maps. */
  const take = (t: Tensor): Tensor | undefined => {
    const dense = grads.get(t), parts = pieces.get(t);
    grads.delete(t);
    pieces.delete(t);
    if (!parts) return dense;
    const joined = keep(joinScattered(t.shape, parts));
    if (!dense) return joined;
    const sum = keep(ops.add(dense, joined));
    dense.dispose();
    joined.dispose();
    return sum;
  };
  withGradMode(false, () => {
    grads.set(root, keep(grad ? grad.detach() : ops.onesLike(root)));
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const g = take(t);
      if (!g) continue;
      const node = t.node;
      if (!node) {
        // a leaf: accumulate
        if (t.grad) {
          const sum = keep(ops.add(t.grad, g));
          t.grad.dispose();
          g.dispose();
          t.grad = sum;
        } else {
          t.grad = g;
        }
        continue;
      }
      if (!node.backward) {
        g.dispose();
        throw new Error(
          `backward: the graph through "${node.op}" was already freed; pass {retainGraph: true} to the first backward()`,
        );
      }
      const inGrads = tidy(() => node.backward!(g));
      // a rule may pass g through or return one tensor for several inputs: give each its own reference
      const owned = new Set<Tensor>();
      node.inputs.forEach((_, k) => {
        const ig = inGrads[k];
        if (!ig) return;
        inGrads[k] = ig === g || owned.has(ig) ? ig.shareWithShape(ig.shape) : ig;
        owned.add(inGrads[k]!);
      });
      g.dispose();
      node.inputs.forEach((inp, k) => {
        const ig = inGrads[k];
        if (!ig) return;
        keep(ig);
        if (!inp.requiresGrad) {
          ig.dispose();
          return;
        }
        const at = scatteredAt.get(ig);
        if (at) {
          const list = pieces.get(inp) ?? [];
          list.push({ g: ig, ...at });
          pieces.set(inp, list);
          return;
        }
        if (ig.shape.join() !== inp.shape.join()) {
          throw new Error(`backward of ${node.op}: gradient shape [${ig.shape}] != input shape [${inp.shape}]`);
        }
        const prev = grads.get(inp);
        if (prev) {
          grads.set(inp, keep(ops.add(prev, ig)));
          prev.dispose();
          ig.dispose();
        } else {
          grads.set(inp, ig);
        }
      });
    }
  });
  for (const g of grads.values()) g.dispose();
  for (const list of pieces.values()) for (const p of list) p.g.dispose();
  if (!retainGraph) {
    for (const t of order) {
      const node = t.node;
      if (!node) continue;
      for (const s of node.saved) s.dispose();
      node.saved = [];
      node.backward = null;
    }
  }
}
