/**
 * Receipts of settled payments in KV (namespace RECEIPTS), with a small in-isolate memo.
 *
 * Key: `r:<sha256>` over the payment's identity — network, every signed authorization field and
 * the signature — so the same signed payment maps to one key however its JSON is spelled.
 * Value: `{routeId, payer, network, asset, amount, tx, settledAt, expiresAt}` (seconds).
 *
 * What KV can and cannot promise here. KV is eventually consistent (a write may take ~60 s to reach
 * other locations) and has no compare-and-set, so a receipt is a cache, not a lock:
 * - a payment replayed at another location within that window may miss the receipt. It then goes
 *   the full way: /verify fails once the first settle has landed (`nonce already used`), or, if both
 *   race before that, both reach /settle and the token contract lets exactly one through; the loser
 *   gets 402 and the origin's body is withheld. The on-chain EIP-3009 nonce is the real guard
 *   against double spending; receipts make the common replay cheap to refuse and make access
 *   windows possible without a facilitator call.
 * - an access window is only as reliable as the receipt's propagation; a miss costs the buyer a
 *   refusal (fail closed), never the owner free content.
 */
import { z } from "@x402/core/schemas";
import { KV_MIN_TTL_SECONDS, RECEIPT_KEY_PREFIX, RECEIPT_MEMO_ENTRIES } from "./constants.ts";
import { BoundedMap } from "./memo.ts";
import type { Payment } from "./x402/payment.ts";

export interface Receipt {
  routeId: string;
  payer: string;
  network: string;
  asset: string;
  amount: string;
  tx: string;
  settledAt: number;
  /** End of the access window (seconds); equal to `settledAt` for single-use routes. */
  expiresAt: number;
}

const ReceiptSchema = z.object({
  routeId: z.string(),
  payer: z.string(),
  network: z.string(),
  asset: z.string(),
  amount: z.string(),
  tx: z.string(),
  settledAt: z.number(),
  expiresAt: z.number(),
});

/** Single-use receipts need only outlive the authorization; keep them at most this long. */
const MAX_SINGLE_USE_TTL_SECONDS = 7 * 24 * 3600;

export async function receiptKey(payment: Payment): Promise<string> {
  const a = payment.authorization;
  const identity = [payment.network, a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, payment.signature]
    .join("|")
    .toLowerCase();
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(identity));
  return RECEIPT_KEY_PREFIX + [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** How long KV keeps a receipt: the access window, or until the authorization itself expires. */
export function receiptTtlSeconds(receipt: Receipt, validBefore: string, nowSeconds: number): number {
  const untilExpiry = Math.min(Number(BigInt(validBefore) - BigInt(nowSeconds)), MAX_SINGLE_USE_TTL_SECONDS);
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
      // Treated as a miss: the facilitator and the chain still refuse a spent payment.
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

  private remember(key: string, receipt: Receipt, forgetAt: number): void {
    this.memo.set(key, { receipt, forgetAt });
  }
}
