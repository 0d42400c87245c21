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
  getAddress,
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
const keyOf = (value: unknown) => JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? `${v}n` : v));

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
  const digest = (viemHashTypedData as typeof Viem.hashTypedData)(parameters as HashTypedDataParameters);
  return isSignedBy(digest, signature as `0x${string}`, expected);
}
