/**
 * A payment this location or the ledger already knows: settled (its access window, or the same
 * request's kept answer, or `payment_already_used`), pending (confirm it, or ask the buyer to come
 * back), or being served right now (`409 payment_in_progress`).
 */
import { IN_PROGRESS_RETRY_AFTER_SECONDS, KV_MIN_TTL_SECONDS } from "../constants.ts";
import { fail } from "../errors.ts";
import { answerResponse } from "../ledger/answer.ts";
import type { ClaimResult, LedgerRecord, StoredAnswer } from "../ledger/types.ts";
import { forwardToOrigin } from "../origin.ts";
import type { Receipt } from "../receipts.ts";
import { errorResponse, markPaid, retryLaterResponse } from "../responses.ts";
import { pendingResponse, receiptHeader } from "./answers.ts";
import { pendingNotBeforeMs, settle, settleLate, settleThenServe } from "./flows.ts";
import {
  answerFresh,
  bodyOf,
  facilitatorRequestOf,
  isAccessWindow,
  ledgerExpiresAtMs,
  type Paid,
  receiptOf,
  writeReceipt,
} from "./paid.ts";

/**
 * A settled payment this location has a receipt for: its window, or — for the same request, when
 * the ledger kept the answer — that answer (fetched from the ledger), or a refusal.
 */
export async function answerFromReceipt(paid: Paid, receipt: Receipt): Promise<Response> {
  if (!receipt.answerKept || receipt.request !== paid.requestKey || isAccessWindow(receipt, paid.p.route)) {
    return serveSettled(paid, receipt, undefined);
  }
  const stored = await paid.ledger.lookup(paid.rt.nowMs());
  if (!stored.ok) return paid.refuse(stored.failure);
  if (stored.value.kind === "settled") {
    return serveSettled(paid, receiptOf(stored.value.record, true), stored.value.answer, true);
  }
  return serveSettled(paid, receipt, undefined);
}

/** The ledger knows this payment: someone holds it, it settled, or its settlement is pending. */
export function answerKnown(
  paid: Paid,
  known: Exclude<ClaimResult, { kind: "claimed" }>,
): Promise<Response> | Response {
  switch (known.kind) {
    case "busy":
      // The copy being served is usually done within a second, however long its lease runs.
      return retryLaterResponse(
        fail("payment_in_progress", "This payment is being served right now; present it again shortly."),
        IN_PROGRESS_RETRY_AFTER_SECONDS,
      );
    case "settled":
      return serveSettled(paid, receiptOf(known.record, known.answer !== undefined), known.answer, true);
    case "pending":
      return known.leased ? confirmPending(paid, known.record, known.answer) : pendingResponse(paid, known.record);
  }
}

/**
 * A settled payment presented again: its access window, the answer it bought (same request), or
 * a refusal. Learnt from the ledger, the receipt is remembered in this isolate.
 */
async function serveSettled(
  paid: Paid,
  receipt: Receipt,
  answer: StoredAnswer | undefined,
  fromLedger = false,
): Promise<Response> {
  const { rt, p, version } = paid;
  const nowSeconds = Math.floor(rt.nowMs() / 1000);
  if (fromLedger) rt.receipts.remember(paid.key, receipt, Math.max(receipt.expiresAt, nowSeconds + KV_MIN_TTL_SECONDS));
  if (isAccessWindow(receipt, p.route)) {
    if (receipt.expiresAt <= nowSeconds) {
      return paid.refuse(
        fail("access_window_expired", "The access window bought with this payment has ended.", receipt.tx),
      );
    }
    const forwarded = await forwardToOrigin(rt.config, {
      request: paid.request,
      path: p.path,
      query: p.query,
      body: bodyOf(paid.request, p.fields),
      payer: receipt.payer,
      routeId: p.route.id,
    });
    if (!forwarded.ok) return markPaid(errorResponse(forwarded.failure));
    return markPaid(forwarded.response, receiptHeader(version, receipt));
  }
  if (answer && receipt.request === paid.requestKey && answerFresh(receipt, nowSeconds)) {
    rt.log("payment_replayed", { route: p.route.id, tx: receipt.tx });
    return markPaid(answerResponse(answer), receiptHeader(version, receipt));
  }
  return paid.refuse(fail("payment_already_used", "This payment has already been settled.", receipt.tx));
}

/**
 * A pending payment presented again, and this request now holds its lease: settle the same
 * request again. Confirmed → the kept answer (or, upfront, the origin runs now); failed → released.
 */
async function confirmPending(paid: Paid, record: LedgerRecord, answer: StoredAnswer | undefined): Promise<Response> {
  const { rt } = paid;
  if (record.upfront) return settleThenServe(paid, record);
  paid.via = record.facilitator;
  const outcome = await settle(paid, record.settleRequest ?? facilitatorRequestOf(paid), record);
  if (outcome.kind === "refused") {
    await paid.ledger.release();
    return paid.refuse(
      fail("settle_failed", "The payment's pending settlement failed; nobody was charged.", outcome.reason),
    );
  }
  if (outcome.kind === "pending") {
    // Still not confirmed: the kept answer stays, and the lease is given back for the next try.
    const still = { ...record, tx: outcome.tx || record.tx };
    const kept = await paid.ledger.pend(still, undefined, pendingNotBeforeMs(paid, still), ledgerExpiresAtMs(still));
    if (kept && outcome.late && still.tx === "") paid.waitUntil(settleLate(paid, still, outcome.late, true));
    return pendingResponse(paid, still);
  }
  const settled: LedgerRecord = { ...record, tx: outcome.reply.transaction || record.tx, settleRequest: undefined };
  await paid.ledger.settle(rt.nowMs(), settled, false, ledgerExpiresAtMs(settled));
  const receipt = receiptOf(settled, answer !== undefined);
  writeReceipt(paid, receipt);
  rt.log("payment_confirmed", { route: paid.p.route.id, payer: settled.payer, amount: settled.amount, tx: settled.tx });
  return serveSettled(paid, receipt, answer, true);
}
