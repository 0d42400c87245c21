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
 * signatures included.
 *
 * Pure: no I/O; the key cache is bounded.
 */

import { invert } from "@noble/curves/abstract/modular";
import { secp256k1 } from "@noble/curves/secp256k1";
import { type Hex, keccak256 } from "viem";
import { BoundedMap } from "../memo.ts";
import { sumOfMultiples, type Table, tableOf } from "./secp256k1-tables.ts";

const N = secp256k1.CURVE.n;
/** Window for a cached key's table: 1,408 entries (~150 KiB), built in a few ms on its second signature. */
const KEY_WINDOW = 6;
/** Window for G's table: 2,432 entries (~260 KiB), built once per isolate. */
const BASE_WINDOW = 7;
/** Repeat payers whose tables are kept: ~10 MiB at most. */
const TABLE_ENTRIES = 64;
/** Payers whose recovered keys are kept (64 bytes each), so that one-off payers never evict a table. */
const KEY_ENTRIES = 4096;

type RecoveredKey = InstanceType<typeof secp256k1.ProjectivePoint>;

let baseTable: Table | undefined;
const base = () => {
  baseTable ??= tableOf(secp256k1.CURVE.Gx, secp256k1.CURVE.Gy, BASE_WINDOW);
  return baseTable;
};

/** Each payer's public key, once recovered. */
const keys = new BoundedMap<string, { x: bigint; y: bigint }>(KEY_ENTRIES);
/** Each repeat payer's table: built on the first signature after the recovery, so a one-off payer never pays for one. */
const tables = new BoundedMap<string, Table>(TABLE_ENTRIES);

export function isSignedBy(digest: Hex, signature: Hex, address: Hex): boolean {
  const parsed = parseSignature(signature);
  if (!parsed) return false;
  const expected = address.toLowerCase();
  let table = tables.get(expected);
  const key = table ? undefined : keys.get(expected);
  if (key) {
    table = tableOf(key.x, key.y, KEY_WINDOW);
    tables.set(expected, table);
  }
  if (table) return verifiesWith(table, BigInt(digest) % N, parsed);
  let recovered: RecoveredKey;
  try {
    recovered = new secp256k1.Signature(parsed.r, parsed.s)
      .addRecoveryBit(parsed.recovery)
      .recoverPublicKey(digest.slice(2));
  } catch {
    return false;
  }
  if (addressOf(recovered) !== expected) return false;
  keys.set(expected, recovered.toAffine());
  return true;
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

function verifiesWith(key: Table, h: bigint, { r, s, recovery }: Parsed): boolean {
  const sInverse = invert(s, N);
  const sum = sumOfMultiples(base(), (h * sInverse) % N, key, (r * sInverse) % N);
  return sum !== undefined && sum.x === r && Number(sum.y & 1n) === recovery;
}

function addressOf(key: RecoveredKey): string {
  const uncompressed = key.toHex(false); // "04" ‖ x ‖ y
  return `0x${keccak256(`0x${uncompressed.slice(2)}`).slice(-40)}`;
}
