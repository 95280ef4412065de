/**
 * `deno task test`: runs `deno test -A tests/` (or the files and flags given), passes its output through, and
 * decides pass or fail itself from the whole of the child's stdout, never from a line that merely looks like a
 * summary:
 *
 * - the process must exit with status 0 (any signal, SIGABRT in native teardown included, is a failure);
 * - the last non-empty line must be deno's summary, `ok | P passed … | 0 failed …`, outside any captured-output
 *   block (a test that prints a summary-like line has it wrapped in `------- output -------` markers);
 * - the number of tests that ran (top-level `NAME ... ok|FAILED|ignored` result lines outside output blocks) must
 *   equal the number registered (the sum of `running N tests from FILE`) and passed + failed + ignored of the
 *   summary.
 *
 * - every test module given (or found under a directory given, by deno's `*_test.ts` / `*.test.ts` / `test.ts`
 *   naming) must have reported `running N tests from` it (unless `--filter` is used), and no module may have
 *   called `Deno.exit` outside a test (deno then skips that module's tests and still exits 0).
 *
 * A run that aborts before its summary, or after a test printed a summary-like line, therefore fails.
 * {@linkcode Verdict} does the bookkeeping; `tests/test_runner_test.ts` runs this script on fixture suites.
 *
 * @module
 */

const ANSI = new RegExp(String.fromCharCode(27) + "\\[[0-9;]*m", "g");
const RUNNING = /^running (\d+) tests? from (.*)$/;
const EXIT_NOTE = /^note (.*) called `Deno\.exit\(/;
const RESULT = /^\S.* \.\.\. (ok|FAILED|ignored) \(/;
const OUTPUT_START = /^-{7} (?:pre-test |post-test )?output -{7}$/;
const OUTPUT_END = /^-{5} (?:pre-test |post-test )?output end -{5}$/;
const SUMMARY =
  /^(ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \(\d+ steps?\))?(?: \| (\d+) ignored(?: \(\d+ steps?\))?)?(?: \| (\d+) filtered out)? \(/;

/** Line-by-line bookkeeping over a `deno test` stdout stream. */
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
    const result = RESULT.exec(line);
    if (result) this.ran[result[1] as keyof Verdict["ran"]]++;
  }

  /**
   * Why the run failed, or null when it passed. `status` is the child's exit status; `expectedFiles` the test
   * modules that must each have reported (paths relative to the working directory).
   */
  failure(
    status: { success: boolean; code: number; signal: string | null },
    expectedFiles: string[] = [],
  ): string | null {
    if (this.#partial) {
      this.#line(this.#partial);
      this.#partial = "";
    }
    if (status.signal) return `the test process was killed by ${status.signal}`;
    if (!status.success) return `the test process exited with status ${status.code}`;
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

/** The test modules `deno test ARGS` must run: the files named, and deno's test-named files under directories. */
export function expectedModules(args: string[]): string[] {
  if (args.some((a) => a === "--filter" || a.startsWith("--filter="))) return [];
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      const p = `${dir.replace(/\/+$/, "")}/${e.name}`;
      if (e.isDirectory && e.name !== "node_modules" && !e.name.startsWith(".")) walk(p);
      else if (e.isFile && TEST_MODULE.test(e.name)) out.push(p);
    }
  };
  for (const a of args) {
    if (a.startsWith("-")) continue;
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(a);
    } catch {
      continue; // a flag's value, or a path deno itself will complain about
    }
    if (info.isDirectory) walk(a);
    else if (info.isFile) out.push(a);
  }
  return out.sort();
}

if (import.meta.main) {
  const args = Deno.args.length ? Deno.args : ["tests/"];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const verdict = new Verdict();
  const dec = new TextDecoder();
  for await (const chunk of child.stdout) {
    await Deno.stdout.write(chunk);
    verdict.push(dec.decode(chunk, { stream: true }));
  }
  verdict.push(dec.decode());
  const status = await child.status;
  const why = verdict.failure(status, expectedModules(args));
  if (why) {
    console.error(`test run FAILED: ${why} (${verdict.registered} tests registered, ${JSON.stringify(verdict.ran)})`);
    Deno.exit(status.code || 1);
  }
  console.error(
    `test run passed: ${verdict.ran.ok} passed, ${verdict.ran.ignored} ignored, of ${verdict.registered} registered`,
  );
}
