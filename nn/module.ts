/**
 * `Module`: the base class of every layer and model, and `Parameter`, a trainable tensor.
 *
 * A module is a plain typed object. Its state is whatever its fields hold, found by walking the own
 * enumerable fields in insertion (declaration) order, as Equinox and PyTorch do:
 *
 * - a {@linkcode Parameter} is a parameter (key `"weight"`);
 * - a plain {@linkcode Tensor} is a persistent buffer (BatchNorm's `running_mean`);
 * - a `Module` is a sub-module, whose state keys get its field name and a dot as prefix
 *   (`"layer1.0.conv1.weight"`);
 * - an array of those (a Python `ModuleList`) contributes keys `"name.0"`, `"name.1"`, ...;
 * - `null`, `undefined` and everything else (numbers, options, `#private` fields) are skipped.
 *
 * So the checkpoint keys of a module written like its PyTorch original are PyTorch's keys, and a torchvision
 * state dict loads 1:1. Tensors a module caches but must not save belong in `#private` fields.
 *
 * `forward` is an ordinary method each subclass defines with its own signature; nothing is called implicitly.
 *
 * @module
 */

import type { Device } from "../autodiff/backend.ts";
import { cast, toAsync } from "../autodiff/ops/index.ts";
import { keep, noGrad, Tensor } from "../autodiff/tensor.ts";

/**
 * A trainable tensor: float32, `requiresGrad` true, and `keep()`-ed so that no `tidy` scope frees it. The
 * optimizers update it in place with {@linkcode Tensor.assign}, so its identity lasts for the module's life.
 */
export class Parameter extends Tensor {
  /**
   * Wraps `data`, taking over its storage: `data` itself is disposed, so `new Parameter(randn([3]))` leaks
   * nothing. Non-float32 data is converted to float32.
   */
  constructor(data: Tensor, requiresGrad = true) {
    const src = data.dtype === "float32" ? data : noGrad(() => cast(data, "float32"));
    const storage = src.storage;
    storage.refs++;
    super(storage, src.shape, "float32", src.device);
    if (src !== data) src.dispose();
    data.dispose();
    keep(this);
    this.requiresGrad = requiresGrad;
  }

  /** A short description. */
  override toString(): string {
    return `Parameter(shape=[${this.shape}], device=${this.device}${this.requiresGrad ? "" : ", frozen"})`;
  }
}

/** Result of {@linkcode Module.loadStateDict}: keys the module has that the dict lacked, and the reverse. */
export interface LoadResult {
  /** Keys of the module's state dict that were not in the given dict. */
  missing: string[];
  /** Keys of the given dict that the module does not have. */
  unexpected: string[];
}

/** How many keys of each kind a {@linkcode StateDictMismatchError} message names. */
const SHOW_KEYS = 5;

/** `kind (n): the first SHOW_KEYS items, … n more`. */
function someKeys(kind: string, keys: string[], sep = ", "): string {
  const more = keys.length > SHOW_KEYS ? `${sep}… ${keys.length - SHOW_KEYS} more` : "";
  return `${kind} (${keys.length}): ${keys.slice(0, SHOW_KEYS).join(sep)}${more}`;
}

/**
 * Thrown by {@linkcode Module.loadStateDict} when the given dict does not fit the module. The message names
 * the module, counts each kind of mismatch and shows the first few keys of each; the full lists are on the
 * error for programs.
 */
export class StateDictMismatchError extends Error {
  /** The module's class name. */
  readonly module: string;
  /** Every key of the module's state dict that the given dict lacks. */
  readonly missing: string[];
  /** Every key of the given dict that the module does not have. */
  readonly unexpected: string[];
  /** Every key whose shapes differ, with both shapes: `{ key, given, expected }`. */
  readonly misShaped: { key: string; given: number[]; expected: number[] }[];
  /** Creates the error from the full lists; the message shows the first few of each. */
  constructor(
    module: string,
    missing: string[],
    unexpected: string[],
    misShaped: { key: string; given: number[]; expected: number[] }[],
  ) {
    const parts = [];
    if (missing.length) parts.push(someKeys("missing keys", missing));
    if (unexpected.length) parts.push(someKeys("unexpected keys", unexpected));
    if (misShaped.length) {
      const shown = misShaped.map((m) => `${m.key}: checkpoint [${m.given}], module [${m.expected}]`);
      parts.push(someKeys("shape mismatches", shown, "; "));
    }
    super(`loadStateDict(${module}): ${parts.join("\n  ")}`);
    this.name = "StateDictMismatchError";
    this.module = module;
    this.missing = missing;
    this.unexpected = unexpected;
    this.misShaped = misShaped;
  }
}

/** Options of {@linkcode Module.loadStateDict}. */
export interface LoadStateDictOptions {
  /** Throw when keys are missing or unexpected (default true). Shape mismatches throw either way. */
  strict?: boolean;
}

type Visit = (key: string, value: Module | Tensor) => void;

/** Points a tensor object at `src`'s storage even across devices (keeps its identity; `src` keeps its own ref). */
function rebind(t: Tensor, src: Tensor): void {
  // `device` is readonly for users; here the object deliberately moves with its new storage
  (t as { device: Device }).device = src.device;
  t.assign(src);
}

/**
 * Base class of layers and models. Subclasses assign parameters, buffers and sub-modules to fields in their
 * constructor and define `forward`. See the module documentation for what counts as state.
 */
export class Module {
  /** Training mode (dropout active, batch statistics); set recursively by `train()` / `eval()`. */
  training = true;

  /**
   * The `[name, value]` pairs that may hold state, in order. The default walks the own enumerable fields;
   * containers (`Sequential`, `ModuleList`) override it to name their items "0", "1", ...
   */
  protected stateEntries(): [string, unknown][] {
    return Object.entries(this);
  }

  /** Walks parameters, buffers and modules depth-first in PyTorch order (each module's own tensors first). */
  #walk(prefix: string, visit: Visit, path: Set<Module>): void {
    if (path.has(this)) throw new Error(`Module: cycle through "${prefix || "<root>"}"`);
    path.add(this);
    const subs: [string, Module][] = [];
    const take = (key: string, v: unknown): void => {
      if (v instanceof Tensor) visit(prefix + key, v);
      else if (v instanceof Module) subs.push([key, v]);
    };
    for (const [name, v] of this.stateEntries()) {
      if (v === null || v === undefined || name === "training") continue;
      if (Array.isArray(v)) v.forEach((item, i) => take(`${name}.${i}`, item));
      else take(name, v);
    }
    // PyTorch lists a module's own parameters and buffers before its children's
    for (const [key, m] of subs) {
      visit(prefix + key, m);
      m.#walk(`${prefix}${key}.`, visit, path);
    }
    path.delete(this);
  }

  #collect<T>(pick: (key: string, v: Module | Tensor) => T | null): [string, T][] {
    const out: [string, T][] = [];
    this.#walk("", (k, v) => {
      const x = pick(k, v);
      if (x !== null) out.push([k, x]);
    }, new Set());
    return out;
  }

  /** Parameters with their dotted keys; a parameter shared by several modules is listed once. */
  namedParameters(): [string, Parameter][] {
    const seen = new Set<Tensor>();
    return this.#collect((_, v) => {
      if (!(v instanceof Parameter) || seen.has(v)) return null;
      seen.add(v);
      return v;
    });
  }

  /** All parameters, in {@linkcode namedParameters} order. */
  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Buffers (plain tensors held in fields) with their dotted keys, each listed once. */
  namedBuffers(): [string, Tensor][] {
    const seen = new Set<Tensor>();
    return this.#collect((_, v) => {
      if (!(v instanceof Tensor) || v instanceof Parameter || seen.has(v)) return null;
      seen.add(v);
      return v;
    });
  }

  /** All buffers, in {@linkcode namedBuffers} order. */
  buffers(): Tensor[] {
    return this.namedBuffers().map(([, b]) => b);
  }

  /** This module (key "") and every sub-module, depth-first; a shared module is listed once. */
  namedModules(): [string, Module][] {
    const seen = new Set<Module>([this]);
    const out: [string, Module][] = [["", this]];
    return out.concat(this.#collect((_, v) => {
      if (!(v instanceof Module) || seen.has(v)) return null;
      seen.add(v);
      return v;
    }));
  }

  /** All modules, this one first. */
  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** The direct sub-modules with their field names ("0", "1", ... for containers and arrays). */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    for (const [name, v] of this.stateEntries()) {
      const items: [string, unknown][] = Array.isArray(v) ? v.map((x, i) => [`${name}.${i}`, x]) : [[name, v]];
      for (const [k, x] of items) {
        if (x instanceof Module && !seen.has(x)) {
          seen.add(x);
          out.push([k, x]);
        }
      }
    }
    return out;
  }

  /** The direct sub-modules. */
  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /**
   * Parameters and buffers by dotted key, in PyTorch's `state_dict()` order. The values are the module's own
   * tensors (not copies): read or save them, but do not dispose them.
   */
  stateDict(): Map<string, Tensor> {
    return new Map(this.#collect((_, v) => (v instanceof Tensor ? v : null)));
  }

  /**
   * Copies the values of `sd` into this module's parameters and buffers (same key scheme as
   * {@linkcode stateDict}). Each value is moved to the tensor's device and converted to its dtype (so an
   * int64-derived int32 or a float `num_batches_tracked` loads), then installed with `assign`; the Parameter
   * objects stay the same. Everything is checked before anything is written: a shape mismatch always throws,
   * and with `strict` (default) missing or unexpected keys throw too, in one {@linkcode StateDictMismatchError}
   * that counts all three kinds, names the first few keys of each and carries the full lists.
   */
  async loadStateDict(
    sd: Map<string, Tensor> | Record<string, Tensor>,
    { strict = true }: LoadStateDictOptions = {},
  ): Promise<LoadResult> {
    const given = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !given.has(k));
    const unexpected = [...given.keys()].filter((k) => !own.has(k));
    const misShaped: { key: string; given: number[]; expected: number[] }[] = [];
    for (const [k, t] of own) {
      const src = given.get(k);
      if (src && src.shape.join() !== t.shape.join()) {
        misShaped.push({ key: k, given: [...src.shape], expected: [...t.shape] });
      }
    }
    if (misShaped.length || (strict && (missing.length || unexpected.length))) {
      throw new StateDictMismatchError(this.constructor.name, missing, unexpected, misShaped);
    }
    for (const [k, t] of own) {
      const src = given.get(k);
      if (!src) continue;
      const moved = await toAsync(src, t.device);
      const converted = moved.dtype === t.dtype ? moved : noGrad(() => cast(moved, t.dtype));
      t.assign(converted);
      if (converted !== src) converted.dispose();
      if (moved !== src && moved !== converted) moved.dispose();
    }
    return { missing, unexpected };
  }

  /** Sets training mode on this module and every sub-module; returns this. */
  train(on = true): this {
    for (const m of this.modules()) m.training = on;
    return this;
  }

  /** Evaluation mode (`train(false)`); returns this. */
  eval(): this {
    return this.train(false);
  }

  /**
   * Moves every parameter, buffer and gradient to `device`. The tensor objects stay the same (optimizers and
   * other holders keep working); only their storage moves. Returns this.
   */
  async to(device: Device): Promise<this> {
    const seen = new Set<Tensor>();
    for (const t of this.stateDict().values()) {
      if (seen.has(t) || t.device === device) continue;
      seen.add(t);
      const moved = keep(await toAsync(t, device));
      rebind(t, moved);
      moved.dispose();
      if (t.grad) {
        const g = keep(await toAsync(t.grad, device));
        t.grad.dispose();
        t.grad = g;
      }
    }
    return this;
  }

  /** Sets `requiresGrad` on every parameter (false freezes the module); returns this. */
  requiresGrad_(on = true): this {
    for (const p of this.parameters()) p.requiresGrad_(on);
    return this;
  }

  /** Frees every parameter's accumulated gradient. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /** Number of parameter elements (shared parameters counted once); `trainableOnly` skips frozen ones. */
  numParameters(trainableOnly = false): number {
    let n = 0;
    for (const p of this.parameters()) if (!trainableOnly || p.requiresGrad) n += p.size;
    return n;
  }

  /** Frees every parameter, gradient and buffer. The module cannot be used afterwards. */
  dispose(): void {
    for (const t of this.stateDict().values()) {
      t.zeroGrad();
      t.dispose();
    }
  }

  /** `using model = ...` support. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** The module tree with its parameter shapes, one line per module. */
  toString(): string {
    const lines: string[] = [];
    for (const [name, m] of this.namedModules()) {
      const depth = name === "" ? 0 : name.split(".").length;
      const own = m.stateEntries()
        .filter(([, v]) => v instanceof Tensor)
        .map(([k, v]) => `${k}[${(v as Tensor).shape}]`);
      lines.push(
        `${"  ".repeat(depth)}${name || "(root)"}: ${m.constructor.name}${own.length ? ` ${own.join(" ")}` : ""}`,
      );
    }
    return lines.join("\n");
  }
}

/** Keeps a buffer tensor out of every `tidy` scope (use when assigning buffers in a constructor). */
export function buffer(t: Tensor): Tensor {
  return keep(t);
}
