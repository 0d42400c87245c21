/**
 * Receipts of settled payments in KV (namespace RECEIPTS), with a small in-isolate memo: the cache
 * in front of the payment ledger (ledger/), never the authority.
 *
 * Key: `r:<sha256 of the payment identity>` (schemes/exact-evm/identity.ts: network, asset, payer,
 * nonce), so every spelling of one payment finds one receipt.
 * Value: the ledger's record of the settlement (`{routeId, request, payer, network, asset, amount,
 * tx, settledAt, expiresAt, validBefore, answerKept}`, seconds).
 *
 * What KV is for, and what it cannot do. A KV read is local to the location; a Durable Object may
 * be on the other side of the world. So a receipt lets an isolate refuse an old replay, or serve a
 * known access window, without a ledger round trip. But KV is eventually consistent (a write may
 * take ~60 s to reach other locations) and has no compare-and-set, so it never decides anything
 * that must happen once: a miss always asks the ledger (never the facilitator first), and a
 * payment is only ever claimed, settled or released in the ledger.
 */
import { z } from "@x402/core/schemas";
import { KV_MIN_TTL_SECONDS, RECEIPT_KEY_PREFIX, RECEIPT_MEMO_ENTRIES } from "./constants.ts";
import { BoundedMap } from "./memo.ts";

export interface Receipt {
  routeId: string;
  /** `METHOD path?query` the payment was spent on. */
  request: string;
  payer: string;
  network: string;
  asset: string;
  amount: string;
  tx: string;
  settledAt: number;
  /** End of the access window (seconds); equal to `settledAt` for single-use routes. */
  expiresAt: number;
  validBefore: string;
  /** The ledger keeps the origin's answer for safe retries of this (single-use) payment. */
  answerKept: boolean;
}

const ReceiptSchema = z.object({
  routeId: z.string(),
  request: z.string(),
  payer: z.string(),
  network: z.string(),
  asset: z.string(),
  amount: z.string(),
  tx: z.string(),
  settledAt: z.number(),
  expiresAt: z.number(),
  validBefore: z.string(),
  answerKept: z.boolean(),
});

/** Single-use receipts need only outlive the authorization; keep them at most this long. */
const MAX_SINGLE_USE_TTL_SECONDS = 7 * 24 * 3600;

export async function receiptKey(identity: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(identity));
  return RECEIPT_KEY_PREFIX + [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** How long KV keeps a receipt: the access window, or until the authorization itself expires. */
export function receiptTtlSeconds(receipt: Receipt, nowSeconds: number): number {
  const untilExpiry = Math.min(Number(BigInt(receipt.validBefore) - BigInt(nowSeconds)), MAX_SINGLE_USE_TTL_SECONDS);
  return Math.max(KV_MIN_TTL_SECONDS, receipt.expiresAt - nowSeconds, untilExpiry);
}

export class ReceiptStore {
  /** key → receipt and when to forget it, so a hot access window needs no KV read. */
  private readonly memo = new BoundedMap<string, { receipt: Receipt; forgetAt: number }>(RECEIPT_MEMO_ENTRIES);

  constructor(
    private readonly kv: KVNamespace,
    private readonly log: (event: string, detail: Record<string, unknown>) => void = () => {},
  ) {}

  async get(key: string, nowSeconds: number): Promise<Receipt | undefined> {
    const memo = this.memo.get(key);
    if (memo) {
      if (memo.forgetAt > nowSeconds) return memo.receipt;
      this.memo.delete(key);
    }
    let value: unknown;
    try {
      value = await this.kv.get(key, "json");
    } catch (error) {
      // Treated as a miss: the ledger is asked instead.
      this.log("receipt_kv_error", { message: (error as Error).message });
      return undefined;
    }
    if (value === null) return undefined;
    const parsed = ReceiptSchema.safeParse(value);
    if (!parsed.success) {
      this.log("receipt_invalid", { key });
      return undefined;
    }
    // A spent payment stays spent; keeping its receipt in memory a little longer only saves reads.
    this.remember(key, parsed.data, Math.max(parsed.data.expiresAt, nowSeconds + KV_MIN_TTL_SECONDS));
    return parsed.data;
  }

  async put(key: string, receipt: Receipt, ttlSeconds: number, nowSeconds: number): Promise<void> {
    this.remember(key, receipt, nowSeconds + ttlSeconds);
    try {
      await this.kv.put(key, JSON.stringify(receipt), { expirationTtl: ttlSeconds });
    } catch (error) {
      this.log("receipt_kv_error", { message: (error as Error).message });
    }
  }

  /** A settlement learnt from the ledger: remembered in this isolate only (the settling one writes KV). */
  remember(key: string, receipt: Receipt, forgetAt: number): void {
    this.memo.set(key, { receipt, forgetAt });
  }
}
