/**
 * Durable Objects for batch-settlement channels (x402 `batch-settlement`, sessions.ts):
 *
 * - `PaymentChannel`, one per channel id: the channel record the official server scheme keeps
 *   (`Channel` of `@x402/evm/batch-settlement/server`) with a version number. `updateChannel`'s
 *   read-modify-write runs in the Worker (the scheme's callback cannot cross the wire), made atomic
 *   either by compare-and-set on the version (`write`: one round trip, when nobody else is
 *   writing) or, after a conflict, under a lock the object hands out in arrival order (`acquire`
 *   then `commit`), whose lease ends if its holder dies. Two requests on one channel can never
 *   both commit on the same version. One object per channel, not per seller: a channel is the
 *   unit the scheme locks, so buyers never wait on each other, and each object lives near the
 *   buyer who uses it.
 * - `ChannelBook`, one per seller (receiver, network, token): the ids of its channels, for
 *   listing, and the alarm that claims and settles their vouchers without anyone watching
 *   (sessions-claims.ts).
 *
 * Every method is one synchronous SQLite transaction: the input gate makes each atomic.
 */
import { DurableObject } from "cloudflare:workers";
import type { Bindings } from "../config.ts";
import type { ClaimRun } from "./claims.ts";

const CHANNEL_SCHEMA = `
CREATE TABLE IF NOT EXISTS channel (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  version INTEGER NOT NULL,
  record TEXT
)`;

export interface Versioned {
  /** The scheme's `Channel` as JSON, or null when there is none (never created, or deleted). */
  record: string | null;
  version: number;
}

/** A write's answer: when it went in, only the new version (the caller has the record it sent). */
export type Written = { ok: true; version: number } | ({ ok: false } & Versioned);

/** How long a lock holder may take between `acquire` and `commit` before others may go ahead. */
const LOCK_LEASE_MS = 5_000;

export class PaymentChannel extends DurableObject {
  private readonly sql: SqlStorage;
  /** The lock, in memory: if the object restarts, nobody holds it (and versions still guard writes). */
  private holder: { token: string; untilMs: number } | undefined;
  private waiting: (() => void)[] = [];
  /**
   * The row as last read or written. The object is the row's only writer and runs one method
   * at a time, so this copy is the row itself: a voucher's three calls cost one SQL write each
   * instead of a read and a write.
   */
  private row: Versioned | undefined;

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never);
    this.sql = ctx.storage.sql;
    this.sql.exec(CHANNEL_SCHEMA);
  }

  read(): Versioned {
    if (!this.row) {
      const row = this.sql
        .exec<{ version: number; record: string | null }>("SELECT version, record FROM channel")
        .toArray()[0];
      this.row = row ? { record: row.record, version: row.version } : { record: null, version: 0 };
    }
    return this.row;
  }

  /**
   * Writes `record` (null deletes) if the channel is still at `expectedVersion` and nobody holds
   * the lock; else says what it is now.
   */
  write(input: { expectedVersion: number; record: string | null }): Written {
    const now = this.read();
    if (now.version !== input.expectedVersion || this.locked()) return { ok: false, ...now };
    return { ok: true, version: this.store(now.version, input.record).version };
  }

  /** Waits for the lock (in arrival order), then returns the record it guards. */
  async acquire(): Promise<{ token: string } & Versioned> {
    while (this.locked()) {
      const held = this.holder as { untilMs: number };
      // Woken by the holder's commit, or when its lease runs out; either way it leaves the queue.
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          const at = this.waiting.indexOf(wake);
          if (at >= 0) this.waiting.splice(at, 1);
          resolve();
        };
        const timer = setTimeout(wake, Math.max(0, held.untilMs - Date.now()));
        this.waiting.push(wake);
      });
    }
    const token = crypto.randomUUID();
    this.holder = { token, untilMs: Date.now() + LOCK_LEASE_MS };
    return { token, ...this.read() };
  }

  /** Writes `record` (null deletes; undefined leaves it) and releases the lock, if `token` still holds it. */
  commit(input: { token: string; record?: string | null }): { ok: boolean } & Versioned {
    const now = this.read();
    if (this.holder?.token !== input.token || !this.locked()) return { ok: false, ...now };
    const after = input.record === undefined ? now : this.store(now.version, input.record);
    this.holder = undefined;
    this.waiting.shift()?.();
    return { ok: true, ...after };
  }

  private locked(): boolean {
    return this.holder !== undefined && this.holder.untilMs > Date.now();
  }

  private store(version: number, record: string | null): Versioned {
    this.sql.exec(
      "INSERT INTO channel (one, version, record) VALUES (1, ?, ?) ON CONFLICT (one) DO UPDATE SET version = excluded.version, record = excluded.record",
      version + 1,
      record,
    );
    // Only once the write is in: a failed one leaves the copy as the row still is.
    this.row = { record, version: version + 1 };
    return this.row;
  }
}

const BOOK_SCHEMA = `
CREATE TABLE IF NOT EXISTS book (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS member (
  channel_id TEXT PRIMARY KEY,
  added_at_ms INTEGER NOT NULL,
  settled TEXT NOT NULL DEFAULT '0'
)`;

/** What a seller's book needs to claim on its own: who it is and how to reach the facilitators. */
export interface BookSettings {
  receiver: `0x${string}`;
  network: string;
  token: `0x${string}`;
  withdrawDelay: number;
  /** Seconds between claim runs while the book has channels. */
  claimIntervalSeconds: number;
  /** Refund a channel's unclaimed balance once it has been idle this long. */
  refundIdleSeconds: number;
}

export class ChannelBook extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(BOOK_SCHEMA);
  }

  /** Adds a channel (idempotent) and makes sure a claim run is scheduled. */
  async add(input: { channelId: string; nowMs: number; settings: BookSettings }): Promise<void> {
    this.sql.exec(
      "INSERT INTO member (channel_id, added_at_ms) VALUES (?, ?) ON CONFLICT (channel_id) DO NOTHING",
      input.channelId,
      input.nowMs,
    );
    this.sql.exec(
      "INSERT INTO book (key, value) VALUES ('settings', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      JSON.stringify(input.settings),
    );
    if ((await this.ctx.storage.getAlarm()) === null) {
      await this.ctx.storage.setAlarm(input.nowMs + input.settings.claimIntervalSeconds * 1000);
    }
  }

  /** Each channel with the amount the last claim run settled to the seller from it. */
  members(): { channelId: string; settled: string }[] {
    return this.sql
      .exec<{ channel_id: string; settled: string }>("SELECT channel_id, settled FROM member ORDER BY added_at_ms")
      .toArray()
      .map((r) => ({ channelId: r.channel_id, settled: r.settled }));
  }

  list(): string[] {
    return this.sql
      .exec<{ channel_id: string }>("SELECT channel_id FROM member ORDER BY added_at_ms")
      .toArray()
      .map((r) => r.channel_id);
  }

  remove(input: { channelIds: string[] }): void {
    for (const id of input.channelIds) this.sql.exec("DELETE FROM member WHERE channel_id = ?", id);
  }

  /** Claims now (a channel passed the unclaimed threshold): the alarm is brought forward. */
  async claimSoon(input: { nowMs: number }): Promise<void> {
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || alarm > input.nowMs) await this.ctx.storage.setAlarm(input.nowMs);
  }

  settings(): BookSettings | undefined {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM book WHERE key = 'settings'").toArray()[0];
    return row ? (JSON.parse(row.value) as BookSettings) : undefined;
  }

  override async alarm(): Promise<void> {
    await this.claimNow();
  }

  /** Claims, settles and refunds now (the alarm, or the owner asking); the next run is scheduled. */
  async claimNow(): Promise<ClaimRun | undefined> {
    const settings = this.settings();
    if (!settings || this.list().length === 0) return undefined;
    try {
      const { runClaims } = await import("./claims.ts");
      const run = await runClaims(this.env, settings, this.list());
      for (const [channelId, settled] of Object.entries(run.settled)) {
        this.sql.exec("UPDATE member SET settled = ? WHERE channel_id = ?", settled, channelId);
      }
      this.remove({ channelIds: run.gone });
      return run;
    } finally {
      if (this.list().length > 0) await this.ctx.storage.setAlarm(Date.now() + settings.claimIntervalSeconds * 1000);
    }
  }
}
