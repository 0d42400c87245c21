/**
 * "Did `address` sign this 32-byte digest?" for 65-byte secp256k1 signatures (r ‖ s ‖ v), with
 * exactly the answers of viem's `recoverAddress(...) === address`, and fast for repeat signers.
 *
 * Recovery (what viem does) costs a square root and two full scalar multiplications. An agent
 * pays many times from one wallet, so after the first recovery the payer's public key P is kept
 * with a table of its multiples (secp256k1-tables.ts), and later signatures are checked by
 * computing R' = (h·s⁻¹)·G + (r·s⁻¹)·P and requiring R'.x = r with the y parity v names. That
 * holds exactly when recovery would give P (solve Q = (−h·r⁻¹)·G + (s·r⁻¹)·R for R), so the
 * answers are the same for every input — property-tested against viem, malleable and invalid
 * signatures included. The tables (G's, once per isolate, and each repeat payer's) are built a
 * little per valid check (BUILD_ENTRIES_PER_CHECK), so no request pays for a whole one; until
 * they are whole, the check recovers as viem does.
 *
 * Pure: no I/O; the key cache is bounded.
 */

import { invert } from "@noble/curves/abstract/modular";
import { secp256k1 } from "@noble/curves/secp256k1";
import { type Hex, keccak256 } from "viem";
import { BoundedMap } from "../memo.ts";
import { sumOfMultiples, type Table, TableBuilder } from "./secp256k1-tables.ts";

const N = secp256k1.CURVE.n;
/** Window for a cached key's table: 1,408 entries (~150 KiB). */
const KEY_WINDOW = 6;
/** Window for G's table: 2,432 entries (~260 KiB), one per isolate. */
const BASE_WINDOW = 7;
/** Repeat payers whose tables are kept: ~10 MiB at most. */
const TABLE_ENTRIES = 64;
/** Payers whose recovered keys are kept (64 bytes each), so that one-off payers never evict a table. */
const KEY_ENTRIES = 4096;
/**
 * Table entries a check may add after a valid signature from a repeat payer, ~2–3 ms of CPU (an
 * entry is about one addition): G's table, then the payer's, grow over ~20 checks instead of
 * costing one request 40–60 ms, which a Worker on a 10 ms CPU limit could not pay. Until both
 * are whole, checks recover the key as viem does.
 */
export const BUILD_ENTRIES_PER_CHECK = 192;

type RecoveredKey = InstanceType<typeof secp256k1.ProjectivePoint>;

const base = new TableBuilder(secp256k1.CURVE.Gx, secp256k1.CURVE.Gy, BASE_WINDOW);

/** Each payer's public key, once recovered. */
const keys = new BoundedMap<string, { x: bigint; y: bigint }>(KEY_ENTRIES);
/** Each repeat payer's table, built from its second valid signature on, so a one-off payer never pays for one. */
const tables = new BoundedMap<string, TableBuilder>(TABLE_ENTRIES);

/**
 * `buildEntries`: how much table a valid check from a repeat payer may build (tests pass
 * Infinity to have both tables whole at once).
 */
export function isSignedBy(
  digest: Hex,
  signature: Hex,
  address: Hex,
  buildEntries: number = BUILD_ENTRIES_PER_CHECK,
): boolean {
  const parsed = parseSignature(signature);
  if (!parsed) return false;
  const expected = address.toLowerCase();
  const table = tables.get(expected)?.complete;
  const g = base.complete;
  if (table && g) return verifiesWith(g, table, BigInt(digest) % N, parsed);
  let recovered: RecoveredKey;
  try {
    recovered = new secp256k1.Signature(parsed.r, parsed.s)
      .addRecoveryBit(parsed.recovery)
      .recoverPublicKey(digest.slice(2));
  } catch {
    return false;
  }
  if (addressOf(recovered) !== expected) return false;
  const known = keys.get(expected);
  if (!known) {
    keys.set(expected, recovered.toAffine());
    return true;
  }
  // A repeat payer: this valid check pays for a little more of the tables.
  let left = buildEntries;
  if (!g) left -= grow(base, left);
  if (left > 0) {
    let builder = tables.get(expected);
    if (!builder) {
      builder = new TableBuilder(known.x, known.y, KEY_WINDOW);
      tables.set(expected, builder);
    }
    grow(builder, left);
  }
  return true;
}

/** How far a payer's fast check is from ready (entries built of needed), for tests and logs. */
export function tableProgress(address: Hex): { base: [number, number]; key: [number, number] | undefined } {
  const needed = (b: TableBuilder) => b.windows << (b.window - 1);
  const key = tables.get(address.toLowerCase());
  return { base: [base.entries, needed(base)], key: key ? [key.entries, needed(key)] : undefined };
}

/** Extends a table by about `entries`; returns the entries it built. */
function grow(builder: TableBuilder, entries: number): number {
  const before = builder.entries;
  builder.extend(entries);
  return builder.entries - before;
}

interface Parsed {
  r: bigint;
  s: bigint;
  recovery: 0 | 1;
}

/** viem's rules: 65 bytes, 1 ≤ r, s < n, v one of 0, 1, 27, 28. */
function parseSignature(signature: Hex): Parsed | undefined {
  if (signature.length !== 2 + 65 * 2) return undefined;
  const r = BigInt(`0x${signature.slice(2, 66)}`);
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const v = Number.parseInt(signature.slice(130), 16);
  const recovery = v === 0 || v === 27 ? 0 : v === 1 || v === 28 ? 1 : undefined;
  if (recovery === undefined || r < 1n || r >= N || s < 1n || s >= N) return undefined;
  return { r, s, recovery };
}

function verifiesWith(g: Table, key: Table, h: bigint, { r, s, recovery }: Parsed): boolean {
  const sInverse = invert(s, N);
  const sum = sumOfMultiples(g, (h * sInverse) % N, key, (r * sInverse) % N);
  return sum !== undefined && sum.x === r && Number(sum.y & 1n) === recovery;
}

function addressOf(key: RecoveredKey): string {
  const uncompressed = key.toHex(false); // "04" ‖ x ‖ y
  return `0x${keccak256(`0x${uncompressed.slice(2)}`).slice(-40)}`;
}
