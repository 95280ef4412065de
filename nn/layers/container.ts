/**
 * Containers: `Identity`, `Sequential` (a chain of one-input modules) and `ModuleList` (an indexed list).
 * Both lists name their items "0", "1", ... in state-dict keys, as PyTorch.
 *
 * @module
 */

import type { Tensor } from "../../autodiff/tensor.ts";
import { Module } from "../module.ts";

/** A module whose forward maps one tensor to one tensor (what `Sequential` chains). */
export interface UnaryModule extends Module {
  /** Maps x to the module's output. */
  forward(x: Tensor): Tensor;
}

/** Returns its input (a placeholder, e.g. for an optional downsample). */
export class Identity extends Module {
  /** Returns x. */
  forward(x: Tensor): Tensor {
    return x;
  }
}

/**
 * Applies its modules in order. Keys are the positions ("0.weight", "1.running_mean", ...), or the names given
 * to {@linkcode Sequential.named}.
 */
export class Sequential extends Module {
  #items: [string, UnaryModule][];

  /** A chain of `modules`, keyed by position. */
  constructor(...modules: UnaryModule[]) {
    super();
    this.#items = modules.map((m, i) => [String(i), m]);
  }

  /** A chain keyed by the given names (as PyTorch's `Sequential(OrderedDict(...))`), in insertion order. */
  static named(modules: Record<string, UnaryModule>): Sequential {
    const s = new Sequential();
    s.#items = Object.entries(modules);
    return s;
  }

  /** The items as state entries. */
  protected override stateEntries(): [string, unknown][] {
    return this.#items;
  }

  /** Number of modules. */
  get length(): number {
    return this.#items.length;
  }

  /** The module at position `i` (negative counts from the end). */
  at(i: number): UnaryModule {
    const item = this.#items.at(i);
    if (!item) throw new RangeError(`Sequential: index ${i} out of range for ${this.#items.length} modules`);
    return item[1];
  }

  /** Appends a module (keyed by its position); returns this. */
  append(m: UnaryModule): this {
    this.#items.push([String(this.#items.length), m]);
    return this;
  }

  /** The modules in order. */
  [Symbol.iterator](): Iterator<UnaryModule> {
    return this.#items.map(([, m]) => m)[Symbol.iterator]();
  }

  /** Feeds x through every module in order. */
  forward(x: Tensor): Tensor {
    let y = x;
    for (const [, m] of this.#items) y = m.forward(y);
    return y;
  }
}

/** An indexed list of sub-modules (keys "0", "1", ...); it has no forward of its own. */
export class ModuleList<T extends Module = Module> extends Module {
  #items: T[];

  /** A list holding `modules`. */
  constructor(modules: readonly T[] = []) {
    super();
    this.#items = [...modules];
  }

  /** The items as state entries. */
  protected override stateEntries(): [string, unknown][] {
    return this.#items.map((m, i) => [String(i), m]);
  }

  /** Number of modules. */
  get length(): number {
    return this.#items.length;
  }

  /** The module at position `i` (negative counts from the end). */
  at(i: number): T {
    const m = this.#items.at(i);
    if (!m) throw new RangeError(`ModuleList: index ${i} out of range for ${this.#items.length} modules`);
    return m;
  }

  /** Appends a module; returns this. */
  push(m: T): this {
    this.#items.push(m);
    return this;
  }

  /** The modules in order. */
  [Symbol.iterator](): Iterator<T> {
    return this.#items[Symbol.iterator]();
  }

  /** The modules as a new array. */
  toArray(): T[] {
    return [...this.#items];
  }
}
