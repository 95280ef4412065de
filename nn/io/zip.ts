/**
 * A minimal read-only zip reader for uncompressed ("stored") archives such as the ones `torch.save`
 * writes: end-of-central-directory record (with zip64 records when the 32-bit fields overflow),
 * central directory, local headers. Entry data is returned as views of the archive bytes, so nothing
 * is copied. Every size and offset is checked against the archive size before use.
 *
 * @module
 */

import { WeightsFileError } from "./common.ts";

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

/** One entry of the central directory. */
export interface ZipEntry {
  /** Path inside the archive. */
  readonly name: string;
  /** Compression method (0 = stored; others are refused when the data is read). */
  readonly method: number;
  /** General-purpose flags. */
  readonly flags: number;
  /** CRC-32 of the uncompressed data. */
  readonly crc32: number;
  /** Stored size in bytes. */
  readonly compressedSize: number;
  /** Uncompressed size in bytes. */
  readonly size: number;
  /** Offset of the local header in the archive. */
  readonly localHeaderOffset: number;
}

let crcTable: Uint32Array | null = null;

/** CRC-32 (IEEE, as used by zip) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  const t = crcTable;
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A parsed zip archive over an in-memory byte array. */
export class ZipArchive {
  /** The archive bytes. */
  readonly bytes: Uint8Array;
  /** Name used in error messages. */
  readonly file: string;
  /** Entries by name, in central-directory order. */
  readonly entries: Map<string, ZipEntry>;
  #dv: DataView;

  /**
   * Parses the central directory of `bytes`.
   * @throws {WeightsFileError} when the archive is truncated or its directory is corrupt.
   */
  constructor(bytes: Uint8Array, file = "<buffer>") {
    this.bytes = bytes;
    this.file = file;
    this.#dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.entries = this.#readDirectory();
  }

  #fail(problem: string): never {
    throw new WeightsFileError(this.file, `corrupt zip archive: ${problem}`);
  }

  #u16(off: number): number {
    return this.#dv.getUint16(off, true);
  }
  #u32(off: number): number {
    return this.#dv.getUint32(off, true);
  }
  #u64(off: number, what: string): number {
    const lo = this.#dv.getUint32(off, true), hi = this.#dv.getUint32(off + 4, true);
    const v = hi * 2 ** 32 + lo;
    if (!Number.isSafeInteger(v)) this.#fail(`${what} ${v} is out of range`);
    return v;
  }

  #readDirectory(): Map<string, ZipEntry> {
    const len = this.bytes.length;
    if (len < 22) this.#fail(`the file is ${len} bytes, too short for an end-of-central-directory record`);
    // the EOCD record (22 bytes + comment) is the last thing in the file: scan back for its signature
    let eocd = -1;
    for (let p = len - 22; p >= Math.max(0, len - 22 - 0xffff); p--) {
      if (this.bytes[p] === 0x50 && this.#u32(p) === SIG_EOCD && p + 22 + this.#u16(p + 20) <= len) {
        eocd = p;
        break;
      }
    }
    if (eocd < 0) this.#fail("no end-of-central-directory record (truncated file?)");
    let count = this.#u16(eocd + 10);
    let cdSize = this.#u32(eocd + 12);
    let cdOffset = this.#u32(eocd + 16);
    let cdLimit = eocd; // the directory must end before this
    if (this.#u16(eocd + 4) !== 0 || this.#u16(eocd + 6) !== 0) this.#fail("multi-disk archives are not supported");
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const loc = eocd - 20;
      if (loc < 0 || this.#u32(loc) !== SIG_ZIP64_LOCATOR) {
        this.#fail("the end-of-central-directory record needs zip64 values but the zip64 locator is missing");
      }
      const rec = this.#u64(loc + 8, "zip64 end-of-central-directory offset");
      if (rec + 56 > loc || this.#u32(rec) !== SIG_ZIP64_EOCD) {
        this.#fail(`no zip64 end-of-central-directory record at offset ${rec}`);
      }
      count = this.#u64(rec + 32, "zip64 entry count");
      cdSize = this.#u64(rec + 40, "zip64 central directory size");
      cdOffset = this.#u64(rec + 48, "zip64 central directory offset");
      cdLimit = rec;
    }
    if (cdOffset + cdSize > cdLimit) {
      this.#fail(
        `central directory [${cdOffset}, ${
          cdOffset + cdSize
        }) extends past its end record at ${cdLimit} (truncated file?)`,
      );
    }
    if (count * 46 > cdSize) this.#fail(`${count} entries cannot fit in a ${cdSize}-byte central directory`);
    const entries = new Map<string, ZipEntry>();
    const decoder = new TextDecoder();
    let p = cdOffset;
    const end = cdOffset + cdSize;
    for (let i = 0; i < count; i++) {
      if (p + 46 > end || this.#u32(p) !== SIG_CENTRAL) this.#fail(`bad central directory entry ${i} at offset ${p}`);
      const flags = this.#u16(p + 8), method = this.#u16(p + 10), crc = this.#u32(p + 16);
      let csize = this.#u32(p + 20), usize = this.#u32(p + 24);
      const nameLen = this.#u16(p + 28), extraLen = this.#u16(p + 30), commentLen = this.#u16(p + 32);
      let local = this.#u32(p + 42);
      const next = p + 46 + nameLen + extraLen + commentLen;
      if (next > end) this.#fail(`central directory entry ${i} overruns the directory`);
      const name = decoder.decode(this.bytes.subarray(p + 46, p + 46 + nameLen));
      // zip64 extended information: the overflowed fields, in order usize, csize, local offset
      let x = p + 46 + nameLen;
      const xEnd = x + extraLen;
      while (x + 4 <= xEnd) {
        const id = this.#u16(x), size = this.#u16(x + 2);
        if (x + 4 + size > xEnd) this.#fail(`entry '${name}': extra field overruns its entry`);
        if (id === 0x0001) {
          let q = x + 4;
          const take = (what: string): number => {
            if (q + 8 > x + 4 + size) this.#fail(`entry '${name}': zip64 extra field is too short for the ${what}`);
            const v = this.#u64(q, `entry '${name}' ${what}`);
            q += 8;
            return v;
          };
          if (usize === 0xffffffff) usize = take("size");
          if (csize === 0xffffffff) csize = take("compressed size");
          if (local === 0xffffffff) local = take("local header offset");
        }
        x += 4 + size;
      }
      if (local + 30 > cdOffset || local + 30 + csize > cdOffset) {
        this.#fail(`entry '${name}': ${csize} bytes at local header offset ${local} run past the central directory`);
      }
      entries.set(name, {
        name,
        method,
        flags,
        crc32: crc,
        compressedSize: csize,
        size: usize,
        localHeaderOffset: local,
      });
      p = next;
    }
    return entries;
  }

  /** Whether the archive has an entry `name`. */
  has(name: string): boolean {
    return this.entries.has(name);
  }

  /**
   * The data of entry `name`, as a view of the archive bytes (no copy).
   * @param verify also check the entry's CRC-32 (one pass over its bytes).
   * @throws {WeightsFileError} when the entry is missing, compressed, encrypted or out of range.
   */
  read(name: string, verify = false): Uint8Array {
    const e = this.entries.get(name);
    if (!e) throw new WeightsFileError(this.file, `zip archive has no entry '${name}'`);
    if (e.flags & 1) this.#fail(`entry '${name}' is encrypted`);
    if (e.method !== 0) {
      throw new WeightsFileError(
        this.file,
        `zip entry '${name}' is compressed (method ${e.method}); only stored (uncompressed) entries, as written by torch.save, are supported`,
      );
    }
    if (e.compressedSize !== e.size) this.#fail(`stored entry '${name}' has size ${e.size} != ${e.compressedSize}`);
    const p = e.localHeaderOffset;
    if (this.#u32(p) !== SIG_LOCAL) this.#fail(`entry '${name}': no local header at offset ${p}`);
    const start = p + 30 + this.#u16(p + 26) + this.#u16(p + 28);
    if (start + e.size > this.bytes.length) {
      this.#fail(`entry '${name}': data [${start}, ${start + e.size}) runs past the end of the file`);
    }
    const data = this.bytes.subarray(start, start + e.size);
    if (verify && crc32(data) !== e.crc32) this.#fail(`entry '${name}': CRC-32 mismatch (corrupt data)`);
    return data;
  }
}

/** Whether `bytes` start like a zip archive (a local file header, or an empty archive's end record). */
export function isZip(bytes: Uint8Array): boolean {
  if (bytes.length < 4) return false;
  const sig = bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (bytes[3] << 24);
  return (sig >>> 0) === SIG_LOCAL || (sig >>> 0) === SIG_EOCD;
}
