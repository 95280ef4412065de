/**
 * NumPy `.npy` (format 1.0) writing and reading of float32 arrays, so anomaly maps can be loaded with
 * `numpy.load` and metrics recomputed elsewhere.
 *
 * @module
 */

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Serialises a C-order little-endian float32 array of `shape` as `.npy` bytes. */
export function encodeNpy(data: Float32Array, shape: readonly number[]): Uint8Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== data.length) throw new Error(`encodeNpy: shape [${shape}] holds ${n} elements, the data ${data.length}`);
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  // magic (6) + version (2) + length (2) + header + "\n" must be a multiple of 64
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += " ".repeat(pad % 64) + "\n";
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  // float32 on every platform Deno runs on is little-endian
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/** Parses `.npy` bytes of a little-endian float32 C-order array; `file` names the source in errors. */
export function decodeNpy(bytes: Uint8Array, file = "<buffer>"): { data: Float32Array; shape: number[] } {
  const fail = (why: string): never => {
    throw new Error(`${file}: not a float32 .npy file: ${why}`);
  };
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) fail("bad magic");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (start + hlen > bytes.length) fail("truncated header");
  const header = new TextDecoder().decode(bytes.subarray(start, start + hlen));
  if (!/'descr':\s*'<f4'/.test(header)) fail(`dtype is not '<f4' (${header.trim()})`);
  if (/'fortran_order':\s*True/.test(header)) fail("Fortran order is not supported");
  const m = header.match(/'shape':\s*\(([^)]*)\)/);
  if (!m) fail("no shape in the header");
  const shape = m![1].split(",").map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const off = start + hlen;
  if (bytes.length - off !== n * 4) fail(`expected ${n * 4} data bytes, got ${bytes.length - off}`);
  const data = new Float32Array(n);
  new Uint8Array(data.buffer).set(bytes.subarray(off));
  return { data, shape };
}
