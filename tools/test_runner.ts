/**
 * `deno task test [FILES|DIRS] [deno test flags]`: runs every test module in its own `deno test` process,
 * passes their output through, and decides pass or fail itself from the whole of each child's stdout, never from
 * a line that merely looks like a summary.
 *
 * Why one process per module: `deno test` runs each module in a fresh isolate inside ONE process, so every module
 * that uses WebGPU (through `initWebGPU`) opens its own `navigator.gpu` instance, adapter and device there; there
 * is no way to share one device across modules. With Mesa's software adapter (lavapipe) such a process sometimes
 * aborts in native teardown at exit ("double free or corruption", "corrupted size vs. prev_size"): 5 of 115 runs
 * of 8 WebGPU modules in one process, 0 of 80 runs of one module alone; destroying each module's device at
 * `unload` did not prevent it. The cause, found from a core dump: wgpu's unused EGL/GL instance, whose libEGL
 * destructor freed into a corrupted heap; the backend now asks for Vulkan alone (`preferVulkanOnLinux`). A process
 * per module still holds exactly one device, and no abort is tolerated: SIGABRT, like any other signal or non-zero
 * status, fails the run.
 *
 * Steps:
 * 1. The modules: the files named, and deno's test-named files (`*_test.ts`, `*.test.ts`, `test.ts`) under the
 *    directories named (default `tests/`). Every other argument is a `deno test` flag passed to each child (give
 *    a flag's value as `--flag=value`, or after one of {@linkcode VALUE_FLAGS}).
 * 2. `deno check` of all modules at once (what `deno test` would check), unless `--no-check` is given; each child
 *    then runs with `--no-check`, so type-checking is paid once.
 * 3. Each module: `deno test -A --no-check FLAGS MODULE`, `--jobs=N` of them at once (default
 *    {@linkcode defaultJobs}; one at a time with `--fail-fast`). With several at once, each module's output is
 *    printed whole when it ends. Its run passes only when the process exits with
 *    status 0 (any signal fails); the last non-empty line is deno's summary, `ok | P passed … | 0 failed …`, outside
 *    any captured-output block (a test that prints a summary-like line has it inside `------- output -------`
 *    markers); the number of top-level result lines (`NAME ... ok|FAILED|ignored`) equals the number registered
 *    (`running N tests from MODULE`) and the summary's passed + failed + ignored; the module reported (unless
 *    `--filter` is given) and did not call `Deno.exit` outside a test (deno then skips its tests and exits 0).
 *    A failing module does not stop the others unless `--fail-fast` is given.
 * 4. The run passes when every module passed; the totals are the sums of the modules' summaries.
 *
 * {@linkcode Verdict} does the bookkeeping of one module's output; `tests/test_runner_test.ts` runs this script on
 * the fixture suites in `tests/fixtures/runner/`.
 *
 * @module
 */

const ANSI = new RegExp(String.fromCharCode(27) + "\\[[0-9;]*m", "g");
const RUNNING = /^running (\d+) tests? from (.*)$/;
const EXIT_NOTE = /^note (.*) called `Deno\.exit\(/;
const RESULT = /^\S.* \.\.\. (ok|FAILED|ignored) \(/;
/** A test or step line still waiting for its result (`NAME ...`, possibly with deno's slow-test warning after it). */
const OPEN = /^(\s*)\S.* \.\.\.(?:'.*' has been running for over \(.*\))?$/;
/** The result of a slow test, on a line of its own after deno's "has been running for over" warnings. */
const LATE_RESULT = /^ (ok|FAILED|ignored) \(/;
/** deno's later slow-test warnings, each on a line of its own. */
const SLOW = /^'.*' has been running for over \(.*\)$/;
const OUTPUT_START = /^-{7} (?:pre-test |post-test )?output -{7}$/;
const OUTPUT_END = /^-{5} (?:pre-test |post-test )?output end -{5}$/;
const SUMMARY =
  /^(ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \(\d+ steps?\))?(?: \| (\d+) ignored(?: \(\d+ steps?\))?)?(?: \| (\d+) filtered out)? \(/;

/** The child's exit status, as `Deno.ChildProcess.status` gives it. */
export interface ExitStatus {
  /** Exit status 0. */
  success: boolean;
  /** The exit code (128 + signal number when killed). */
  code: number;
  /** The signal that ended the process, or null. */
  signal: string | null;
}

/** Line-by-line bookkeeping over one `deno test` stdout stream. */
export class Verdict {
  /** Sum of the `running N tests from FILE` lines. */
  registered = 0;
  /** Top-level result lines seen, by outcome. */
  ran = { ok: 0, FAILED: 0, ignored: 0 };
  /** The modules that reported `running N tests from` (as deno prints them: `./tests/a_test.ts`). */
  files = new Set<string>();
  /** Modules that called `Deno.exit` outside a test. */
  exited: string[] = [];
  /** The last non-empty line outside output blocks, ANSI codes removed. */
  lastLine = "";
  #inOutput = false;
  #partial = "";
  #lastInOutput = false;
  /** Indentation of the last `NAME ...` line still waiting for its result (0: a test), or -1. */
  #openIndent = -1;

  /** Feeds decoded text (any chunking). */
  push(text: string): void {
    const lines = (this.#partial + text).split("\n");
    this.#partial = lines.pop()!;
    for (const line of lines) this.#line(line);
  }

  #line(raw: string): void {
    const line = raw.replace(ANSI, "").replace(/\r$/, "");
    if (!line.trim()) return;
    this.#lastInOutput = this.#inOutput;
    if (this.#inOutput) {
      if (OUTPUT_END.test(line)) this.#inOutput = false;
      return;
    }
    if (OUTPUT_START.test(line)) {
      this.#inOutput = true;
      this.#lastInOutput = true;
      return;
    }
    this.lastLine = line;
    const running = RUNNING.exec(line);
    if (running) {
      this.registered += Number(running[1]);
      this.files.add(running[2]);
    }
    const exit = EXIT_NOTE.exec(line);
    if (exit) this.exited.push(exit[1]);
    const result = RESULT.exec(line) ?? (this.#openIndent === 0 ? LATE_RESULT.exec(line) : null);
    if (result) this.ran[result[1] as keyof Verdict["ran"]]++;
    const open = OPEN.exec(line);
    if (open) this.#openIndent = open[1].length;
    else if (!SLOW.test(line)) this.#openIndent = -1;
  }

  /**
   * The counts of deno's summary when the last line is one (outside any output block), else null. Valid after
   * {@linkcode failure}, or once all text was pushed.
   */
  summary(): { passed: number; failed: number; ignored: number } | null {
    if (this.#inOutput || this.#lastInOutput) return null;
    const m = SUMMARY.exec(this.lastLine);
    if (!m) return null;
    return { passed: Number(m[2]), failed: Number(m[3]), ignored: Number(m[4] ?? "0") };
  }

  /**
   * Why the run failed, or null when it passed. `status` is the child's exit status; `expectedFiles` the test
   * modules that must each have reported (paths relative to the working directory).
   */
  failure(status: ExitStatus, expectedFiles: string[] = []): string | null {
    if (this.#partial) {
      this.#line(this.#partial);
      this.#partial = "";
    }
    const why = this.#outputFailure(expectedFiles);
    // a crash after a complete, passing output is still a failure; saying so helps to tell native teardown apart
    const after = why ? "" : " after a complete, passing summary (a crash at exit)";
    if (status.signal) return `the test process was killed by ${status.signal}${after}`;
    if (!status.success) return `the test process exited with status ${status.code}${after}`;
    return why;
  }

  #outputFailure(expectedFiles: string[]): string | null {
    if (this.#inOutput || this.#lastInOutput) return "the output ends inside a test's captured output, with no summary";
    const m = SUMMARY.exec(this.lastLine);
    if (!m) return `the last line is not deno's summary: ${JSON.stringify(this.lastLine.slice(0, 200))}`;
    const [passed, failed, ignored] = [m[2], m[3], m[4] ?? "0"].map(Number);
    if (m[1] !== "ok" || failed !== 0) return `the summary reports failures: ${this.lastLine}`;
    const ran = this.ran.ok + this.ran.FAILED + this.ran.ignored;
    if (this.ran.FAILED) return `${this.ran.FAILED} test(s) reported FAILED`;
    if (this.exited.length) return `Deno.exit was called outside any test in ${this.exited.join(", ")}`;
    const silent = expectedFiles.filter((f) => !this.files.has(`./${f.replace(/^\.\//, "")}`));
    if (silent.length) return `no tests ran from ${silent.join(", ")}`;
    if (ran !== this.registered) return `${this.registered} tests were registered but ${ran} reported a result`;
    if (passed + failed + ignored !== ran || passed !== this.ran.ok || ignored !== this.ran.ignored) {
      return `the summary (${passed} passed, ${ignored} ignored) disagrees with the ${this.ran.ok} ok and ` +
        `${this.ran.ignored} ignored result lines`;
    }
    return null;
  }
}

const TEST_MODULE = /(?:^|[._])test\.(?:ts|tsx|mts|js|mjs|jsx)$/;

/** `deno test` flags that take their value as the next argument (`--filter NAME`). */
export const VALUE_FLAGS: ReadonlySet<string> = new Set([
  "--filter",
  "--seed",
  "--reporter",
  "--junit-path",
  "--coverage",
  "--location",
  "--config",
  "-c",
  "--import-map",
  "--lock",
  "--cert",
  "--env-file",
  "--v8-flags",
]);

/**
 * Splits the runner's arguments into paths (test files and directories) and the flags (with their values) passed
 * to every `deno test` child. No path means `tests/`.
 */
export function splitArgs(args: string[]): { paths: string[]; flags: string[] } {
  const paths: string[] = [], flags: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith("-")) {
      flags.push(a);
      if (VALUE_FLAGS.has(a) && i + 1 < args.length) flags.push(args[++i]);
    } else paths.push(a);
  }
  if (!paths.length) paths.push("tests/");
  return { paths, flags };
}

/** The test modules of `paths`: the files named, and deno's test-named files under the directories, sorted. */
export function testModules(paths: string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      const p = `${dir.replace(/\/+$/, "")}/${e.name}`;
      if (e.isDirectory && e.name !== "node_modules" && !e.name.startsWith(".")) walk(p);
      else if (e.isFile && TEST_MODULE.test(e.name)) out.push(p);
    }
  };
  for (const a of paths) {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(a);
    } catch {
      continue; // reported by the caller
    }
    if (info.isDirectory) walk(a);
    else if (info.isFile) out.push(a);
  }
  return [...new Set(out)].sort();
}

/**
 * The test modules that must each report in a run of `deno test ARGS`: those of {@linkcode testModules}, or none
 * when `--filter` is given (a module without a matching test reports nothing).
 */
export function expectedModules(args: string[]): string[] {
  if (args.some((a) => a === "--filter" || a.startsWith("--filter="))) return [];
  return testModules(splitArgs(args).paths);
}

/** One module's outcome. */
export interface ModuleResult {
  /** The module path. */
  file: string;
  /** Why it failed, or null. */
  why: string | null;
  /** Its summary's counts, when it printed one. */
  summary: { passed: number; failed: number; ignored: number } | null;
  /** Registered tests (`running N tests`). */
  registered: number;
  /** Wall time of its process, ms. */
  ms: number;
}

/** Totals over modules: the sums of their summaries, and the modules that failed. */
export function aggregate(results: ModuleResult[]): {
  passed: number;
  failed: number;
  ignored: number;
  registered: number;
  failedModules: ModuleResult[];
} {
  const t = { passed: 0, failed: 0, ignored: 0, registered: 0, failedModules: [] as ModuleResult[] };
  for (const r of results) {
    t.passed += r.summary?.passed ?? 0;
    t.failed += r.summary?.failed ?? 0;
    t.ignored += r.summary?.ignored ?? 0;
    t.registered += r.registered;
    if (r.why) t.failedModules.push(r);
  }
  return t;
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/**
 * Modules run at once by default: one per core, at most 4. Most of a module's time is one JavaScript thread or
 * one shader compile, which a second module's work overlaps.
 */
export function defaultJobs(): number {
  return Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1));
}

async function main(args: string[]): Promise<number> {
  const t0 = performance.now();
  const { paths, flags } = splitArgs(args);
  if (flags.includes("--jobs")) {
    console.error("test run FAILED: give --jobs its value as --jobs=N");
    return 2;
  }
  const absent = paths.filter((p) => {
    try {
      Deno.statSync(p);
      return false;
    } catch {
      return true;
    }
  });
  if (absent.length) {
    console.error(`test run FAILED: no such test file or folder: ${absent.join(", ")}`);
    return 1;
  }
  const modules = testModules(paths);
  if (!modules.length) {
    console.error(`test run FAILED: no test modules found in ${paths.join(", ")}`);
    return 1;
  }
  const filtered = flags.some((a) => a === "--filter" || a.startsWith("--filter="));
  const failFast = flags.some((a) => a === "--fail-fast" || a.startsWith("--fail-fast="));
  const jobsFlag = flags.find((a) => a.startsWith("--jobs="));
  // --fail-fast stops at the first failing module, so modules run one at a time there
  const jobs = jobsFlag ? Number(jobsFlag.slice("--jobs=".length)) : failFast ? 1 : defaultJobs();
  if (!Number.isInteger(jobs) || jobs < 1) {
    console.error(`test run FAILED: --jobs takes a whole number of at least 1, got ${jobsFlag}`);
    return 2;
  }
  if (!flags.includes("--no-check")) {
    const check = await new Deno.Command(Deno.execPath(), { args: ["check", ...modules] }).spawn().status;
    if (!check.success) {
      console.error(`test run FAILED: deno check of the ${modules.length} test modules failed (status ${check.code})`);
      return check.code || 1;
    }
  }
  const checkMs = performance.now() - t0;
  const results: ModuleResult[] = [];
  const passFlags = flags.filter((f) => f !== "--no-check" && !f.startsWith("--jobs"));
  // one module alone streams its output; several at once each print theirs whole when they end, never interleaved
  const stream = jobs === 1;
  const writeAllSync = (to: { writeSync(p: Uint8Array): number }, chunks: Uint8Array[]) => {
    for (const chunk of chunks) for (let at = 0; at < chunk.length;) at += to.writeSync(chunk.subarray(at));
  };
  const runModule = async (file: string): Promise<void> => {
    const start = performance.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", "--no-check", ...passFlags, file],
      stdout: "piped",
      stderr: stream ? "inherit" : "piped",
    }).spawn();
    const dec = new TextDecoder();
    const verdict = new Verdict();
    const held: Uint8Array[] = [];
    const errText = stream ? Promise.resolve(new Uint8Array()) : new Response(child.stderr).bytes();
    for await (const chunk of child.stdout) {
      if (stream) await Deno.stdout.write(chunk);
      else held.push(chunk);
      verdict.push(dec.decode(chunk, { stream: true }));
    }
    verdict.push(dec.decode());
    const status = await child.status;
    const err = await errText;
    // synchronously, whole: an await between chunks would let another module's output in between
    writeAllSync(Deno.stdout, held);
    writeAllSync(Deno.stderr, [err]);
    const why = verdict.failure(status, filtered ? [] : [file]);
    const r: ModuleResult = {
      file,
      why,
      summary: verdict.summary(),
      registered: verdict.registered,
      ms: performance.now() - start,
    };
    results.push(r);
    console.error(
      why
        ? `test module FAILED: ${file}: ${why} (${secs(r.ms)})`
        : `test module passed: ${file}: ${verdict.ran.ok} passed, ${verdict.ran.ignored} ignored (${secs(r.ms)})`,
    );
  };
  const queue = [...modules];
  const worker = async () => {
    while (queue.length && !(failFast && results.some((r) => r.why))) await runModule(queue.shift()!);
  };
  await Promise.all(Array.from({ length: Math.min(jobs, modules.length) }, worker));
  const t = aggregate(results);
  const counts = `${t.passed} passed, ${t.failed} failed, ${t.ignored} ignored, of ${t.registered} registered, ` +
    `in ${results.length} of ${modules.length} modules (${secs(performance.now() - t0)}, type-check ${secs(checkMs)})`;
  const skipped = modules.length - results.length;
  if (t.failedModules.length || skipped) {
    console.error(`\ntest run FAILED: ${counts}`);
    for (const r of t.failedModules) console.error(`  ${r.file}: ${r.why}`);
    if (skipped) console.error(`  ${skipped} module(s) not run (--fail-fast)`);
    return 1;
  }
  console.error(`\ntest run passed: ${counts}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
