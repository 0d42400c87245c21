/**
 * The identity of an EVM `exact` payment: what the token contract itself refuses to execute twice.
 * EIP-3009 marks `(from, nonce)` used per token contract, on one chain, whatever the signature or
 * the JSON around it — so two signatures over one nonce are one payment, and a v1 and a v2
 * spelling of one authorization are one payment. Pure.
 */
import type { Requirement } from "../../pricing/document.ts";
import type { EvmPayment } from "../payment.ts";

/**
 * `exact:<network>:<asset>:<from>:<nonce>`, lower case. `requirement` is the one the payment was
 * matched to (by `accepted.asset` in v2; in v1, whose payload names no asset, by recipient and
 * amount): its asset is the token whose EIP-712 domain the signature is checked against.
 */
export function exactEvmIdentity(payment: EvmPayment, requirement: Pick<Requirement, "asset">): string {
  const { from, nonce } = payment.authorization;
  return `exact:${payment.network}:${requirement.asset}:${from}:${nonce}`.toLowerCase();
}
