/**
 * (e) The ledger's own work per fresh payment, and nothing else: the real PaymentLedger class, one
 * new object per request (a payment's identity is new), a claim, then the settled record with a
 * small kept answer — the two calls (c) makes on a fresh single-use payment. In production this
 * work runs in the Durable Object, not in the Worker; under one local `workerd serve` it shares the
 * process, so (c) − (e) is what the paywall Worker itself costs.
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
    const stub = env.LEDGER.getByName(`exact:eip155:84532:0xasset:0xpayer:${crypto.randomUUID()}`) as unknown as {
      claim: PaymentLedger["claim"];
      settle: PaymentLedger["settle"];
    };
    const nowMs = Date.now();
    await stub.claim({ claimId: crypto.randomUUID(), nowMs, leaseMs: 60_000 });
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
