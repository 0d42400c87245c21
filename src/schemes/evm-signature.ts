/**
 * "Did `address` sign this 32-byte digest?" for 65-byte secp256k1 signatures (r ‖ s ‖ v), with
 * exactly the answers of viem's `recoverAddress(...) === address`, and fast for repeat signers.
 *
 * Recovery (what viem does) costs a square root and two full scalar multiplications. An agent
 * pays many times from one wallet, so after the first recovery the payer's public key P is kept
 * with precomputed multiples, and later signatures are checked by computing
 * R' = (h·s⁻¹)·G + (r·s⁻¹)·P and requiring R'.x = r with the y parity v names. That holds exactly
 * when recovery would give P (solve Q = (−h·r⁻¹)·G + (s·r⁻¹)·R for R), so the answers are the same
 * for every input — property-tested against viem, malleable and invalid signatures included.
 *
 * Only noble's constant-time `multiply` is used with precomputed points: its `multiplyUnsafe`
 * gives wrong results for full-size scalars once a window size is set (noble 1.9.1, measured).
 * Pure: no I/O; the key cache is bounded.
 */
import { secp256k1 } from "@noble/curves/secp256k1";
import { type Hex, keccak256 } from "viem";
import { BoundedMap } from "../memo.ts";

type Point = InstanceType<typeof secp256k1.ProjectivePoint>;

const Point = secp256k1.ProjectivePoint;
const N = secp256k1.CURVE.n;
/** wNAF window for cached keys: ~45 KiB each, a check in ~⅓ of a recovery (measured in Node). */
const KEY_WINDOW = 6;
/** Payers whose keys are kept: ~6 MiB at most. */
const KEY_CACHE_ENTRIES = 128;

const keys = new BoundedMap<string, Point>(KEY_CACHE_ENTRIES);

export function isSignedBy(digest: Hex, signature: Hex, address: Hex): boolean {
  const parsed = parseSignature(signature);
  if (!parsed) return false;
  const expected = address.toLowerCase();
  const cached = keys.get(expected);
  if (cached) return verifiesWith(cached, BigInt(digest) % N, parsed);
  let recovered: Point;
  try {
    recovered = new secp256k1.Signature(parsed.r, parsed.s)
      .addRecoveryBit(parsed.recovery)
      .recoverPublicKey(digest.slice(2));
  } catch {
    return false;
  }
  if (addressOf(recovered) !== expected) return false;
  recovered._setWindowSize(KEY_WINDOW);
  keys.set(expected, recovered);
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

function verifiesWith(key: Point, h: bigint, { r, s, recovery }: Parsed): boolean {
  const sInverse = invert(s);
  const u1 = (h * sInverse) % N;
  const u2 = (r * sInverse) % N;
  const fromKey = key.multiply(u2);
  const sum = u1 === 0n ? fromKey : Point.BASE.multiply(u1).add(fromKey);
  if (sum.equals(Point.ZERO)) return false;
  const { x, y } = sum.toAffine();
  return x === r && Number(y & 1n) === recovery;
}

/** s⁻¹ mod n, by the extended Euclidean algorithm (s is in [1, n−1], so it exists). */
function invert(value: bigint): bigint {
  let [t, next, r, nextR] = [0n, 1n, N, value];
  while (nextR !== 0n) {
    const q = r / nextR;
    [t, next] = [next, t - q * next];
    [r, nextR] = [nextR, r - q * nextR];
  }
  return t < 0n ? t + N : t;
}

function addressOf(key: Point): string {
  const uncompressed = key.toHex(false); // "04" ‖ x ‖ y
  return `0x${keccak256(`0x${uncompressed.slice(2)}`).slice(-40)}`;
}
