/**
 * What the payment ledger stores and answers, shared by the Durable Object (payment-ledger.ts) and
 * the Worker's client (client.ts). Plain data only: these cross the RPC boundary.
 */
import type { FacilitatorRequest } from "../facilitators/http.ts";

/** A payment that has settled, or whose settlement was broadcast and not yet confirmed. */
export interface LedgerRecord {
  routeId: string;
  /** `METHOD path?query` of the request the payment was spent on: a retry must be the same request. */
  request: string;
  payer: string;
  amount: string;
  asset: string;
  /** CAIP-2. */
  network: string;
  /** The settlement transaction; "" while a pending settlement's outcome is unknown. */
  tx: string;
  /** Seconds; the time of settlement (for a pending record, of the last attempt). */
  settledAt: number;
  /** Seconds; end of the access window, equal to `settledAt` for single-use routes. */
  accessUntil: number;
  /** The authorization's validBefore (seconds, decimal string): nobody can present it after that. */
  validBefore: string;
  /** Pending only: the exact /settle request to repeat, so the facilitator finds its own broadcast. */
  settleRequest?: FacilitatorRequest;
  /** The facilitator that verified (and settles) the payment: a pending one is confirmed there. */
  facilitator?: string;
  /** The route settles before the origin runs (x402 `upfront`): the origin has not answered yet. */
  upfront?: boolean;
}

/** The origin's answer, kept so the same payment presented again gets exactly it. */
export interface StoredAnswer {
  status: number;
  statusText: string;
  headers: [string, string][];
  body: Uint8Array;
}

export type LedgerState = "claimed" | "pending" | "settled";

export type ClaimResult =
  /** Nobody holds this payment: the caller now does, until the lease ends. */
  | { kind: "claimed" }
  /** Someone is serving this payment (or copying its answer) right now. */
  | { kind: "busy"; retryAfterMs: number; state: LedgerState }
  | { kind: "settled"; record: LedgerRecord; answer: StoredAnswer | undefined }
  /**
   * Settlement was broadcast but not confirmed. With `leased`, the caller holds the lease and
   * should settle the record's `settleRequest` again; without, it must wait `retryAfterMs`.
   */
  | { kind: "pending"; record: LedgerRecord; answer: StoredAnswer | undefined; leased: boolean; retryAfterMs: number };

export type LookupResult = Exclude<ClaimResult, { kind: "claimed" }> | { kind: "none" };
