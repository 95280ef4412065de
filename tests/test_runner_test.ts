/**
 * `deno task test` (tools/test_runner.ts) must not report a crashed or failed suite as passed. It is run as a
 * subprocess on the fixture suites in tests/fixtures/runner/ (named *_suite.ts, so `deno test tests/` does not
 * pick them up), and its bookkeeping (`Verdict`) is fed hand-written outputs.
 */
import assert from "node:assert/strict";
import { expectedModules, Verdict } from "../tools/test_runner.ts";

const ROOT = new URL("../", import.meta.url);
const RUNNER = "tools/test_runner.ts";
const FIXTURES = "tests/fixtures/runner/";

async function runRunner(...suites: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", RUNNER, ...suites.map((s) => FIXTURES + s)],
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
  assert.match(r.stderr, /test run passed: 2 passed, 1 ignored, of 3 registered/);
  // the child's output is passed through
  assert.match(r.stdout, /has steps \.\.\. .*ok/);
});

Deno.test("test runner: a suite with a failing test exits non-zero", async () => {
  const r = await runRunner("failing_suite.ts");
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /test run FAILED: the test process exited with status 1/);
});

Deno.test("test runner: a suite that prints a passing summary and then aborts exits non-zero", async () => {
  const r = await runRunner("aborting_suite.ts");
  assert.notEqual(r.code, 0);
  assert.match(r.stdout, /ok \| 3 passed \| 0 failed/, "the fixture printed its fake summary");
  assert.match(r.stderr, /test run FAILED: the test process was killed by SIGABRT/);
});

Deno.test("test runner: a module that calls Deno.exit(0) outside a test fails the run", async () => {
  const r = await runRunner("passing_suite.ts", "exiting_suite.ts");
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /test run FAILED: Deno\.exit was called outside any test in .*exiting_suite\.ts/);
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

Deno.test("test runner: Verdict fails every way a run can lie", () => {
  const cases: [string, string, typeof OK | { success: boolean; code: number; signal: string }, string[]][] = [
    ["a signal after a passing summary", GOOD, { success: false, code: 134, signal: "SIGABRT" }, []],
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
  } finally {
    Deno.chdir(cwd);
  }
});
