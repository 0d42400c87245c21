/**
 * Solana `exact` as the request path asks for it (schemes/scheme.ts): which of a route's
 * requirements a transaction pays, and whether it pays it as offered.
 */
import { type Failure, fail } from "../../errors.ts";
import { isSvmRequirement, type MintFacts, type Requirement, type SvmRequirement } from "../../pricing/document.ts";
import type { Selected, SvmPayment } from "../payment.ts";
import { addressOf } from "./address.ts";
import { checkTransaction } from "./checks.ts";
import type { SolanaTransaction } from "./transaction.ts";

const onNetworkOf = (payment: SvmPayment, accepts: Requirement[]) =>
  accepts.filter((r): r is SvmRequirement => r.network === payment.network && isSvmRequirement(r));

/** The mint the transfer instruction names, if the transaction has one where the scheme puts it. */
function transferMint(tx: SolanaTransaction): string | undefined {
  const mintIndex = tx.instructions[2]?.accounts[1];
  const key = mintIndex === undefined ? undefined : tx.accounts[mintIndex];
  return key ? addressOf(key) : undefined;
}

/** v2 names the asset it accepted; a v1 payload does not, and the transfer's mint decides. */
export function findSvmRequirement(payment: SvmPayment, accepts: Requirement[]): SvmRequirement | undefined {
  const onNetwork = onNetworkOf(payment, accepts);
  const asset = payment.accepted?.asset ?? transferMint(payment.transaction);
  return onNetwork.find((r) => r.asset === asset) ?? (payment.accepted ? undefined : onNetwork[0]);
}

export function selectSvmRequirement(payment: SvmPayment, accepts: Requirement[]): Selected {
  const onNetwork = onNetworkOf(payment, accepts);
  if (onNetwork.length === 0) {
    return { ok: false, failure: fail("network_mismatch", "This route is not paid on that network.", payment.network) };
  }
  const requirement = findSvmRequirement(payment, accepts);
  const accepted = payment.accepted;
  if (!requirement) {
    return { ok: false, failure: fail("asset_mismatch", "This route is not paid in that asset.", accepted?.asset) };
  }
  if (accepted && accepted.payTo !== requirement.payTo) {
    return { ok: false, failure: fail("pay_to_mismatch", "The payment names another recipient.", accepted.payTo) };
  }
  if (accepted && accepted.amount !== requirement.amount) {
    return { ok: false, failure: fail("amount_mismatch", `This route costs ${requirement.amount}.`, accepted.amount) };
  }
  return { ok: true, requirement };
}

/** The transaction against the requirement as offered (its fee payer filled in by offers.ts). */
export async function svmTerms(
  payment: SvmPayment,
  requirement: SvmRequirement,
  mints: ReadonlyMap<string, MintFacts>,
): Promise<Failure | undefined> {
  const mint = mints.get(`${requirement.network}|${requirement.asset}`);
  const feePayer = requirement.extra.feePayer;
  if (!mint || !feePayer) {
    return fail("fee_payer_mismatch", "This route's Solana terms are not known right now; ask again for a 402.");
  }
  const checked = await checkTransaction(payment.transaction, {
    network: requirement.network,
    amount: requirement.amount,
    asset: requirement.asset,
    decimals: mint.decimals,
    tokenProgram: mint.tokenProgram,
    payTo: requirement.payTo,
    feePayer,
  });
  return checked.ok ? undefined : checked.failure;
}

/** The transfer's authority: the account that signs for the buyer's tokens. */
export function svmPayer(tx: SolanaTransaction): string {
  const authority = tx.instructions[2]?.accounts[3];
  const key = authority === undefined ? undefined : tx.accounts[authority];
  return key ? addressOf(key) : "";
}
