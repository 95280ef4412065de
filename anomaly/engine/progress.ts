/**
 * A one-line progress bar for long loops (training epochs, evaluation): done/total, a bar, rate, ETA and any
 * named values (loss). Redraws in place on a terminal; elsewhere (logs, CI) prints a line every `everyPct`.
 *
 * @module
 */

/** Formats seconds as h:mm:ss or m:ss. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(r).padStart(2, "0")}`;
}

/** Options of {@linkcode ProgressBar}. */
export interface ProgressOptions {
  /** Label before the bar. */
  label: string;
  /** Unit of the rate (default "it"). */
  unit?: string;
  /** Items per step for the rate (e.g. the batch size, to show images/s; default 1). */
  itemsPerStep?: number;
  /** Silence it (e.g. under `--json`, where only the final object is printed on stdout). */
  quiet?: boolean;
}

/** A progress bar on stderr. */
export class ProgressBar {
  readonly #total: number;
  readonly #opts: ProgressOptions;
  readonly #tty: boolean;
  readonly #start = performance.now();
  #done = 0;
  #lastPrintedPct = -1;

  /** A bar for `total` steps. */
  constructor(total: number, opts: ProgressOptions) {
    this.#total = total;
    this.#opts = opts;
    this.#tty = !opts.quiet && Deno.stderr.isTerminal();
  }

  /** Items per second so far. */
  get rate(): number {
    const s = (performance.now() - this.#start) / 1000;
    return s > 0 ? (this.#done * (this.#opts.itemsPerStep ?? 1)) / s : 0;
  }

  /** Marks `n` more steps done and redraws with the given values. */
  tick(values: Record<string, string | number> = {}, n = 1): void {
    this.#done += n;
    if (this.#opts.quiet) return;
    const frac = this.#total > 0 ? this.#done / this.#total : 1;
    const elapsed = (performance.now() - this.#start) / 1000;
    const eta = this.#done > 0 ? (elapsed / this.#done) * (this.#total - this.#done) : NaN;
    const width = 24, fill = Math.round(frac * width);
    const vals = Object.entries(values).map(([k, v]) => `${k} ${typeof v === "number" ? v.toPrecision(4) : v}`);
    const line = `${this.#opts.label} [${"#".repeat(fill)}${".".repeat(width - fill)}] ${this.#done}/${this.#total}` +
      ` ${vals.join(" ")} ${this.rate.toFixed(2)} ${this.#opts.unit ?? "it"}/s ETA ${formatDuration(eta)}`;
    const enc = new TextEncoder();
    if (this.#tty) {
      Deno.stderr.writeSync(enc.encode(`\r\x1b[2K${line}`));
      if (this.#done >= this.#total) Deno.stderr.writeSync(enc.encode("\n"));
      return;
    }
    const pct = Math.floor(frac * 10);
    if (pct !== this.#lastPrintedPct || this.#done >= this.#total) {
      this.#lastPrintedPct = pct;
      Deno.stderr.writeSync(enc.encode(`${line}\n`));
    }
  }
}
