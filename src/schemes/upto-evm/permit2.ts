/**
 * What an x402 `upto` buyer signs: a Permit2 `PermitWitnessTransferFrom` to the upto proxy, as
 * `@x402/evm` signs it (https://github.com/Uniswap/permit2). Pure; shared by the Worker's checks
 * and by everything that signs test payments.
 */
import type { Permit2Authorization } from "../payment.ts";

/** Permit2's canonical address, and the x402 upto proxy every `upto` payment names as spender. */
export const PERMIT2_ADDRESS = "0x000000000022D473030F116dDEE9F6B43aC78BA3";
export const UPTO_PROXY_ADDRESS = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002";

/** The typed data an `upto` buyer signs, as `@x402/evm` signs it. */
export const UPTO_PERMIT2_TYPES = {
  PermitWitnessTransferFrom: [
    { name: "permitted", type: "TokenPermissions" },
    { name: "spender", type: "address" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
    { name: "witness", type: "Witness" },
  ],
  TokenPermissions: [
    { name: "token", type: "address" },
    { name: "amount", type: "uint256" },
  ],
  Witness: [
    { name: "to", type: "address" },
    { name: "facilitator", type: "address" },
    { name: "validAfter", type: "uint256" },
  ],
} as const;

/** The permit as the typed-data message the buyer signs (`UPTO_PERMIT2_TYPES`). */
export function permit2Message(p: Permit2Authorization) {
  return {
    permitted: { token: p.permitted.token, amount: BigInt(p.permitted.amount) },
    spender: p.spender,
    nonce: BigInt(p.nonce),
    deadline: BigInt(p.deadline),
    witness: { to: p.witness.to, facilitator: p.witness.facilitator, validAfter: BigInt(p.witness.validAfter) },
  };
}
