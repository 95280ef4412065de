/**
 * A restricted pickle interpreter (protocols 0–5 binary opcodes, as used by `torch.save`, which writes
 * protocol 2). It never executes code: `GLOBAL`/`STACK_GLOBAL` resolve names only through an
 * allow-list, and any other global is refused with an error naming it. `REDUCE`/`NEWOBJ` call the
 * allow-listed JavaScript implementation; `BUILD` only sets attributes on dicts (e.g. the
 * `_metadata` of a PyTorch state dict). Lengths are checked against the remaining bytes before any
 * allocation.
 *
 * Python values map to JavaScript as: None → null, bool → boolean, int → number (bigint beyond 2^53),
 * float → number, str → string, bytes/bytearray → Uint8Array, tuple/list → array, dict and
 * `collections.OrderedDict` → {@linkcode PyDict} (a Map keeping insertion order), set/frozenset → Set.
 *
 * @module
 */

import { WeightsFileError } from "./common.ts";

/** A dict (or `collections.OrderedDict`): a Map in insertion order, plus attributes set by pickle `BUILD`. */
export class PyDict extends Map<unknown, unknown> {
  /** `"dict"` or the class that built it (e.g. `"collections.OrderedDict"`). */
  readonly pyClass: string;
  /** Instance attributes (e.g. `_metadata` of a PyTorch state dict). */
  readonly attributes: Record<string, unknown> = {};
  /** Creates an empty dict of class `pyClass`. */
  constructor(pyClass = "dict") {
    super();
    this.pyClass = pyClass;
  }
}

/** The implementation of an allow-listed global. */
export interface AllowedGlobal {
  /** Called by `REDUCE`/`NEWOBJ` with the argument tuple; absent when the global may only be referenced. */
  call?: (args: unknown[]) => unknown;
}

/** A resolved global on the pickle stack. */
export class PickleGlobal {
  /** Creates a reference to `module.name` implemented by `impl`. */
  constructor(
    /** Python module. */ readonly module: string,
    /** Qualified name inside the module. */ readonly name: string,
    /** The allow-listed implementation. */ readonly impl: AllowedGlobal,
  ) {}
  /** `module.name`. */
  get fullName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Options of {@linkcode unpickle}. */
export interface UnpickleOptions {
  /** Names the source in errors. */
  file?: string;
  /**
   * Allowed globals by `"module.name"`, added to the built-in ones ({@linkcode BASE_GLOBALS}). Any
   * other global is refused.
   */
  globals?: Record<string, AllowedGlobal>;
  /** Resolves persistent ids (`PERSID`/`BINPERSID`); without it they are refused. */
  persistentLoad?: (pid: unknown) => unknown;
}

function toSet(args: unknown[]): Set<unknown> {
  const items = args[0] ?? [];
  if (!Array.isArray(items)) throw new Error("set() argument is not a list");
  return new Set(items);
}

/** Globals every unpickling allows: containers and the protocol-2 encoding of bytes. */
export const BASE_GLOBALS: Readonly<Record<string, AllowedGlobal>> = Object.freeze({
  "collections.OrderedDict": {
    call: (args: unknown[]) => {
      const d = new PyDict("collections.OrderedDict");
      const items = args[0];
      if (Array.isArray(items)) { for (const kv of items) if (Array.isArray(kv)) d.set(kv[0], kv[1]); }
      return d;
    },
  },
  "builtins.set": { call: toSet },
  "builtins.frozenset": { call: toSet },
  "__builtin__.set": { call: toSet },
  "__builtin__.frozenset": { call: toSet },
  "_codecs.encode": {
    // protocol 2 pickles bytes as _codecs.encode(str, "latin1")
    call: (args: unknown[]) => {
      const [s, enc] = args;
      if (typeof s !== "string" || (enc !== "latin1" && enc !== "latin-1")) {
        throw new Error(`_codecs.encode is only supported for (str, "latin1"), got encoding ${String(enc)}`);
      }
      const out = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c > 255) throw new Error("_codecs.encode: character outside latin1");
        out[i] = c;
      }
      return out;
    },
  },
  "builtins.bytearray": {
    call: (args: unknown[]) => {
      const v = args[0];
      if (v === undefined) return new Uint8Array(0);
      if (v instanceof Uint8Array) return v.slice();
      throw new Error("bytearray() is only supported from bytes");
    },
  },
});

const OPNAMES: Record<number, string> = {
  0x28: "MARK",
  0x2e: "STOP",
  0x30: "POP",
  0x31: "POP_MARK",
  0x32: "DUP",
  0x46: "FLOAT",
  0x49: "INT",
  0x4a: "BININT",
  0x4b: "BININT1",
  0x4c: "LONG",
  0x4d: "BININT2",
  0x4e: "NONE",
  0x50: "PERSID",
  0x51: "BINPERSID",
  0x52: "REDUCE",
  0x53: "STRING",
  0x54: "BINSTRING",
  0x55: "SHORT_BINSTRING",
  0x56: "UNICODE",
  0x58: "BINUNICODE",
  0x61: "APPEND",
  0x62: "BUILD",
  0x63: "GLOBAL",
  0x64: "DICT",
  0x7d: "EMPTY_DICT",
  0x65: "APPENDS",
  0x67: "GET",
  0x68: "BINGET",
  0x69: "INST",
  0x6a: "LONG_BINGET",
  0x6c: "LIST",
  0x5d: "EMPTY_LIST",
  0x6f: "OBJ",
  0x70: "PUT",
  0x71: "BINPUT",
  0x72: "LONG_BINPUT",
  0x73: "SETITEM",
  0x74: "TUPLE",
  0x29: "EMPTY_TUPLE",
  0x75: "SETITEMS",
  0x47: "BINFLOAT",
  0x80: "PROTO",
  0x81: "NEWOBJ",
  0x82: "EXT1",
  0x83: "EXT2",
  0x84: "EXT4",
  0x85: "TUPLE1",
  0x86: "TUPLE2",
  0x87: "TUPLE3",
  0x88: "NEWTRUE",
  0x89: "NEWFALSE",
  0x8a: "LONG1",
  0x8b: "LONG4",
  0x42: "BINBYTES",
  0x43: "SHORT_BINBYTES",
  0x8c: "SHORT_BINUNICODE",
  0x8d: "BINUNICODE8",
  0x8e: "BINBYTES8",
  0x8f: "EMPTY_SET",
  0x90: "ADDITEMS",
  0x91: "FROZENSET",
  0x92: "NEWOBJ_EX",
  0x93: "STACK_GLOBAL",
  0x94: "MEMOIZE",
  0x95: "FRAME",
  0x96: "BYTEARRAY8",
  0x97: "NEXT_BUFFER",
  0x98: "READONLY_BUFFER",
};

function describe(v: unknown): string {
  if (v === null) return "None";
  if (v instanceof PickleGlobal) return v.fullName;
  if (v instanceof PyDict) return v.pyClass;
  if (Array.isArray(v)) return "tuple/list";
  if (v instanceof Uint8Array) return "bytes";
  return typeof v;
}

/**
 * Unpickles `bytes` with the allow-listed globals only.
 * @throws {WeightsFileError} naming the file and the problem (refused global, truncated data, unsupported opcode, ...).
 */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions = {}): unknown {
  const file = opts.file ?? "<buffer>";
  const globals: Record<string, AllowedGlobal> = { ...BASE_GLOBALS, ...(opts.globals ?? {}) };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder("latin1");
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  let pos = 0;
  let opPos = 0;
  let op = 0;
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();

  const fail = (problem: string): never => {
    throw new WeightsFileError(file, `pickle: ${problem}`);
  };
  const opName = (): string => OPNAMES[op] ?? `0x${op.toString(16).padStart(2, "0")}`;
  const need = (n: number): void => {
    if (n < 0 || pos + n > bytes.length) {
      fail(`truncated data: ${opName()} at offset ${opPos} needs ${n} bytes, ${bytes.length - pos} left`);
    }
  };
  const take = (n: number): Uint8Array => {
    need(n);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const u8 = (): number => {
    need(1);
    return bytes[pos++];
  };
  const u16 = (): number => {
    need(2);
    const v = dv.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4);
    const v = dv.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = dv.getUint32(pos + 4, true) * 2 ** 32 + dv.getUint32(pos, true);
    pos += 8;
    return v;
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail(`truncated data: ${opName()} at offset ${opPos} has no end of line`);
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const str = (b: Uint8Array): string => {
    try {
      return utf8.decode(b);
    } catch {
      return fail(`invalid UTF-8 in a string at offset ${opPos}`);
    }
  };
  const pop = (): unknown => {
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1])) {
      fail(`stack underflow at ${opName()} (offset ${opPos})`);
    }
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail(`stack underflow at ${opName()} (offset ${opPos})`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) fail(`${opName()} at offset ${opPos} without a MARK`);
    return stack.splice(m!);
  };
  const longFromBytes = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const parseIntText = (s: string): number | bigint => {
    const t = s.endsWith("L") ? s.slice(0, -1) : s;
    if (!/^[+-]?\d+$/.test(t)) fail(`invalid integer literal '${s}' at offset ${opPos}`);
    const v = BigInt(t);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const resolve = (module: string, name: string): PickleGlobal => {
    const key = `${module}.${name}`;
    const impl = Object.hasOwn(globals, key) ? globals[key] : undefined;
    if (!impl) {
      fail(
        `refusing to load global '${key}' (offset ${opPos}): only an allow-list of tensor and container globals ` +
          `is accepted, no code is executed`,
      );
    }
    return new PickleGlobal(module, name, impl!);
  };
  const callGlobal = (fn: unknown, args: unknown, how: string): unknown => {
    if (!(fn instanceof PickleGlobal)) fail(`${how} of a non-global (${describe(fn)}) at offset ${opPos}`);
    const g = fn as PickleGlobal;
    if (!g.impl.call) fail(`${how} of '${g.fullName}' is not allowed (offset ${opPos})`);
    if (!Array.isArray(args)) fail(`${how} of '${g.fullName}': arguments are not a tuple`);
    try {
      return g.impl.call!(args as unknown[]);
    } catch (e) {
      if (e instanceof WeightsFileError) throw e;
      return fail(`${g.fullName}: ${(e as Error).message}`);
    }
  };
  const setItems = (d: unknown, kv: unknown[]): void => {
    if (!(d instanceof Map)) fail(`SETITEM(S) on ${describe(d)} at offset ${opPos}`);
    if (kv.length % 2) fail(`SETITEMS with an odd number of items at offset ${opPos}`);
    for (let i = 0; i < kv.length; i += 2) (d as Map<unknown, unknown>).set(kv[i], kv[i + 1]);
  };

  for (;;) {
    opPos = pos;
    if (pos >= bytes.length) fail(`truncated data: no STOP opcode after ${bytes.length} bytes`);
    op = bytes[pos++];
    switch (op) {
      case 0x80: { // PROTO
        const p = u8();
        if (p > 5) fail(`unsupported pickle protocol ${p}`);
        break;
      }
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length) {
          fail(`STOP with ${stack.length} values and ${marks.length} open marks on the stack`);
        }
        return stack[0];
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x30: // POP
        if (marks.length && marks[marks.length - 1] === stack.length) marks.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: { // BININT
        need(4);
        stack.push(dv.getInt32(pos, true));
        pos += 4;
        break;
      }
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(longFromBytes(take(u8())));
        break;
      case 0x8b: { // LONG4
        const n = u32();
        stack.push(longFromBytes(take(n)));
        break;
      }
      case 0x49: { // INT
        const s = line();
        stack.push(s === "01" ? true : s === "00" ? false : parseIntText(s));
        break;
      }
      case 0x4c: // LONG
        stack.push(parseIntText(line()));
        break;
      case 0x46: { // FLOAT
        const s = line();
        const v = Number(s);
        if (Number.isNaN(v) && !/^[+-]?nan$/i.test(s)) fail(`invalid float literal '${s}'`);
        stack.push(v);
        break;
      }
      case 0x47: { // BINFLOAT (big-endian)
        need(8);
        stack.push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      }
      case 0x58: // BINUNICODE
        stack.push(str(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(str(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(str(take(u64())));
        break;
      case 0x54: { // BINSTRING (Python 2 str)
        need(4);
        const n = dv.getInt32(pos, true);
        pos += 4;
        stack.push(latin1.decode(take(n)));
        break;
      }
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(take(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(take(u64()).slice());
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: { // TUPLE2
        const b = pop(), a = pop();
        stack.push([a, b]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop(), b = pop(), a = pop();
        stack.push([a, b, c]);
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: { // APPEND
        const v = pop(), list = top();
        if (!Array.isArray(list)) fail(`APPEND to ${describe(list)} at offset ${opPos}`);
        (list as unknown[]).push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark(), list = top();
        if (!Array.isArray(list)) fail(`APPENDS to ${describe(list)} at offset ${opPos}`);
        for (const v of items) (list as unknown[]).push(v);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new PyDict());
        break;
      case 0x64: { // DICT
        const d = new PyDict();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop(), k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: // SETITEMS
        {
          const kv = popMark();
          setItems(top(), kv);
        }
        break;
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x90: { // ADDITEMS
        const items = popMark(), s = top();
        if (!(s instanceof Set)) fail(`ADDITEMS to ${describe(s)} at offset ${opPos}`);
        for (const v of items) (s as Set<unknown>).add(v);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(new Set(popMark()));
        break;
      case 0x63: { // GLOBAL
        const module = line(), name = line();
        stack.push(resolve(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail(`STACK_GLOBAL needs two strings`);
        stack.push(resolve(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop(), fn = pop();
        stack.push(callGlobal(fn, args, "REDUCE"));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop(), cls = pop();
        stack.push(callGlobal(cls, args, "NEWOBJ"));
        break;
      }
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop(), args = pop(), cls = pop();
        if (!(kwargs instanceof Map) || kwargs.size) fail(`NEWOBJ_EX with keyword arguments at offset ${opPos}`);
        stack.push(callGlobal(cls, args, "NEWOBJ_EX"));
        break;
      }
      case 0x62: { // BUILD
        const state = pop(), obj = top();
        if (!(obj instanceof PyDict)) fail(`BUILD (setting state) on ${describe(obj)} is not supported`);
        const parts = Array.isArray(state) && state.length === 2 ? state : [state];
        for (const part of parts) {
          if (part === null) continue;
          if (!(part instanceof Map)) fail(`BUILD with a ${describe(part)} state`);
          for (const [k, v] of part as Map<unknown, unknown>) {
            if (typeof k !== "string") fail(`BUILD with a non-string attribute name`);
            (obj as PyDict).attributes[k as string] = v;
          }
        }
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail(`persistent id at offset ${opPos} but no persistent loader`);
        stack.push(opts.persistentLoad!(pid));
        break;
      }
      case 0x50: { // PERSID
        const pid = line();
        if (!opts.persistentLoad) fail(`persistent id at offset ${opPos} but no persistent loader`);
        stack.push(opts.persistentLoad!(pid));
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x70: { // PUT
        const idx = Number(line());
        if (!Number.isInteger(idx)) fail(`invalid PUT index at offset ${opPos}`);
        memo.set(idx, top());
        break;
      }
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: // LONG_BINGET
      case 0x67: { // GET
        const idx = op === 0x68 ? u8() : op === 0x6a ? u32() : Number(line());
        if (!memo.has(idx)) fail(`memo key ${idx} is not defined (offset ${opPos})`);
        stack.push(memo.get(idx));
        break;
      }
      default:
        fail(`unsupported opcode ${opName()} at offset ${opPos}`);
    }
  }
}
