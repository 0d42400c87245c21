/**
 * The headers and answers that tell a buyer what became of a payment: `PAYMENT-RESPONSE` (v2) or
 * `X-PAYMENT-RESPONSE` (v1) for a settled or pending settlement, and the 409 that asks the buyer
 * to come back while a settlement is pending. Pure.
 */
import { HEADER, PENDING_RETRY_AFTER_SECONDS } from "../constants.ts";
import { fail } from "../errors.ts";
import type { LedgerRecord } from "../ledger/types.ts";
import type { Receipt } from "../receipts.ts";
import { retryLaterResponse } from "../responses.ts";
import { encodeHeaderJson } from "../x402/codec.ts";
import { toV1Network } from "../x402/networks.ts";
import type { Paid } from "./paid.ts";

export function pendingResponse(paid: Paid, record: LedgerRecord): Response {
  return retryLaterResponse(
    fail(
      "settlement_pending",
      "The payment was sent to the chain and is not confirmed yet; present the same payment again to get the answer.",
      record.tx || undefined,
    ),
    PENDING_RETRY_AFTER_SECONDS,
    pendingHeader(paid.version, record),
  );
}

/**
 * `PAYMENT-RESPONSE` (v2) or `X-PAYMENT-RESPONSE` (v1) with the base64 SettleResponse; v2 says the
 * `amount` settled (for `upto`, what the origin's answer cost rather than the maximum).
 */
function settlementHeader(
  version: 1 | 2,
  settlement: {
    success: boolean;
    errorReason?: string;
    transaction: string;
    network: string;
    payer?: string;
    amount: string;
  },
): [string, string] {
  const body = {
    success: settlement.success,
    ...(settlement.errorReason ? { errorReason: settlement.errorReason } : {}),
    transaction: settlement.transaction,
    network: version === 1 ? (toV1Network(settlement.network) ?? settlement.network) : settlement.network,
    ...(settlement.payer ? { payer: settlement.payer } : {}),
    ...(version === 2 ? { amount: settlement.amount } : {}),
  };
  return [version === 2 ? HEADER.paymentResponse : HEADER.xPaymentResponse, encodeHeaderJson(body)];
}

export function pendingHeader(version: 1 | 2, record: LedgerRecord): [string, string] {
  return settlementHeader(version, {
    success: false,
    errorReason: "settlement_pending",
    transaction: record.tx,
    network: record.network,
    payer: record.payer,
    amount: record.amount,
  });
}

/**
 * The settlement header for a settled payment served again. Receipts live in the isolate's memo,
 * so each is encoded once per protocol version rather than on every visit of its access window.
 */
export function receiptHeader(version: 1 | 2, receipt: Receipt): [string, string] {
  let encoded = encodedReceipts.get(receipt);
  if (!encoded) {
    encoded = {};
    encodedReceipts.set(receipt, encoded);
  }
  encoded[version] ??= settlementHeader(version, {
    success: true,
    transaction: receipt.tx,
    network: receipt.network,
    payer: receipt.payer,
    amount: receipt.amount,
  });
  return encoded[version];
}

const encodedReceipts = new WeakMap<Receipt, { 1?: [string, string]; 2?: [string, string] }>();
