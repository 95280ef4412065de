/**
 * Learning-rate schedules stepped once per iteration, each with a closed-form `getLr(step)` (a function of
 * the step count alone), so a resumed run continues bit for bit.
 *
 * Usage follows PyTorch: construct after the optimiser (the group lrs are set to `getLr(0)` at once), then
 * call `optimizer.step()` and `schedule.step()` every iteration.
 *
 * - {@linkcode StepLR}, {@linkcode MultiStepLR}: PyTorch's; their lrs equal the chainable `step()` sequence
 *   of PyTorch exactly (the gammas are multiplied in one at a time, as there).
 * - {@linkcode CosineAnnealingLR}: PyTorch's closed form (`_get_closed_form_lr`), bit for bit; PyTorch's
 *   chainable form agrees to ~1e-15 relative.
 * - {@linkcode TimmStepLR}: timm's `StepLRScheduler` with `decay_t` counted in iterations (docs/paper.md §1.11:
 *   `decayT = int(0.8·epochs)·itersPerEpoch`, rate 0.1, no warm-up).
 * - {@linkcode LinearWarmup}: a linear ramp (timm's `warmup_lr_init + t·(base − init)/warmup_t`) in front of
 *   another schedule, either overlaid (timm: the main schedule keeps counting from 0) or sequential (the
 *   main schedule starts at the end of the warm-up, like PyTorch's `SequentialLR`).
 *
 * @module
 */

/** What a schedule needs of an optimiser: its groups' `lr` (written) and `initialLr` (base values). */
export interface ScheduledOptimizer {
  /** The parameter groups. */
  paramGroups: { lr: number; initialLr?: number }[];
}

/** A schedule's state: JSON. */
export interface LRScheduleStateDict {
  /** The schedule's class name. */
  kind: string;
  /** Steps taken (PyTorch's `last_epoch`). */
  lastStep: number;
  /** Each group's base lr. */
  baseLrs: number[];
  /** The lrs last applied. */
  lastLr: number[];
  /** The schedule's options. */
  options: Record<string, unknown>;
  /** The wrapped schedule's state ({@linkcode LinearWarmup}). */
  main?: LRScheduleStateDict;
}

/** Base of the schedules. */
export abstract class LRSchedule {
  /** The optimiser whose group lrs this schedule sets. */
  readonly optimizer: ScheduledOptimizer;
  /** Each group's base lr (the group's `initialLr`). */
  baseLrs: number[];
  /** Steps taken so far (0 after construction). */
  lastStep = 0;
  #lastLr: number[] = [];

  /**
   * Records each group's base lr (setting `initialLr` from `lr` where a group has none, as PyTorch does);
   * subclasses call {@linkcode LRSchedule.apply} at the end of their constructor.
   */
  constructor(optimizer: ScheduledOptimizer) {
    this.optimizer = optimizer;
    for (const g of optimizer.paramGroups) if (g.initialLr === undefined) g.initialLr = g.lr;
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr!);
  }

  /** The lr of every group after `step` steps (pure). */
  abstract getLr(step: number): number[];

  /** The class name and options (for the state dict). */
  protected abstract describe(): { kind: string; options: Record<string, unknown> };

  /** Restores options from a state dict. */
  protected abstract restore(options: Record<string, unknown>): void;

  /** Writes `getLr(lastStep)` into the optimiser's groups. */
  protected apply(): void {
    const lrs = this.getLr(this.lastStep);
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = lrs[i]));
    this.#lastLr = lrs;
  }

  /** Advances one step (call after `optimizer.step()`) and sets the new lrs. */
  step(): void {
    this.lastStep++;
    this.apply();
  }

  /** The lrs last written into the groups. */
  getLastLr(): number[] {
    return this.#lastLr.slice();
  }

  /** The schedule's state (JSON). */
  stateDict(): LRScheduleStateDict {
    const { kind, options } = this.describe();
    return {
      kind,
      lastStep: this.lastStep,
      baseLrs: this.baseLrs.slice(),
      lastLr: this.getLastLr(),
      options: JSON.parse(JSON.stringify(options)),
    };
  }

  /** Restores a state from {@linkcode LRSchedule.stateDict} and writes its lrs into the optimiser's groups. */
  loadStateDict(sd: LRScheduleStateDict): void {
    const { kind } = this.describe();
    if (sd.kind !== kind) throw new Error(`loadStateDict: a ${sd.kind} state cannot be loaded into a ${kind}`);
    if (sd.baseLrs.length !== this.optimizer.paramGroups.length) {
      throw new Error(`loadStateDict: ${sd.baseLrs.length} base lrs for ${this.optimizer.paramGroups.length} groups`);
    }
    this.restore(sd.options);
    this.baseLrs = sd.baseLrs.slice();
    this.lastStep = sd.lastStep;
    this.apply();
  }
}

function checkInt(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer ≥ ${min}, got ${v}`);
}

/** {@linkcode StepLR} options. */
export interface StepLROptions {
  /** Steps between decays. */
  stepSize: number;
  /** Decay factor (default 0.1). */
  gamma?: number;
}

/** lr = base·gamma^⌊step / stepSize⌋, the factors multiplied in one at a time (PyTorch's chainable order). */
export class StepLR extends LRSchedule {
  /** Steps between decays. */
  stepSize: number;
  /** Decay factor. */
  gamma: number;

  /**
   * Creates the schedule.
   *
   * @param optimizer the optimiser whose lrs to set
   * @param options step size and gamma
   */
  constructor(optimizer: ScheduledOptimizer, options: StepLROptions) {
    super(optimizer);
    checkInt("stepSize", options.stepSize, 1);
    this.stepSize = options.stepSize;
    this.gamma = options.gamma ?? 0.1;
    this.apply();
  }

  /** The lrs after `step` steps. */
  getLr(step: number): number[] {
    const k = Math.floor(step / this.stepSize);
    return this.baseLrs.map((base) => {
      let lr = base;
      for (let i = 0; i < k; i++) lr *= this.gamma;
      return lr;
    });
  }

  /** Class name and options. */
  protected describe(): { kind: string; options: Record<string, unknown> } {
    return { kind: "StepLR", options: { stepSize: this.stepSize, gamma: this.gamma } };
  }

  /** Restores options. */
  protected restore(o: Record<string, unknown>): void {
    this.stepSize = o.stepSize as number;
    this.gamma = o.gamma as number;
  }
}

/** {@linkcode MultiStepLR} options. */
export interface MultiStepLROptions {
  /** Steps at which to decay (a repeated milestone decays by gamma^count, as PyTorch's Counter). */
  milestones: number[];
  /** Decay factor (default 0.1). */
  gamma?: number;
}

/** lr = base·gamma^(milestones ≤ step), one factor gamma^count per milestone reached (PyTorch's order). */
export class MultiStepLR extends LRSchedule {
  /** Sorted milestones. */
  milestones: number[];
  /** Decay factor. */
  gamma: number;

  /**
   * Creates the schedule.
   *
   * @param optimizer the optimiser whose lrs to set
   * @param options milestones and gamma
   */
  constructor(optimizer: ScheduledOptimizer, options: MultiStepLROptions) {
    super(optimizer);
    for (const m of options.milestones) checkInt("milestone", m, 0);
    this.milestones = [...options.milestones].sort((a, b) => a - b);
    this.gamma = options.gamma ?? 0.1;
    this.apply();
  }

  /** The lrs after `step` steps. */
  getLr(step: number): number[] {
    const counts = new Map<number, number>();
    for (const m of this.milestones) if (m <= step) counts.set(m, (counts.get(m) ?? 0) + 1);
    return this.baseLrs.map((base) => {
      let lr = base;
      for (const c of counts.values()) lr *= this.gamma ** c;
      return lr;
    });
  }

  /** Class name and options. */
  protected describe(): { kind: string; options: Record<string, unknown> } {
    return { kind: "MultiStepLR", options: { milestones: this.milestones, gamma: this.gamma } };
  }

  /** Restores options. */
  protected restore(o: Record<string, unknown>): void {
    this.milestones = (o.milestones as number[]).slice();
    this.gamma = o.gamma as number;
  }
}

/** {@linkcode CosineAnnealingLR} options. */
export interface CosineAnnealingLROptions {
  /** Half period in steps. */
  tMax: number;
  /** The minimum lr (default 0). */
  etaMin?: number;
}

/** lr = etaMin + (base − etaMin)·(1 + cos(π·step/tMax))/2 (PyTorch's closed form; periodic past tMax). */
export class CosineAnnealingLR extends LRSchedule {
  /** Half period in steps. */
  tMax: number;
  /** Minimum lr. */
  etaMin: number;

  /**
   * Creates the schedule.
   *
   * @param optimizer the optimiser whose lrs to set
   * @param options period and minimum
   */
  constructor(optimizer: ScheduledOptimizer, options: CosineAnnealingLROptions) {
    super(optimizer);
    checkInt("tMax", options.tMax, 1);
    this.tMax = options.tMax;
    this.etaMin = options.etaMin ?? 0;
    this.apply();
  }

  /** The lrs after `step` steps. */
  getLr(step: number): number[] {
    return this.baseLrs.map((base) =>
      this.etaMin + (base - this.etaMin) * (1 + Math.cos(Math.PI * step / this.tMax)) / 2
    );
  }

  /** Class name and options. */
  protected describe(): { kind: string; options: Record<string, unknown> } {
    return { kind: "CosineAnnealingLR", options: { tMax: this.tMax, etaMin: this.etaMin } };
  }

  /** Restores options. */
  protected restore(o: Record<string, unknown>): void {
    this.tMax = o.tMax as number;
    this.etaMin = o.etaMin as number;
  }
}

/** {@linkcode TimmStepLR} options (timm's `StepLRScheduler` with `t_in_epochs=False`). */
export interface TimmStepLROptions {
  /** Steps between decays (`decay_t`). */
  decayT: number;
  /** Decay factor (`decay_rate`, default 1: timm's default). */
  decayRate?: number;
  /** Warm-up steps (`warmup_t`, default 0). */
  warmupT?: number;
  /** The lr at step 0 of the warm-up (`warmup_lr_init`, default 0). */
  warmupLrInit?: number;
}

/**
 * timm's StepLR: lr = base·decayRate^⌊step/decayT⌋ (one power, as timm), after an optional linear warm-up
 * `warmupLrInit + step·(base − warmupLrInit)/warmupT` for step < warmupT. The recipe (docs/paper.md §1.11):
 * `new TimmStepLR(opt, { decayT: Math.floor(0.8 * epochs) * itersPerEpoch, decayRate: 0.1 })`.
 */
export class TimmStepLR extends LRSchedule {
  /** Steps between decays. */
  decayT: number;
  /** Decay factor. */
  decayRate: number;
  /** Warm-up steps. */
  warmupT: number;
  /** The warm-up's first lr. */
  warmupLrInit: number;

  /**
   * Creates the schedule.
   *
   * @param optimizer the optimiser whose lrs to set
   * @param options decay and warm-up
   */
  constructor(optimizer: ScheduledOptimizer, options: TimmStepLROptions) {
    super(optimizer);
    checkInt("decayT", options.decayT, 1);
    this.decayT = options.decayT;
    this.decayRate = options.decayRate ?? 1;
    this.warmupT = options.warmupT ?? 0;
    checkInt("warmupT", this.warmupT, 0);
    this.warmupLrInit = options.warmupLrInit ?? 0;
    this.apply();
  }

  /** The lrs after `step` steps. */
  getLr(step: number): number[] {
    if (step < this.warmupT) {
      return this.baseLrs.map((base) => this.warmupLrInit + step * ((base - this.warmupLrInit) / this.warmupT));
    }
    return this.baseLrs.map((base) => base * this.decayRate ** Math.floor(step / this.decayT));
  }

  /** Class name and options. */
  protected describe(): { kind: string; options: Record<string, unknown> } {
    return {
      kind: "TimmStepLR",
      options: {
        decayT: this.decayT,
        decayRate: this.decayRate,
        warmupT: this.warmupT,
        warmupLrInit: this.warmupLrInit,
      },
    };
  }

  /** Restores options. */
  protected restore(o: Record<string, unknown>): void {
    this.decayT = o.decayT as number;
    this.decayRate = o.decayRate as number;
    this.warmupT = o.warmupT as number;
    this.warmupLrInit = o.warmupLrInit as number;
  }
}

/** {@linkcode LinearWarmup} options. */
export interface LinearWarmupOptions {
  /** Warm-up steps (0: the main schedule alone). */
  warmupSteps: number;
  /** The lr at step 0 (default 0). */
  warmupLrInit?: number;
  /**
   * "overlay" (default, timm): the main schedule is evaluated at the global step and the warm-up replaces
   * its first `warmupSteps` values. "sequential" (PyTorch `SequentialLR`): the main schedule starts at 0
   * when the warm-up ends (its step is `step − warmupSteps`).
   */
  mode?: "overlay" | "sequential";
}

/**
 * A linear warm-up from `warmupLrInit` to each group's base lr, `init + step·(base − init)/warmupSteps`
 * (timm's formula), then another schedule. Step this schedule only; the wrapped one is evaluated through
 * its `getLr` (its `lastStep` follows along).
 */
export class LinearWarmup extends LRSchedule {
  /** The schedule after the warm-up. */
  readonly main: LRSchedule;
  /** Warm-up steps. */
  warmupSteps: number;
  /** The warm-up's first lr. */
  warmupLrInit: number;
  /** How the main schedule's step is counted. */
  mode: "overlay" | "sequential";

  /**
   * Creates the schedule.
   *
   * @param main the schedule to run after the warm-up (built on the same optimiser)
   * @param options ramp
   */
  constructor(main: LRSchedule, options: LinearWarmupOptions) {
    super(main.optimizer);
    checkInt("warmupSteps", options.warmupSteps, 0);
    this.main = main;
    this.warmupSteps = options.warmupSteps;
    this.warmupLrInit = options.warmupLrInit ?? 0;
    this.mode = options.mode ?? "overlay";
    this.apply();
  }

  /** The main schedule's step count at global step `step`. */
  mainStep(step: number): number {
    return this.mode === "sequential" ? Math.max(0, step - this.warmupSteps) : step;
  }

  /** The lrs after `step` steps. */
  getLr(step: number): number[] {
    if (step < this.warmupSteps) {
      return this.baseLrs.map((base) => this.warmupLrInit + step * ((base - this.warmupLrInit) / this.warmupSteps));
    }
    return this.main.getLr(this.mainStep(step));
  }

  /** Writes the lrs and keeps the main schedule's step in line. */
  protected override apply(): void {
    this.main.lastStep = this.mainStep(this.lastStep);
    super.apply();
  }

  /** Class name and options. */
  protected describe(): { kind: string; options: Record<string, unknown> } {
    return {
      kind: "LinearWarmup",
      options: { warmupSteps: this.warmupSteps, warmupLrInit: this.warmupLrInit, mode: this.mode },
    };
  }

  /** Restores options. */
  protected restore(o: Record<string, unknown>): void {
    this.warmupSteps = o.warmupSteps as number;
    this.warmupLrInit = o.warmupLrInit as number;
    this.mode = o.mode as "overlay" | "sequential";
  }

  /** The state, the wrapped schedule's included. */
  override stateDict(): LRScheduleStateDict {
    return { ...super.stateDict(), main: this.main.stateDict() };
  }

  /** Restores the state, the wrapped schedule's first. */
  override loadStateDict(sd: LRScheduleStateDict): void {
    if (sd.main) this.main.loadStateDict(sd.main);
    super.loadStateDict(sd);
  }
}
