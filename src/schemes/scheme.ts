/**
 * The seam between the request path and each scheme's code: `paywall.ts` reads a payment the same
 * way whatever it pays with, and each scheme (EVM `exact`: an EIP-3009 authorization; Solana
 * `exact`: a partly signed transfer; EVM `upto`: a Permit2 witness transfer of at most a maximum)
 * answers these questions its own way, in its own folder.
 */
import type { Failure } from "../errors.ts";
import {
  type EvmRequirement,
  isSvmRequirement,
  type PricingTable,
  type Requirement,
  type SvmRequirement,
  type UptoRequirement,
} from "../pricing/document.ts";
import { checkAuthorization, checkSignature, findRequirement, selectRequirement } from "./exact-evm/checks.ts";
import { exactEvmIdentity } from "./exact-evm/identity.ts";
import { checkSignatures, exactSvmIdentity } from "./exact-svm/checks.ts";
import { findSvmRequirement, selectSvmRequirement, svmPayer, svmTerms } from "./exact-svm/scheme.ts";
import type { EvmPayment, Payment, Selected, SvmPayment, UptoPayment } from "./payment.ts";
import { checkUptoSignature, findUpto, selectUpto, uptoIdentity, uptoTerms } from "./upto-evm/scheme.ts";

export interface Fit {
  nowSeconds: number;
  mints: PricingTable["mints"];
}

export interface Scheme<P extends Payment> {
  /** The requirement in the payment's asset on its network, whatever its price: it decides what the signature is checked under. */
  find(payment: P, accepts: Requirement[]): Requirement | undefined;
  /** The requirement the payment is for, accepted as offered — or why not. */
  select(payment: P, accepts: Requirement[]): Selected;
  /** The payment's own terms against that requirement: recipient, amount, validity, layout. */
  terms(payment: P, requirement: Requirement, fit: Fit): Promise<Failure | undefined>;
  /** Requirements with one key check a signature the same way: it is checked once per key. */
  signatureKey(requirement: Requirement): string;
  signature(payment: P, requirement: Requirement): Promise<Failure | undefined>;
  /** What the chain refuses to execute twice: one payment, however it is spelled or re-signed. */
  identity(payment: P, requirement: Requirement): Promise<string>;
  /** Who pays, as the payment says (the facilitator's answer, when it names one, wins). */
  payer(payment: P): string;
  /** Until when (unix seconds, decimal) the payment could be presented again. */
  validBefore(payment: P, nowSeconds: number): string;
  /** Fit failures a payment settled under older terms, or a while ago, would show. */
  maybeSettled: ReadonlySet<string>;
  /**
   * What the facilitator's settle refusal means once an earlier attempt at this payment may
   * have broadcast (its outcome unknown, or its transaction pending): it proves that attempt
   * landed ("settled"), nobody was charged ("refused"), or it cannot tell ("unresolved": the
   * payment stays pending, neither released nor given away). `tx` is the refusal's own
   * transaction, "" when it names none.
   */
  afterBroadcast(reason: string, tx: string): AfterBroadcast;
}

export type AfterBroadcast = "settled" | "refused" | "unresolved";

/** The official facilitator's refusal once an EIP-3009 authorization's nonce has been used on chain. */
const NONCE_USED = "invalid_exact_evm_nonce_already_used";

const exactEvm: Scheme<EvmPayment> = {
  find: (payment, accepts) => findRequirement(payment, accepts),
  select: (payment, accepts) => selectRequirement(payment, accepts),
  terms: async (payment, requirement, fit) =>
    checkAuthorization(payment, requirement as EvmRequirement, fit.nowSeconds),
  signatureKey: (r) => {
    const { name, version } = (r as EvmRequirement).extra;
    return `${r.network}|${r.asset}|${name}|${version}`;
  },
  signature: (payment, requirement) => checkSignature(payment, requirement as EvmRequirement),
  identity: async (payment, requirement) => exactEvmIdentity(payment, requirement),
  payer: (payment) => payment.authorization.from,
  validBefore: (payment) => payment.authorization.validBefore,
  maybeSettled: new Set(["amount_mismatch", "pay_to_mismatch", "payment_expired"]),
  // The nonce is used: that can only be this authorization's own transfer, to this payee, for
  // this amount (only a payer who cancels their own nonce could make this wrong; the official
  // clients never do, and the facilitator's receipt check catches a cancel while it still
  // remembers the transaction).
  afterBroadcast: (reason) => (reason === NONCE_USED ? "settled" : "refused"),
};

/** The official facilitator's refusal for a Solana transaction that failed (with its signature: on chain). */
const SVM_TRANSACTION_FAILED = "invalid_exact_svm_transaction_failed";

/**
 * A Solana transaction carries no expiry of its own: its blockhash is valid for 150 slots (about a
 * minute). Past this many seconds from first sight it can no longer land, so nothing need be kept
 * for it longer (the ledger adds its own grace).
 */
const SOLANA_VALIDITY_SECONDS = 180;

const exactSvm: Scheme<SvmPayment> = {
  find: (payment, accepts) => findSvmRequirement(payment, accepts),
  select: (payment, accepts) => selectSvmRequirement(payment, accepts),
  terms: (payment, requirement, fit) => svmTerms(payment, requirement as SvmRequirement, fit.mints),
  // Ed25519 signatures cover the message alone: every requirement checks them the same way.
  signatureKey: (r) => (isSvmRequirement(r) ? r.network : ""),
  signature: (payment) => checkSignatures(payment.transaction),
  identity: (payment) => exactSvmIdentity(payment.transaction, payment.network),
  payer: (payment) => svmPayer(payment.transaction),
  validBefore: (_payment, nowSeconds) => String(nowSeconds + SOLANA_VALIDITY_SECONDS),
  maybeSettled: new Set(["amount_mismatch", "pay_to_mismatch", "fee_payer_mismatch"]),
  // The official facilitator keeps each transaction it settles for two minutes: while it does, a
  // second settle is `duplicate_settlement`, whether the first is still confirming or has landed.
  // After that, a landed transaction fails its simulation exactly as an expired one does
  // (read in its code: the blockhash is gone either way). Only a transaction the chain
  // ran and failed, named in the refusal, proves nobody was charged.
  afterBroadcast: (reason, tx) => (reason === SVM_TRANSACTION_FAILED && tx !== "" ? "refused" : "unresolved"),
};

const uptoEvm: Scheme<UptoPayment> = {
  find: (payment, accepts) => findUpto(payment, accepts),
  select: (payment, accepts) => selectUpto(payment, accepts),
  terms: async (payment, requirement, fit) => uptoTerms(payment, requirement as UptoRequirement, fit.nowSeconds),
  // Permit2's domain is the chain's alone: every upto requirement on a network checks the same way.
  signatureKey: (r) => `${r.network}|permit2`,
  signature: async (payment) => checkUptoSignature(payment),
  identity: async (payment) => uptoIdentity(payment),
  payer: (payment) => payment.permit2.from,
  validBefore: (payment) => payment.permit2.deadline,
  maybeSettled: new Set(["amount_mismatch", "pay_to_mismatch", "payment_expired", "facilitator_mismatch"]),
  // The official facilitator names no "already used" for Permit2: once our own settlement has
  // landed, a settle again fails its simulation and is reported as missing allowance or balance
  // (measured: permit2_allowance_required), exactly as if the buyer had withdrawn them. Neither
  // releasing (the buyer may have paid) nor serving (they may not) is safe.
  afterBroadcast: () => "unresolved",
};

export function schemeOf(payment: Payment): Scheme<Payment> {
  if (payment.scheme === "upto") return uptoEvm as Scheme<Payment>;
  return (payment.family === "svm" ? exactSvm : exactEvm) as Scheme<Payment>;
}
