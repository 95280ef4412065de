/// <reference lib="dom" />
/**
 * The playground page: four panels, each computing with the library in the browser, on WebGPU when the browser
 * has an adapter (and `?device=cpu` is not asked for), else on the CPU backend. Built by web/build.ts into
 * web/dist/app.js. `globalThis.playground` exposes the device, the per-panel timings and the run counters (the
 * browser test and the figures in the README read them).
 *
 * @module
 */

import type { Device } from "../autodiff/backend.ts";
import { initWebGPU, setDefaultDevice } from "../autodiff/device.ts";
import { decodeRgb, type RgbImage } from "../anomaly/data/pixels.ts";
import { colorize, denormalize, overlay } from "../anomaly/viz/heatmap.ts";
import { createModel } from "../models/registry.ts";
import { manualSeed } from "../autodiff/random.ts";
import type { AnomalyModel } from "../models/common/anomaly_model.ts";
import {
  anomalyOf,
  GATING_WRITES,
  gatingDemo,
  orderCatalogue,
  RESPONSE_ONSET,
  rgbToPlanes,
  scanSequence,
  ssmResponses,
  TINY_MODEL_CONFIG,
  waveletBands,
} from "./compute.ts";
import { loadCheckpointBytes } from "./checkpoint.ts";

/** What the page exposes for tests and measurements. */
interface PlaygroundState {
  device: Device;
  adapter: string;
  /** ms from navigation start to each panel's first complete render. */
  firstRender: Record<string, number>;
  /** ms of each panel's last computation (library call and read-back). */
  lastMs: Record<string, number>;
  /** Completed renders per panel. */
  runs: Record<string, number>;
  /** Last error per panel. */
  errors: Record<string, string>;
  /** Time per image (ms) of the built-in model's configuration at `size`² (random weights), mean of `n` images. */
  benchAnomaly(size: number, n?: number): Promise<number>;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const state: PlaygroundState = {
  device: "cpu",
  adapter: "",
  firstRender: {},
  lastMs: {},
  runs: {},
  errors: {},
  benchAnomaly,
};
(globalThis as unknown as { playground: PlaygroundState }).playground = state;

const BUILTIN_CHECKPOINT = "assets/tiny_wave_mambaad_64.safetensors";
const asset = (name: string) => new URL(`assets/${name}`, location.href).href;

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`cannot fetch ${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

/** Marks a render of `panel` done: its time, the status line, the first-render time and the counter. */
function rendered(panel: string, ms: number, what = ""): void {
  state.lastMs[panel] = ms;
  state.runs[panel] = (state.runs[panel] ?? 0) + 1;
  state.firstRender[panel] ??= performance.now();
  $(`${panel}-status`).textContent = `${what}computed on ${state.device === "webgpu" ? "WebGPU" : "the CPU"} in ${
    ms.toFixed(1)
  } ms`;
  $(`${panel}-alert`).textContent = "";
  document.getElementById(panel)!.dataset.runs = String(state.runs[panel]);
}

function failed(panel: string, e: unknown): void {
  const msg = e instanceof Error ? e.message : String(e);
  state.errors[panel] = msg;
  $(`${panel}-alert`).textContent = msg;
  console.error(`${panel}:`, e);
  const section = document.getElementById(panel)!;
  section.dataset.errors = String(Number(section.dataset.errors ?? 0) + 1);
}

// ---- backend ------------------------------------------------------------------------------------------------------

async function chooseDevice(): Promise<void> {
  const wanted = new URLSearchParams(location.search).get("device") ?? "auto";
  $<HTMLSelectElement>("device").value = wanted === "cpu" ? "cpu" : "auto";
  $<HTMLSelectElement>("device").addEventListener("change", (e) => {
    const url = new URL(location.href);
    url.searchParams.set("device", (e.target as HTMLSelectElement).value);
    location.href = url.href;
  });
  let note = "";
  if (wanted !== "cpu") {
    try {
      const b = await initWebGPU() as unknown as { adapterDescription?: string };
      setDefaultDevice("webgpu");
      state.device = "webgpu";
      const info = await (navigator as unknown as {
        gpu: { requestAdapter(): Promise<{ info?: { vendor: string; architecture: string } } | null> };
      }).gpu.requestAdapter();
      state.adapter = [info?.info?.vendor, info?.info?.architecture, b.adapterDescription].filter(Boolean).join(" ");
    } catch (e) {
      note = ` (no WebGPU: ${(e as Error).message})`;
    }
  }
  if (state.device === "cpu") setDefaultDevice("cpu");
  $("backend").textContent = state.device === "webgpu"
    ? `Computing on WebGPU${state.adapter ? ` (${state.adapter})` : ""}`
    : `Computing on the CPU backend${note}`;
  document.body.dataset.device = state.device;
}

// ---- drawing helpers ----------------------------------------------------------------------------------------------

const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function ramp(t: number): string {
  const x = Math.min(Math.max(t, 0), 1) * (RAMP.length - 1);
  const i = Math.min(Math.floor(x), RAMP.length - 2), f = x - i;
  return `rgb(${RAMP[i].map((v, k) => Math.round(v + f * (RAMP[i + 1][k] - v))).join(",")})`;
}

function putRgb(canvas: HTMLCanvasElement, img: RgbImage): void {
  canvas.width = img.width;
  canvas.height = img.height;
  const ctx = canvas.getContext("2d")!;
  const out = ctx.createImageData(img.width, img.height);
  for (let i = 0; i < img.width * img.height; i++) {
    out.data[4 * i] = img.data[3 * i];
    out.data[4 * i + 1] = img.data[3 * i + 1];
    out.data[4 * i + 2] = img.data[3 * i + 2];
    out.data[4 * i + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
}

function figure(gallery: HTMLElement, caption: string, img: RgbImage): void {
  const fig = document.createElement("figure");
  const c = document.createElement("canvas");
  c.setAttribute("role", "img");
  c.setAttribute("aria-label", caption);
  putRgb(c, img);
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  fig.append(c, cap);
  gallery.append(fig);
}

// ---- 1. scan orders -----------------------------------------------------------------------------------------------

const orders = orderCatalogue();
let scanSeq: Int32Array = new Int32Array(0), scanN = 8;
let scanTimer: ReturnType<typeof setInterval> | 0 = 0;

function drawScan(upTo: number): void {
  const canvas = $<HTMLCanvasElement>("scan-canvas"), ctx = canvas.getContext("2d")!;
  const size = canvas.width, n = scanN, cell = size / n;
  ctx.fillStyle = "#fafafa";
  ctx.fillRect(0, 0, size, size);
  ctx.strokeStyle = "#e4e4e4";
  ctx.lineWidth = 1;
  for (let i = 1; i < n; i++) {
    ctx.beginPath();
    ctx.moveTo(i * cell, 0);
    ctx.lineTo(i * cell, size);
    ctx.moveTo(0, i * cell);
    ctx.lineTo(size, i * cell);
    ctx.stroke();
  }
  const centre = (p: number) => [(p % n + 0.5) * cell, (Math.floor(p / n) + 0.5) * cell];
  const total = scanSeq.length;
  for (let t = 0; t + 1 < Math.min(upTo, total); t++) {
    const [ax, ay] = centre(scanSeq[t]), [bx, by] = centre(scanSeq[t + 1]);
    const jump = Math.hypot(bx - ax, by - ay) > 1.5 * cell;
    ctx.strokeStyle = ramp(t / Math.max(1, total - 2));
    ctx.globalAlpha = jump ? 0.5 : 1;
    ctx.lineWidth = jump ? 1 : Math.max(2, cell / 6);
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(ax, ay);
    ctx.lineTo(bx, by);
    ctx.stroke();
  }
  ctx.globalAlpha = 1;
  if (total) {
    const [sx, sy] = centre(scanSeq[0]);
    ctx.fillStyle = ramp(0);
    ctx.beginPath();
    ctx.arc(sx, sy, Math.max(4, cell / 4), 0, 2 * Math.PI);
    ctx.fill();
    const [ex, ey] = centre(scanSeq[Math.min(upTo, total) - 1]);
    ctx.strokeStyle = "#d00";
    ctx.lineWidth = 2;
    ctx.strokeRect(ex - cell / 2 + 1, ey - cell / 2 + 1, cell - 2, cell - 2);
  }
  if (n <= 8) {
    ctx.fillStyle = "#333";
    ctx.font = `${Math.round(cell / 4)}px sans-serif`;
    ctx.textAlign = "center";
    for (let t = 0; t < Math.min(upTo, total); t++) {
      const [x, y] = centre(scanSeq[t]);
      ctx.fillText(String(t), x, y - cell / 4);
    }
  }
  $("scan-step-value").textContent = String(Math.min(upTo, total));
  $("scan-canvas").setAttribute(
    "aria-label",
    `scan path, step ${Math.min(upTo, total)} of ${total}: cell ${scanSeq[Math.min(upTo, total) - 1]}`,
  );
}

function stopScan(): void {
  if (scanTimer) clearInterval(scanTimer);
  scanTimer = 0;
  $("scan-play").textContent = "Play";
  $("scan-play").setAttribute("aria-pressed", "false");
}

async function updateScan(): Promise<void> {
  stopScan();
  const entry = orders.find((o) => o.id === $<HTMLSelectElement>("scan-order").value)!;
  scanN = Number($<HTMLSelectElement>("scan-size").value);
  const t0 = performance.now();
  try {
    scanSeq = await scanSequence(entry.order, scanN, state.device);
  } catch (e) {
    return failed("scan", e);
  }
  const ms = performance.now() - t0;
  const step = $<HTMLInputElement>("scan-step");
  step.max = String(scanSeq.length);
  step.value = String(scanSeq.length);
  $("scan-sequence").textContent = Array.from(scanSeq).join(" ");
  $("scan-sequence").dataset.order = entry.order.name;
  drawScan(scanSeq.length);
  rendered("scan", ms, `${entry.order.name}, ${scanN}×${scanN}: `);
}

function setupScan(): void {
  const sel = $<HTMLSelectElement>("scan-order");
  const groups = new Map<string, HTMLOptGroupElement>();
  for (const o of orders) {
    let g = groups.get(o.group);
    if (!g) {
      g = document.createElement("optgroup");
      g.label = o.group;
      groups.set(o.group, g);
      sel.append(g);
    }
    g.append(new Option(o.label, o.id));
  }
  sel.value = "type-hilbert-forward";
  sel.addEventListener("change", updateScan);
  $("scan-size").addEventListener("change", updateScan);
  $("scan-step").addEventListener("input", (e) => {
    stopScan();
    drawScan(Number((e.target as HTMLInputElement).value));
  });
  $("scan-play").addEventListener("click", () => {
    if (scanTimer) return stopScan();
    const step = $<HTMLInputElement>("scan-step");
    let t = Number(step.value) >= scanSeq.length ? 1 : Number(step.value);
    $("scan-play").textContent = "Pause";
    $("scan-play").setAttribute("aria-pressed", "true");
    const every = Math.max(10, 2000 / scanSeq.length);
    scanTimer = setInterval(() => {
      step.value = String(++t);
      drawScan(t);
      if (t >= scanSeq.length) stopScan();
    }, every);
  });
}

// ---- 2. SSM response ----------------------------------------------------------------------------------------------

const SSM_SLIDERS = ["A", "delta", "B", "C"] as const;

function plot(
  ctx: CanvasRenderingContext2D,
  x0: number,
  y0: number,
  w: number,
  h: number,
  title: string,
  series: { y: ArrayLike<number>; color: string; label: string }[],
  marks: readonly number[] = [],
): void {
  const all = series.flatMap((s) => Array.from(s.y));
  let lo = Math.min(0, ...all), hi = Math.max(0, ...all);
  if (hi - lo < 1e-6) hi = lo + 1;
  const pad = 0.08 * (hi - lo);
  lo -= lo < 0 ? pad : 0;
  hi += pad;
  const n = series[0].y.length;
  const X = (t: number) => x0 + (t / (n - 1)) * w, Y = (v: number) => y0 + h - ((v - lo) / (hi - lo)) * h;
  ctx.fillStyle = "#fff";
  ctx.fillRect(x0, y0, w, h);
  ctx.strokeStyle = "#ccc";
  ctx.strokeRect(x0, y0, w, h);
  ctx.strokeStyle = "#999";
  ctx.beginPath();
  ctx.moveTo(x0, Y(0));
  ctx.lineTo(x0 + w, Y(0));
  ctx.stroke();
  ctx.fillStyle = "#ddd";
  for (const m of marks) ctx.fillRect(X(m) - 1, y0, 2, h);
  ctx.fillStyle = "#222";
  ctx.font = "bold 13px sans-serif";
  ctx.textAlign = "left";
  ctx.fillText(title, x0, y0 - 6);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#666";
  ctx.fillText(hi.toPrecision(3), x0 + 3, y0 + 11);
  ctx.fillText(lo.toPrecision(3), x0 + 3, y0 + h - 3);
  series.forEach((s, k) => {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    for (let t = 0; t < n; t++) (t ? ctx.lineTo : ctx.moveTo).call(ctx, X(t), Y(s.y[t]));
    ctx.stroke();
    ctx.fillStyle = s.color;
    ctx.textAlign = "right";
    ctx.fillText(s.label, x0 + w - 4, y0 + 14 + 13 * k);
  });
}

const fmt = (a: ArrayLike<number>) => Array.from(a, (v) => v.toPrecision(9)).join(" ");

let ssmPending = false, ssmDirty = false;
async function updateSsm(): Promise<void> {
  if (ssmPending) {
    ssmDirty = true;
    return;
  }
  ssmPending = true;
  const v = Object.fromEntries(SSM_SLIDERS.map((k) => [k, Number($<HTMLInputElement>(`ssm-${k}`).value)])) as Record<
    typeof SSM_SLIDERS[number],
    number
  >;
  for (const k of SSM_SLIDERS) $(`ssm-${k}-value`).textContent = String(v[k]);
  try {
    const t0 = performance.now();
    const r = await ssmResponses(v, state.device);
    const g = await gatingDemo({ A: v.A, B: v.B, open: 6, fixedDelta: 0.15 }, state.device);
    const ms = performance.now() - t0;
    const canvas = $<HTMLCanvasElement>("ssm-canvas"), ctx = canvas.getContext("2d")!;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    plot(ctx, 10, 22, 340, 180, "impulse response", [{ y: r.impulse, color: "#3b528b", label: "y" }], [RESPONSE_ONSET]);
    plot(ctx, 370, 22, 340, 180, "step response", [{ y: r.step, color: "#21918c", label: "y" }], [RESPONSE_ONSET]);
    plot(ctx, 10, 250, 700, 200, "input-dependent Δ: the gate opens at the grey marks", [
      { y: g.u, color: "#bbb", label: "input u" },
      { y: g.fixed, color: "#e08214", label: "fixed Δ = 0.15" },
      { y: g.selective, color: "#5e3c99", label: "Δ = softplus(gate)" },
    ], GATING_WRITES);
    $("ssm-values").textContent = `impulse: ${fmt(r.impulse)}\nstep: ${fmt(r.step)}\ngated: ${
      fmt(g.selective)
    }\nfixed: ${fmt(g.fixed)}`;
    $("ssm-values").dataset.params = JSON.stringify(v);
    rendered("ssm", ms);
  } catch (e) {
    failed("ssm", e);
  } finally {
    ssmPending = false;
    if (ssmDirty) {
      ssmDirty = false;
      updateSsm();
    }
  }
}

function setupSsm(): void {
  for (const k of SSM_SLIDERS) $(`ssm-${k}`).addEventListener("input", updateSsm);
}

// ---- 3. wavelet bands ---------------------------------------------------------------------------------------------

/** A built-in test pattern: concentric rings of rising frequency (every band has something to show). */
function ringsPattern(s = 128): RgbImage {
  const data = new Uint8Array(s * s * 3);
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      const r = Math.hypot(x - s / 2, y - s / 2);
      // a zone plate: the ring frequency grows with the radius and reaches Nyquist at the corners
      const v = 127.5 + 127.5 * Math.cos((Math.PI * r * r) / (2 * s));
      data.set([v, 255 - v, (x * 255) / s], (y * s + x) * 3);
    }
  }
  return { width: s, height: s, data };
}

/** A band (3, h, w) as an RGB picture: LL divided by 2 (its range is [0, 2]); detail bands as 0.5 + 2·value. */
function bandImage(band: Float32Array, h: number, w: number, detail: boolean): RgbImage {
  const data = new Uint8Array(h * w * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < h * w; i++) {
      const v = detail ? 0.5 + 2 * band[c * h * w + i] : band[c * h * w + i] / 2;
      data[3 * i + c] = Math.max(0, Math.min(255, Math.round(v * 255)));
    }
  }
  return { width: w, height: h, data };
}

async function updateWavelet(img: RgbImage, name: string): Promise<void> {
  try {
    const planes = rgbToPlanes(img);
    const t0 = performance.now();
    const r = await waveletBands(planes, state.device);
    const ms = performance.now() - t0;
    const gallery = $("wavelet-gallery");
    gallery.replaceChildren();
    figure(gallery, `${name} (${planes.width}×${planes.height})`, img);
    ["LL", "HL", "LH", "HH"].forEach((b, i) => figure(gallery, b, bandImage(r.bands[i], r.height, r.width, i > 0)));
    $("wavelet-error").textContent = r.maxError.toExponential(3);
    $("wavelet-error").dataset.value = String(r.maxError);
    $("wavelet-error").dataset.image = name;
    rendered("wavelet", ms);
  } catch (e) {
    failed("wavelet", e);
  }
}

async function waveletBuiltin(): Promise<void> {
  const v = $<HTMLSelectElement>("wavelet-builtin").value;
  try {
    const img = v === "pattern" ? ringsPattern() : await decodeRgb(await fetchBytes(asset(v)), v);
    await updateWavelet(img, v);
  } catch (e) {
    failed("wavelet", e);
  }
}

async function waveletFile(file: File): Promise<void> {
  try {
    await updateWavelet(await decodeRgb(new Uint8Array(await file.arrayBuffer()), file.name), file.name);
  } catch (e) {
    failed("wavelet", e);
  }
}

function setupWavelet(): void {
  $("wavelet-builtin").addEventListener("change", waveletBuiltin);
  $<HTMLInputElement>("wavelet-file").addEventListener("change", (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) waveletFile(f);
  });
  const section = $("wavelet");
  section.addEventListener("dragover", (e) => {
    e.preventDefault();
    section.classList.add("dragover");
  });
  section.addEventListener("dragleave", () => section.classList.remove("dragover"));
  section.addEventListener("drop", (e) => {
    e.preventDefault();
    section.classList.remove("dragover");
    const f = e.dataTransfer?.files?.[0];
    if (f) waveletFile(f);
  });
}

// ---- 4. anomaly map -----------------------------------------------------------------------------------------------

let anomalyModel: AnomalyModel | null = null;
let anomalyModelText = "";
let anomalyImage: { img: RgbImage; name: string } | null = null;

async function setCheckpoint(bytes: Uint8Array, name: string): Promise<void> {
  $("anomaly-alert").textContent = "";
  $("anomaly-model").textContent = `loading ${name}…`;
  const t0 = performance.now();
  let loaded;
  try {
    loaded = await loadCheckpointBytes(bytes, name, state.device);
  } catch (e) {
    $("anomaly-model").textContent = anomalyModel
      ? `${anomalyModelText} (kept: ${name} was refused)`
      : "no checkpoint loaded";
    throw e;
  }
  anomalyModel?.dispose();
  anomalyModel = loaded.model;
  anomalyModelText = `${name}: ${loaded.description}, ${loaded.epoch} epochs${
    loaded.seededEncoder ? ", random encoder rebuilt from the run's seed" : ""
  } (loaded in ${(performance.now() - t0).toFixed(0)} ms)`;
  $("anomaly-model").textContent = anomalyModelText;
}

async function updateAnomaly(): Promise<void> {
  if (!anomalyModel || !anomalyImage) return;
  try {
    const t0 = performance.now();
    const r = await anomalyOf(anomalyModel, anomalyImage.img);
    const ms = performance.now() - t0;
    const rgb = denormalize(r.input, r.size), heat = colorize(r.map, r.size, r.size);
    const gallery = $("anomaly-gallery");
    gallery.replaceChildren();
    figure(gallery, `${anomalyImage.name} (model input ${r.size}²)`, rgb);
    figure(gallery, "anomaly map", heat);
    figure(gallery, "overlay", overlay(rgb, heat, 0.5));
    $("anomaly-score").textContent = r.score.toPrecision(6);
    $("anomaly-score").dataset.value = String(r.score);
    $("anomaly-score").dataset.image = anomalyImage.name;
    rendered("anomaly", ms);
  } catch (e) {
    failed("anomaly", e);
  }
}

async function guarded(fn: () => Promise<void>): Promise<void> {
  try {
    $("anomaly-alert").textContent = "";
    await fn();
    await updateAnomaly();
  } catch (e) {
    failed("anomaly", e);
  }
}

function setupAnomaly(): Promise<void> {
  $("anomaly-builtin-ckpt").addEventListener(
    "click",
    () => guarded(async () => setCheckpoint(await fetchBytes(BUILTIN_CHECKPOINT), "built-in tiny model")),
  );
  $<HTMLInputElement>("anomaly-ckpt").addEventListener("change", (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) guarded(async () => setCheckpoint(new Uint8Array(await f.arrayBuffer()), f.name));
  });
  const builtinImage = async () => {
    const v = $<HTMLSelectElement>("anomaly-image-builtin").value;
    anomalyImage = { img: await decodeRgb(await fetchBytes(asset(v)), v), name: v };
  };
  $("anomaly-image-builtin").addEventListener("change", () => guarded(builtinImage));
  $<HTMLInputElement>("anomaly-image").addEventListener("change", (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) {
      guarded(async () => {
        anomalyImage = { img: await decodeRgb(new Uint8Array(await f.arrayBuffer()), f.name), name: f.name };
      });
    }
  });
  return guarded(async () => {
    await builtinImage();
    await setCheckpoint(await fetchBytes(BUILTIN_CHECKPOINT), "built-in tiny model");
  });
}

/** The built-in model's configuration at `size`² with seeded random weights: `n` timed images after a warm-up. */
async function benchAnomaly(size: number, n = 3): Promise<number> {
  manualSeed(0);
  const model = await createModel("wave_mambaad", { ...TINY_MODEL_CONFIG, imageSize: size }, { device: state.device });
  model.eval();
  try {
    const img = ringsPattern(size);
    await anomalyOf(model, img);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await anomalyOf(model, img);
    return (performance.now() - t0) / n;
  } finally {
    model.dispose();
  }
}

// ---- start --------------------------------------------------------------------------------------------------------

async function start(): Promise<void> {
  await chooseDevice();
  setupScan();
  setupSsm();
  setupWavelet();
  await updateScan();
  await updateSsm();
  await waveletBuiltin();
  await setupAnomaly();
  document.body.dataset.ready = "true";
}

start().catch((e) => {
  $("backend").textContent = `failed to start: ${(e as Error).message}`;
  document.body.dataset.ready = "error";
});
