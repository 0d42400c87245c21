/**
 * The isolate's copy of the pricing table, loaded from KV.
 *
 * - A compiled table is reused for `cacheMs`; after that the next request reads KV again
 *   (an unchanged document is not recompiled). So an edit is served within `cacheMs` plus KV's own
 *   propagation delay (up to ~60 s between locations).
 * - An invalid document or a failing KV read keeps the last valid table (logged, retried after
 *   `cacheMs`). With no valid table ever loaded, `get` returns nothing and the caller fails closed.
 * - Concurrent requests that find the cache stale share one KV read.
 */
import { PRICING_KEY } from "../constants.ts";
import { compilePricingText, type PricingFallbacks, type PricingTable, type Problem } from "./document.ts";
import { contentHash } from "./hash.ts";

export type PricingState =
  | { ok: true; table: PricingTable }
  | { ok: false; why: "missing" | "invalid" | "kv_error"; problems?: Problem[] };

export interface PricingStoreOptions {
  kv: KVNamespace;
  cacheMs: number;
  fallbacks: PricingFallbacks;
  log?: (event: string, detail: Record<string, unknown>) => void;
}

export class PricingStore {
  private table: PricingTable | undefined;
  private text: string | undefined;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private lastFailure: PricingState | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(private readonly options: PricingStoreOptions) {}

  async get(nowMs: number): Promise<PricingState> {
    if (nowMs - this.checkedAt >= this.options.cacheMs || !this.table) {
      this.refreshing ??= this.refresh(nowMs).finally(() => {
        this.refreshing = undefined;
      });
      await this.refreshing;
    }
    if (this.table) return { ok: true, table: this.table };
    return this.lastFailure ?? { ok: false, why: "missing" };
  }

  private async refresh(nowMs: number): Promise<void> {
    const log = this.options.log ?? (() => {});
    let text: string | null;
    try {
      text = await this.options.kv.get(PRICING_KEY, "text");
    } catch (error) {
      log("pricing_kv_error", { message: (error as Error).message, keptVersion: this.table?.version });
      this.lastFailure = { ok: false, why: "kv_error" };
      this.checkedAt = nowMs;
      return;
    }
    this.checkedAt = nowMs;
    if (text === null) {
      log("pricing_missing", { keptVersion: this.table?.version });
      this.lastFailure = { ok: false, why: "missing" };
      return;
    }
    if (text === this.text) {
      this.lastFailure = undefined;
      return;
    }
    const result = compilePricingText(text, await contentHash(text), this.options.fallbacks);
    if (!result.ok) {
      log("pricing_invalid", { problems: result.problems, keptVersion: this.table?.version });
      this.lastFailure = { ok: false, why: "invalid", problems: result.problems };
      return;
    }
    this.table = result.table;
    this.text = text;
    this.lastFailure = undefined;
  }
}
