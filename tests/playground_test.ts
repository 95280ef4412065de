/**
 * The browser playground (web/) in a real browser: the test builds the site, serves it, opens it in headless
 * Chromium (puppeteer-core driving the system browser) and drives every panel, holding what the page shows against
 * the same computation run here in Deno on the CPU backend:
 *
 * - scan orders: the sequence shown is the order's permutation (and the library's gather on the CPU);
 * - SSM response: impulse, step and gating responses within 1e-5;
 * - wavelet bands: the reconstruction error max |iwt(dwt(x)) − x| (float rounding, both below 1e-5);
 * - anomaly map: the built-in checkpoint's score on the built-in images within 1e-4;
 * - wrong files are refused with messages that say what was expected; controls answer the keyboard.
 *
 * Each panel's screenshot goes to out/playground/. The page runs on WebGPU when Chromium offers an adapter
 * (SwiftShader under `--enable-unsafe-webgpu`), else on the CPU backend; the test reports which. Without a browser
 * the tests are skipped with a warning, except under CI (env CI set), where that is a failure (as the WebGPU half of
 * the suite treats a missing adapter). `CHROME_PATH` names another browser. `PLAYGROUND_FIGURES=1` also measures the
 * anomaly panel's time per image at 64² and 256² on WebGPU and on the CPU in the page.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { existsSync } from "node:fs";
// deno-lint-ignore no-import-prefix
import puppeteer, { type Browser, type Page } from "npm:puppeteer-core@25.19.0";
import { buildPlayground, servePlayground } from "../web/build.ts";
import {
  anomalyOf,
  gatingDemo,
  orderCatalogue,
  rgbToPlanes,
  scanSequence,
  ssmResponses,
  waveletBands,
} from "../web/compute.ts";
import { loadCheckpointBytes } from "../web/checkpoint.ts";
import { decodeRgb } from "../anomaly/data/pixels.ts";
import { serializeSafetensors } from "../nn/io/safetensors_format.ts";

const SHOTS = "out/playground";

/** The few DOM shapes the page functions below use (this file is type-checked without the DOM library). */
type El = { dataset: Record<string, string | undefined>; textContent: string | null; value: string };
type Doc = { getElementById(id: string): El | null; body: El };
const opts = { sanitizeResources: false, sanitizeOps: false, sanitizeExit: false };

function findBrowser(): string | null {
  const env = Deno.env.get("CHROME_PATH");
  if (env) return existsSync(env) ? env : null;
  return ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].find((p) => existsSync(p)) ??
    null;
}

const browserPath = findBrowser();
if (!browserPath) {
  if (Deno.env.get("CI")) throw new Error("the playground tests need Chromium in CI (apt-get install chromium)");
  console.warn("skipping the playground tests: no Chromium found (apt-get install chromium, or set CHROME_PATH)");
}

/** The numbers of a `<pre>` line `label: v v v`. */
function line(text: string, label: string): number[] {
  const l = text.split("\n").find((s) => s.startsWith(`${label}: `));
  assert.ok(l, `no "${label}" line in the page's values`);
  return l.slice(label.length + 2).trim().split(/\s+/).map(Number);
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol,
      `${what}[${i}]: page ${actual[i]} vs Deno ${expected[i]} (tolerance ${tol})`,
    );
  }
}

/** Waits until `panel` has completed more than `before` renders (or reported another error). */
async function waitRun(page: Page, panel: string, before: number): Promise<void> {
  await page.waitForFunction(
    (p: string, n: number) =>
      Number((globalThis as unknown as { document: Doc }).document.getElementById(p)!.dataset.runs ?? 0) > n,
    { timeout: 60_000 },
    panel,
    before,
  );
}

/** Selects `value` in `select` and waits for `panel` to render again (nothing to wait for when already selected). */
async function choose(page: Page, select: string, value: string, panel: string): Promise<void> {
  if (await page.$eval(select, (e) => (e as unknown as El).value) === value) return;
  const before = await runs(page, panel);
  await page.select(select, value);
  await waitRun(page, panel, before);
}

async function runs(page: Page, panel: string): Promise<number> {
  return await page.$eval(`#${panel}`, (e) => Number((e as unknown as El).dataset.runs ?? 0));
}

async function errorsOf(page: Page, panel: string): Promise<number> {
  return await page.$eval(`#${panel}`, (e) => Number((e as unknown as El).dataset.errors ?? 0));
}

async function shot(page: Page, panel: string, suffix = ""): Promise<void> {
  const el = await page.$(`#${panel}`);
  await el!.screenshot({ path: join(SHOTS, `${panel}${suffix}.png`) });
}

async function openPage(browser: Browser, url: string): Promise<{ page: Page; device: string }> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1150, height: 900 });
  const logs: string[] = [];
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`pageerror: ${(e as Error).message}`));
  await page.goto(url);
  try {
    await page.waitForFunction(() => (globalThis as unknown as { document: Doc }).document.body.dataset.ready, {
      timeout: 60_000,
    });
  } catch (e) {
    throw new Error(`the page did not start: ${(e as Error).message}\n${logs.join("\n")}`);
  }
  const ready = await page.$eval("body", (b) => (b as unknown as El).dataset.ready);
  assert.equal(ready, "true", `the page failed to start:\n${logs.join("\n")}`);
  const device = await page.evaluate(() =>
    (globalThis as unknown as { playground: { device: string } }).playground.device
  );
  return { page, device };
}

Deno.test({ name: "playground in headless Chromium", ignore: !browserPath, ...opts }, async (t) => {
  const dist = await Deno.makeTempDir({ prefix: "playground-" });
  await Deno.mkdir(SHOTS, { recursive: true });
  const ac = new AbortController();
  let browser: Browser | null = null;
  try {
    const { bundleBytes } = await buildPlayground(dist);
    const gz = (await new Response(
      new Blob([await Deno.readFile(join(dist, "app.js"))]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer()).byteLength;
    console.log(`bundle: app.js ${(bundleBytes / 1024).toFixed(0)} KiB, ${(gz / 1024).toFixed(0)} KiB gzip`);
    const url = await new Promise<string>((resolve) =>
      servePlayground(dist, { port: 0, signal: ac.signal, onListen: resolve })
    );
    browser = await puppeteer.launch({
      executablePath: browserPath!,
      headless: true,
      args: ["--headless=new", "--no-sandbox", "--enable-unsafe-webgpu", "--disable-gpu-sandbox"],
    });
    const { page, device } = await openPage(browser, url);
    const first = await page.evaluate(() =>
      (globalThis as unknown as { playground: { firstRender: Record<string, number> } }).playground.firstRender
    );
    console.log(
      `page backend: ${device}; first render (ms after navigation): ${
        Object.entries(first).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ")
      }`,
    );

    await t.step("scan orders: the sequence shown is the order's permutation", async () => {
      const catalogue = orderCatalogue();
      const picks = [
        ["type-hilbert-forward", 8],
        ["hfss-official-HH-forward", 16], // diagonal
        ["hfss-noDiagonal-LH-reversed", 4],
        ["mambaad-k3", 8],
        ["type-scan-reversed", 32], // snake, reversed
      ] as const;
      for (const [id, n] of picks) {
        await choose(page, "#scan-size", String(n), "scan");
        await choose(page, "#scan-order", id, "scan");
        const shown = (await page.$eval("#scan-sequence", (e) => e.textContent!)).trim().split(" ").map(Number);
        const order = catalogue.find((o) => o.id === id)!.order;
        assert.deepEqual(shown, Array.from(order.permutation(n, n)), `${id} ${n}×${n}`);
        assert.deepEqual(shown, Array.from(await scanSequence(order, n, "cpu")), `${id} ${n}×${n} (CPU gather)`);
      }
      // every entry of the menu is there: the 14 scan-type orders, the HFSS table, MambaAD's 8 directions
      const options = await page.$$eval("#scan-order option", (os) => os.map((o) => (o as unknown as El).value));
      assert.deepEqual(options, catalogue.map((o) => o.id));
      // keyboard: the step slider answers the arrow keys; Play animates and stops at the end
      await choose(page, "#scan-order", "type-hilbert-forward", "scan");
      await choose(page, "#scan-size", "8", "scan");
      await page.focus("#scan-step");
      await page.keyboard.press("ArrowLeft");
      await page.keyboard.press("ArrowLeft");
      assert.equal(await page.$eval("#scan-step-value", (e) => e.textContent), "62");
      await page.focus("#scan-play");
      await page.keyboard.press("Enter");
      await page.waitForFunction(
        () =>
          (globalThis as unknown as { document: Doc }).document.getElementById("scan-step-value")!.textContent === "64",
        {
          timeout: 20_000,
        },
      );
      await page.keyboard.press("Home");
      await page.focus("#scan-step");
      for (let i = 0; i < 40; i++) await page.keyboard.press("ArrowLeft");
      await shot(page, "scan");
    });

    await t.step("SSM response: the values shown match selectiveScan in Deno within 1e-5", async () => {
      const set = { A: -0.7, delta: 0.3, B: 1.5, C: -0.8 };
      for (const [k, v] of Object.entries(set)) {
        const before = await runs(page, "ssm");
        await page.$eval(`#ssm-${k}`, (e, value) => {
          (e as unknown as El).value = String(value);
          e.dispatchEvent(new Event("input", { bubbles: true }));
        }, v);
        await waitRun(page, "ssm", before);
      }
      // the last render is for the final slider values
      await page.waitForFunction(
        (want: string) =>
          (globalThis as unknown as { document: Doc }).document.getElementById("ssm-values")!.dataset.params === want,
        { timeout: 30_000 },
        JSON.stringify(set),
      );
      const text = await page.$eval("#ssm-values", (e) => e.textContent!);
      const r = await ssmResponses(set, "cpu");
      const g = await gatingDemo({ A: set.A, B: set.B, open: 6, fixedDelta: 0.15 }, "cpu");
      assertClose(line(text, "impulse"), r.impulse, 1e-5, "impulse");
      assertClose(line(text, "step"), r.step, 1e-5, "step");
      assertClose(line(text, "gated"), g.selective, 1e-5, "gated");
      assertClose(line(text, "fixed"), g.fixed, 1e-5, "fixed");
      // keyboard: a slider moves by its step
      const before = await runs(page, "ssm");
      await page.focus("#ssm-C");
      await page.keyboard.press("ArrowRight");
      await waitRun(page, "ssm", before);
      assert.equal(await page.$eval("#ssm-C-value", (e) => e.textContent), "-0.75");
      await shot(page, "ssm");
    });

    await t.step("wavelet bands: the reconstruction error matches Deno's", async () => {
      for (const name of ["synthetic_good.png", "synthetic_defect.png"]) {
        await choose(page, "#wavelet-builtin", name, "wavelet");
        const shown = await page.$eval("#wavelet-error", (e) => Number((e as unknown as El).dataset.value));
        const img = await decodeRgb(await Deno.readFile(join("web/assets", name)), name);
        const { maxError } = await waveletBands(rgbToPlanes(img), "cpu");
        assert.ok(shown < 1e-5 && maxError < 1e-5, `${name}: page ${shown}, Deno ${maxError}`);
        if (device === "cpu") assert.equal(shown, maxError, name);
        else assert.ok(Math.abs(shown - maxError) <= 1e-6, `${name}: page ${shown} vs Deno ${maxError}`);
        assert.equal(await page.$$eval("#wavelet-gallery canvas", (cs) => cs.length), 5);
      }
      // a dropped / chosen file goes through the same path; a wrong file says what was expected
      const input = await page.$("#wavelet-file");
      const before = await runs(page, "wavelet");
      await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile("web/assets/synthetic_good.png");
      await waitRun(page, "wavelet", before);
      assert.equal(await page.$eval("#wavelet-error", (e) => (e as unknown as El).dataset.image), "synthetic_good.png");
      const errs = await errorsOf(page, "wavelet");
      await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile("web/index.html");
      await page.waitForFunction(
        (n: number) =>
          Number((globalThis as unknown as { document: Doc }).document.getElementById("wavelet")!.dataset.errors ?? 0) >
            n,
        {
          timeout: 10_000,
        },
        errs,
      );
      assert.match(await page.$eval("#wavelet-alert", (e) => e.textContent!), /index\.html.*expected a \.png or \.jpg/);
      // dropped on the panel: the same path as choosing it
      const before2 = await runs(page, "wavelet");
      // (a string: DataTransfer and DragEvent are DOM types, outside this file's type-check)
      await page.evaluate(`(async () => {
        const bytes = await (await fetch("assets/synthetic_defect.png")).arrayBuffer();
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
        document.getElementById("wavelet").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true }));
      })()`);
      await waitRun(page, "wavelet", before2);
      assert.equal(await page.$eval("#wavelet-error", (e) => (e as unknown as El).dataset.image), "dropped.png");
      await choose(page, "#wavelet-builtin", "pattern", "wavelet");
      await shot(page, "wavelet");
    });

    await t.step("anomaly map: the built-in checkpoint's score matches Deno's within 1e-4", async () => {
      const bytes = await Deno.readFile("web/assets/tiny_wave_mambaad_64.safetensors");
      const { model } = await loadCheckpointBytes(bytes, "tiny", "cpu");
      try {
        for (const name of ["synthetic_good.png", "synthetic_defect.png"]) {
          await choose(page, "#anomaly-image-builtin", name, "anomaly");
          await page.waitForFunction(
            (n: string) =>
              (globalThis as unknown as { document: Doc }).document.getElementById("anomaly-score")!.dataset.image ===
                n,
            { timeout: 60_000 },
            name,
          );
          const shown = await page.$eval("#anomaly-score", (e) => Number((e as unknown as El).dataset.value));
          const img = await decodeRgb(await Deno.readFile(join("web/assets", name)), name);
          const { score } = await anomalyOf(model, img);
          assert.ok(Math.abs(shown - score) <= 1e-4, `${name}: page ${shown} vs Deno ${score}`);
          console.log(`anomaly score of ${name}: page ${shown} (${device}), Deno ${score} (cpu)`);
        }
      } finally {
        model.dispose();
      }
      assert.equal(await page.$$eval("#anomaly-gallery canvas", (cs) => cs.length), 3);
      await shot(page, "anomaly");
      // the same checkpoint chosen from disk; then a wrong file, refused with what was expected
      const input = await page.$("#anomaly-ckpt");
      const before = await runs(page, "anomaly");
      await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(
        "web/assets/tiny_wave_mambaad_64.safetensors",
      );
      await waitRun(page, "anomaly", before);
      assert.match(await page.$eval("#anomaly-model", (e) => e.textContent!), /^tiny_wave_mambaad_64\.safetensors: /);
      await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile("web/assets/synthetic_good.png");
      await page.waitForFunction(
        () => (globalThis as unknown as { document: Doc }).document.getElementById("anomaly-alert")!.textContent !== "",
        {
          timeout: 10_000,
        },
      );
      assert.match(
        await page.$eval("#anomaly-alert", (e) => e.textContent!),
        /synthetic_good\.png: is a PNG image, not a checkpoint; expected a checkpoint written by `deno task train`/,
      );
      assert.match(
        await page.$eval("#anomaly-model", (e) => e.textContent!),
        /\(kept: synthetic_good\.png was refused\)/,
      );
      // a safetensors file that train did not write (no training header) is refused too
      const plain = join(dist, "plain.safetensors");
      await Deno.writeFile(
        plain,
        serializeSafetensors({ w: { dtype: "float32", shape: [2], data: new Float32Array(2) } }),
      );
      await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(plain);
      await page.waitForFunction(
        () =>
          /without a training header/.test(
            (globalThis as unknown as { document: Doc }).document.getElementById("anomaly-alert")!.textContent ?? "",
          ),
        { timeout: 10_000 },
      );
      await shot(page, "anomaly", "_wrong_file");
    });

    await t.step("the CPU backend (?device=cpu): the same values", async () => {
      const cpu = await openPage(browser!, `${url}?device=cpu`);
      try {
        assert.equal(cpu.device, "cpu");
        assert.match(await cpu.page.$eval("#backend", (e) => e.textContent!), /CPU backend/);
        const text = await cpu.page.$eval("#ssm-values", (e) => e.textContent!);
        const r = await ssmResponses({ A: -1, delta: 0.1, B: 1, C: 1 }, "cpu");
        assertClose(line(text, "impulse"), r.impulse, 1e-5, "impulse (CPU page)");
        assertClose(line(text, "step"), r.step, 1e-5, "step (CPU page)");
        await cpu.page.waitForFunction(
          () => (globalThis as unknown as { document: Doc }).document.getElementById("anomaly-score")!.dataset.value,
          { timeout: 60_000 },
        );
        const shown = await cpu.page.$eval("#anomaly-score", (e) => Number((e as unknown as El).dataset.value));
        const bytes = await Deno.readFile("web/assets/tiny_wave_mambaad_64.safetensors");
        const { model } = await loadCheckpointBytes(bytes, "tiny", "cpu");
        try {
          const img = await decodeRgb(await Deno.readFile("web/assets/synthetic_defect.png"), "defect");
          const { score } = await anomalyOf(model, img);
          assert.ok(Math.abs(shown - score) <= 1e-4, `CPU page ${shown} vs Deno ${score}`);
        } finally {
          model.dispose();
        }
        const first = await cpu.page.evaluate(() =>
          (globalThis as unknown as { playground: { firstRender: Record<string, number> } }).playground.firstRender
        );
        console.log(
          `CPU page first render (ms after navigation): ${
            Object.entries(first).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ")
          }`,
        );
      } finally {
        await cpu.page.close();
      }
    });

    const figures = Boolean(Deno.env.get("PLAYGROUND_FIGURES"));
    await t.step(
      {
        name: "figures: anomaly panel time per image (PLAYGROUND_FIGURES=1)",
        ignore: !figures,
        fn: async () => {
          const sizes = [64, 256];
          const bench = (p: Page, s: number) =>
            p.evaluate(
              (size: number) =>
                (globalThis as unknown as { playground: { benchAnomaly(s: number): Promise<number> } }).playground
                  .benchAnomaly(size),
              s,
            );
          for (const s of sizes) {
            console.log(`anomaly map ${s}²: ${(await bench(page, s)).toFixed(0)} ms/image (${device})`);
          }
          if (device !== "cpu") {
            const cpu = await openPage(browser!, `${url}?device=cpu`);
            for (const s of sizes) {
              console.log(`anomaly map ${s}²: ${(await bench(cpu.page, s)).toFixed(0)} ms/image (cpu)`);
            }
          }
        },
      },
    );
  } finally {
    await browser?.close();
    ac.abort();
    await Deno.remove(dist, { recursive: true });
  }
});
