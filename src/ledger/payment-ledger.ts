/**
 * PaymentLedger: a SQLite-backed Durable Object, one per payment identity (the name the chain
 * itself enforces, see schemes/exact-evm/identity.ts). It is the single authority on whether a
 * payment is free, being served, settling, or settled — worldwide, because Cloudflare runs exactly
 * one instance of each object. KV receipts sit in front of it as a cache and never decide.
 *
 * Contract:
 * - Every method is one synchronous SQLite transaction (no awaits inside), so the runtime's input
 *   gate makes each atomic: two copies of one payment can never both be "claimed".
 * - Time comes from the caller (`nowMs`), as everywhere in this project, so tests can freeze it;
 *   callers are this Worker's isolates, whose clocks Cloudflare keeps in step.
 * - A claim is a lease: a Worker that dies mid-request leaves a claim that others may take over
 *   once `lease_until_ms` has passed. The lease covers verify + origin + settle budget, so no second
 *   origin call can start while the first may still be running.
 * - Rows delete themselves (alarm) once they can matter no more; see storage-schema.md. Each row
 *   has one alarm, moved with it: lease end while claimed, expiry once settled or pending, none
 *   once released.
 */
import { DurableObject } from "cloudflare:workers";
import { ANSWER_CAPTURE_MS } from "../constants.ts";
import type { ClaimResult, LedgerRecord, LedgerState, LookupResult, StoredAnswer } from "./types.ts";

/**
 * A kept body up to this size lives in the payment row itself; a larger one is split across
 * `answer_chunk` rows of this size (a SQLite row in a Durable Object holds at most 2 MB).
 */
const CHUNK_BYTES = 512 * 1024;

// One table per object at first: most objects hold one small row and never need another.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS payment (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  state TEXT NOT NULL CHECK (state IN ('claimed', 'pending', 'settled')),
  claim_id TEXT,
  lease_until_ms INTEGER NOT NULL DEFAULT 0,
  not_before_ms INTEGER NOT NULL DEFAULT 0,
  record TEXT,
  answer_state TEXT NOT NULL DEFAULT 'none' CHECK (answer_state IN ('none', 'capturing', 'kept')),
  capture_until_ms INTEGER NOT NULL DEFAULT 0,
  answer_meta TEXT,
  answer_body BLOB,
  answer_chunks INTEGER NOT NULL DEFAULT 0,
  expires_at_ms INTEGER NOT NULL
)`;
const CHUNK_SCHEMA = "CREATE TABLE IF NOT EXISTS answer_chunk (seq INTEGER PRIMARY KEY, bytes BLOB NOT NULL)";

interface Row {
  state: LedgerState;
  claim_id: string | null;
  lease_until_ms: number;
  not_before_ms: number;
  record: string | null;
  answer_state: "none" | "capturing" | "kept";
  capture_until_ms: number;
  answer_meta: string | null;
  answer_body: ArrayBuffer | null;
  answer_chunks: number;
  expires_at_ms: number;
  [key: string]: SqlStorageValue;
}

export class PaymentLedger extends DurableObject {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never);
    this.sql = ctx.storage.sql;
    // Synchronous and idempotent: no blockConcurrencyWhile needed.
    this.sql.exec(SCHEMA);
  }

  /** Takes the payment for the caller, or says who has it and in what state. */
  claim(input: { claimId: string; nowMs: number; leaseMs: number }): ClaimResult {
    const { claimId, nowMs, leaseMs } = input;
    const existing = this.row();
    const row = existing && existing.expires_at_ms > nowMs ? existing : undefined;
    if (!row || (row.state === "claimed" && row.lease_until_ms <= nowMs)) {
      if (existing) this.clear();
      const until = nowMs + leaseMs;
      this.sql.exec(
        "INSERT INTO payment (one, state, claim_id, lease_until_ms, expires_at_ms) VALUES (1, 'claimed', ?, ?, ?)",
        claimId,
        until,
        until,
      );
      // The row's one alarm: when it fires, it deletes the row or moves itself to the row's expiry.
      if (!existing) this.schedule(until);
      return { kind: "claimed" };
    }
    const found = this.describe(row, nowMs);
    if (found.kind !== "pending" || found.retryAfterMs > 0) return found;
    // A pending settlement nobody is confirming: the caller confirms it, under a lease.
    this.sql.exec("UPDATE payment SET claim_id = ?, lease_until_ms = ? WHERE one = 1", claimId, nowMs + leaseMs);
    return { ...found, leased: true };
  }

  /** The payment's state, taking nothing. */
  lookup(input: { nowMs: number }): LookupResult {
    const row = this.live(input.nowMs);
    if (!row || (row.state === "claimed" && row.lease_until_ms <= input.nowMs)) return { kind: "none" };
    return this.describe(row, input.nowMs);
  }

  /**
   * Nobody was charged (origin failed, verify or settle refused, or a late answer refused): the
   * payment may be presented again. Only by the request that holds the claim, or that wrote the
   * pending record and has not been followed by a lease since; never once settled.
   */
  release(input: { claimId: string }): boolean {
    const row = this.row();
    if (!row || row.claim_id !== input.claimId || row.state === "settled") return false;
    this.clear();
    // Nothing left to delete: the object need not wake at the lease's end.
    void this.ctx.storage.deleteAlarm();
    return true;
  }

  /**
   * The facilitator settled the payment. Written whoever holds the claim now: money has moved, so
   * this is the truth. With `answer`, the answer is kept at once; with `capture` (and no answer
   * yet), retries wait for keepAnswer up to ANSWER_CAPTURE_MS. A pending record's kept answer stays.
   */
  settle(input: {
    nowMs: number;
    record: LedgerRecord;
    capture: boolean;
    expiresAtMs: number;
    answer?: StoredAnswer;
  }): void {
    const { nowMs, record, capture, expiresAtMs, answer } = input;
    const row = this.row();
    const keptAlready = !answer && row?.answer_state === "kept";
    const state = answer || keptAlready ? "kept" : capture ? "capturing" : "none";
    this.sql.exec(
      `INSERT INTO payment (one, state, record, answer_state, capture_until_ms, expires_at_ms)
       VALUES (1, 'settled', ?, ?, ?, ?)
       ON CONFLICT (one) DO UPDATE SET state = 'settled', claim_id = NULL, lease_until_ms = 0, not_before_ms = 0,
         record = excluded.record, answer_state = excluded.answer_state, capture_until_ms = excluded.capture_until_ms,
         expires_at_ms = excluded.expires_at_ms`,
      JSON.stringify(record),
      state,
      state === "capturing" ? nowMs + ANSWER_CAPTURE_MS : 0,
      expiresAtMs,
    );
    if (answer) this.writeAnswer(answer);
    else if (!keptAlready) this.dropAnswer();
    this.schedule(expiresAtMs);
  }

  /** The answer copied while it streamed to the buyer, or undefined when it could not be kept. */
  keepAnswer(input: { answer: StoredAnswer | undefined }): boolean {
    const row = this.row();
    if (row?.state !== "settled" || row.answer_state !== "capturing") return false;
    if (input.answer) this.writeAnswer(input.answer);
    else this.sql.exec("UPDATE payment SET answer_state = 'none' WHERE one = 1");
    return true;
  }

  /**
   * Settlement was broadcast (or its outcome is unknown) and is not confirmed within the budget:
   * keep the answer, release the lease, and let the next presentation confirm it, not before
   * `notBeforeMs`. Without an answer, an answer kept earlier stays. The writer's claim id stays
   * with the row (a later lease replaces it), so a late refusal of its own call can release it.
   */
  pend(input: {
    claimId: string;
    record: LedgerRecord;
    answer: StoredAnswer | undefined;
    notBeforeMs: number;
    expiresAtMs: number;
  }): void {
    const { claimId, record, answer, notBeforeMs, expiresAtMs } = input;
    const row = this.row();
    const keepOld = !answer && row?.answer_state === "kept";
    this.sql.exec(
      `INSERT INTO payment (one, state, claim_id, not_before_ms, record, answer_state, expires_at_ms)
       VALUES (1, 'pending', ?, ?, ?, ?, ?)
       ON CONFLICT (one) DO UPDATE SET state = 'pending', claim_id = excluded.claim_id, lease_until_ms = 0,
         not_before_ms = excluded.not_before_ms, record = excluded.record, answer_state = excluded.answer_state,
         capture_until_ms = 0, expires_at_ms = excluded.expires_at_ms`,
      claimId,
      notBeforeMs,
      JSON.stringify(record),
      answer || keepOld ? "kept" : "none",
      expiresAtMs,
    );
    if (answer) this.writeAnswer(answer);
    else if (!keepOld) this.dropAnswer();
    this.schedule(expiresAtMs);
  }

  /** Deletes the row once it has expired (by this object's own clock), else waits for that. */
  override async alarm(): Promise<void> {
    const row = this.row();
    if (!row) return;
    if (row.expires_at_ms <= Date.now()) this.clear();
    else await this.ctx.storage.setAlarm(row.expires_at_ms);
  }

  private describe(row: Row, nowMs: number): Exclude<ClaimResult, { kind: "claimed" }> {
    const record = row.record ? (JSON.parse(row.record) as LedgerRecord) : undefined;
    if (row.state === "claimed" || !record) {
      return { kind: "busy", retryAfterMs: Math.max(1, row.lease_until_ms - nowMs), state: row.state };
    }
    if (row.state === "pending") {
      const waitMs = Math.max(row.lease_until_ms, row.not_before_ms) - nowMs;
      return {
        kind: "pending",
        record,
        answer: this.readAnswer(row),
        leased: false,
        retryAfterMs: Math.max(0, waitMs),
      };
    }
    if (row.answer_state === "capturing" && row.capture_until_ms > nowMs) {
      return { kind: "busy", retryAfterMs: row.capture_until_ms - nowMs, state: "settled" };
    }
    return { kind: "settled", record, answer: this.readAnswer(row) };
  }

  private readAnswer(row: Row): StoredAnswer | undefined {
    if (row.answer_state !== "kept" || !row.answer_meta) return undefined;
    const meta = JSON.parse(row.answer_meta) as Omit<StoredAnswer, "body"> & { size: number };
    let body: Uint8Array;
    if (row.answer_chunks === 0) {
      body = new Uint8Array(row.answer_body ?? new ArrayBuffer(0));
    } else {
      body = new Uint8Array(meta.size);
      let at = 0;
      for (const chunk of this.sql.exec<{ bytes: ArrayBuffer }>("SELECT bytes FROM answer_chunk ORDER BY seq")) {
        body.set(new Uint8Array(chunk.bytes), at);
        at += chunk.bytes.byteLength;
      }
    }
    return { status: meta.status, statusText: meta.statusText, headers: meta.headers, body };
  }

  private writeAnswer(answer: StoredAnswer): void {
    const { body } = answer;
    const meta = JSON.stringify({
      status: answer.status,
      statusText: answer.statusText,
      headers: answer.headers,
      size: body.byteLength,
    });
    const row = this.row();
    if (row && row.answer_chunks > 0) this.sql.exec("DELETE FROM answer_chunk");
    if (body.byteLength <= CHUNK_BYTES) {
      // slice() copies into a buffer of exactly the body's size, which SQLite stores as a BLOB.
      this.sql.exec(
        "UPDATE payment SET answer_state = 'kept', answer_meta = ?, answer_body = ?, answer_chunks = 0 WHERE one = 1",
        meta,
        body.slice().buffer,
      );
      return;
    }
    this.sql.exec(CHUNK_SCHEMA);
    let chunks = 0;
    for (let at = 0; at < body.byteLength; at += CHUNK_BYTES, chunks++) {
      this.sql.exec(
        "INSERT INTO answer_chunk (seq, bytes) VALUES (?, ?)",
        chunks,
        body.slice(at, at + CHUNK_BYTES).buffer,
      );
    }
    this.sql.exec(
      "UPDATE payment SET answer_state = 'kept', answer_meta = ?, answer_body = NULL, answer_chunks = ? WHERE one = 1",
      meta,
      chunks,
    );
  }

  private dropAnswer(): void {
    const row = this.row();
    if (row && row.answer_chunks > 0) this.sql.exec("DELETE FROM answer_chunk");
    this.sql.exec("UPDATE payment SET answer_meta = NULL, answer_body = NULL, answer_chunks = 0 WHERE one = 1");
  }

  /** The row, unless it has outlived its expiry (the alarm may not have run yet). */
  private live(nowMs: number): Row | undefined {
    const row = this.row();
    return row && row.expires_at_ms > nowMs ? row : undefined;
  }

  private row(): Row | undefined {
    return this.sql.exec<Row>("SELECT * FROM payment WHERE one = 1").toArray()[0];
  }

  private clear(): void {
    const row = this.row();
    if (row && row.answer_chunks > 0) this.sql.exec("DELETE FROM answer_chunk");
    this.sql.exec("DELETE FROM payment");
  }

  /**
   * The row's one alarm, moved to `atMs`: a claim's at its lease's end (to delete an abandoned
   * claim), a settled or pending row's at its expiry, so that it does not wake once more at the
   * lease's end only to move on (each wake is an invocation of its own).
   */
  private schedule(atMs: number): void {
    // Not awaited: the write is part of this method's transaction (output gate), like the SQL.
    void this.ctx.storage.setAlarm(atMs);
  }
}
