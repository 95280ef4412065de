/**
 * Reading a weights file from disk (Deno): kept apart from `common.ts` so that the in-memory parsers bundle for the
 * browser without any file-system call.
 *
 * @module
 */

import { WeightsFileError } from "./common.ts";

/**
 * Reads a whole file given as a path or URL (one read into a buffer of the file's size, which is
 * faster than `Deno.readFile`'s growing buffer), naming it in the error when it cannot be read.
 */
export async function readWholeFile(path: string | URL): Promise<Uint8Array> {
  let file: Deno.FsFile | null = null;
  try {
    file = await Deno.open(path, { read: true });
    const info = await file.stat();
    if (info.isDirectory) {
      throw new WeightsFileError(
        String(path),
        "is a folder, not a weights file (expected a .safetensors or .pth file)",
      );
    }
    if (!info.isFile || info.size === 0) return await Deno.readFile(path); // pipes, /proc files, ...
    const buf = new Uint8Array(info.size);
    let off = 0;
    while (off < buf.length) {
      const n = await file.read(buf.subarray(off));
      if (n === null) break;
      off += n;
    }
    return off === buf.length ? buf : buf.subarray(0, off);
  } catch (e) {
    if (e instanceof WeightsFileError) throw e;
    if (e instanceof Deno.errors.NotFound) {
      throw new WeightsFileError(String(path), "cannot read the file: no such file");
    }
    throw new WeightsFileError(String(path), `cannot read the file: ${(e as Error).message}`);
  } finally {
    file?.close();
  }
}
