/**
 * `Optimizer`: the base of the optimisers, with PyTorch's parameter groups and state-dict layout.
 *
 * An optimiser holds parameter groups, each a list of tensors plus its own hyper-parameters (missing ones
 * take the constructor's defaults), and per-parameter state (moment buffers as tensors on the parameter's
 * device, step counts as numbers). `step()` is synchronous: it enqueues the update kernels under
 * `noGrad` + `tidy` and replaces every parameter's data with {@linkcode Tensor.assign}; nothing is read
 * back. Parameters whose `.grad` is `null` are skipped, as in PyTorch.
 *
 * Storages are never written in place in this framework (`assign` swaps a tensor's storage), so state
 * tensors may safely share storage with gradients, with parameters, or with a loaded state dict.
 *
 * @module
 */

import { to } from "../../autodiff/ops/index.ts";
import { keep, noGrad, Tensor, tidy } from "../../autodiff/tensor.ts";
import { realizeSlots } from "./multi_tensor.ts";

/** A value of the per-parameter state: a tensor (moment buffers) or a number (step count). */
export type StateValue = Tensor | number;

/** Per-parameter state, keyed as in PyTorch (`exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`, `momentum_buffer`, `step`). */
export type ParamState = Record<string, StateValue>;

/** A JSON value (what a param group's options must be made of). */
export type JsonValue = number | boolean | string | null | JsonValue[] | { [key: string]: JsonValue };

/** Hyper-parameters every optimiser has. */
export interface BaseGroupOptions {
  /** Learning rate. */
  lr: number;
  /** Weight decay (its meaning depends on the optimiser: L2 added to the grad, or decoupled). */
  weightDecay: number;
}

/** A parameter group as given to a constructor: tensors plus any options that override the defaults. */
export type ParamGroupInput<O> = { params: Tensor[] } & Partial<O>;

/**
 * A parameter group as the optimiser holds it: every option present. `initialLr` is set by the first LR
 * schedule attached to the optimiser (PyTorch's `initial_lr`): the base of every schedule's closed form.
 */
export type ParamGroup<O> = O & { params: Tensor[]; initialLr?: number };

/** One entry of {@linkcode OptimizerStateDict.paramGroups}: a group's options and its parameters' indices. */
export type ParamGroupState = { params: number[]; [option: string]: JsonValue };

/**
 * An optimiser's state in PyTorch's layout: `state[i]` belongs to the i-th parameter counting across the
 * groups in order (parameters without state are absent), and `paramGroups` is JSON (options plus indices).
 */
export interface OptimizerStateDict {
  /** Per-parameter state by position across groups. */
  state: Record<number, ParamState>;
  /** Each group's options (JSON) with `params` as positions. */
  paramGroups: ParamGroupState[];
}

function cloneJson<T>(v: T): T {
  return v === undefined ? v : JSON.parse(JSON.stringify(v));
}

/**
 * Base class of the optimisers. Subclasses implement {@linkcode Optimizer.updateParam}, which computes one
 * parameter's update with tensor ops and stores results with {@linkcode Optimizer.setState} and
 * `p.assign(...)`.
 */
export abstract class Optimizer<O extends BaseGroupOptions = BaseGroupOptions> {
  /** The options groups fall back to. */
  readonly defaults: O;
  /** The parameter groups (options may be changed between steps, e.g. `lr` by a schedule). */
  readonly paramGroups: ParamGroup<O>[] = [];
  /** Per-parameter state, keyed by the parameter object. */
  readonly state: Map<Tensor, ParamState> = new Map();

  /**
   * Builds the groups (each filled up with `defaults`).
   *
   * @param params a list of tensors (one group) or a list of parameter groups
   * @param defaults every option's default value
   */
  constructor(params: readonly Tensor[] | readonly ParamGroupInput<O>[], defaults: O) {
    this.defaults = cloneJson(defaults);
    if (params.length === 0) throw new Error("optimizer got an empty parameter list");
    const groups: ParamGroupInput<O>[] = params[0] instanceof Tensor
      ? [{ params: params as Tensor[] } as ParamGroupInput<O>]
      : (params as ParamGroupInput<O>[]);
    for (const g of groups) this.addParamGroup(g);
  }

  /** Adds a group (options default to {@linkcode Optimizer.defaults}); a parameter may be in one group only. */
  addParamGroup(group: ParamGroupInput<O>): void {
    if (!group || !Array.isArray(group.params)) throw new TypeError("a param group needs a params array");
    const seen = new Set<Tensor>();
    for (const g of this.paramGroups) for (const p of g.params) seen.add(p);
    for (const p of group.params) {
      if (!(p instanceof Tensor)) throw new TypeError("optimizer params must be Tensors");
      if (p.dtype !== "float32") throw new TypeError(`optimizer params must be float32, got ${p.dtype}`);
      if (seen.has(p)) throw new Error("some parameters appear in more than one parameter group");
      seen.add(p);
    }
    const { params, ...opts } = group;
    const full = { ...cloneJson(this.defaults), ...cloneJson(opts), params: [...params] } as ParamGroup<O>;
    this.validate(full);
    this.paramGroups.push(full);
  }

  /** Checks a group's options; subclasses extend it. */
  protected validate(group: ParamGroup<O>): void {
    if (!(group.lr >= 0)) throw new RangeError(`Invalid learning rate: ${group.lr}`);
    if (!(group.weightDecay >= 0)) throw new RangeError(`Invalid weight_decay value: ${group.weightDecay}`);
  }

  /** Every parameter, in group order (the order state-dict indices count in). */
  params(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** Frees every parameter's gradient (sets `.grad` to null: PyTorch's `zero_grad(set_to_none=True)`). */
  zeroGrad(): void {
    for (const g of this.paramGroups) for (const p of g.params) p.zeroGrad();
  }

  /** One optimisation step over every parameter that has a grad (synchronous; enqueues device work only). */
  step(): void {
    // each updated parameter with its state: computed together afterwards (WebGPU: many parameters per kernel)
    const slots: Tensor[][] = [];
    noGrad(() => {
      for (const group of this.paramGroups) {
        for (const p of group.params) {
          const grad = p.grad;
          if (!grad) continue;
          if (grad.shape.join() !== p.shape.join() || grad.device !== p.device) {
            throw new Error(`optimizer: grad [${grad.shape}] on ${grad.device} does not match param [${p.shape}]`);
          }
          let st = this.state.get(p);
          if (!st) {
            st = {};
            this.state.set(p, st);
          }
          const s = st;
          // one scope per parameter: intermediates never pile up across a large model
          tidy(() => this.updateParam(p, grad, s, group));
          const slot = [p];
          for (const v of Object.values(s)) if (v instanceof Tensor && v.size === p.size) slot.push(v);
          slots.push(slot);
        }
      }
    });
    realizeSlots(slots);
  }

  /**
   * Computes one parameter's update (runs under `noGrad` inside a `tidy` scope) and stores it with
   * `p.assign(...)`; state tensors are written with {@linkcode Optimizer.setState}.
   */
  protected abstract updateParam(p: Tensor, grad: Tensor, state: ParamState, group: ParamGroup<O>): void;

  /**
   * Stores `value` as `state[key]`: assigns into the existing state tensor (same object, new storage) or
   * keeps a new tensor object sharing `value`'s storage, so that `value` itself (a grad, a tidy temporary)
   * can be disposed freely.
   */
  protected setState(state: ParamState, key: string, value: Tensor): Tensor {
    const cur = state[key];
    if (cur instanceof Tensor && !cur.disposed) return cur.assign(value);
    const t = keep(value.detach());
    state[key] = t;
    return t;
  }

  /**
   * The state in PyTorch's layout. The tensors are the optimiser's own (not copies): serialise them before
   * the next `step()` or `loadStateDict()`, and do not dispose them. `paramGroups` is plain JSON.
   */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    let i = 0;
    const paramGroups = this.paramGroups.map((g) => {
      const { params, ...opts } = g;
      const ids = params.map((p) => {
        index.set(p, i);
        return i++;
      });
      return { ...cloneJson(opts as unknown as Record<string, JsonValue>), params: ids };
    });
    const state: Record<number, ParamState> = {};
    for (const [p, st] of this.state) {
      const k = index.get(p);
      if (k !== undefined && Object.keys(st).length > 0) state[k] = { ...st };
    }
    return { state, paramGroups };
  }

  /**
   * Loads a state dict written by {@linkcode Optimizer.stateDict} (or converted from PyTorch's): the group
   * options are copied over, and the state tensors are shared (not copied; CPU tensors move to the
   * parameter's device). Group count and sizes must match.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    if (sd.paramGroups.length !== this.paramGroups.length) {
      throw new Error(
        `loadStateDict: ${sd.paramGroups.length} param groups, the optimizer has ${this.paramGroups.length}`,
      );
    }
    sd.paramGroups.forEach((g, i) => {
      if (g.params.length !== this.paramGroups[i].params.length) {
        throw new Error(
          `loadStateDict: group ${i} has ${g.params.length} params, the optimizer's has ${
            this.paramGroups[i].params.length
          }`,
        );
      }
    });
    const byIndex = new Map<number, Tensor>();
    sd.paramGroups.forEach((g, i) => g.params.forEach((k, j) => byIndex.set(k, this.paramGroups[i].params[j])));
    const loaded = new Map<Tensor, ParamState>();
    for (const [key, st] of Object.entries(sd.state)) {
      const p = byIndex.get(Number(key));
      if (!p) throw new Error(`loadStateDict: state for parameter ${key}, which no group lists`);
      const out: ParamState = {};
      for (const [name, v] of Object.entries(st)) {
        if (typeof v === "number") {
          out[name] = v;
          continue;
        }
        if (v.size === p.size && v.shape.join() !== p.shape.join()) {
          throw new Error(`loadStateDict: state ${key}.${name} has shape [${v.shape}], the param [${p.shape}]`);
        }
        out[name] = keep(noGrad(() => (v.device === p.device ? v.detach() : to(v, p.device))));
      }
      loaded.set(p, out);
    }
    this.disposeState();
    for (const [p, st] of loaded) this.state.set(p, st);
    sd.paramGroups.forEach((g, i) => {
      const { params: _params, ...opts } = g;
      Object.assign(this.paramGroups[i], cloneJson(opts));
    });
  }

  /** Frees the state tensors (the optimiser starts afresh at its next step). */
  disposeState(): void {
    for (const st of this.state.values()) for (const v of Object.values(st)) if (v instanceof Tensor) v.dispose();
    this.state.clear();
  }
}
