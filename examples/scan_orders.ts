/**
 * Every scan order of the library, drawn as a path over the grid: how a 2-D feature map becomes the 1-D sequence a
 * selective scan reads. Each panel is a polyline through the cell centres in sequence order, coloured from dark
 * purple (first cell, marked with a dot) to yellow (last cell). Rows: the single orders (row-major, column-major,
 * snake, anti-diagonal zigzag, MambaAD's Hilbert curve, Wave-MambaAD's diagonal HH scan), then MambaAD's 8 SS2D
 * directions, on an 8×8 and a 16×16 grid. The 8×8 index sequences are printed too.
 *
 * Run: `deno run -A examples/scan_orders.ts [--out out/examples/]` → `scan_orders.png`.
 * Try: add your own order (`scanOrders.rot90(scanOrders.snake, 1)`, ...) to `orders` below.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { type ScanOrder, scanOrders } from "../mod.ts";
import { renderSvg } from "../anomaly/data/image.ts";

const { values: args } = parseArgs({ args: Deno.args, options: { out: { type: "string", default: "out/examples/" } } });
const outDir = args.out!;

/** Panel title and order. MambaAD's directions: k0..k3 = Hilbert of x, xᵀ, rot90(x), rot90(x)ᵀ; k4..k7 reversed. */
const orders: [title: string, order: ScanOrder][] = [
  ["row-major", scanOrders.rowMajor],
  ["column-major", scanOrders.columnMajor],
  ["snake", scanOrders.snake],
  ["anti-diagonal zigzag", scanOrders.antiDiagonalZigzag],
  ["Hilbert (MambaAD)", scanOrders.hilbert],
  ["diagonal (Wave-MambaAD HH)", scanOrders.diagonal],
  ...scanOrders.mambaadDirections().map((o, k): [string, ScanOrder] => [`MambaAD k${k}`, o]),
];

// a viridis-like ramp (5 stops), so start and end are easy to tell apart
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function ramp(t: number): string {
  const x = Math.min(Math.max(t, 0), 1) * (RAMP.length - 1);
  const i = Math.min(Math.floor(x), RAMP.length - 2), f = x - i;
  const c = RAMP[i].map((v, k) => Math.round(v + f * (RAMP[i + 1][k] - v)));
  return `rgb(${c.join(",")})`;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** One panel: grid lines, the path as segments coloured by time, a start dot, and titles. */
function panel(x0: number, y0: number, size: number, n: number, title: string, order: ScanOrder): string {
  const perm = order.permutation(n, n);
  const cell = size / n;
  const centre = (p: number) => [x0 + (p % n + 0.5) * cell, y0 + (Math.floor(p / n) + 0.5) * cell];
  const parts = [`<rect x="${x0}" y="${y0}" width="${size}" height="${size}" fill="#fafafa" stroke="#999"/>`];
  for (let i = 1; i < n; i++) {
    const v = (x0 + i * cell).toFixed(1), h = (y0 + i * cell).toFixed(1);
    parts.push(`<line x1="${v}" y1="${y0}" x2="${v}" y2="${y0 + size}" stroke="#e4e4e4"/>`);
    parts.push(`<line x1="${x0}" y1="${h}" x2="${x0 + size}" y2="${h}" stroke="#e4e4e4"/>`);
  }
  const width = n <= 8 ? 3 : 2;
  for (let t = 0; t + 1 < perm.length; t++) {
    const [ax, ay] = centre(perm[t]), [bx, by] = centre(perm[t + 1]);
    // a jump to a non-neighbouring cell is drawn thin, so the steps between neighbours stand out
    const jump = Math.hypot(bx - ax, by - ay) > 1.5 * cell;
    parts.push(
      `<line x1="${ax.toFixed(1)}" y1="${ay.toFixed(1)}" x2="${bx.toFixed(1)}" y2="${by.toFixed(1)}" ` +
        `stroke="${ramp(t / (perm.length - 2))}" stroke-width="${jump ? 1 : width}" stroke-linecap="round"` +
        `${jump ? ' stroke-opacity="0.55"' : ""}/>`,
    );
  }
  const [sx, sy] = centre(perm[0]);
  parts.push(`<circle cx="${sx}" cy="${sy}" r="${width + 2.5}" fill="${ramp(0)}" stroke="white" stroke-width="1.5"/>`);
  parts.push(
    `<text x="${x0 + size / 2}" y="${y0 - 22}" text-anchor="middle" font-size="14" font-weight="bold">${
      esc(title)
    }</text>`,
    `<text x="${x0 + size / 2}" y="${y0 - 7}" text-anchor="middle" font-size="10" fill="#555">${
      esc(order.name)
    }</text>`,
  );
  return parts.join("\n");
}

// layout: one section per grid size, 7 panels a row
const COLS = 7, SIZE = 170, GAP_X = 40, TITLE_H = 40, ROW_H = SIZE + TITLE_H + 16, SECTION_H = 36;
const rows = Math.ceil(orders.length / COLS);
const width = COLS * SIZE + (COLS + 1) * GAP_X;
const sections = [8, 16];
const height = 60 + sections.length * (SECTION_H + rows * ROW_H) + 20;
const body: string[] = [
  `<rect width="${width}" height="${height}" fill="white"/>`,
  `<text x="${width / 2}" y="38" text-anchor="middle" font-size="24" font-weight="bold">` +
  `Scan orders: the sequence a selective scan reads (dot = first cell; purple → yellow = time; thin = jump)</text>`,
];
let y = 60;
for (const n of sections) {
  body.push(`<text x="${GAP_X}" y="${y + 24}" font-size="18" font-weight="bold" fill="#333">${n} × ${n} grid</text>`);
  y += SECTION_H;
  orders.forEach(([title, order], i) => {
    const r = Math.floor(i / COLS), c = i % COLS;
    body.push(panel(GAP_X + c * (SIZE + GAP_X), y + r * ROW_H + TITLE_H, SIZE, n, title, order));
  });
  y += rows * ROW_H;
}
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
  `font-family="DejaVu Sans, sans-serif">\n${body.join("\n")}\n</svg>`;

await Deno.mkdir(outDir, { recursive: true });
const path = join(outDir, "scan_orders.png");
await renderSvg(svg, path);

// the 8×8 sequences: entry t is the row-major cell (row·8 + col) read at step t
for (const [title, order] of orders) {
  const perm = Array.from(order.permutation(8, 8));
  console.log(`${title} — ${order.name}`);
  for (let t = 0; t < perm.length; t += 16) {
    console.log("  " + perm.slice(t, t + 16).map((p) => String(p).padStart(2)).join(" "));
  }
}
console.log(`wrote ${path}`);
