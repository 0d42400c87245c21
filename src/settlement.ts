/**
 * Settling one payment within a budget, and telling apart the three outcomes that matter:
 * - `settled`: the facilitator confirmed the transfer;
 * - `refused`: the facilitator says it did not and will not settle this payment (nobody charged);
 * - `pending`: the transfer was broadcast and not confirmed in time (`settlement_pending` with its
 *   transaction), or the outcome is unknown (timeout, unreachable, an unusable reply): the buyer
 *   may have been charged, so the payment is neither given away nor released.
 *
 * While the facilitator answers `settlement_pending`, the *same* request is settled again: the
 * official facilitator then waits on the transaction it already sent instead of sending another.
 * An unknown outcome is never retried here: the first call may still be running at the
 * facilitator, and a second one could broadcast a second transaction for the same authorization.
 */
import { SETTLE_RETRY_DELAY_MS } from "./constants.ts";
import {
  type FacilitatorRequest,
  type FacilitatorResult,
  SETTLEMENT_PENDING,
  type SettleReply,
} from "./facilitators/http.ts";

/** One /settle call of the request, with at most `timeoutMs`. */
export type SettleCall = (request: FacilitatorRequest, timeoutMs: number) => Promise<FacilitatorResult<SettleReply>>;

export type SettleOutcome =
  | { kind: "settled"; reply: SettleReply }
  | { kind: "refused"; reason: string }
  /** `tx` is "" when the outcome is unknown. */
  | { kind: "pending"; tx: string; reason: string };

/** The official facilitator's refusal once an authorization's nonce has been used on chain. */
const NONCE_USED = "invalid_exact_evm_nonce_already_used";

/** Below this much budget left, another /settle call is not worth starting. */
const MIN_CALL_MS = 250;

export interface SettleOptions {
  budgetMs: number;
  /**
   * The transaction an earlier attempt broadcast for this same payment, when this is a
   * confirmation of a pending settlement; "" when that attempt's outcome was unknown.
   */
  broadcast?: { tx: string };
  /** Real elapsed time (the budget is wall time, even when a test freezes the protocol clock). */
  elapsedMs?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export async function settleWithinBudget(
  settleOnce: SettleCall,
  request: FacilitatorRequest,
  options: SettleOptions,
): Promise<SettleOutcome> {
  const clock = options.elapsedMs ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const started = clock();
  let tx = options.broadcast?.tx ?? "";
  for (;;) {
    const left = options.budgetMs - (clock() - started);
    const result = await settleOnce(request, Math.max(1, left));
    // A call that never left changed nothing; any other failure may have broadcast the transfer.
    if (!result.ok && result.unsent && tx === "" && !options.broadcast)
      return { kind: "refused", reason: result.failure.reason };
    if (!result.ok) return { kind: "pending", tx, reason: result.failure.reason };
    const reply = result.reply;
    if (reply.success) return { kind: "settled", reply };
    if (reply.errorReason === SETTLEMENT_PENDING && reply.transaction) {
      tx = reply.transaction;
      if (options.budgetMs - (clock() - started) < SETTLE_RETRY_DELAY_MS + MIN_CALL_MS) {
        return { kind: "pending", tx, reason: SETTLEMENT_PENDING };
      }
      await sleep(SETTLE_RETRY_DELAY_MS);
      continue;
    }
    // The nonce is used and this payment's own settlement was broadcast before: that broadcast
    // landed. (Only a payer who cancels or reuses their own nonce could make this wrong; the
    // official clients never do, and the facilitator's receipt check catches a cancel while it
    // still remembers the transaction.)
    if (reply.errorReason === NONCE_USED && (options.broadcast !== undefined || tx !== "")) {
      return {
        kind: "settled",
        reply: { success: true, transaction: tx, network: reply.network, payer: reply.payer },
      };
    }
    return { kind: "refused", reason: reply.errorReason ?? "unknown" };
  }
}
