/**
 * x402 `upto` on EVM: the buyer signs a Permit2 `PermitWitnessTransferFrom` of at most the route's
 * maximum to the upto proxy, with a witness naming the recipient and the one facilitator allowed
 * to settle it; the origin's answer decides the charge (paid/charge.ts). The checks here are what
 * `@x402/evm`'s upto facilitator checks before touching the chain, read from its shipped code;
 * the facilitator's /verify and the contracts stay the authority. Pure (no I/O).
 */
import { concat, type Hex, hashDomain, hashStruct, keccak256 } from "viem";
import { MIN_VALIDITY_LEFT_SECONDS } from "../../constants.ts";
import { type Failure, fail } from "../../errors.ts";
import { isUptoRequirement, type Requirement, type UptoRequirement } from "../../pricing/document.ts";
import { chainIdOf } from "../../x402/networks.ts";
import { isSignedBy } from "../evm-signature.ts";
import type { Selected, UptoPayment } from "../payment.ts";
import { PERMIT2_ADDRESS, permit2Message, UPTO_PERMIT2_TYPES, UPTO_PROXY_ADDRESS } from "./permit2.ts";

const PERMIT2_DOMAIN_TYPES = {
  EIP712Domain: [
    { name: "name", type: "string" },
    { name: "chainId", type: "uint256" },
    { name: "verifyingContract", type: "address" },
  ],
} as const;

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

const onNetworkOf = (payment: UptoPayment, accepts: Requirement[]) =>
  accepts.filter((r): r is UptoRequirement => r.network === payment.network && isUptoRequirement(r));

/** The route's `upto` requirement in the payment's token, whatever its price. */
export function findUpto(payment: UptoPayment, accepts: Requirement[]): UptoRequirement | undefined {
  const asset = payment.accepted?.asset ?? payment.permit2.permitted.token;
  return onNetworkOf(payment, accepts).find((r) => same(r.asset, asset));
}

/** The `upto` requirement this payment is for, accepted as offered — or why not. */
export function selectUpto(payment: UptoPayment, accepts: Requirement[]): Selected {
  const onNetwork = onNetworkOf(payment, accepts);
  if (onNetwork.length === 0) {
    const paidOtherwise = accepts.some((r) => r.network === payment.network);
    return {
      ok: false,
      failure: paidOtherwise
        ? fail("scheme_mismatch", 'This route is not paid with "upto" on that network.', payment.network)
        : fail("network_mismatch", "This route is not paid on that network.", payment.network),
    };
  }
  const accepted = payment.accepted;
  const requirement = findUpto(payment, accepts);
  if (!accepted || !requirement) {
    const asset = accepted?.asset ?? payment.permit2.permitted.token;
    return { ok: false, failure: fail("asset_mismatch", "This route is not paid in that asset.", asset) };
  }
  if (!same(accepted.payTo, requirement.payTo)) {
    return { ok: false, failure: fail("pay_to_mismatch", "The payment names another recipient.", accepted.payTo) };
  }
  if (accepted.amount !== requirement.amount) {
    return {
      ok: false,
      failure: fail("amount_mismatch", `This route authorises at most ${requirement.amount}.`, accepted.amount),
    };
  }
  return { ok: true, requirement };
}

/** What the buyer signed, against the requirement: token, maximum, spender, recipient, facilitator, time. */
export function uptoTerms(payment: UptoPayment, requirement: UptoRequirement, nowSeconds: number): Failure | undefined {
  const permit = payment.permit2;
  if (!same(permit.permitted.token, requirement.asset)) {
    return fail("asset_mismatch", "The signed permit is for another token.", permit.permitted.token);
  }
  if (permit.permitted.amount !== requirement.amount) {
    return fail("amount_mismatch", `This route authorises at most ${requirement.amount}.`, permit.permitted.amount);
  }
  if (!same(permit.spender, UPTO_PROXY_ADDRESS)) {
    return fail("spender_mismatch", "The signed permit must name the x402 upto proxy as spender.", permit.spender);
  }
  if (!same(permit.witness.to, requirement.payTo)) {
    return fail("pay_to_mismatch", "The signed permit pays another recipient.", permit.witness.to);
  }
  const facilitator = requirement.extra.facilitatorAddress;
  if (facilitator === undefined || !same(permit.witness.facilitator, facilitator)) {
    return fail(
      "facilitator_mismatch",
      "The signed permit names another facilitator than the one this route settles with.",
      permit.witness.facilitator,
    );
  }
  if (BigInt(permit.deadline) < BigInt(nowSeconds + MIN_VALIDITY_LEFT_SECONDS)) {
    return fail("payment_expired", "The signed permit has expired or expires within seconds.", permit.deadline);
  }
  if (BigInt(permit.witness.validAfter) > BigInt(nowSeconds)) {
    return fail("payment_not_yet_valid", "The signed permit is not valid yet.", permit.witness.validAfter);
  }
  return undefined;
}

/**
 * A 65-byte ECDSA signature must recover to the permit's `from` under Permit2's domain on the
 * payment's chain. Longer signatures (smart-contract wallets) are left to the facilitator.
 */
export function checkUptoSignature(payment: UptoPayment): Failure | undefined {
  if (payment.signature.length !== 2 + 65 * 2) return undefined;
  let digest: Hex;
  try {
    digest = uptoDigest(payment);
  } catch {
    return fail("invalid_signature", "The payment's permit cannot be hashed.");
  }
  if (!isSignedBy(digest, payment.signature, payment.permit2.from)) {
    return fail("invalid_signature", "The payment is not signed by its payer.");
  }
  return undefined;
}

/** The EIP-712 digest of the permit (viem's parts, as for `exact`: see exact-evm/checks.ts). */
export function uptoDigest(payment: Pick<UptoPayment, "permit2" | "network">): Hex {
  return keccak256(
    concat([
      "0x1901",
      permit2Separator(payment.network),
      hashStruct({
        data: permit2Message(payment.permit2),
        primaryType: "PermitWitnessTransferFrom",
        types: UPTO_PERMIT2_TYPES,
      }),
    ]),
  );
}

const separators = new Map<string, Hex>();
function permit2Separator(network: string): Hex {
  let separator = separators.get(network);
  if (!separator) {
    separator = hashDomain({
      domain: { name: "Permit2", chainId: BigInt(chainIdOf(network)), verifyingContract: PERMIT2_ADDRESS },
      types: PERMIT2_DOMAIN_TYPES,
    });
    if (separators.size < 64) separators.set(network, separator);
  }
  return separator;
}

/**
 * `upto:<network>:<from>:<nonce>`, lower case: Permit2 marks a nonce used per owner (one bitmap per
 * owner, whatever the token, spender or signature), so that pair is what the chain runs once.
 */
export function uptoIdentity(payment: UptoPayment): string {
  return `upto:${payment.network}:${payment.permit2.from}:${BigInt(payment.permit2.nonce)}`.toLowerCase();
}
