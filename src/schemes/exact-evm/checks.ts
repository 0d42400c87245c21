/**
 * Local checks on a decoded payment, before any network call. Pure except `checkSignature`, which
 * only computes (no I/O). `now` is always passed in, in seconds.
 *
 * These are a cheap first filter that keeps garbage away from the facilitator and the origin; the
 * facilitator's /verify and the token contract stay the authority.
 */
import { concat, type Hex, hashDomain, hashStruct, keccak256 } from "viem";
import { MIN_VALIDITY_LEFT_SECONDS } from "../../constants.ts";
import { type Failure, fail } from "../../errors.ts";
import { type EvmRequirement, isEvmRequirement, type Requirement } from "../../pricing/document.ts";
import { flatStructHash } from "../../viem-fast.ts";
import { isSignedBy } from "../evm-signature.ts";
import type { EvmPayment, Selected } from "../payment.ts";
import { EIP712_DOMAIN_TYPES, eip712Domain, TRANSFER_WITH_AUTHORIZATION_TYPES } from "./eip3009.ts";

export type { Selected } from "../payment.ts";

const onNetworkOf = (payment: EvmPayment, accepts: Requirement[]) =>
  accepts.filter((r): r is EvmRequirement => r.network === payment.network && isEvmRequirement(r));

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * The route's requirement in the payment's token (network and asset), whatever its price: the
 * token decides the EIP-712 domain the signature is checked against, and the payment's identity.
 * v1 payloads name no asset: the option whose recipient and amount fit, else the first.
 */
export function findRequirement(payment: EvmPayment, accepts: Requirement[]): EvmRequirement | undefined {
  const onNetwork = onNetworkOf(payment, accepts);
  const accepted = payment.accepted;
  if (accepted) return onNetwork.find((r) => same(r.asset, accepted.asset));
  const { to, value } = payment.authorization;
  return onNetwork.find((r) => same(r.payTo, to) && r.amount === value) ?? onNetwork[0];
}

/** Finds the route's requirement this payment is for, and checks it was accepted as offered. */
export function selectRequirement(payment: EvmPayment, accepts: Requirement[]): Selected {
  const onNetwork = onNetworkOf(payment, accepts);
  if (onNetwork.length === 0) {
    return { ok: false, failure: fail("network_mismatch", "This route is not paid on that network.", payment.network) };
  }
  const accepted = payment.accepted;
  if (accepted) {
    const requirement = onNetwork.find((r) => same(r.asset, accepted.asset));
    if (!requirement)
      return { ok: false, failure: fail("asset_mismatch", "This route is not paid in that asset.", accepted.asset) };
    if (!same(accepted.payTo, requirement.payTo)) {
      return { ok: false, failure: fail("pay_to_mismatch", "The payment names another recipient.", accepted.payTo) };
    }
    if (accepted.amount !== requirement.amount) {
      return {
        ok: false,
        failure: fail("amount_mismatch", `This route costs ${requirement.amount}.`, accepted.amount),
      };
    }
    return { ok: true, requirement };
  }
  // v1 payloads do not say which asset; the signature's domain decides, so take the option whose
  // recipient and amount fit (a route rarely has two assets on one network).
  const { to, value } = payment.authorization;
  const requirement =
    onNetwork.find((r) => same(r.payTo, to) && r.amount === value) ?? (onNetwork[0] as EvmRequirement);
  return { ok: true, requirement };
}

/** Recipient, amount and validity window of the signed authorization. */
export function checkAuthorization(
  payment: EvmPayment,
  requirement: EvmRequirement,
  nowSeconds: number,
): Failure | undefined {
  const auth = payment.authorization;
  if (!same(auth.to, requirement.payTo)) {
    return fail("pay_to_mismatch", "The signed authorization pays another recipient.", auth.to);
  }
  if (auth.value !== requirement.amount) {
    return fail("amount_mismatch", `This route costs ${requirement.amount}.`, auth.value);
  }
  if (BigInt(auth.validBefore) < BigInt(nowSeconds + MIN_VALIDITY_LEFT_SECONDS)) {
    return fail("payment_expired", "The signed authorization has expired or expires within seconds.", auth.validBefore);
  }
  if (BigInt(auth.validAfter) > BigInt(nowSeconds)) {
    return fail("payment_not_yet_valid", "The signed authorization is not valid yet.", auth.validAfter);
  }
  return undefined;
}

/**
 * An ECDSA signature (65 bytes) must recover to `authorization.from` under the token's EIP-712
 * domain. Longer signatures come from smart-contract wallets (ERC-1271 / ERC-6492); they can only be
 * checked on chain, so they are left to the facilitator.
 */
export async function checkSignature(payment: EvmPayment, requirement: EvmRequirement): Promise<Failure | undefined> {
  if (payment.signature.length !== 2 + 65 * 2) return undefined;
  const auth = payment.authorization;
  let digest: Hex;
  try {
    // The EIP-712 digest from viem's parts rather than hashTypedData, which first re-validates the
    // typed data with viem's generic checks and error classes (~4 KB of bundle). Malformed values
    // still fail: the ABI encoder refuses bad addresses, out-of-range integers and short bytes32.
    const data = {
      from: auth.from,
      to: auth.to,
      value: BigInt(auth.value),
      validAfter: BigInt(auth.validAfter),
      validBefore: BigInt(auth.validBefore),
      nonce: auth.nonce,
    };
    const primaryType = "TransferWithAuthorization";
    const types = TRANSFER_WITH_AUTHORIZATION_TYPES;
    // The flat encoding when every value is exactly what its type allows (they always are from
    // the official clients); else viem's, with its refusals.
    const struct = flatStructHash(primaryType, types, primaryType, data) ?? hashStruct({ data, primaryType, types });
    digest = keccak256(concat(["0x1901", domainSeparator(requirement), struct]));
  } catch {
    return fail("invalid_signature", "The payment's authorization cannot be hashed.");
  }
  // Same answers as viem's recoverAddress(...) === from, faster for a payer seen before.
  if (!isSignedBy(digest, payment.signature, auth.from)) {
    return fail("invalid_signature", "The payment is not signed by its payer.");
  }
  return undefined;
}

/** A token's domain separator; a handful of tokens are ever paid, so each is hashed once. */
const separators = new Map<string, Hex>();
function domainSeparator(requirement: EvmRequirement): Hex {
  const key = `${requirement.network}|${requirement.asset}|${requirement.extra.name}|${requirement.extra.version}`;
  let separator = separators.get(key);
  if (!separator) {
    const domain = eip712Domain(requirement);
    separator = hashDomain({ domain: { ...domain, chainId: BigInt(domain.chainId) }, types: EIP712_DOMAIN_TYPES });
    if (separators.size < 64) separators.set(key, separator);
  }
  return separator;
}
