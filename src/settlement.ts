/**
 * Settling one payment within a budget, and telling apart the three outcomes that matter:
 * - `settled`: the facilitator confirmed the transfer;
 * - `refused`: the facilitator says it did not and will not settle this payment (nobody charged);
 * - `pending`: the transfer was broadcast and not confirmed in time (`settlement_pending` with its
 *   transaction), or the outcome is unknown (timeout, unreachable, an unusable reply, a
 *   `settlement_pending` without its transaction): the buyer may have been charged, so the
 *   payment is neither given away nor released.
 *
 * While the facilitator answers `settlement_pending`, the *same* request is settled again: the
 * official facilitator then waits on the transaction it already sent instead of sending another.
 * An unknown outcome is never retried here: the first call may still be running at the
 * facilitator, and a second one could broadcast a second transaction for the same authorization;
 * a call that ran out of time hands back its answer still to come (`late`).
 *
 * Once an earlier attempt may have broadcast, a refusal means what the payment's scheme says it
 * means (`afterBroadcast`): proof that attempt landed (exact's nonce used), nobody charged, or
 * unknown (upto, and Solana short of a failed transaction: kept pending).
 */
import { SETTLE_RETRY_DELAY_MS } from "./constants.ts";
import {
  type FacilitatorRequest,
  type FacilitatorResult,
  SETTLEMENT_PENDING,
  type SettleReply,
} from "./facilitators/http.ts";
import type { AfterBroadcast } from "./schemes/scheme.ts";

/** One /settle call of the request, with at most `timeoutMs`. */
export type SettleCall = (
  request: FacilitatorRequest,
  timeoutMs: number,
  lateMs: number,
) => Promise<FacilitatorResult<SettleReply>>;

export type SettleOutcome =
  | { kind: "settled"; reply: SettleReply }
  | { kind: "refused"; reason: string }
  /**
   * `tx` is "" when the outcome is unknown; `late`, then, is the timed-out call's answer still
   * to come, which says whether it settled.
   */
  | { kind: "pending"; tx: string; reason: string; late?: Promise<FacilitatorResult<SettleReply>> };

/** Below this much budget left, another /settle call is not worth starting. */
const MIN_CALL_MS = 250;

export interface SettleOptions {
  budgetMs: number;
  /**
   * The transaction an earlier attempt broadcast for this same payment, when this is a
   * confirmation of a pending settlement; "" when that attempt's outcome was unknown.
   */
  broadcast?: { tx: string };
  /** What a refusal means after a possible broadcast (the payment's scheme; schemes/scheme.ts). */
  afterBroadcast?: (reason: string, tx: string) => AfterBroadcast;
  /** Past a call's timeout, how much longer its answer is awaited (as the pending outcome's `late`). */
  lateMs?: number;
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
    const result = await settleOnce(request, Math.max(1, left), options.lateMs ?? 0);
    // A call that never left changed nothing; any other failure may have broadcast the transfer.
    if (!result.ok && result.unsent && tx === "" && !options.broadcast)
      return { kind: "refused", reason: result.failure.reason };
    if (!result.ok) {
      return { kind: "pending", tx, reason: result.failure.reason, ...(result.late ? { late: result.late } : {}) };
    }
    const reply = result.reply;
    if (reply.success) return { kind: "settled", reply };
    if (reply.errorReason === SETTLEMENT_PENDING) {
      // "Broadcast, not confirmed" without its transaction: it may land, and there is nothing to
      // confirm it by. An unknown outcome, never a refusal; not settled again here.
      if (!reply.transaction) return { kind: "pending", tx, reason: SETTLEMENT_PENDING };
      tx = reply.transaction;
      if (options.budgetMs - (clock() - started) < SETTLE_RETRY_DELAY_MS + MIN_CALL_MS) {
        return { kind: "pending", tx, reason: SETTLEMENT_PENDING };
      }
      await sleep(SETTLE_RETRY_DELAY_MS);
      continue;
    }
    // An earlier attempt may have broadcast: what the refusal means is the scheme's to say.
    const reason = reply.errorReason ?? "unknown";
    if (options.broadcast !== undefined || tx !== "") {
      const meaning = options.afterBroadcast?.(reason, reply.transaction ?? "") ?? "refused";
      if (meaning === "settled") {
        return {
          kind: "settled",
          reply: { success: true, transaction: tx, network: reply.network, payer: reply.payer },
        };
      }
      if (meaning === "unresolved") return { kind: "pending", tx, reason };
    }
    return { kind: "refused", reason };
  }
}
