/**
 * viem, as the Worker bundles it, with two functions made fast for the official batch-settlement
 * server scheme, which calls them on every voucher:
 * - `hashTypedData` keeps its last results: the scheme hashes the same channel config (its id)
 *   three times per request, and the same on every request of a channel;
 * - `verifyTypedData` (`@x402/evm`'s `verifyLocalVoucherSignature`): viem recovers the signer's public key each time (a square root
 * and two full scalar multiplications, about 1.5 ms in workerd); a buyer pays many vouchers with
 * one key, so this checks against that key, cached with precomputed multiples, instead
 * (schemes/evm-signature.ts: the same answers as viem's recovery for every input, property-tested
 * against viem, malleable and invalid signatures included). Any other signature form goes to viem.
 *
 * wrangler.toml aliases "viem" to this file (`[alias]`); it re-exports the real viem from its
 * path, which the alias does not touch. Nothing else changes.
 */
import type * as Viem from "viem";
import {
  concat,
  getAddress,
  getTypesForEIP712Domain,
  hashDomain,
  hashStruct,
  isAddress,
  keccak256,
  toHex,
  validateTypedData,
  hashTypedData as viemHashTypedData,
  verifyTypedData as viemVerifyTypedData,
  // @ts-expect-error: the real viem, by path (no types there; they are viem's own, as `Viem`).
} from "../node_modules/viem/_esm/index.js";
import { BoundedMap } from "./memo.ts";
import { isSignedBy } from "./schemes/evm-signature.ts";

// @ts-expect-error: as above.
export * from "../node_modules/viem/_esm/index.js";

type VerifyTypedDataParameters = Parameters<typeof Viem.verifyTypedData>[0];
type HashTypedDataParameters = Parameters<typeof Viem.hashTypedData>[0];

/** Typed data → its EIP-712 hash; pure, so a repeat is answered from here. */
const hashes = new BoundedMap<string, `0x${string}`>(1024);
/**
 * A key that tells apart every two values viem would hash apart. Plain JSON when there is no
 * bigint (the usual case, and the fast one); else strings and bigints are tagged, so "5n" is not
 * 5n, behind a "~" that no plain JSON text starts with.
 */
function keyOf(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch {
    return `~${JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? `n:${v}` : typeof v === "string" ? `s:${v}` : v))}`;
  }
}

export function hashTypedData(parameters: HashTypedDataParameters): `0x${string}` {
  const key = keyOf(parameters);
  let hash = hashes.get(key);
  if (!hash) {
    hash = (viemHashTypedData as typeof Viem.hashTypedData)(parameters);
    hashes.set(key, hash);
  }
  return hash;
}

export async function verifyTypedData(parameters: VerifyTypedDataParameters): Promise<boolean> {
  const { address, signature } = parameters;
  if (typeof signature !== "string" || signature.length !== 2 + 65 * 2) {
    return (viemVerifyTypedData as typeof Viem.verifyTypedData)(parameters);
  }
  // As viem: an address that is not one throws; then the signer must be that address.
  const expected = (getAddress as typeof Viem.getAddress)(address);
  return isSignedBy(digestOf(parameters as HashTypedDataParameters), signature as `0x${string}`, expected);
}

/** Domain and types → the domain separator, validated once (the domain of every voucher is the same). */
const domainHashes = new BoundedMap<string, `0x${string}`>(64);

/**
 * viem's `hashTypedData` (exported for its tests), with the domain's half kept: the same validation (domain and types
 * once per domain, the message every time) and the same bytes, keccak256(0x1901 ‖ domain
 * separator ‖ hashStruct(message)), so the same answers and the same errors.
 */
export function digestOf(parameters: HashTypedDataParameters): `0x${string}` {
  const {
    domain = {},
    message,
    primaryType,
  } = parameters as {
    domain?: Record<string, unknown>;
    message: Record<string, unknown>;
    primaryType: string;
  };
  const types = {
    EIP712Domain: (getTypesForEIP712Domain as typeof Viem.getTypesForEIP712Domain)({ domain }),
    ...(parameters.types as Record<string, unknown>),
  } as Record<string, readonly Viem.TypedDataParameter[]>;
  const key = keyOf([domain, types]);
  let domainHash = domainHashes.get(key);
  if (!domainHash) {
    (validateTypedData as typeof Viem.validateTypedData)({ domain, types, primaryType: "EIP712Domain" } as never);
    domainHash = (hashDomain as typeof Viem.hashDomain)({ domain, types } as never);
    domainHashes.set(key, domainHash);
  }
  // As viem: a null domain (only `undefined` defaults to {}) contributes no separator.
  const parts: `0x${string}`[] = domain ? ["0x1901", domainHash] : ["0x1901"];
  if (primaryType !== "EIP712Domain") {
    const fast = flatStructHash(key, types, primaryType, message);
    if (fast) {
      parts.push(fast);
    } else {
      (validateTypedData as typeof Viem.validateTypedData)({ message, types, primaryType } as never);
      parts.push((hashStruct as typeof Viem.hashStruct)({ data: message, types, primaryType } as never));
    }
  }
  return (keccak256 as typeof Viem.keccak256)((concat as typeof Viem.concat)(parts));
}

/** A struct of only `bytes32`, `address` and `uintN` fields: its type hash and each field's type. */
interface FlatStruct {
  typeHash: string;
  fields: { name: string; bits: number | "address" | "bytes32" }[];
}

/** Types (already validated with their domain, under `typesKey`) → their primary struct, when it is flat. */
const flatStructs = new BoundedMap<string, FlatStruct | null>(64);

/**
 * hashStruct for a flat struct (a voucher, an EIP-3009 authorization), word by word with the
 * type hash kept, and the checks viem's validateTypedData makes of those fields. Undefined
 * when the struct is not flat or a value is not one this can encode exactly as viem does
 * (a number for an integer, an out-of-range integer, a bad address or size): then viem runs,
 * with its own answer or error. `typesKey` names `types` (one key, one set of valid types);
 * exported for the exact payment check, whose types are its own constant.
 */
export function flatStructHash(
  typesKey: string,
  types: Record<string, readonly Viem.TypedDataParameter[]>,
  primaryType: string,
  message: Record<string, unknown>,
): `0x${string}` | undefined {
  const key = `${primaryType}|${typesKey}`;
  let flat = flatStructs.get(key);
  if (flat === undefined) {
    flat = flatStructOf(types, primaryType) ?? null;
    flatStructs.set(key, flat);
  }
  if (!flat || typeof message !== "object" || message === null) return undefined;
  let words = flat.typeHash;
  for (const { name, bits } of flat.fields) {
    const value = message[name];
    if (bits === "bytes32") {
      if (typeof value !== "string" || !BYTES32.test(value)) return undefined;
      words += value.slice(2);
    } else if (bits === "address") {
      if (typeof value !== "string" || !(isAddress as typeof Viem.isAddress)(value)) return undefined;
      words += `000000000000000000000000${value.slice(2).toLowerCase()}`;
    } else {
      if (typeof value !== "bigint" || value < 0n || value >= 1n << BigInt(bits)) return undefined;
      words += value.toString(16).padStart(64, "0");
    }
  }
  return (keccak256 as typeof Viem.keccak256)(words as `0x${string}`);
}

const BYTES32 = /^0x[0-9a-fA-F]{64}$/;

function flatStructOf(
  types: Record<string, readonly Viem.TypedDataParameter[]>,
  primaryType: string,
): FlatStruct | undefined {
  const struct = types[primaryType];
  if (!struct || primaryType === "EIP712Domain") return undefined;
  const fields: FlatStruct["fields"] = [];
  for (const { name, type } of struct) {
    // A type named like an atomic one would be a struct to viem: not flat.
    if (Object.hasOwn(types, type)) return undefined;
    const uint = /^uint(\d+)$/.exec(type);
    const bits = Number(uint?.[1]);
    if (uint && bits >= 8 && bits <= 256 && bits % 8 === 0) fields.push({ name, bits });
    else if (type === "address" || type === "bytes32") fields.push({ name, bits: type });
    else return undefined;
  }
  // No field names a struct, so the encoded type is the primary type's alone (EIP-712 encodeType).
  const encodedType = `${primaryType}(${struct.map(({ name, type }) => `${type} ${name}`).join(",")})`;
  const typeHash = (keccak256 as typeof Viem.keccak256)((toHex as typeof Viem.toHex)(encodedType));
  return { typeHash, fields };
}
