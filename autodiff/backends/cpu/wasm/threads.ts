/**
 * Worker threads for the CPU backend's WebAssembly kernels. Where the host registered a way to start them
 * ({@linkcode registerKernelWorkers}: Deno's node:worker_threads in `../deno_host.ts`, unref'd so they never keep a
 * process alive), `startThreads` starts `hardwareConcurrency − 1` workers that
 * instantiate the shared-memory build on the main thread's memory; {@linkcode parallelCalls} then spreads
 * independent kernel calls (batch elements, images, blocks) over the main thread and the ready workers, each
 * with its own region of the memory. The main thread blocks in `Atomics.wait` until its workers are done, so
 * the kernels stay synchronous. Until a worker has started, and where workers are unavailable (nothing registered,
 * as in the browser build, or no SharedArrayBuffer), everything runs on the calling thread.
 *
 * @module
 */

import { ARGS, BOOTING, CTRL_WORDS, FAILED, IDLE, JOB, type KernelName, KERNELS } from "./protocol.ts";

interface WorkerSlot {
  ctrl: Int32Array;
  dead: boolean;
}

const slots: WorkerSlot[] = [];
let wanted = typeof navigator !== "undefined" ? Math.max(1, navigator.hardwareConcurrency ?? 1) : 1;
let started = false;

/**
 * Sets how many threads the CPU backend's WebAssembly kernels may use, the calling thread included (default:
 * `navigator.hardwareConcurrency`). Workers are started once, at the first kernel call, for the count set
 * then; a smaller count set later leaves the extra workers idle. 1 keeps everything on the calling thread.
 */
export function setCpuThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`setCpuThreads: expected an integer ≥ 1, got ${n}`);
  wanted = n;
}

/** The number of threads CPU kernel calls are spread over now: 1 + the ready workers, at most the set count. */
export function cpuThreads(): number {
  return 1 + readyWorkers().length;
}

function readyWorkers(): WorkerSlot[] {
  const ready: WorkerSlot[] = [];
  for (const s of slots) {
    if (ready.length >= wanted - 1) break;
    if (!s.dead && Atomics.load(s.ctrl, 0) === IDLE) ready.push(s);
  }
  return ready;
}

/** What a kernel worker is started with: the shared memory, the shared-memory build, its control words. */
export interface KernelWorkerData {
  /** The main thread's shared memory. */
  memory: WebAssembly.Memory;
  /** The shared-memory build of the kernels. */
  bytes: Uint8Array;
  /** The worker's control words (see protocol.ts). */
  ctrl: Int32Array;
}

/** Starts one kernel worker (thread.ts) with `data`; calls `onGone` if it fails or exits. */
export type KernelWorkerSpawner = (data: KernelWorkerData, onGone: () => void) => void;

let spawner: KernelWorkerSpawner | null = null;

/**
 * Lends the kernels a way to start worker threads (Deno's node:worker_threads, registered by `../deno_host.ts`).
 * Without one (browsers) every kernel call runs on the calling thread.
 */
export function registerKernelWorkers(spawn: KernelWorkerSpawner): void {
  spawner = spawn;
}

/** Starts the workers in the background (once); `bytes` is the shared-memory build, `memory` its memory. */
export function startThreads(memory: WebAssembly.Memory, bytes: Uint8Array): void {
  if (started || wanted <= 1) return;
  started = true;
  if (!spawner || typeof SharedArrayBuffer === "undefined") return;
  for (let k = 0; k < wanted - 1; k++) {
    const ctrl = new Int32Array(new SharedArrayBuffer(4 * CTRL_WORDS));
    ctrl[0] = BOOTING;
    const slot: WorkerSlot = { ctrl, dead: false };
    spawner({ memory, bytes, ctrl }, () => (slot.dead = true));
    slots.push(slot);
  }
}

/** One kernel call: its name and arguments (byte addresses, sizes). */
export interface KernelCall {
  /** The export to call. */
  kernel: KernelName;
  /** Its arguments. */
  args: number[];
}

/** What one thread runs for one item: a kernel call, or calls run in order (copies in, kernel, copies out). */
export type KernelJob = KernelCall | KernelCall[];

/**
 * Runs `count` independent jobs over the calling thread and the ready workers, `threads` at a time:
 * `prepare(slot, item)` lays out item's inputs in the slot's region and returns its job, `finish(slot, item)`
 * collects its outputs. `slots` is how many regions the caller laid out (at least 1); `run` calls a kernel on
 * the calling thread.
 */
export function parallelCalls(
  count: number,
  regions: number,
  prepare: (slot: number, item: number) => KernelJob,
  finish: (slot: number, item: number) => void,
  run: (call: KernelCall) => void,
): void {
  const workers = readyWorkers().slice(0, Math.max(0, Math.min(regions, count) - 1));
  const width = 1 + workers.length;
  for (let i0 = 0; i0 < count; i0 += width) {
    const n = Math.min(width, count - i0);
    const jobs = Array.from({ length: n }, (_, s) => prepare(s, i0 + s));
    const runHere = (job: KernelJob) => Array.isArray(job) ? job.forEach(run) : run(job);
    for (let s = 1; s < n; s++) post(workers[s - 1], jobs[s]);
    runHere(jobs[0]);
    for (let s = 1; s < n; s++) {
      // a worker that failed leaves its job to this thread
      if (!wait(workers[s - 1])) runHere(jobs[s]);
    }
    for (let s = 0; s < n; s++) finish(s, i0 + s);
  }
}

/**
 * Runs one kernel over `total` rows, split into equal ranges over the calling thread and the ready workers
 * (one range when there are fewer than `minRows` rows a thread): `call(r0, r1)` is the call for rows [r0, r1).
 */
export function splitRows(
  total: number,
  minRows: number,
  call: (r0: number, r1: number) => KernelCall,
  run: (call: KernelCall) => void,
): void {
  const parts = Math.max(1, Math.min(cpuThreads(), Math.floor(total / Math.max(1, minRows))));
  const range = (i: number) => [Math.floor(total * i / parts), Math.floor(total * (i + 1) / parts)];
  parallelCalls(parts, parts, (_, i) => call(range(i)[0], range(i)[1]), () => {}, run);
}

/**
 * Runs independent calls (or jobs) over the calling thread and the ready workers, nothing laid out per slot. The
 * calls are cut into one contiguous share per thread, and each share is posted as few jobs as the control words
 * hold: a handful of hand-offs instead of one per call (each costs a worker's wake-up).
 */
export function runCalls(jobs: KernelJob[], run: (call: KernelCall) => void): void {
  const width = Math.min(jobs.length, 1 + readyWorkers().length);
  if (width <= 1) {
    for (const job of jobs) Array.isArray(job) ? job.forEach(run) : run(job);
    return;
  }
  // each thread's share of the jobs, then the share in pieces that fit a job; round k runs every share's piece k
  const pieces: KernelCall[][][] = [];
  for (let t = 0; t < width; t++) {
    const share = jobs.slice(Math.floor(jobs.length * t / width), Math.floor(jobs.length * (t + 1) / width));
    const list: KernelCall[][] = [];
    let piece: KernelCall[] = [], words = 0;
    for (const job of share) {
      const calls = Array.isArray(job) ? job : [job];
      const need = calls.reduce((a, c) => a + 2 + c.args.length, 0);
      if (piece.length && words + need > CTRL_WORDS - ARGS) {
        list.push(piece);
        piece = [];
        words = 0;
      }
      piece.push(...calls);
      words += need;
    }
    if (piece.length) list.push(piece);
    pieces.push(list);
  }
  const rounds = Math.max(...pieces.map((l) => l.length));
  const order: KernelCall[][] = [];
  for (let k = 0; k < rounds; k++) for (const list of pieces) order.push(list[k] ?? []);
  parallelCalls(order.length, width, (_, i) => order[i], () => {}, run);
}

function post(w: WorkerSlot, job: KernelJob): void {
  const c = w.ctrl, calls = Array.isArray(job) ? job : [job];
  let at = ARGS;
  for (const call of calls) {
    if (at + 2 + call.args.length > CTRL_WORDS) throw new RangeError("CPU kernel job: too many calls for one job");
    c[at] = KERNELS.indexOf(call.kernel);
    c[at + 1] = call.args.length;
    c.set(call.args, at + 2);
    at += 2 + call.args.length;
  }
  c[1] = calls.length;
  c[2] = at - ARGS;
  Atomics.store(c, 0, JOB);
  Atomics.notify(c, 0);
}

/** Waits for a worker's job; false if it failed (the worker is retired). */
function wait(w: WorkerSlot): boolean {
  while (Atomics.load(w.ctrl, 0) === JOB) Atomics.wait(w.ctrl, 0, JOB, 100);
  if (Atomics.load(w.ctrl, 0) === FAILED) {
    w.dead = true;
    return false;
  }
  return true;
}
