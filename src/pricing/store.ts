/**
 * The isolate's copy of the pricing table, loaded from KV.
 *
 * - A compiled table is reused for `cacheMs`; after that the next request reads KV again
 *   (an unchanged document is not recompiled). So an edit is served within `cacheMs` plus KV's own
 *   propagation delay (up to ~60 s between locations).
 * - An invalid document or a failing KV read keeps the last valid table (logged, retried after
 *   `cacheMs`). With no valid table ever loaded, `get` returns nothing and the caller fails closed.
 * - Concurrent requests that find the cache stale share one KV read.
 * - Safe live edits: a table replaced by a new one is kept as `retired` with the time of the swap.
 *   A buyer who got a 402 just before an edit pays what that 402 said; the paywall accepts it if it
 *   matches the retired table's requirement for the same request and arrives within that
 *   requirement's maxTimeoutSeconds of the swap. After that grace window only the new price counts.
 *   (Grace is counted from when *this isolate* swapped, which is at most PRICING_CACHE_SECONDS plus
 *   KV propagation after the edit.)
 */
import { PRICING_KEY } from "../constants.ts";
import { compilePricingText, type PricingFallbacks, type PricingTable, type Problem } from "./document.ts";
import { contentHash } from "./hash.ts";

export interface RetiredTable {
  table: PricingTable;
  /** When this isolate stopped serving it (ms). */
  retiredAtMs: number;
}

/** Retired tables kept for their grace window; more than this many edits within one window is not worth memory. */
const MAX_RETIRED_TABLES = 4;
/** No requirement waits longer than this (the schema's maxTimeoutSeconds ceiling). */
const MAX_GRACE_MS = 3600 * 1000;

export type PricingState =
  | { ok: true; table: PricingTable; retired: readonly RetiredTable[] }
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
  private retired: RetiredTable[] = [];
  /** `{ok: true, table, retired}` for the current pair, made once per refresh, not per request. */
  private served: PricingState | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(private readonly options: PricingStoreOptions) {}

  /** The state while the cached table is fresh, without waiting; undefined when `get` must read KV. */
  current(nowMs: number): PricingState | undefined {
    return nowMs - this.checkedAt < this.options.cacheMs ? this.served : undefined;
  }

  async get(nowMs: number): Promise<PricingState> {
    const fresh = this.current(nowMs);
    if (fresh) return fresh;
    this.refreshing ??= this.refresh(nowMs).finally(() => {
      this.served = this.table ? { ok: true, table: this.table, retired: this.retired } : undefined;
      this.refreshing = undefined;
    });
    await this.refreshing;
    return this.served ?? this.lastFailure ?? { ok: false, why: "missing" };
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
    // Grace windows are checked per requirement when used; this only lets old tables go.
    if (this.retired.length > 0) this.retired = this.retired.filter((r) => nowMs - r.retiredAtMs <= MAX_GRACE_MS);
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
    if (this.table)
      this.retired = [{ table: this.table, retiredAtMs: nowMs }, ...this.retired].slice(0, MAX_RETIRED_TABLES);
    this.table = result.table;
    this.text = text;
    this.lastFailure = undefined;
  }
}
