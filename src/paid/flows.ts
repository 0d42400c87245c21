/**
 * A claimed payment, from the facilitator to the answer — the two x402 flows:
 * - `serveThenSettle` (`authorization`, the default): /verify, run the origin, settle only when it
 *   answered below 400, then stream the answer (a copy kept for retries of single-use payments);
 * - `settleThenServe` (`upfront`, `settle: "before"`): settle, record, then run the origin once.
 * Either ends released (nobody charged), settled (recorded in the ledger, receipt in KV) or
 * pending (`keepPending`: the answer kept with the payment until the buyer comes back).
 */
import { PENDING_BODY_READ_MS } from "../constants.ts";
import { fail } from "../errors.ts";
import {
  type FacilitatorRequest,
  type FacilitatorResult,
  SETTLEMENT_PENDING,
  type SettleReply,
} from "../facilitators/http.ts";
import { answerResponse, copyForRetries, mayKeep, readForPending } from "../ledger/answer.ts";
import type { LedgerRecord, StoredAnswer } from "../ledger/types.ts";
import { forwardToOrigin } from "../origin.ts";
import { isSvmRequirement, isUptoRequirement, type Requirement } from "../pricing/document.ts";
import { errorResponse, markPaid } from "../responses.ts";
import { schemeOf } from "../schemes/scheme.ts";
import { type SettleOutcome, settleWithinBudget } from "../settlement.ts";
import { pendingHeader, pendingResponse, receiptHeader } from "./answers.ts";
import { chargeOf } from "./charge.ts";
import {
  bodyOf,
  facilitatorRequestOf,
  isSingleUse,
  ledgerExpiresAtMs,
  type Paid,
  receiptOf,
  recordOf,
  writeReceipt,
  writeReceiptNow,
} from "./paid.ts";

/** How long a settled record waits for its answer's copy, to write both at once. */
const QUICK_COPY_MS = 50;

/**
 * The x402 `authorization` flow: verify, run the origin, settle only if it succeeded. An `upto`
 * payment is settled for what the origin's answer says it cost (paid/charge.ts), at most its maximum.
 */
export async function serveThenSettle(paid: Paid): Promise<Response> {
  const { rt, p, version, payment } = paid;
  const verifyRequest = facilitatorRequestOf(paid);
  const verified = await rt.facilitators.verify(
    verifyRequest,
    payment.network,
    payment.scheme,
    facilitatorKeyOf(paid.requirement),
  );
  if (!verified.ok || !verified.reply.isValid) {
    await paid.ledger.release();
    if (!verified.ok) return paid.refuse(verified.failure);
    return paid.refuse(
      fail("verify_rejected", "The facilitator rejected this payment.", verified.reply.invalidReason ?? "unknown"),
    );
  }
  const payer = verified.reply.payer ?? schemeOf(payment).payer(payment);
  paid.via = verified.via;

  const forwarded = await forwardToOrigin(rt.config, {
    request: paid.request,
    path: p.path,
    query: p.query,
    body: bodyOf(paid.request, p.fields),
    payer,
    routeId: p.route.id,
    timeoutMs: rt.config.originTimeoutMs,
  });
  if (!forwarded.ok) {
    await paid.ledger.release();
    return markPaid(errorResponse(forwarded.failure));
  }
  const response = forwarded.response;
  // The origin failed: nobody is charged, and the buyer may retry with the same payment.
  if (response.status >= 400) {
    await paid.ledger.release();
    return markPaid(response);
  }

  let requirement = paid.requirement;
  let facilitatorRequest = verifyRequest;
  if (isUptoRequirement(requirement)) {
    requirement = { ...requirement, amount: chargeOf(paid, requirement, response) };
    facilitatorRequest = { ...verifyRequest, paymentRequirements: requirement };
  }
  const outcome = await settle(paid, facilitatorRequest, undefined);
  const record = recordOf(paid, payer, requirement, outcome, facilitatorRequest, false);
  switch (outcome.kind) {
    case "refused":
      await response.body?.cancel();
      await paid.ledger.release();
      return paid.refuse(fail("settle_failed", "The payment could not be settled.", outcome.reason));
    case "pending":
      return keepPending(paid, record, response, outcome);
    case "settled": {
      rt.log("payment_settled", { route: p.route.id, payer: record.payer, amount: record.amount, tx: record.tx });
      if (!isSingleUse(p.route) || !mayKeep(response, rt.config.retryBodyLimitBytes)) {
        // Off the critical path: until this lands, the claim still holds off every copy of the payment.
        paid.waitUntil(recordSettled(paid, record, undefined));
        return markPaid(response, receiptHeader(version, receiptOf(record, false)));
      }
      const { response: streamed, copy } = copyForRetries(response, rt.config.retryBodyLimitBytes);
      paid.waitUntil(recordSettled(paid, record, copy));
      return markPaid(streamed, receiptHeader(version, receiptOf(record, false)));
    }
  }
}

/**
 * The x402 `upfront` flow (`settle: "before"`), for origins with side effects: settle, then run the
 * origin once. The buyer is charged even if the origin then fails, and a retry gets that answer.
 */
export async function settleThenServe(paid: Paid, pendingBefore?: LedgerRecord): Promise<Response> {
  const { rt, requirement } = paid;
  const facilitatorRequest = pendingBefore?.settleRequest ?? facilitatorRequestOf(paid);
  // Nothing was verified first: the facilitator it was sent to before, else the first for the network.
  paid.via =
    pendingBefore?.facilitator ?? rt.facilitators.firstFor(paid.payment.network, paid.payment.scheme, paid.version);
  const outcome = await settle(paid, facilitatorRequest, pendingBefore);
  const payer =
    outcome.kind === "settled" && outcome.reply.payer
      ? outcome.reply.payer
      : schemeOf(paid.payment).payer(paid.payment);
  const record = recordOf(paid, payer, requirement, outcome, facilitatorRequest, true);
  if (outcome.kind === "refused") {
    await paid.ledger.release();
    return paid.refuse(fail("settle_failed", "The payment could not be settled.", outcome.reason));
  }
  if (outcome.kind === "pending") return keepPending(paid, record, undefined, outcome);

  // Recorded before the origin runs, so a copy arriving meanwhile finds it settled (and, for a
  // single-use route, waits for the answer being copied).
  const capture = isSingleUse(paid.p.route) && rt.config.retryBodyLimitBytes > 0;
  const written = paid.ledger.settle(rt.nowMs(), record, capture, ledgerExpiresAtMs(record));
  await written;
  rt.log("payment_settled", { route: paid.p.route.id, payer: record.payer, amount: record.amount, tx: record.tx });
  const forwarded = await forwardToOrigin(rt.config, {
    request: paid.request,
    path: paid.p.path,
    query: paid.p.query,
    body: bodyOf(paid.request, paid.p.fields),
    payer,
    routeId: paid.p.route.id,
    timeoutMs: rt.config.originTimeoutMs,
  });
  const response = forwarded.ok ? forwarded.response : errorResponse(forwarded.failure);
  return finishAnswer(paid, record, response, capture, written);
}

/**
 * Records a settlement in the ledger, then the receipt in KV (saying whether the answer was kept).
 * With a `copy` of the answer under way: a small answer is usually copied within QUICK_COPY_MS,
 * and then goes with the record in one write; otherwise the record goes first (retries wait for
 * the answer) and the answer follows. Until the record lands, the claim holds off every copy.
 */
async function recordSettled(
  paid: Paid,
  record: LedgerRecord,
  copy: Promise<StoredAnswer | undefined> | undefined,
): Promise<void> {
  const expiresAtMs = ledgerExpiresAtMs(record);
  let kept = false;
  if (!copy) {
    await paid.ledger.settle(paid.rt.nowMs(), record, false, expiresAtMs);
  } else {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const slow = new Promise<"slow">((resolve) => {
      timer = setTimeout(() => resolve("slow"), QUICK_COPY_MS);
    });
    const quick = await Promise.race([copy, slow]);
    clearTimeout(timer);
    // The answer's last bytes are on their way to the buyer: let them go before this write's work.
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (quick !== "slow") {
      kept = (await paid.ledger.settle(paid.rt.nowMs(), record, false, expiresAtMs, quick)) && quick !== undefined;
    } else {
      const written = await paid.ledger.settle(paid.rt.nowMs(), record, true, expiresAtMs);
      const answer = await copy;
      kept = written && (await paid.ledger.keepAnswer(answer)) && answer !== undefined;
    }
  }
  await writeReceiptNow(paid, receiptOf(record, kept));
}

/**
 * Streams a settled payment's answer to the buyer; with `capture`, keeps a copy in the ledger once
 * the settled record is `written` there (a copy kept before it would be refused). The KV receipt
 * follows, saying whether the answer was kept.
 */
function finishAnswer(
  paid: Paid,
  record: LedgerRecord,
  response: Response,
  capture: boolean,
  written: Promise<boolean>,
): Response {
  const receipt = receiptOf(record, false);
  if (!capture) {
    writeReceipt(paid, receipt);
    return markPaid(response, receiptHeader(paid.version, receipt));
  }
  const { response: streamed, copy } = copyForRetries(response, paid.rt.config.retryBodyLimitBytes);
  paid.waitUntil(
    copy.then(async (answer) => {
      const kept = (await written) && (await paid.ledger.keepAnswer(answer)) && answer !== undefined;
      await writeReceiptNow(paid, receiptOf(record, kept));
    }),
  );
  return markPaid(streamed, receiptHeader(paid.version, receipt));
}

/**
 * Settlement was broadcast but not confirmed within the budget (or its outcome is unknown): keep
 * the answer with the pending payment and tell the buyer to come back with the same payment. An
 * answer too large or too slow to keep is delivered now instead: the transfer has been sent, and
 * leaving the buyer charged without the content would be worse.
 */
async function keepPending(
  paid: Paid,
  record: LedgerRecord,
  response: Response | undefined,
  outcome: Extract<SettleOutcome, { kind: "pending" }>,
): Promise<Response> {
  const { rt } = paid;
  // Only an unknown outcome waits for its late answer: a known transaction is confirmed by the
  // next presentation (which may come at once), and a settle-first payment by settling again
  // (its origin runs then).
  const late = record.upfront || record.tx !== "" ? undefined : outcome.late;
  const notBeforeMs = pendingNotBeforeMs(paid, record);
  const expiresAtMs = ledgerExpiresAtMs(record);
  rt.log("payment_pending", { route: paid.p.route.id, payer: record.payer, tx: record.tx });
  if (!response) {
    if (!(await paid.ledger.pend(record, undefined, notBeforeMs, expiresAtMs))) {
      return errorResponse(fail("ledger_unavailable", "The payment's pending settlement could not be recorded."));
    }
    if (late) paid.waitUntil(settleLate(paid, record, late, false));
    return pendingResponse(paid, record);
  }
  const read = await readForPending(response, rt.config.retryBodyLimitBytes, PENDING_BODY_READ_MS);
  const kept = await paid.ledger.pend(record, read.answer, notBeforeMs, expiresAtMs);
  if (late && kept) paid.waitUntil(settleLate(paid, record, late, false));
  if (read.answer && kept) return pendingResponse(paid, record);
  const content = read.answer ? answerResponse(read.answer) : (read.response as Response);
  return markPaid(content, pendingHeader(paid.version, record));
}

/**
 * When a pending payment may be settled again. An unknown outcome may still be in flight at the
 * facilitator: not before that call has surely ended, late answer included (`settle`).
 */
export function pendingNotBeforeMs(paid: Paid, record: LedgerRecord): number {
  return record.tx === "" ? paid.rt.nowMs() + paid.rt.config.settleLateMs : 0;
}

/**
 * The answer of a /settle call that ran out of time, once it comes (in the background): settled
 * → the payment is recorded as settled, and the buyer's next presentation gets the kept answer;
 * broadcast and not confirmed → its transaction is recorded, for that presentation to confirm;
 * refused → the payment is released, as a refusal in time would have released it (nobody
 * charged), and the buyer's next presentation starts afresh. When that call was itself a second
 * settle (`again`: an earlier one may have broadcast), a refusal means what the scheme says it
 * means (`afterBroadcast`), and an unresolved one leaves the payment pending. No answer at all
 * leaves it pending, to be settled again by the next presentation. Only written after the
 * pending record itself, and before anyone may settle it again (`pendingNotBeforeMs`); the
 * release takes nothing from a request that has leased the payment since (its claim id).
 */
export async function settleLate(
  paid: Paid,
  record: LedgerRecord,
  late: Promise<FacilitatorResult<SettleReply>>,
  again: boolean,
): Promise<void> {
  const result = await late;
  if (!result.ok) return;
  const { reply } = result;
  if (reply.success) {
    await settledLate(paid, { ...record, tx: reply.transaction || record.tx, settleRequest: undefined });
    return;
  }
  // Broadcast, not confirmed: the transaction is known now, and the next presentation may confirm
  // it. Without the transaction the outcome stays unknown: left pending, as it is.
  if (reply.errorReason === SETTLEMENT_PENDING) {
    if (!reply.transaction) return;
    const known = { ...record, tx: reply.transaction };
    await paid.ledger.pend(known, undefined, 0, ledgerExpiresAtMs(known));
    return;
  }
  const reason = reply.errorReason ?? "unknown";
  const meaning = again ? schemeOf(paid.payment).afterBroadcast(reason, reply.transaction ?? "") : "refused";
  if (meaning === "settled") {
    await settledLate(paid, { ...record, settleRequest: undefined });
  } else if (meaning === "refused" && (await paid.ledger.release())) {
    paid.rt.log("payment_released", { route: paid.p.route.id, payer: record.payer, reason, late: true });
  }
}

async function settledLate(paid: Paid, settled: LedgerRecord): Promise<void> {
  await paid.ledger.settle(paid.rt.nowMs(), settled, false, ledgerExpiresAtMs(settled));
  paid.rt.log("payment_confirmed", {
    route: paid.p.route.id,
    payer: settled.payer,
    amount: settled.amount,
    tx: settled.tx,
    late: true,
  });
}

/**
 * Settles with the facilitator that verified the payment (`paid.via`), never with another. A call
 * that runs out of time is not abandoned: its answer is awaited `SETTLE_LATE_MS` longer in the
 * background (`settleLate`), because only that answer says whether the buyer was charged — a
 * facilitator waits for the receipt after our timeout (the official EVM one, by default, for
 * minutes; the Solana one 30 s). The default 25 s ends within the 30 s a Worker's waitUntil may
 * run after its response.
 */
export async function settle(paid: Paid, request: FacilitatorRequest, pending: LedgerRecord | undefined) {
  const { rt, payment } = paid;
  const scheme = schemeOf(payment);
  return settleWithinBudget(
    (req, timeoutMs, lateMs) =>
      rt.facilitators.settle(req, paid.via, payment.network, payment.scheme, timeoutMs, lateMs),
    request,
    {
      budgetMs: rt.config.settleBudgetMs,
      afterBroadcast: (reason, tx) => scheme.afterBroadcast(reason, tx),
      lateMs: rt.config.settleLateMs,
      ...(pending ? { broadcast: { tx: pending.tx } } : {}),
    },
  );
}

/**
 * The facilitator key a payment names, when it names one: a Solana payment's fee payer (only the
 * facilitator holding that key can co-sign it), an upto payment's settling address (only that
 * address may settle it).
 */
function facilitatorKeyOf(requirement: Requirement): string | undefined {
  if (isSvmRequirement(requirement)) return requirement.extra.feePayer;
  if (isUptoRequirement(requirement)) return requirement.extra.facilitatorAddress;
  return undefined;
}
