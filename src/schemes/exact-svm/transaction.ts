/**
 * Reading a Solana transaction from its wire bytes, without any RPC. Pure.
 *
 * Wire format: compact-u16 count of signatures, 64 bytes each, then the message the signatures
 * cover. Message: an optional version byte (high bit set; only version 0 exists), a three-byte
 * header (required signatures, read-only signed, read-only unsigned), compact-u16 count of
 * 32-byte account keys, a 32-byte recent blockhash, compact-u16 count of instructions (program
 * index, compact-u16 count of account indexes, compact-u16 length of data) and, in version 0,
 * address table lookups. Every count and index is checked against what it refers to, and the
 * bytes must end exactly where the transaction does.
 */

/** A transaction fits one network packet: 1232 bytes (base64: 1644 characters). */
export const MAX_TRANSACTION_BYTES = 1232;

export interface Instruction {
  /** Index into `accounts` of the program called. */
  program: number;
  /** Indexes into `accounts`. */
  accounts: number[];
  data: Uint8Array;
}

export interface SolanaTransaction {
  signatures: Uint8Array[];
  /** The bytes every signature covers. */
  message: Uint8Array;
  version: "legacy" | 0;
  /** How many of the first accounts must sign; the first is the fee payer. */
  requiredSignatures: number;
  readonlySigned: number;
  readonlyUnsigned: number;
  /** Static account keys, 32 bytes each. */
  accounts: Uint8Array[];
  blockhash: Uint8Array;
  instructions: Instruction[];
  /** Address table lookups (version 0 only): accounts loaded from tables, unknown without RPC. */
  lookups: number;
}

export type Decoded = { ok: true; tx: SolanaTransaction } | { ok: false; problem: string };

class Reader {
  #at = 0;
  readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  get done(): boolean {
    return this.#at === this.bytes.length;
  }

  get offset(): number {
    return this.#at;
  }

  byte(what: string): number {
    const value = this.bytes[this.#at];
    if (value === undefined) throw new Truncated(what);
    this.#at++;
    return value;
  }

  take(n: number, what: string): Uint8Array {
    if (this.#at + n > this.bytes.length) throw new Truncated(what);
    const slice = this.bytes.subarray(this.#at, this.#at + n);
    this.#at += n;
    return slice;
  }

  /** Solana's compact-u16: 7 bits per byte, low first, at most three bytes, no overlong forms. */
  shortVec(what: string): number {
    let value = 0;
    for (let i = 0; i < 3; i++) {
      const b = this.byte(what);
      value |= (b & 0x7f) << (7 * i);
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) throw new Malformed(`${what}: overlong length`);
        if (value > 0xffff) throw new Malformed(`${what}: length over 65535`);
        return value;
      }
    }
    throw new Malformed(`${what}: length over three bytes`);
  }
}

class Truncated extends Error {
  constructor(what: string) {
    super(`truncated at ${what}`);
  }
}

class Malformed extends Error {}

/** Decodes wire bytes; `problem` says what is wrong in words an agent's developer can act on. */
export function decodeTransaction(bytes: Uint8Array): Decoded {
  if (bytes.length > MAX_TRANSACTION_BYTES) {
    return { ok: false, problem: `transaction is ${bytes.length} bytes, over ${MAX_TRANSACTION_BYTES}` };
  }
  try {
    return { ok: true, tx: read(new Reader(bytes), bytes) };
  } catch (error) {
    if (error instanceof Truncated || error instanceof Malformed) return { ok: false, problem: error.message };
    throw error;
  }
}

function read(r: Reader, bytes: Uint8Array): SolanaTransaction {
  const signatureCount = r.shortVec("signature count");
  const signatures: Uint8Array[] = [];
  for (let i = 0; i < signatureCount; i++) signatures.push(r.take(64, `signature ${i}`));
  const messageStart = r.offset;

  let version: SolanaTransaction["version"] = "legacy";
  let first = r.byte("message header");
  if (first & 0x80) {
    if ((first & 0x7f) !== 0) throw new Malformed(`message version ${first & 0x7f} does not exist`);
    version = 0;
    first = r.byte("message header");
  }
  const requiredSignatures = first;
  const readonlySigned = r.byte("message header");
  const readonlyUnsigned = r.byte("message header");

  const accountCount = r.shortVec("account count");
  const accounts: Uint8Array[] = [];
  for (let i = 0; i < accountCount; i++) accounts.push(r.take(32, `account ${i}`));
  const blockhash = r.take(32, "recent blockhash");

  const instructionCount = r.shortVec("instruction count");
  const instructions: Instruction[] = [];
  for (let i = 0; i < instructionCount; i++) {
    const program = r.byte(`instruction ${i}`);
    const n = r.shortVec(`instruction ${i} account count`);
    const indexes: number[] = [];
    for (let j = 0; j < n; j++) indexes.push(r.byte(`instruction ${i} accounts`));
    const data = r.take(r.shortVec(`instruction ${i} data length`), `instruction ${i} data`);
    instructions.push({ program, accounts: indexes, data });
  }

  let lookups = 0;
  let loaded = 0;
  if (version === 0) {
    lookups = r.shortVec("address table lookup count");
    for (let i = 0; i < lookups; i++) {
      r.take(32, `address table ${i}`);
      for (const kind of ["writable", "read-only"]) {
        const n = r.shortVec(`address table ${i} ${kind} count`);
        r.take(n, `address table ${i} ${kind} indexes`);
        loaded += n;
      }
    }
  }
  if (!r.done) throw new Malformed("bytes after the end of the message");

  if (requiredSignatures === 0) throw new Malformed("a transaction needs at least the fee payer's signature");
  if (signatureCount !== requiredSignatures) {
    throw new Malformed(`${signatureCount} signatures for ${requiredSignatures} required signers`);
  }
  if (requiredSignatures > accountCount) throw new Malformed("more required signers than accounts");
  if (readonlySigned >= requiredSignatures) throw new Malformed("the fee payer must be a writable signer");
  if (readonlyUnsigned > accountCount - requiredSignatures)
    throw new Malformed("read-only accounts exceed the accounts");
  const known = accountCount + loaded;
  for (const [i, ix] of instructions.entries()) {
    if (ix.program >= accountCount) throw new Malformed(`instruction ${i}: program index ${ix.program} out of range`);
    for (const index of ix.accounts) {
      if (index >= known) throw new Malformed(`instruction ${i}: account index ${index} out of range`);
    }
  }
  return {
    signatures,
    message: bytes.subarray(messageStart),
    version,
    requiredSignatures,
    readonlySigned,
    readonlyUnsigned,
    accounts,
    blockhash,
    instructions,
    lookups,
  };
}
