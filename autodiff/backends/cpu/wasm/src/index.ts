// AssemblyScript entry: every WebAssembly kernel of the CPU backend, compiled into one module.
export { scanBackward, scanForward } from "./selective_scan";
export { geluCross, geluCrossGrad, unary } from "./elementwise";
export { dwBackwardInput, dwBackwardWeight, dwForward } from "./depthwise";
export { binary } from "./binary";
export { copy, transpose } from "./copy";
export { lnBackward, lnForward } from "./layer_norm";
export { maxPoolForward } from "./pool";
export { gather, scatterAdd } from "./gather";
export { haarDwt, haarIwt } from "./haar";
