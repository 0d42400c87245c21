/**
 * The Worker's side of the payment ledger: typed calls to one PaymentLedger object per payment
 * identity, with failures turned into data. A ledger that cannot be reached before the origin is
 * called fails the request closed (`503 ledger_unavailable`: nothing forwarded, nobody charged).
 * Writes after a settlement are retried a few times, because money has moved; if they still fail,
 * the claim's lease runs out and the on-chain nonce remains the guard against a second charge.
 */
import { type Failure, fail } from "../errors.ts";
import type { PaymentLedger } from "./payment-ledger.ts";
import type { ClaimResult, LedgerRecord, LookupResult, StoredAnswer } from "./types.ts";

export type LedgerResult<T> = { ok: true; value: T } | { ok: false; failure: Failure };

/** Attempts for writes made after money moved. */
const WRITE_ATTEMPTS = 3;

export class Ledger {
  constructor(
    private readonly namespace: DurableObjectNamespace<PaymentLedger>,
    private readonly leaseMs: number,
    private readonly log: (event: string, detail: Record<string, unknown>) => void,
  ) {}

  /** One handle per request: the claim id is this request's. */
  forPayment(identity: string): PaymentHandle {
    // The stub's generated RPC types wrap every result in Rpc.* helpers; the object's own method
    // signatures (payment-ledger.ts) are what crosses the wire.
    const stub = this.namespace.getByName(identity) as unknown as LedgerRpc;
    return new PaymentHandle(stub, identity, this.leaseMs, this.log);
  }
}

/** PaymentLedger's methods as the Worker calls them over RPC. */
type LedgerRpc = {
  [M in "claim" | "lookup" | "release" | "settle" | "keepAnswer" | "pend"]: (
    ...args: Parameters<PaymentLedger[M]>
  ) => Promise<ReturnType<PaymentLedger[M]>>;
};

export class PaymentHandle {
  readonly claimId = crypto.randomUUID();

  constructor(
    private readonly stub: LedgerRpc,
    readonly identity: string,
    private readonly leaseMs: number,
    private readonly log: (event: string, detail: Record<string, unknown>) => void,
  ) {}

  claim(nowMs: number): Promise<LedgerResult<ClaimResult>> {
    return this.call("claim", () => this.stub.claim({ claimId: this.claimId, nowMs, leaseMs: this.leaseMs }));
  }

  lookup(nowMs: number): Promise<LedgerResult<LookupResult>> {
    return this.call("lookup", () => this.stub.lookup({ nowMs }));
  }

  /**
   * Nobody was charged. A failure only delays the buyer's retry until the lease ends. True when
   * this request's claim (or pending record) was released, false when it was no longer its own.
   */
  async release(): Promise<boolean> {
    const result = await this.call("release", () => this.stub.release({ claimId: this.claimId }));
    return result.ok && result.value;
  }

  async settle(
    nowMs: number,
    record: LedgerRecord,
    capture: boolean,
    expiresAtMs: number,
    answer?: StoredAnswer,
  ): Promise<boolean> {
    return this.write("settle", () =>
      this.stub.settle({ nowMs, record, capture, expiresAtMs, ...(answer ? { answer } : {}) }),
    );
  }

  async keepAnswer(answer: StoredAnswer | undefined): Promise<boolean> {
    return this.write("keep_answer", () => this.stub.keepAnswer({ answer }));
  }

  /** Must succeed before the buyer is told to come back: returns false when it could not be written. */
  async pend(
    record: LedgerRecord,
    answer: StoredAnswer | undefined,
    notBeforeMs: number,
    expiresAtMs: number,
  ): Promise<boolean> {
    return this.write("pend", () =>
      this.stub.pend({ claimId: this.claimId, record, answer, notBeforeMs, expiresAtMs }),
    );
  }

  private async write(what: string, run: () => Promise<unknown>): Promise<boolean> {
    for (let attempt = 1; attempt <= WRITE_ATTEMPTS; attempt++) {
      const result = await this.call(what, run);
      if (result.ok) return true;
    }
    this.log("ledger_write_lost", { what, identity: this.identity });
    return false;
  }

  private async call<T>(what: string, run: () => Promise<T>): Promise<LedgerResult<T>> {
    try {
      return { ok: true, value: await run() };
    } catch (error) {
      this.log("ledger_error", { what, identity: this.identity, message: (error as Error).message });
      return {
        ok: false,
        failure: fail("ledger_unavailable", "The payment ledger could not be reached; nothing was charged.", what),
      };
    }
  }
}
