/**
 * Atomic file replacement: write a temporary file in the target's directory, flush it to disk, then
 * rename it over the target, so readers see either the old file or the complete new one.
 *
 * @module
 */

function dirAndBase(path: string): [string, string] {
  const i = Math.max(path.lastIndexOf("/"), Deno.build.os === "windows" ? path.lastIndexOf("\\") : -1);
  return i < 0 ? [".", path] : [path.slice(0, i) || "/", path.slice(i + 1)];
}

/**
 * Writes `chunks` (concatenated) to `path` atomically: a temporary file `.<name>.tmp-<pid>-<random>`
 * in the same directory is written, flushed with `fdatasync`, closed and renamed over `path`; the
 * directory is then synced where the platform allows. On failure the temporary file is removed and
 * `path` is left untouched.
 */
export async function atomicWriteFile(path: string | URL, chunks: Uint8Array | readonly Uint8Array[]): Promise<void> {
  const target = path instanceof URL ? decodeURIComponent(path.pathname) : path;
  const [dir, base] = dirAndBase(target);
  const rand = crypto.getRandomValues(new Uint32Array(2)).join("");
  const tmp = `${dir}/.${base}.tmp-${Deno.pid}-${rand}`;
  const parts = chunks instanceof Uint8Array ? [chunks] : chunks;
  let file: Deno.FsFile | null = null;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
    for (const part of parts) {
      let off = 0;
      while (off < part.length) off += await file.write(part.subarray(off));
    }
    await file.syncData();
    file.close();
    file = null;
    await Deno.rename(tmp, target);
  } catch (e) {
    try {
      file?.close();
    } catch { /* already closed */ }
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`cannot write ${target}: ${(e as Error).message}`, { cause: e });
  }
  // Persist the rename itself (POSIX: fsync the directory). Best effort.
  if (Deno.build.os !== "windows") {
    try {
      const d = await Deno.open(dir, { read: true });
      try {
        await d.sync();
      } finally {
        d.close();
      }
    } catch { /* not supported here */ }
  }
}
