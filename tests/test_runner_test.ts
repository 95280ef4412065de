/**
 * `deno task test` (tools/test_runner.ts) must not report a crashed or failed suite as passed. It is run as a
 * subprocess on the fixture suites in tests/fixtures/runner/ (named *_suite.ts, so `deno test tests/` does not
 * pick them up), and its bookkeeping (`Verdict`, `aggregate`) is fed hand-written outputs.
 */
import assert from "node:assert/strict";
import { aggregate, expectedModules, splitArgs, testModules, Verdict } from "../tools/test_runner.ts";

const ROOT = new URL("../", import.meta.url);
const RUNNER = "tools/test_runner.ts";
const FIXTURES = "tests/fixtures/runner/";

/** Runs the runner on fixture suites (flags and `--filter`'s value are passed as they are). */
async function runRunner(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      RUNNER,
      ...args.map((a, i) => /_suite\.ts$/.test(a) && args[i - 1] !== "--filter" ? FIXTURES + a : a),
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("test runner: a passing suite exits 0", async () => {
  const r = await runRunner("passing_suite.ts");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /test run passed: 2 passed, 0 failed, 1 ignored, of 3 registered, in 1 of 1 modules/);
  // the child's output is passed through
  assert.match(r.stdout, /has steps \.\.\. .*ok/);
});

Deno.test("test runner: a suite with a failing test exits non-zero", async () => {
  const r = await runRunner("failing_suite.ts");
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /test module FAILED: .*failing_suite\.ts: the test process exited with status 1/);
  assert.match(r.stderr, /test run FAILED: 1 passed, 1 failed, 0 ignored, of 2 registered/);
});

Deno.test("test runner: a suite that prints a passing summary and then aborts exits non-zero", async () => {
  const r = await runRunner("aborting_suite.ts");
  assert.notEqual(r.code, 0);
  assert.match(r.stdout, /ok \| 3 passed \| 0 failed/, "the fixture printed its fake summary");
  assert.match(r.stderr, /test module FAILED: .*aborting_suite\.ts: the test process was killed by SIGABRT\b/);
  assert.match(r.stderr, /test run FAILED/);
});

Deno.test({
  name: "test runner: an abort after a fully passing summary fails",
  ignore: Deno.build.os !== "linux", // the fixture registers glibc's abort() to run at exit
  async fn() {
    const r = await runRunner("abort_at_exit_suite.ts");
    assert.notEqual(r.code, 0);
    // deno's own, real summary is the last line, every count agrees: only the abort at exit is wrong
    assert.match(r.stdout, /ok\S* \| 1 passed \| 0 failed \| 1 ignored/);
    assert.match(
      r.stderr,
      /test module FAILED: .*abort_at_exit_suite\.ts: the test process was killed by SIGABRT after a complete, passing summary/,
    );
    assert.match(r.stderr, /test run FAILED: 1 passed, 0 failed, 1 ignored/);
    assert.doesNotMatch(r.stderr, /test run passed/);
  },
});

Deno.test("test runner: a module that calls Deno.exit(0) outside a test fails the run", async () => {
  const r = await runRunner("passing_suite.ts", "exiting_suite.ts");
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    /test module FAILED: .*exiting_suite\.ts: Deno\.exit was called outside any test in .*exiting_suite\.ts/,
  );
});

Deno.test("test runner: every module runs in its own process and the totals are the sums; one failure fails all", async () => {
  const r = await runRunner("--jobs=1", "passing_suite.ts", "failing_suite.ts");
  assert.notEqual(r.code, 0);
  // one at a time: sorted, each module ran although one failed
  assert.match(r.stdout, /running 2 tests from \S*failing_suite\.ts[^]*running 3 tests from \S*passing_suite\.ts/);
  assert.match(r.stderr, /test module passed: .*passing_suite\.ts: 2 passed, 1 ignored/);
  assert.match(r.stderr, /test run FAILED: 3 passed, 1 failed, 1 ignored, of 5 registered, in 2 of 2 modules/);
  assert.match(r.stderr, /\n {2}\S*failing_suite\.ts: the test process exited with status 1/);
  // --fail-fast stops after the first failing module
  const ff = await runRunner("--fail-fast", "passing_suite.ts", "failing_suite.ts");
  assert.notEqual(ff.code, 0);
  assert.doesNotMatch(ff.stdout, /passing_suite/);
  assert.match(ff.stderr, /in 1 of 2 modules[^]*1 module\(s\) not run \(--fail-fast\)/);
});

Deno.test("test runner: modules at once (--jobs) keep each module's output whole and every verdict", async () => {
  const r = await runRunner("--jobs=3", "passing_suite.ts", "failing_suite.ts", "aborting_suite.ts");
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /test module passed: .*passing_suite\.ts: 2 passed, 1 ignored/);
  assert.match(r.stderr, /test module FAILED: .*failing_suite\.ts: the test process exited with status 1/);
  assert.match(r.stderr, /test module FAILED: .*aborting_suite\.ts: the test process was killed by SIGABRT\b/);
  assert.match(r.stderr, /in 3 of 3 modules/);
  // each module's block runs from its "running N tests" line to its own summary, with no other module inside
  for (const name of ["passing_suite", "failing_suite"]) {
    const block = r.stdout.slice(r.stdout.indexOf(`${name}.ts`));
    const end = block.search(/\n\S*(?:ok|FAILED)\S* \| \d+ passed/);
    assert.ok(end > 0, `${name}: no summary after its first line`);
    assert.doesNotMatch(block.slice(0, end), /running \d+ tests? from (?!\S*${name})/, `${name}'s output interleaved`);
  }
  const bad = await runRunner("--jobs=0", "passing_suite.ts");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--jobs takes a whole number of at least 1, got --jobs=0/);
  const spaced = await runRunner("--jobs", "2", "passing_suite.ts");
  assert.equal(spaced.code, 2);
  assert.match(spaced.stderr, /give --jobs its value as --jobs=N/);
});

Deno.test("test runner: a missing path, or a folder without test modules, fails", async () => {
  const missing = await runRunner("no_such_suite.ts");
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /test run FAILED: no such test file or folder: .*no_such_suite\.ts/);
  const empty = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", RUNNER, "tests/fixtures/runner/"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.notEqual(empty.code, 0);
  assert.match(
    new TextDecoder().decode(empty.stderr),
    /test run FAILED: no test modules found in tests\/fixtures\/runner\//,
  );
});

Deno.test("test runner: flags go to every module's process, with --filter's value", async () => {
  const r = await runRunner("--filter", "has steps", "passing_suite.ts", "failing_suite.ts");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /test run passed: 1 passed, 0 failed, 0 ignored, of 1 registered, in 2 of 2 modules/);
});

// ---- Verdict on hand-written outputs -------------------------------------------------------------------

const OK = { success: true, code: 0, signal: null };

function verdict(text: string): Verdict {
  const v = new Verdict();
  // chunked at odd places, as a pipe delivers it
  for (let i = 0; i < text.length; i += 7) v.push(text.slice(i, i + 7));
  return v;
}

const GOOD = [
  "running 2 tests from ./tests/a_test.ts",
  "a ... \x1b[32mok\x1b[0m (1ms)",
  "b ... ignored (0ms)",
  "running 1 test from ./tests/b_test.ts",
  "c ...",
  "  step ... ok (1ms)",
  "c ... ok (2ms)",
  "",
  "ok | 2 passed (1 step) | 0 failed | 1 ignored (5ms)",
  "",
].join("\n");

Deno.test("test runner: Verdict passes a complete run and counts it", () => {
  const v = verdict(GOOD);
  assert.equal(v.failure(OK, ["tests/a_test.ts", "tests/b_test.ts"]), null);
  assert.equal(v.registered, 3);
  assert.deepEqual(v.ran, { ok: 2, FAILED: 0, ignored: 1 });
});

Deno.test("test runner: Verdict counts a slow test's result printed after deno's running-for-over warnings", () => {
  // as deno 2.9 prints a test (or a step) that runs over a minute
  const slow = [
    "running 4 tests from ./tests/e_test.ts",
    "fast ... \x1b[32mok\x1b[0m (13s)",
    "slow ...\x1b[33m'slow' has been running for over\x1b[0m (1m0s)",
    "'slow' has been running for over (2m0s)",
    " \x1b[32mok\x1b[0m (2m31s)",
    "with a slow step ...",
    "  step ...'step' has been running for over (1m0s)",
    " ok (1m10s)",
    "with a slow step ... ok (1m11s)",
    "slow and failing ...'slow and failing' has been running for over (1m0s)",
    " FAILED (1m5s)",
    "",
    "FAILED | 3 passed (1 step) | 1 failed (5m)",
    "",
  ].join("\n");
  const v = verdict(slow);
  assert.deepEqual(v.ran, { ok: 3, FAILED: 1, ignored: 0 });
  assert.match(v.failure(OK) ?? "", /the summary reports failures/);
  const passing = slow.replace(/slow and failing[^]*FAILED \(1m5s\)\n/, "").replace("running 4", "running 3")
    .replace("FAILED | 3 passed (1 step) | 1 failed", "ok | 3 passed (1 step) | 0 failed");
  const p = verdict(passing);
  assert.equal(p.failure(OK, ["tests/e_test.ts"]), null);
  assert.deepEqual(p.ran, { ok: 3, FAILED: 0, ignored: 0 });
});

Deno.test("test runner: Verdict fails any abort, also after a complete, passing run", () => {
  const v = verdict(GOOD);
  const why = v.failure({ success: false, code: 134, signal: "SIGABRT" }, ["tests/a_test.ts", "tests/b_test.ts"]);
  assert.equal(why, "the test process was killed by SIGABRT after a complete, passing summary (a crash at exit)");
  assert.deepEqual(v.summary(), { passed: 2, failed: 0, ignored: 1 });
  assert.equal(
    verdict(GOOD).failure({ success: false, code: 1, signal: null }),
    "the test process exited with status 1 after a complete, passing summary (a crash at exit)",
  );
  // an abort in the middle says only that
  const mid = verdict("running 2 tests from ./t_test.ts\na ... ok (1ms)\nb ...\n");
  assert.equal(mid.failure({ success: false, code: 134, signal: "SIGABRT" }), "the test process was killed by SIGABRT");
  assert.equal(mid.summary(), null);
});

Deno.test("test runner: Verdict fails every way a run can lie", () => {
  const cases: [string, string, typeof OK | { success: boolean; code: number; signal: string }, string[]][] = [
    ["another signal after a passing summary", GOOD, { success: false, code: 139, signal: "SIGSEGV" }, []],
    ["SIGABRT after a complete, passing summary", GOOD, { success: false, code: 134, signal: "SIGABRT" }, []],
    ["a non-zero status after a passing summary", GOOD, { success: false, code: 1, signal: null }, []],
    [
      "SIGABRT after a passing summary, with a module missing",
      GOOD,
      { success: false, code: 134, signal: "SIGABRT" },
      ["tests/a_test.ts", "tests/b_test.ts", "tests/c_test.ts"],
    ],
    [
      "SIGABRT after a summary printed by a test",
      "running 2 tests from ./t_test.ts\na ... ok (1ms)\nb ...\n------- output -------\nok | 2 passed | 0 failed (1ms)\n",
      { success: false, code: 134, signal: "SIGABRT" },
      [],
    ],
    ["a module that never reported", GOOD, OK, ["tests/a_test.ts", "tests/b_test.ts", "tests/c_test.ts"]],
    // a test printed a passing summary, then the process ended: the last line is inside its output block
    [
      "a summary inside a test's output",
      "running 2 tests from ./t_test.ts\na ...\n------- output -------\nok | 2 passed | 0 failed (1ms)\n",
      OK,
      [],
    ],
    // the output block was closed, but the test never reported a result and nothing ran after it
    [
      "a test without a result line",
      "running 2 tests from ./t_test.ts\na ... ok (1ms)\nb ...\n------- output -------\nx\n" +
      "----- output end -----\nok | 2 passed | 0 failed (1ms)\n",
      OK,
      [],
    ],
    [
      "fewer results than registered",
      "running 3 tests from ./t_test.ts\na ... ok (1ms)\nok | 1 passed | 0 failed (1ms)\n",
      OK,
      [],
    ],
    [
      "a summary that disagrees with the results",
      "running 1 test from ./t_test.ts\na ... ok (1ms)\nok | 2 passed | 0 failed (1ms)\n",
      OK,
      [],
    ],
    [
      "a failing summary",
      "running 1 test from ./t_test.ts\na ... FAILED (1ms)\nFAILED | 0 passed | 1 failed (1ms)\n",
      OK,
      [],
    ],
    ["no summary", "running 1 test from ./t_test.ts\na ... ok (1ms)\n", OK, []],
    ["a line after the summary", GOOD + "something else\n", OK, []],
  ];
  for (const [what, text, status, files] of cases) {
    assert.notEqual(verdict(text).failure(status, files), null, `${what}: counted as passed`);
  }
});

Deno.test("test runner: expectedModules finds deno's test files, not the runner fixtures", () => {
  const cwd = Deno.cwd();
  Deno.chdir(ROOT);
  try {
    const mods = expectedModules(["tests/"]);
    assert.ok(mods.includes("tests/test_runner_test.ts"), mods.join(", "));
    assert.ok(mods.every((m) => /_test\.ts$/.test(m)), mods.join(", "));
    assert.ok(!mods.some((m) => m.includes("fixtures/runner")));
    assert.deepEqual(expectedModules(["tests/", "--filter", "x"]), []);
    assert.deepEqual(expectedModules([FIXTURES + "passing_suite.ts"]), [FIXTURES + "passing_suite.ts"]);
    assert.deepEqual(testModules(["tests/io_test.ts", "tests/"]), mods, "sorted, each once");
    assert.deepEqual(splitArgs([]), { paths: ["tests/"], flags: [] });
    assert.deepEqual(splitArgs(["--filter", "tests", "tests/io_test.ts", "--fail-fast", "--seed=3"]), {
      paths: ["tests/io_test.ts"],
      flags: ["--filter", "tests", "--fail-fast", "--seed=3"],
    });
  } finally {
    Deno.chdir(cwd);
  }
});

Deno.test("test runner: aggregate sums the modules' summaries; a module without a summary still fails the run", () => {
  const t = aggregate([
    { file: "a", why: null, summary: { passed: 3, failed: 0, ignored: 1 }, registered: 4, ms: 1 },
    { file: "b", why: "the test process was killed by SIGABRT", summary: null, registered: 2, ms: 1 },
    {
      file: "c",
      why: "the summary reports failures",
      summary: { passed: 1, failed: 2, ignored: 0 },
      registered: 3,
      ms: 1,
    },
  ]);
  assert.deepEqual([t.passed, t.failed, t.ignored, t.registered], [4, 2, 1, 9]);
  assert.deepEqual(t.failedModules.map((r) => r.file), ["b", "c"]);
  assert.deepEqual(aggregate([]).failedModules, []);
});
