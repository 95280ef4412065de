/**
 * `deno task test`: runs `deno test -A tests/` and passes its output through. One exception: a process that
 * reported every test passed ("ok | N passed | 0 failed") and then aborted in native teardown at exit (SIGABRT
 * from glibc's heap checks inside the software WebGPU driver's shutdown, seen in 2 of 7 clean-clone CI runs on lavapipe before the device-loss watch became opt-in) is reported
 * with a loud warning and counted as passed; any failed test, any other signal or a missing summary fails.
 *
 * @module
 */
const child = new Deno.Command(Deno.execPath(), {
  args: ["test", "-A", ...(Deno.args.length ? Deno.args : ["tests/"])],
  stdout: "piped",
  stderr: "inherit",
}).spawn();
let tail = "";
const dec = new TextDecoder();
for await (const chunk of child.stdout) {
  await Deno.stdout.write(chunk);
  tail = (tail + dec.decode(chunk, { stream: true })).slice(-4000);
}
const status = await child.status;
const ansi = new RegExp(String.fromCharCode(27) + "\\[[0-9;]*m", "g"); // colour codes around the summary
const plain = tail.replace(ansi, "");
const allPassed = /^ok \| \d+ passed.* \| 0 failed/m.test(plain);
if (status.success) Deno.exit(0);
if (allPassed && status.signal === "SIGABRT") {
  console.error(
    "warning: every test passed, then the test process aborted during native teardown at exit (SIGABRT); " +
      "treated as a pass. See tools/test_runner.ts.",
  );
  Deno.exit(0);
}
Deno.exit(status.code || 1);
