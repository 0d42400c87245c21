/**
 * (e) The ledger's own work per fresh payment, and nothing else: the real PaymentLedger class, one
 * new object per request (a payment's identity is new), a claim, then the settled record with a
 * small kept answer — the two calls (c) makes on a fresh single-use payment. In production this
 * work runs in the Durable Object, not in the Worker; under one local `workerd serve` it shares the
 * process, so (c) − (e) is what the paywall Worker itself costs.
 * `?calls=1`: the claim alone — the one ledger round trip on a fresh payment's critical path (the
 * settled record is written after the answer has gone), the latency reference (e1); `?calls=0`:
 * nothing at all (e0), so that (e1) − (e0) is that round trip and nothing else.
 */
import { PaymentLedger } from "../../src/ledger/payment-ledger.ts";
import type { LedgerRecord } from "../../src/ledger/types.ts";

export { PaymentLedger };

interface Env {
  LEDGER: DurableObjectNamespace<PaymentLedger>;
}

const body = new TextEncoder().encode(JSON.stringify({ city: "paris", temperatureC: 12, conditions: "clear" }));

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const calls = new URL(request.url).searchParams.get("calls");
    if (calls === "0") return new Response("nothing");
    const stub = env.LEDGER.getByName(`exact:eip155:84532:0xasset:0xpayer:${crypto.randomUUID()}`) as unknown as {
      claim: PaymentLedger["claim"];
      settle: PaymentLedger["settle"];
    };
    const nowMs = Date.now();
    // A claim alone keeps its lease's alarm: an hour, so that it fires after the bench, not in its
    // next round (where it would wake 200 objects inside some other system's measurement).
    await stub.claim({ claimId: crypto.randomUUID(), nowMs, leaseMs: calls === "1" ? 3_600_000 : 60_000 });
    if (calls === "1") return new Response("claimed");
    const record: LedgerRecord = {
      routeId: "weather",
      request: `GET ${new URL(request.url).pathname}`,
      payer: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
      amount: "1000",
      asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
      network: "eip155:84532",
      tx: `0x${"ab".repeat(32)}`,
      settledAt: Math.floor(nowMs / 1000),
      accessUntil: Math.floor(nowMs / 1000),
      validBefore: String(Math.floor(nowMs / 1000) + 3600),
    };
    await stub.settle({
      nowMs,
      record,
      capture: false,
      expiresAtMs: nowMs + 3600_000,
      answer: { status: 200, statusText: "OK", headers: [["content-type", "application/json"]], body },
    });
    return new Response("recorded");
  },
};
