/**
 * The control words shared by the main thread (threads.ts) and a kernel worker (thread.ts), in one
 * Int32Array on a SharedArrayBuffer per worker: [state, call count, words used, calls...], each call written as
 * [kernel index, argument count, arguments...] and run in order.
 *
 * @module
 */

/** Worker state: starting (set by the main thread before the worker runs). */
export const BOOTING = -1;
/** Worker state: waiting for a job. */
export const IDLE = 0;
/** Worker state: a job is posted (set by the main thread) or running. */
export const JOB = 1;
/** Worker state: the last job threw; the worker takes no more jobs. */
export const FAILED = 2;
/** Index of the first call's first word. */
export const ARGS = 3;
/** Control words per worker: room for a job of about a dozen calls. */
export const CTRL_WORDS = ARGS + 512;
/** The kernels a job can name, by index (exports of src/index.ts). */
export const KERNELS = [
  "scanForward",
  "scanBackward",
  "unary",
  "dwForward",
  "dwBackwardInput",
  "dwBackwardWeight",
  "geluCross",
  "geluCrossGrad",
  "binary",
  "copy",
  "transpose",
  "lnForward",
  "lnBackward",
  "maxPoolForward",
  "gather",
  "scatterAdd",
  "haarDwt",
  "haarIwt",
] as const;
/** A kernel's name. */
export type KernelName = (typeof KERNELS)[number];
