/**
 * One paid request once its payment is decoded and checked (`Paid`), and the bookkeeping every
 * flow shares: the facilitator request, the ledger record and KV receipt made from an outcome, and
 * how long each is kept. No I/O of its own apart from the receipt writes it schedules.
 */
import { LEDGER_GRACE_SECONDS, LEDGER_MAX_KEEP_SECONDS, MAX_STORED_ANSWER_SECONDS } from "../constants.ts";
import type { Failure } from "../errors.ts";
import type { FacilitatorRequest } from "../facilitators/http.ts";
import type { PaymentHandle } from "../ledger/client.ts";
import type { LedgerRecord } from "../ledger/types.ts";
import type { Runtime } from "../paywall.ts";
import type { PricingTable, Requirement, RouteRule } from "../pricing/document.ts";
import type { RetiredTable } from "../pricing/store.ts";
import { type Receipt, receiptTtlSeconds } from "../receipts.ts";
import type { FieldReader } from "../request-fields.ts";
import type { Payment } from "../schemes/payment.ts";
import { schemeOf } from "../schemes/scheme.ts";
import type { SettleOutcome } from "../settlement.ts";
import { toRequirementV1 } from "../x402/requirements.ts";

export type WaitUntil = (promise: Promise<unknown>) => void;

export interface Priced {
  table: PricingTable;
  retired: readonly RetiredTable[];
  route: RouteRule;
  method: string;
  segments: string[];
  path: string;
  query: string;
  /** Set when the route's price reads request fields; holds the body if it was read. */
  fields: FieldReader | undefined;
}

/** One paid request, once its payment is decoded and checked: what every later step needs. */
export interface Paid {
  request: Request;
  rt: Runtime;
  waitUntil: WaitUntil;
  p: Priced;
  version: 1 | 2;
  payment: Payment;
  /** The route's requirement this payment is for. */
  requirement: Requirement;
  /** Receipt key in KV (a hash of the identity). */
  key: string;
  /** The payment's ledger object, made on first use (a receipt often answers without it). */
  readonly ledger: PaymentHandle;
  /** `METHOD path?query`: a stored answer is only given back for the same request. */
  requestKey: string;
  /** The facilitator that verified the payment; it, and only it, settles it. */
  via?: string;
  refuse: (failure: Failure) => Response;
}

/** The body to forward: the bytes read to price the request, else the untouched stream. */
export function bodyOf(request: Request, fields: FieldReader | undefined): BodyInit | null {
  return fields?.bodyRead ? (fields.bodyBytes ?? null) : request.body;
}

export function facilitatorRequestOf(paid: Paid): FacilitatorRequest {
  const { version, payment, requirement, p, request } = paid;
  return {
    x402Version: version,
    paymentPayload: payment.raw,
    paymentRequirements: version === 2 ? requirement : toRequirementV1(requirement, p.route, request.url),
  };
}

/** `settleRequest` is kept with a pending record: confirming must repeat exactly that request. */
export function recordOf(
  paid: Paid,
  payer: string,
  requirement: Requirement,
  outcome: SettleOutcome,
  settleRequest: FacilitatorRequest,
  upfront: boolean,
): LedgerRecord {
  const nowSeconds = Math.floor(paid.rt.nowMs() / 1000);
  const settled = outcome.kind === "settled";
  return {
    routeId: paid.p.route.id,
    request: paid.requestKey,
    payer: settled && outcome.reply.payer ? outcome.reply.payer : payer,
    amount: requirement.amount,
    asset: requirement.asset,
    network: paid.payment.network,
    tx: settled ? outcome.reply.transaction : outcome.kind === "pending" ? outcome.tx : "",
    settledAt: nowSeconds,
    accessUntil: nowSeconds + (paid.p.route.accessTtlSeconds ?? 0),
    validBefore: schemeOf(paid.payment).validBefore(paid.payment, nowSeconds),
    ...(outcome.kind === "pending" ? { settleRequest } : {}),
    ...(paid.via ? { facilitator: paid.via } : {}),
    ...(upfront ? { upfront: true } : {}),
  };
}

export function receiptOf(record: LedgerRecord, answerKept: boolean): Receipt {
  return {
    routeId: record.routeId,
    request: record.request,
    payer: record.payer,
    network: record.network,
    asset: record.asset,
    amount: record.amount,
    tx: record.tx,
    settledAt: record.settledAt,
    expiresAt: record.accessUntil,
    validBefore: record.validBefore,
    answerKept,
  };
}

export function writeReceipt(paid: Paid, receipt: Receipt): void {
  paid.waitUntil(writeReceiptNow(paid, receipt));
}

export function writeReceiptNow(paid: Paid, receipt: Receipt): Promise<void> {
  const nowSeconds = Math.floor(paid.rt.nowMs() / 1000);
  return paid.rt.receipts.put(paid.key, receipt, receiptTtlSeconds(receipt, nowSeconds), nowSeconds);
}

/** A ledger row outlives the authorization (and the access window) it records, within a week. */
export function ledgerExpiresAtMs(record: LedgerRecord): number {
  const validBefore = Number(BigInt(record.validBefore) > 2n ** 40n ? 2n ** 40n : BigInt(record.validBefore));
  const keep = Math.max(validBefore + LEDGER_GRACE_SECONDS, record.accessUntil);
  return Math.min(keep, record.settledAt + LEDGER_MAX_KEEP_SECONDS) * 1000;
}

export const isSingleUse = (route: RouteRule) => route.accessTtlSeconds === undefined;

/** The payment bought an access window on this route (whatever the route's settings are now). */
export const isAccessWindow = (receipt: Receipt, route: RouteRule) =>
  receipt.routeId === route.id && receipt.expiresAt > receipt.settledAt;

/** A kept answer is given back for a day at most, and never once the authorization has expired. */
export const answerFresh = (receipt: Receipt, nowSeconds: number) =>
  nowSeconds < receipt.settledAt + MAX_STORED_ANSWER_SECONDS && BigInt(nowSeconds) < BigInt(receipt.validBefore);
