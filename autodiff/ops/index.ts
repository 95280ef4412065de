/**
 * All tensor ops, re-exported.
 *
 * @module
 */

export * from "./creation.ts";
export * from "./elementwise.ts";
export * from "./shape.ts";
export * from "./reduce.ts";
export * from "./linalg.ts";
export * from "./indexing.ts";
export * from "./conv.ts";
export * from "./norm.ts";
export * from "./gate.ts";
export * from "./resize.ts";
