/**
 * The data layer of the anomaly-detection pipeline: image decoding and the reference transforms
 * (`image.ts`), dataset layouts (`datasets.ts`), batching with decode-ahead (`loader.ts`) and the built-in
 * synthetic dataset (`synthetic.ts`).
 *
 * @module
 */

export * from "./image.ts";
export * from "./datasets.ts";
export * from "./loader.ts";
export * from "./synthetic.ts";
