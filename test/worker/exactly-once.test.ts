/**
 * Exactly once, against the real payment ledger (Durable Objects in workerd), real KV, the
 * loopback origin and facilitator stub: however a payment is replayed — many copies at once, after
 * a dropped connection, while its settlement is pending, after a Worker died holding it — the
 * origin runs once, the buyer is charged once, and a charged buyer gets the answer.
 */

import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { toHex } from "viem";
import { beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import { eventually } from "../support/poll.ts";
import {
  BASE_SEPOLIA_USDC,
  type Behaviour,
  call,
  decodeBase64Json,
  encode,
  facilitatorLog,
  late,
  originLog,
  PENDING_TX,
  PRICING,
  requirement,
  resetServers,
  scriptFacilitator,
  setPricing,
  settlementPending,
  settlementSucceeds,
  signAuthorization,
  testCtx,
  testEnv,
  v2Header,
} from "./helpers.ts";

const ROUTES = [
  ...PRICING.routes,
  { id: "slow", match: "/slow", price: "$0.001" },
  { id: "big", match: "/big", price: "$0.001" },
  { id: "cookie", match: "/cookie", price: "$0.001" },
  { id: "never", match: "/never", price: "$0.001" },
  { id: "act", match: "POST /act/*", price: "$0.001", settle: "before" },
];

beforeEach(async () => {
  await resetServers();
  await setPricing({ ...PRICING, routes: ROUTES });
});

/** The ledger's name for a payment, written out as storage-schema.md defines it (not imported from src). */
const identityOf = (authorization: { from: string; nonce: string }) =>
  `exact:eip155:84532:${BASE_SEPOLIA_USDC}:${authorization.from}:${authorization.nonce}`.toLowerCase();

const ledgerStub = (identity: string) =>
  (testEnv as unknown as { LEDGER: DurableObjectNamespace }).LEDGER.getByName(identity) as unknown as {
    claim(input: { claimId: string; nowMs: number; leaseMs: number }): Promise<{ kind: string }>;
    lookup(input: { nowMs: number }): Promise<{ kind: string }>;
  };

const settles = async () => (await facilitatorLog()).filter((c) => c.url === "/settle").length;
const verifies = async () => (await facilitatorLog()).filter((c) => c.url === "/verify").length;

describe("one payment, many copies at once", () => {
  it("runs the origin once for 24 concurrent copies; the others get 409 payment_in_progress at once", async () => {
    const header = await v2Header();
    const copies = await Promise.all(
      Array.from({ length: 24 }, () => call("/slow?ms=400", { headers: { "PAYMENT-SIGNATURE": header } })),
    );
    const statuses = copies.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(23);
    for (const refused of copies.filter((r) => r.status === 409)) {
      expect(await refused.json()).toMatchObject({ error: "payment_in_progress" });
      expect(refused.headers.get("retry-after")).toBe("1");
      expect(refused.headers.get("cache-control")).toBe("no-store");
    }
    const served = copies.find((r) => r.status === 200) as Response;
    const body = await served.text();
    expect((await originLog()).length).toBe(1);
    expect(await verifies()).toBe(1);
    expect(await settles()).toBe(1);

    // Presented again afterwards: the same answer, still one origin run and one settlement.
    const again = await call("/slow?ms=400", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(again.status).toBe(200);
    expect(await again.text()).toBe(body);
    expect((await originLog()).length).toBe(1);
    expect(await settles()).toBe(1);
  });

  it("treats a v1 and a v2 spelling of one authorization as one payment", async () => {
    const signed = await signAuthorization();
    const v2 = encode({ x402Version: 2, accepted: requirement(), payload: signed });
    const v1 = encode({ x402Version: 1, scheme: "exact", network: "base-sepolia", payload: signed });
    const [a, b] = await Promise.all([
      call("/slow?ms=300", { headers: { "PAYMENT-SIGNATURE": v2 } }),
      call("/slow?ms=300", { headers: { "X-PAYMENT": v1 } }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    await Promise.all([a.text(), b.text()]);
    expect((await originLog()).length).toBe(1);
    expect(await settles()).toBe(1);
  });

  it("treats two signatures over one nonce as one payment", async () => {
    const nonce = toHex(crypto.getRandomValues(new Uint8Array(32)));
    const now = Math.floor(Date.now() / 1000);
    const first = encode({
      x402Version: 2,
      accepted: requirement(),
      payload: await signAuthorization({ nonce, validBefore: now + 3600 }),
    });
    const second = encode({
      x402Version: 2,
      accepted: requirement(),
      payload: await signAuthorization({ nonce, validBefore: now + 1800 }),
    });
    const paid = await call("/api/weather/paris", { headers: { "PAYMENT-SIGNATURE": first } });
    expect(paid.status).toBe(200);
    const body = await paid.text();
    const other = await call("/api/weather/paris", { headers: { "PAYMENT-SIGNATURE": second } });
    expect(other.status).toBe(200);
    expect(await other.text()).toBe(body);
    expect((await originLog()).length).toBe(1);
    expect(await settles()).toBe(1);
  });
});

describe("safe paid retries", () => {
  it("gives a buyer whose connection dropped the same body and PAYMENT-RESPONSE, with no second settle", async () => {
    const header = await v2Header();
    const first = await call("/api/weather/oslo", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(first.status).toBe(200);
    const settlement = first.headers.get("PAYMENT-RESPONSE");
    await first.body?.cancel(); // the connection drops before the body arrives
    const retry = await eventually("the kept answer", async () => {
      const r = await call("/api/weather/oslo", { headers: { "PAYMENT-SIGNATURE": header } });
      return r.status === 409 ? void (await r.body?.cancel()) : r;
    });
    expect(retry.status).toBe(200);
    expect(await retry.json()).toMatchObject({ path: "/base/api/weather/oslo", secret: "paid content" });
    expect(retry.headers.get("PAYMENT-RESPONSE")).toBe(settlement);
    expect((await originLog()).length).toBe(1);
    expect(await settles()).toBe(1);
  });

  it("answers a v1 retry of a v2 payment with X-PAYMENT-RESPONSE", async () => {
    const signed = await signAuthorization();
    const paid = await call("/api/weather/rome", {
      headers: { "PAYMENT-SIGNATURE": encode({ x402Version: 2, accepted: requirement(), payload: signed }) },
    });
    const body = await paid.text();
    const retry = await call("/api/weather/rome", {
      headers: { "X-PAYMENT": encode({ x402Version: 1, scheme: "exact", network: "base-sepolia", payload: signed }) },
    });
    expect(retry.status).toBe(200);
    expect(await retry.text()).toBe(body);
    expect(decodeBase64Json(retry.headers.get("X-PAYMENT-RESPONSE"))).toMatchObject({
      success: true,
      network: "base-sepolia",
    });
  });

  it("does not keep Set-Cookie in a kept answer", async () => {
    const header = await v2Header();
    const first = await call("/cookie", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(first.headers.getSetCookie()).toEqual(["session=secret; Path=/"]);
    const body = await first.text();
    const retry = await call("/cookie", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(retry.status).toBe(200);
    expect(await retry.text()).toBe(body);
    expect(retry.headers.getSetCookie()).toEqual([]);
    expect(retry.headers.get("x-origin-own")).toBe("kept");
  });

  it("does not keep an answer over RETRY_BODY_LIMIT_BYTES: its retry is refused, as before", async () => {
    const app = createApp();
    const small = { ...env, RETRY_BODY_LIMIT_BYTES: "1000" } as never;
    const get = (url: string, header: string) =>
      app.fetch(
        new Request(`https://paywall.example${url}`, { headers: { "PAYMENT-SIGNATURE": header } }),
        small,
        testCtx,
      );
    const header = await v2Header();
    const first = await get("/big?bytes=5000", header);
    expect(first.status).toBe(200);
    expect((await first.text()).length).toBe(5000);
    const retry = await eventually("the answer given up", async () => {
      const r = await get("/big?bytes=5000", header);
      return r.status === 409 ? void (await r.body?.cancel()) : r;
    });
    expect(retry.status).toBe(402);
    expect(await retry.json()).toMatchObject({ error: "payment_already_used" });

    const fits = await v2Header();
    expect((await (await get("/big?bytes=900", fits)).text()).length).toBe(900);
    const kept = await eventually("the kept answer", async () => {
      const r = await get("/big?bytes=900", fits);
      return r.status === 409 ? void (await r.body?.cancel()) : r;
    });
    expect(kept.status).toBe(200);
    expect((await kept.text()).length).toBe(900);
    expect((await originLog()).length).toBe(2);
  });
});

describe("nobody charged: the claim is released", () => {
  it("releases on origin >= 400, and the same payment then pays for a good answer", async () => {
    const header = await v2Header();
    const failed = await call("/status/500", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(failed.status).toBe(500);
    await failed.text();
    const ok = await call("/status/201", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(ok.status).toBe(201);
    expect(await settles()).toBe(1);
  });

  it("releases when verify refuses, and when settle refuses", async () => {
    const header = await v2Header();
    await scriptFacilitator({ verify: { kind: "answer", status: 400, body: { isValid: false, invalidReason: "x" } } });
    expect((await call("/api/weather/paris", { headers: { "PAYMENT-SIGNATURE": header } })).status).toBe(402);
    await scriptFacilitator({
      settle: {
        kind: "answer",
        status: 400,
        body: { success: false, errorReason: "y", transaction: "", network: "eip155:84532" },
      },
    });
    const refused = await call("/api/weather/paris", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(refused.status).toBe(402);
    expect(await refused.json()).toMatchObject({ error: "settle_failed", detail: "y" });
    await scriptFacilitator({});
    const paid = await call("/api/weather/paris", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(paid.status).toBe(200);
  });

  it("answers 504 origin_timeout for an origin that never answers, charges nothing, and releases", async () => {
    const app = createApp();
    const impatient = { ...env, ORIGIN_TIMEOUT_MS: "300" } as never;
    const header = await v2Header();
    const res = await app.fetch(
      new Request("https://paywall.example/never", { headers: { "PAYMENT-SIGNATURE": header } }),
      impatient,
      testCtx,
    );
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ error: "origin_timeout" });
    expect(await settles()).toBe(0);
    expect(
      (await ledgerStub(identityOf(decodeBase64Json(header).payload.authorization)).lookup({ nowMs: Date.now() })).kind,
    ).toBe("none");
  });
});

describe("a claim outlives no request (frozen clock)", () => {
  // FACILITATOR_VERIFY_TIMEOUT_MS (1000 here) + ORIGIN_TIMEOUT_MS (30000 by default) +
  // SETTLE_BUDGET_MS (1500 here) + the 10 s margin, as the README's configuration section says.
  const LEASE_MS = 1000 + 30_000 + 1500 + 10_000;

  it("refuses copies while a request waits on the origin, up to the last millisecond of its lease", async () => {
    let now = Date.now();
    const app = createApp({ nowMs: () => now });
    const get = (header: string) =>
      app.fetch(
        new Request("https://paywall.example/slow?ms=1500", { headers: { "PAYMENT-SIGNATURE": header } }),
        env,
        testCtx,
      );
    const header = await v2Header();
    const first = get(header); // verified, forwarded, the origin has not answered yet
    await eventually("the origin to have the request", async () =>
      (await originLog()).length === 1 ? true : undefined,
    );
    now += LEASE_MS - 1;
    const copy = await get(header);
    expect(copy.status).toBe(409);
    expect(await copy.json()).toMatchObject({ error: "payment_in_progress" });
    const served = await first;
    expect(served.status).toBe(200);
    const body = await served.text();
    const retry = await eventually("the kept answer", async () => {
      const r = await get(header);
      return r.status === 409 ? void (await r.body?.cancel()) : r;
    });
    expect(retry.status).toBe(200);
    expect(await retry.text()).toBe(body);
    expect((await originLog()).length).toBe(1);
  });

  it("lets the payment be presented again once a dead Worker's lease has run out", async () => {
    let now = Date.now();
    const app = createApp({ nowMs: () => now });
    const signed = await signAuthorization();
    const header = encode({ x402Version: 2, accepted: requirement(), payload: signed });
    // A Worker claimed the payment and died before the origin answered.
    const dead = await ledgerStub(identityOf(signed.authorization)).claim({
      claimId: "dead",
      nowMs: now,
      leaseMs: LEASE_MS,
    });
    expect(dead.kind).toBe("claimed");
    const get = () =>
      app.fetch(
        new Request("https://paywall.example/api/weather/paris", { headers: { "PAYMENT-SIGNATURE": header } }),
        env,
        testCtx,
      );
    expect((await get()).status).toBe(409);
    now += LEASE_MS - 1;
    expect((await get()).status).toBe(409);
    expect(await originLog()).toEqual([]);
    now += 1;
    const res = await get();
    expect(res.status).toBe(200);
    await res.text();
    expect((await originLog()).length).toBe(1);
  });
});

describe("late settlements are not failures", () => {
  it("retries settlement_pending, then answers as usual when it confirms within the budget", async () => {
    await scriptFacilitator({ settle: [settlementPending(), settlementPending(500), settlementSucceeds()] });
    const res = await call("/api/weather/paris", { headers: { "PAYMENT-SIGNATURE": await v2Header() } });
    expect(res.status).toBe(200);
    expect(decodeBase64Json(res.headers.get("PAYMENT-RESPONSE"))).toMatchObject({
      success: true,
      transaction: PENDING_TX,
    });
    const calls = (await facilitatorLog()).filter((c) => c.url === "/settle").map((c) => c.body);
    expect(calls).toHaveLength(3);
    expect(new Set(calls).size).toBe(1); // the same request each time
  });

  it("keeps a still-pending payment's answer; the same payment gets it once confirmed", async () => {
    await scriptFacilitator({ settle: settlementPending() });
    const header = await v2Header();
    const pending = await call("/api/weather/lima", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(pending.status).toBe(409);
    expect(pending.headers.get("retry-after")).toBe("5");
    const text = await pending.text();
    expect(text).not.toContain("paid content");
    expect(JSON.parse(text)).toMatchObject({ error: "settlement_pending", detail: PENDING_TX });
    expect(decodeBase64Json(pending.headers.get("PAYMENT-RESPONSE"))).toMatchObject({
      success: false,
      errorReason: "settlement_pending",
      transaction: PENDING_TX,
    });
    const firstSettle = (await facilitatorLog()).find((c) => c.url === "/settle")?.body;

    // Still pending when presented again: the same answer, nothing run twice.
    const stillPending = await call("/api/weather/lima", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(stillPending.status).toBe(409);
    await stillPending.text();

    await scriptFacilitator({ settle: settlementSucceeds() });
    const confirmed = await call("/api/weather/lima", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(confirmed.status).toBe(200);
    expect(await confirmed.json()).toMatchObject({ path: "/base/api/weather/lima", secret: "paid content" });
    expect(decodeBase64Json(confirmed.headers.get("PAYMENT-RESPONSE"))).toMatchObject({
      success: true,
      transaction: PENDING_TX,
    });
    expect((await originLog()).length).toBe(1);
    expect(await verifies()).toBe(1);
    // Every /settle repeated the first request exactly, so the facilitator finds its own broadcast.
    const settleBodies = (await facilitatorLog()).filter((c) => c.url === "/settle").map((c) => c.body);
    expect(new Set(settleBodies)).toEqual(new Set([firstSettle]));

    // And from then on it is simply settled.
    const later = await call("/api/weather/lima", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(later.status).toBe(200);
    await later.text();
    expect((await originLog()).length).toBe(1);
  });

  it("treats a nonce found used while confirming its own broadcast as settled by it", async () => {
    await scriptFacilitator({ settle: settlementPending() });
    const header = await v2Header();
    expect((await call("/api/weather/quito", { headers: { "PAYMENT-SIGNATURE": header } })).status).toBe(409);
    await scriptFacilitator({
      settle: {
        kind: "answer",
        status: 400,
        body: {
          success: false,
          errorReason: "invalid_exact_evm_nonce_already_used",
          transaction: "",
          network: "eip155:84532",
        },
      },
    });
    const res = await call("/api/weather/quito", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ path: "/base/api/weather/quito" });
    expect(decodeBase64Json(res.headers.get("PAYMENT-RESPONSE")).transaction).toBe(PENDING_TX);
  });

  it("keeps waiting for a /settle that ran out of time: its late answer settles the payment, with no second /settle", async () => {
    // FACILITATOR_SETTLE_TIMEOUT_MS is 1000 here: the answer comes after our call gave up.
    await scriptFacilitator({ settle: late(settlementSucceeds(), 1800) });
    const header = await v2Header();
    const pending = await call("/api/weather/oslo", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(pending.status).toBe(409);
    expect(await pending.json()).toMatchObject({ error: "settlement_pending" });
    // Before the late answer: still pending, and not settled a second time (it may be landing).
    const early = await call("/api/weather/oslo", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(early.status).toBe(409);
    await early.text();
    const delivered = await eventually("the late settlement", async () => {
      const again = await call("/api/weather/oslo", { headers: { "PAYMENT-SIGNATURE": header } });
      if (again.status === 200) return again;
      expect(again.status).toBe(409);
      await again.text();
      return undefined;
    });
    expect(await delivered.json()).toMatchObject({ path: "/base/api/weather/oslo", secret: "paid content" });
    expect(decodeBase64Json(delivered.headers.get("PAYMENT-RESPONSE"))).toMatchObject({
      success: true,
      transaction: PENDING_TX,
    });
    expect((await facilitatorLog()).filter((c) => c.url === "/settle")).toHaveLength(1);
    expect((await originLog()).length).toBe(1);
  });

  it("awaits the late answer SETTLE_LATE_MS past the timeout, not just as long as the timeout again", async () => {
    // Timeout 1000 ms, late wait 3000 ms: an answer at 2.6 s is still taken, and nothing settles twice.
    const app = createApp();
    const lateEnv = { ...env, SETTLE_LATE_MS: "3000" } as never;
    const send = (header: string) =>
      app.fetch(
        new Request("https://paywall.example/api/weather/lima", { headers: { "PAYMENT-SIGNATURE": header } }),
        lateEnv,
        testCtx,
      );
    await scriptFacilitator({ settle: late(settlementSucceeds(), 2600) });
    const header = await v2Header();
    const pending = await send(header);
    expect(pending.status).toBe(409);
    await pending.text();
    const delivered = await eventually(
      "the late settlement",
      async () => {
        const again = await send(header);
        if (again.status === 200) return again;
        expect(again.status).toBe(409);
        await again.text();
        return undefined;
      },
      { timeoutMs: 8000 },
    );
    expect(await delivered.json()).toMatchObject({ path: "/base/api/weather/lima", secret: "paid content" });
    expect((await facilitatorLog()).filter((c) => c.url === "/settle")).toHaveLength(1);
    expect((await originLog()).length).toBe(1);
  });

  it("learns the transaction from a late settlement_pending, and confirms it when the payment comes back", async () => {
    await scriptFacilitator({
      settle: [late(settlementPending(), 1300), settlementSucceeds()],
    });
    const header = await v2Header();
    const pending = await call("/api/weather/riga", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(pending.status).toBe(409);
    expect(((await pending.json()) as { detail?: string }).detail).toBeUndefined(); // not known yet
    const delivered = await eventually("the confirmed settlement", async () => {
      const again = await call("/api/weather/riga", { headers: { "PAYMENT-SIGNATURE": header } });
      if (again.status === 200) return again;
      await again.text();
      return undefined;
    });
    expect(decodeBase64Json(delivered.headers.get("PAYMENT-RESPONSE")).transaction).toBe(PENDING_TX);
    await delivered.text();
    // The confirmation repeated the first request exactly.
    const bodies = (await facilitatorLog()).filter((c) => c.url === "/settle").map((c) => c.body);
    expect(bodies).toHaveLength(2);
    expect(new Set(bodies).size).toBe(1);
    expect((await originLog()).length).toBe(1);
  });

  it("releases a pending payment whose transaction failed: nobody charged, the payment usable again", async () => {
    await scriptFacilitator({ settle: settlementPending() });
    const header = await v2Header();
    expect((await call("/api/weather/bern", { headers: { "PAYMENT-SIGNATURE": header } })).status).toBe(409);
    await scriptFacilitator({
      settle: {
        kind: "answer",
        status: 200,
        body: { success: false, errorReason: "transaction_failed", transaction: PENDING_TX, network: "eip155:84532" },
      },
    });
    const failed = await call("/api/weather/bern", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(failed.status).toBe(402);
    expect(await failed.json()).toMatchObject({ error: "settle_failed", detail: "transaction_failed" });
    await scriptFacilitator({});
    const fresh = await call("/api/weather/bern", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(fresh.status).toBe(200);
    await fresh.text();
    expect((await originLog()).length).toBe(2); // the failed settlement's answer was never delivered
  });
});

describe("a late answer that refuses", () => {
  // FACILITATOR_SETTLE_TIMEOUT_MS and SETTLE_LATE_MS are 1000 here: an answer at 1.5 s is late, and taken.
  const refusal = (errorReason: string): Behaviour => ({
    kind: "answer",
    status: 400,
    body: { success: false, errorReason, transaction: "", network: "eip155:84532" },
  });
  /** Presents the payment until it gets something other than 409 (the buyer's loop), and returns that. */
  const until = (path: string, header: string) =>
    eventually(
      "an answer other than 409",
      async () => {
        const again = await call(path, { headers: { "PAYMENT-SIGNATURE": header } });
        if (again.status !== 409) return again;
        await again.text();
        return undefined;
      },
      { intervalMs: 200, timeoutMs: 8000 },
    );

  it("releases the payment when the timed-out /settle's own answer is a refusal: nobody charged, usable again", async () => {
    await scriptFacilitator({
      settle: [late(refusal("invalid_exact_evm_insufficient_balance"), 1500), settlementSucceeds()],
    });
    const header = await v2Header();
    const pending = await call("/api/weather/kyiv", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(pending.status).toBe(409);
    expect(await pending.json()).toMatchObject({ error: "settlement_pending" });
    // Released, not left pending until its row expires: the next presentation is a fresh payment.
    const fresh = await until("/api/weather/kyiv", header);
    expect(fresh.status).toBe(200);
    expect(await fresh.json()).toMatchObject({ path: "/base/api/weather/kyiv", secret: "paid content" });
    expect(await verifies()).toBe(2);
    expect(await settles()).toBe(2);
    expect((await originLog()).length).toBe(2); // the refused payment's answer was never delivered
  });

  it("releases a payment whose second settle, after an unknown first, is refused late with anything but nonce-used", async () => {
    await scriptFacilitator({
      settle: [{ kind: "hang" }, late(refusal("invalid_exact_evm_insufficient_balance"), 1500), settlementSucceeds()],
    });
    const header = await v2Header();
    expect((await call("/api/weather/kyiv", { headers: { "PAYMENT-SIGNATURE": header } })).status).toBe(409);
    const fresh = await until("/api/weather/kyiv", header);
    expect(fresh.status).toBe(200);
    await fresh.text();
    // The second settle's late refusal released it (an unused nonce: the first never landed).
    expect(await settles()).toBe(3);
    expect(await verifies()).toBe(2);
    expect((await originLog()).length).toBe(2);
  });

  it("takes a second settle's late nonce-used as the first one's landing: the kept answer, no fresh payment", async () => {
    await scriptFacilitator({
      settle: [{ kind: "hang" }, late(refusal("invalid_exact_evm_nonce_already_used"), 1500)],
    });
    const header = await v2Header();
    expect((await call("/api/weather/kyiv", { headers: { "PAYMENT-SIGNATURE": header } })).status).toBe(409);
    const delivered = await until("/api/weather/kyiv", header);
    expect(delivered.status).toBe(200);
    expect(await delivered.json()).toMatchObject({ path: "/base/api/weather/kyiv", secret: "paid content" });
    expect(await settles()).toBe(2);
    expect(await verifies()).toBe(1);
    expect((await originLog()).length).toBe(1);
  });
});

describe("access windows: the ledger is the authority, KV the cache", () => {
  it("serves a window bought elsewhere (no KV receipt here) from the ledger, without the facilitator", async () => {
    const header = await v2Header({ requirement: requirement({ amount: "50000" }) });
    const bought = await call("/reports/q1", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(bought.status).toBe(200);
    await bought.text();
    // Another location: a fresh isolate (no memo) whose KV has not seen the receipt yet.
    await eventually("the receipt", async () =>
      (await testEnv.RECEIPTS.list({ prefix: "r:" })).keys.length > 0 ? true : undefined,
    );
    for (const { name } of (await testEnv.RECEIPTS.list({ prefix: "r:" })).keys) await testEnv.RECEIPTS.delete(name);
    await resetServers();
    const elsewhere = createApp();
    const res = await elsewhere.fetch(
      new Request("https://paywall.example/reports/q2", { headers: { "PAYMENT-SIGNATURE": header } }),
      env,
      testCtx,
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ path: "/base/reports/q2" });
    expect(await facilitatorLog()).toEqual([]);
    expect((await originLog()).map((r) => r.headers["x-payment-route"])).toEqual(["reports"]);
  });
});

describe("settle first (settle: before, x402 upfront)", () => {
  it("offers paymentFlow upfront, settles without /verify before the origin, and runs the origin once", async () => {
    const unpaid = await call("/act/launch", { method: "POST" });
    expect(unpaid.status).toBe(402);
    const offered = decodeBase64Json(unpaid.headers.get("PAYMENT-REQUIRED")).accepts[0];
    expect(offered.extra).toEqual({ name: "USDC", version: "2", paymentFlow: "upfront" });
    const v1Offered = ((await unpaid.json()) as any).accepts[0];
    expect(v1Offered.extra).toEqual({ name: "USDC", version: "2", paymentFlow: "upfront" });

    const req = requirement({ extra: { name: "USDC", version: "2", paymentFlow: "upfront" } });
    const header = await v2Header({ requirement: req });
    const res = await call("/act/launch", { method: "POST", headers: { "PAYMENT-SIGNATURE": header }, body: "go" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ path: "/base/act/launch", body: "go" });
    expect((await facilitatorLog()).map((c) => c.url)).toEqual(["/settle"]);
    const again = await call("/act/launch", { method: "POST", headers: { "PAYMENT-SIGNATURE": header }, body: "go" });
    expect(again.status).toBe(200);
    await again.text();
    expect((await originLog()).length).toBe(1);
  });

  it("charges for an origin error (the trade-off) and gives that same answer to a retry", async () => {
    await setPricing({
      ...PRICING,
      routes: [...ROUTES, { id: "act-fail", match: "/status/*", price: "$0.001", settle: "before" }].filter(
        (r) => r.id !== "failing",
      ),
    });
    const req = requirement({ extra: { name: "USDC", version: "2", paymentFlow: "upfront" } });
    const header = await v2Header({ requirement: req });
    const res = await call("/status/500", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(res.status).toBe(500);
    expect(decodeBase64Json(res.headers.get("PAYMENT-RESPONSE"))).toMatchObject({ success: true });
    const body = await res.text();
    const retry = await call("/status/500", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(retry.status).toBe(500);
    expect(await retry.text()).toBe(body);
    expect((await originLog()).length).toBe(1);
    expect(await settles()).toBe(1);
  });

  it("does not run the origin while the upfront settlement is pending; runs it once when it confirms", async () => {
    await scriptFacilitator({ settle: settlementPending() });
    const req = requirement({ extra: { name: "USDC", version: "2", paymentFlow: "upfront" } });
    const header = await v2Header({ requirement: req });
    const pending = await call("/act/x", { method: "POST", headers: { "PAYMENT-SIGNATURE": header } });
    expect(pending.status).toBe(409);
    expect(await pending.json()).toMatchObject({ error: "settlement_pending" });
    expect(await originLog()).toEqual([]);
    await scriptFacilitator({ settle: settlementSucceeds() });
    const done = await call("/act/x", { method: "POST", headers: { "PAYMENT-SIGNATURE": header } });
    expect(done.status).toBe(200);
    await done.text();
    expect((await originLog()).length).toBe(1);
  });
});

describe("the ledger unreachable", () => {
  it("fails closed with 503 ledger_unavailable: origin and facilitator untouched", async () => {
    // A stand-in for a Durable Object namespace that cannot be reached (named so: not the ledger).
    const unreachable = {
      getByName: () => ({
        claim: () => Promise.reject(new Error("Durable Object is overloaded")),
        lookup: () => Promise.reject(new Error("Durable Object is overloaded")),
      }),
    };
    const res = await createApp().fetch(
      new Request("https://paywall.example/api/weather/paris", { headers: { "PAYMENT-SIGNATURE": await v2Header() } }),
      { ...env, LEDGER: unreachable } as never,
      testCtx,
    );
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: "ledger_unavailable" });
    expect(await originLog()).toEqual([]);
    expect(await facilitatorLog()).toEqual([]);
  });
});

describe("ledger rows go away", () => {
  const rows = (stub: unknown) =>
    runInDurableObject(
      stub as DurableObjectStub,
      (_instance, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM payment").one().n,
    );

  it("keeps a row until it expires, then its alarm deletes it", async () => {
    const stub = ledgerStub(identityOf((await signAuthorization()).authorization));
    expect((await stub.claim({ claimId: "c", nowMs: Date.now(), leaseMs: 60_000 })).kind).toBe("claimed");
    expect(await runDurableObjectAlarm(stub as never)).toBe(true); // not expired yet: re-armed
    expect(await rows(stub)).toBe(1);
    const gone = ledgerStub(identityOf((await signAuthorization()).authorization));
    expect((await gone.claim({ claimId: "c", nowMs: Date.now() - 2000, leaseMs: 1000 })).kind).toBe("claimed");
    await eventually("the expired row deleted", async () => ((await rows(gone)) === 0 ? true : undefined));
  });

  it("moves the row's one alarm with it: to the expiry once settled, none once released", async () => {
    const alarmOf = (stub: unknown) =>
      runInDurableObject(stub as DurableObjectStub, (_instance, state) => state.storage.getAlarm());
    const nowMs = Date.now();
    const stub = ledgerStub(identityOf((await signAuthorization()).authorization)) as unknown as ReturnType<
      typeof ledgerStub
    > & {
      settle(input: { nowMs: number; record: unknown; capture: boolean; expiresAtMs: number }): Promise<void>;
      release(input: { claimId: string }): Promise<boolean>;
    };
    await stub.claim({ claimId: "c", nowMs, leaseMs: 60_000 });
    expect(await alarmOf(stub)).toBe(nowMs + 60_000);
    // Settled: it wakes once, when the row expires, not also at the lease's end.
    await stub.settle({ nowMs, record: { routeId: "weather" }, capture: false, expiresAtMs: nowMs + 3_600_000 });
    expect(await alarmOf(stub)).toBe(nowMs + 3_600_000);
    const released = ledgerStub(identityOf((await signAuthorization()).authorization)) as typeof stub;
    await released.claim({ claimId: "c", nowMs, leaseMs: 60_000 });
    expect(await released.release({ claimId: "c" })).toBe(true);
    expect(await alarmOf(released)).toBeNull();
    expect(await rows(released)).toBe(0);
  });
});
