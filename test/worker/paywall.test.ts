/**
 * The paid request path end to end inside workerd: real miniflare KV, a real loopback origin and
 * facilitator stub, real EIP-712 signatures.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { eventually } from "../support/poll.ts";
import {
  BASE_SEPOLIA_USDC,
  buyer,
  call,
  decodeBase64Json,
  facilitatorLog,
  originLog,
  PAY_TO,
  releaseOrigin,
  requirement,
  resetServers,
  scriptFacilitator,
  setPricing,
  testEnv,
  v1Header,
  v2Header,
} from "./helpers.ts";

beforeEach(async () => {
  await resetServers();
  await setPricing();
});

describe("free and unmatched routes", () => {
  it("forwards a free route unchanged: method, headers, body, query", async () => {
    const res = await call("/health?a=1&b=%20x", {
      method: "POST",
      headers: { "content-type": "text/plain", "x-custom": "kept" },
      body: "hello body",
    });
    expect(res.status).toBe(200);
    const [seen] = await originLog();
    expect(seen?.method).toBe("POST");
    expect(seen?.url).toBe("/base/health?a=1&b=%20x");
    expect(seen?.headers["x-custom"]).toBe("kept");
    expect(seen?.body).toBe("hello body");
    expect(seen?.headers["x-payment-payer"]).toBeUndefined();
    // A free answer is the origin's own: its cache policy is not ours to change.
    expect(res.headers.get("cache-control")).toBe("public, max-age=3600");
  });

  it("forwards unmatched requests when defaults.unmatched is free", async () => {
    const res = await call("/anything/else");
    expect(res.status).toBe(200);
    expect((await originLog()).map((r) => r.url)).toEqual(["/base/anything/else"]);
  });

  it("refuses unmatched requests with 403 when defaults.unmatched is deny", async () => {
    await setPricing({
      version: 1,
      defaults: { payTo: PAY_TO, network: "eip155:84532", unmatched: "deny" },
      routes: [],
    });
    const res = await call("/anything");
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: "route_denied" });
    expect(await originLog()).toEqual([]);
  });

  it("drops hop-by-hop headers and the ones Connection names before forwarding a paid request", async () => {
    const res = await call("/api/weather/paris", {
      headers: {
        "PAYMENT-SIGNATURE": await v2Header(),
        connection: "X-Drop-Me, keep-alive",
        "x-drop-me": "1",
        "keep-alive": "timeout=5",
        "x-kept": "1",
      },
    });
    expect(res.status).toBe(200);
    const [seen] = await originLog();
    expect(seen?.headers["x-drop-me"]).toBeUndefined();
    expect(seen?.headers["payment-signature"]).toBeUndefined();
    expect(seen?.headers["x-kept"]).toBe("1");
    expect(seen?.headers["x-payment-route"]).toBe("weather");
  });

  it("forwards a free request without hop-by-hop fields, and never as a WebSocket upgrade", async () => {
    const res = await call("/health", {
      headers: {
        connection: "keep-alive, X-Drop-Me",
        "keep-alive": "timeout=5",
        te: "trailers",
        upgrade: "websocket",
        "proxy-authorization": "Basic c2VjcmV0",
        "proxy-connection": "keep-alive",
        "x-drop-me": "1",
        "x-kept": "1",
      },
    });
    expect(res.status).toBe(200);
    const [seen] = await originLog();
    for (const name of ["connection", "keep-alive", "te", "upgrade", "proxy-authorization", "proxy-connection"])
      expect(seen?.headers[name], name).toBeUndefined();
    expect(seen?.headers["x-drop-me"]).toBeUndefined();
    expect(seen?.headers["sec-websocket-key"]).toBeUndefined();
    expect(seen?.headers["x-kept"]).toBe("1");
  });

  it("strips a client's forged payer headers before forwarding", async () => {
    const res = await call("/health", { headers: { "x-payment-payer": buyer.address, "x-payment-route": "weather" } });
    expect(res.status).toBe(200);
    const [seen] = await originLog();
    expect(seen?.headers["x-payment-payer"]).toBeUndefined();
    expect(seen?.headers["x-payment-route"]).toBeUndefined();
  });
});

describe("priced route without payment", () => {
  it("answers 402 with v2 PAYMENT-REQUIRED and a v1-payable body", async () => {
    const res = await call("/api/weather/paris?units=metric");
    expect(res.status).toBe(402);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const required = decodeBase64Json(res.headers.get("PAYMENT-REQUIRED"));
    expect(required).toEqual({
      x402Version: 2,
      error: "payment_required",
      resource: {
        url: "https://paywall.example/api/weather/paris?units=metric",
        description: "Current weather",
        mimeType: "application/json",
      },
      accepts: [
        {
          scheme: "exact",
          network: "eip155:84532",
          amount: "1000",
          asset: BASE_SEPOLIA_USDC,
          payTo: PAY_TO,
          maxTimeoutSeconds: 60,
          extra: { name: "USDC", version: "2" },
        },
      ],
    });
    const body = (await res.json()) as any;
    expect(body.x402Version).toBe(1);
    expect(body.accepts).toEqual([
      {
        scheme: "exact",
        network: "base-sepolia",
        maxAmountRequired: "1000",
        resource: "https://paywall.example/api/weather/paris?units=metric",
        description: "Current weather",
        mimeType: "application/json",
        payTo: PAY_TO,
        maxTimeoutSeconds: 60,
        asset: BASE_SEPOLIA_USDC,
        extra: { name: "USDC", version: "2" },
      },
    ]);
    expect(res.headers.get("x-pricing-version")).toMatch(/^[0-9a-f]{16}$/);
    expect(await originLog()).toEqual([]);
    expect(await facilitatorLog()).toEqual([]);
  });

  it("treats HEAD like GET on a GET-priced route", async () => {
    const res = await call("/api/weather/paris", { method: "HEAD" });
    expect(res.status).toBe(402);
    expect(await originLog()).toEqual([]);
  });

  it("matches with or without one trailing slash, so the slash is no way around the price", async () => {
    expect((await call("/api/weather/paris/")).status).toBe(402);
    expect(await originLog()).toEqual([]);
  });
});

describe("paying with v2 (PAYMENT-SIGNATURE)", () => {
  it("verifies, forwards without payment headers, settles, and answers with PAYMENT-RESPONSE", async () => {
    const header = await v2Header();
    const res = await call("/api/weather/paris?units=metric", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ path: "/base/api/weather/paris", query: "?units=metric" });
    expect(res.headers.get("cache-control")).toBe("private, no-store");
    expect(res.headers.get("x-origin")).toBe("yes");
    const settlement = decodeBase64Json(res.headers.get("PAYMENT-RESPONSE"));
    expect(settlement).toMatchObject({ success: true, network: "eip155:84532", payer: buyer.address });
    expect(settlement.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    expect(res.headers.get("access-control-expose-headers")).toContain("PAYMENT-RESPONSE");

    const [seen] = await originLog();
    expect(seen?.headers["payment-signature"]).toBeUndefined();
    expect(seen?.headers["x-payment"]).toBeUndefined();
    expect(seen?.headers["x-payment-payer"]).toBe(buyer.address);
    expect(seen?.headers["x-payment-route"]).toBe("weather");

    const calls = await facilitatorLog();
    expect(calls.map((c) => c.url)).toEqual(["/verify", "/settle"]);
    const verifyBody = JSON.parse(calls[0]?.body ?? "{}");
    expect(verifyBody.x402Version).toBe(2);
    expect(verifyBody.paymentPayload).toEqual(decodeBase64Json(header));
    expect(verifyBody.paymentRequirements).toEqual(requirement());
  });

  it("stores a receipt in KV after settling, once the answer is kept", async () => {
    const res = await call("/api/weather/oslo", { headers: { "PAYMENT-SIGNATURE": await v2Header() } });
    expect(res.status).toBe(200);
    const tx = decodeBase64Json(res.headers.get("PAYMENT-RESPONSE")).transaction;
    // The answer is copied as it streams to the buyer; the receipt follows the copy.
    expect(await res.json()).toMatchObject({ secret: "paid content" });
    // The receipt is written with waitUntil, after the answer: wait for it, not for a fixed time.
    const { keys, mine } = await eventually("the receipt in KV", async () => {
      const { keys } = await testEnv.RECEIPTS.list({ prefix: "r:" });
      const receipts = await Promise.all(keys.map((k) => testEnv.RECEIPTS.get(k.name, "json")));
      const mine = receipts.find((r: any) => r?.tx === tx) as any;
      return mine ? { keys, mine } : undefined;
    });
    expect(mine).toMatchObject({
      routeId: "weather",
      payer: buyer.address,
      network: "eip155:84532",
      asset: BASE_SEPOLIA_USDC,
      amount: "1000",
      request: "GET /api/weather/oslo",
      answerKept: true,
    });
    expect(mine.expiresAt).toBe(mine.settledAt);
    expect(Number(mine.validBefore)).toBeGreaterThan(mine.settledAt);
    expect(keys.every((k) => /^r:[0-9a-f]{64}$/.test(k.name))).toBe(true);
  });

  it("answers the same payment on the same request with the same answer, without facilitator or origin", async () => {
    const header = await v2Header();
    const first = await call("/api/weather/rome", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(first.status).toBe(200);
    const body = await first.text();
    await resetServers();
    const again = await call("/api/weather/rome", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(again.status).toBe(200);
    expect(await again.text()).toBe(body);
    expect(again.headers.get("PAYMENT-RESPONSE")).toBe(first.headers.get("PAYMENT-RESPONSE"));
    expect(again.headers.get("cache-control")).toBe("private, no-store");
    expect(await facilitatorLog()).toEqual([]);
    expect(await originLog()).toEqual([]);
  });

  it("refuses the same payment for another request with payment_already_used, without facilitator or origin", async () => {
    const header = await v2Header();
    const first = await call("/api/weather/rome", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(first.status).toBe(200);
    await first.text();
    await resetServers();
    for (const other of ["/api/weather/oslo", "/api/weather/rome?units=metric"]) {
      const again = await call(other, { headers: { "PAYMENT-SIGNATURE": header } });
      expect(again.status).toBe(402);
      expect(((await again.json()) as any).error).toBe("payment_already_used");
    }
    expect(await facilitatorLog()).toEqual([]);
    expect(await originLog()).toEqual([]);
  });

  it("knows the same payment re-encoded with other JSON spelling", async () => {
    const header = await v2Header();
    const first = await call("/api/weather/rome", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(first.status).toBe(200);
    const body = await first.text();
    await resetServers();
    const decoded = decodeBase64Json(header);
    const respelled = btoa(
      JSON.stringify({ payload: decoded.payload, accepted: decoded.accepted, x402Version: 2 }, null, 2),
    );
    const again = await call("/api/weather/rome", { headers: { "PAYMENT-SIGNATURE": respelled } });
    expect(again.status).toBe(200);
    expect(await again.text()).toBe(body);
    const elsewhere = await call("/api/weather/lima", { headers: { "PAYMENT-SIGNATURE": respelled } });
    expect(elsewhere.status).toBe(402);
    expect(((await elsewhere.json()) as any).error).toBe("payment_already_used");
    expect(await facilitatorLog()).toEqual([]);
  });
});

describe("paying with v1 (X-PAYMENT)", () => {
  it("pays from the v1 body and answers with X-PAYMENT-RESPONSE", async () => {
    const res = await call("/api/weather/lima", { headers: { "X-PAYMENT": await v1Header() } });
    expect(res.status).toBe(200);
    expect(res.headers.get("PAYMENT-RESPONSE")).toBeNull();
    const settlement = decodeBase64Json(res.headers.get("X-PAYMENT-RESPONSE"));
    expect(settlement).toMatchObject({ success: true, payer: buyer.address, network: "base-sepolia" });
    const [verify] = await facilitatorLog();
    const body = JSON.parse(verify?.body ?? "{}");
    expect(body.x402Version).toBe(1);
    expect(body.paymentRequirements).toMatchObject({
      scheme: "exact",
      network: "base-sepolia",
      maxAmountRequired: "1000",
      resource: "https://paywall.example/api/weather/lima",
      asset: BASE_SEPOLIA_USDC,
    });
    expect((await originLog())[0]?.headers["x-payment"]).toBeUndefined();
  });
});

describe("access windows", () => {
  it("serves the same payment again on its route without any facilitator call", async () => {
    const req = requirement({ amount: "50000" });
    const header = await v2Header({ requirement: req });
    const first = await call("/reports/q1", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(first.status).toBe(200);
    const tx = decodeBase64Json(first.headers.get("PAYMENT-RESPONSE")).transaction;
    await resetServers();

    const again = await call("/reports/q2", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(again.status).toBe(200);
    expect(decodeBase64Json(again.headers.get("PAYMENT-RESPONSE")).transaction).toBe(tx);
    expect(await facilitatorLog()).toEqual([]);
    expect((await originLog()).map((r) => r.headers["x-payment-route"])).toEqual(["reports"]);
  });

  it("keeps the origin's cookies and CORS choice on a paid answer, and makes it private", async () => {
    const header = await v2Header({ requirement: requirement({ amount: "50000" }) });
    const res = await call("/reports/with-headers", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie()).toEqual(["a=1; Path=/", "b=2; Path=/"]);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(res.headers.get("access-control-expose-headers")).toBe(
      "X-Origin-Own, PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-PAYMENT-RESPONSE, X-Pricing-Version",
    );
    expect(res.headers.get("cache-control")).toBe("private, no-store");
    expect(res.headers.get("expires")).toBeNull();
    expect(res.headers.get("x-origin-own")).toBe("kept");
    // Hop-by-hop: what Connection names and proxy-* go; connection/keep-alive the runtime drops on the wire.
    expect(res.headers.get("x-hop")).toBeNull();
    expect(res.headers.get("proxy-authenticate")).toBeNull();
    expect(decodeBase64Json(res.headers.get("PAYMENT-RESPONSE")).success).toBe(true);
    expect(await res.text()).toBe("report");
    // The same, served again from the access window.
    const again = await call("/reports/with-headers", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(again.status).toBe(200);
    expect(again.headers.getSetCookie()).toEqual(["a=1; Path=/", "b=2; Path=/"]);
    expect(again.headers.get("cache-control")).toBe("private, no-store");
    expect(again.headers.get("access-control-allow-origin")).toBe("https://app.example");
  });

  it("does not open another route with a payment made for an access window", async () => {
    const req = requirement({ amount: "50000" });
    const header = await v2Header({ requirement: req });
    expect((await call("/reports/q1", { headers: { "PAYMENT-SIGNATURE": header } })).status).toBe(200);
    await resetServers();
    const other = await call("/api/weather/paris", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(other.status).toBe(402);
    expect(((await other.json()) as any).error).toBe("payment_already_used");
    expect(await originLog()).toEqual([]);
  });
});

describe("origin and settlement failures", () => {
  it("does not settle when the origin answers >= 400, and returns the origin's answer", async () => {
    const res = await call("/status/500", { headers: { "PAYMENT-SIGNATURE": await v2Header() } });
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ error: "origin says no" });
    expect(res.headers.get("PAYMENT-RESPONSE")).toBeNull();
    expect(res.headers.get("cache-control")).toBe("private, no-store");
    expect((await facilitatorLog()).map((c) => c.url)).toEqual(["/verify"]);
  });

  it("lets the buyer retry the same payment after an origin failure", async () => {
    const header = await v2Header();
    expect((await call("/status/503", { headers: { "PAYMENT-SIGNATURE": header } })).status).toBe(503);
    expect((await call("/status/200", { headers: { "PAYMENT-SIGNATURE": header } })).status).toBe(200);
  });

  it("withholds the origin body and answers 402 with the reason when settlement fails", async () => {
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
    const res = await call("/api/weather/paris", { headers: { "PAYMENT-SIGNATURE": await v2Header() } });
    expect(res.status).toBe(402);
    const text = await res.text();
    expect(text).not.toContain("paid content");
    expect(JSON.parse(text)).toMatchObject({ error: "settle_failed", detail: "invalid_exact_evm_nonce_already_used" });
    expect(res.headers.get("PAYMENT-REQUIRED")).not.toBeNull();
  });

  it("answers 402 verify_rejected with the facilitator's reason, origin not called", async () => {
    await scriptFacilitator({
      verify: {
        kind: "answer",
        status: 400,
        body: { isValid: false, invalidReason: "invalid_exact_evm_insufficient_balance" },
      },
    });
    const res = await call("/api/weather/paris", { headers: { "PAYMENT-SIGNATURE": await v2Header() } });
    expect(res.status).toBe(402);
    expect(await res.json()).toMatchObject({
      error: "verify_rejected",
      detail: "invalid_exact_evm_insufficient_balance",
    });
    expect(await originLog()).toEqual([]);
  });

  it.each([
    ["times out on /verify", { verify: { kind: "hang" } }, 503, "facilitator_timeout"],
    ["answers garbage on /verify", { verify: { kind: "garbage" } }, 502, "facilitator_bad_response"],
    [
      "answers 500 on /verify",
      { verify: { kind: "answer", status: 500, body: { isValid: false } } },
      502,
      "facilitator_bad_response",
    ],
    [
      "answers a wrong shape on /verify",
      { verify: { kind: "answer", status: 200, body: { ok: true } } },
      502,
      "facilitator_bad_response",
    ],
    [
      "says isValid: true with a 500 on /verify",
      { verify: { kind: "answer", status: 500, body: { isValid: true, payer: buyer.address } } },
      502,
      "facilitator_bad_response",
    ],
    [
      "says isValid: true with a redirect on /verify",
      { verify: { kind: "answer", status: 302, body: { isValid: true, payer: buyer.address } } },
      502,
      "facilitator_bad_response",
    ],
    [
      "streams an isValid: true padded past the size cap on /verify",
      { verify: { kind: "huge", body: { isValid: true, payer: buyer.address } } },
      502,
      "facilitator_bad_response",
    ],
  ] as const)("fails closed when the facilitator %s, origin not called", async (_name, script, status, reason) => {
    await scriptFacilitator(script as never);
    const res = await call("/api/weather/paris", { headers: { "PAYMENT-SIGNATURE": await v2Header() } });
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ error: reason });
    expect(await originLog()).toEqual([]);
  });

  it.each([
    [
      "says success: true with a 500",
      {
        kind: "answer",
        status: 500,
        body: { success: true, transaction: `0x${"ab".repeat(32)}`, network: "eip155:84532" },
      },
    ],
    [
      "says success: true with a 4xx",
      {
        kind: "answer",
        status: 400,
        body: { success: true, transaction: `0x${"ab".repeat(32)}`, network: "eip155:84532" },
      },
    ],
    [
      "streams a success padded past the size cap",
      { kind: "huge", body: { success: true, transaction: `0x${"ab".repeat(32)}`, network: "eip155:84532" } },
    ],
    ["times out", { kind: "hang" }],
  ] as const)("never gives the body away when /settle %s, and keeps it for the same payment", async (_name, settle) => {
    // An unusable settle reply does not say whether the buyer was charged: the payment is
    // recorded as pending, the answer kept with it, and the buyer told to come back.
    await scriptFacilitator({ settle: settle as never });
    const header = await v2Header();
    const res = await call("/api/weather/paris", { headers: { "PAYMENT-SIGNATURE": header } });
    expect(res.status).toBe(409);
    expect(res.headers.get("retry-after")).toBe("5");
    const text = await res.text();
    expect(text).not.toContain("paid content");
    expect(JSON.parse(text)).toMatchObject({ error: "settlement_pending" });
    expect(decodeBase64Json(res.headers.get("PAYMENT-RESPONSE"))).toMatchObject({
      success: false,
      errorReason: "settlement_pending",
    });
    // The facilitator recovers and confirms; presented again (not before its first call can have
    // finished), the payment gets the kept answer, and the origin is not called a second time.
    await scriptFacilitator({});
    const again = await eventually("the pending payment confirmed", async () => {
      const r = await call("/api/weather/paris", { headers: { "PAYMENT-SIGNATURE": header } });
      return r.status === 409 ? void (await r.body?.cancel()) : r;
    });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ path: "/base/api/weather/paris", secret: "paid content" });
    expect((await originLog()).length).toBe(1);
  });

  it("takes a verify and settle reply with extra fields, and passes none of them on", async () => {
    await scriptFacilitator({
      verify: { kind: "answer", status: 200, body: { isValid: true, payer: buyer.address, extra: "v" } },
      settle: {
        kind: "answer",
        status: 200,
        body: { success: true, transaction: `0x${"cd".repeat(32)}`, network: "eip155:84532", extensions: { x: 1 } },
      },
    });
    const res = await call("/api/weather/paris", { headers: { "PAYMENT-SIGNATURE": await v2Header() } });
    expect(res.status).toBe(200);
    expect(decodeBase64Json(res.headers.get("PAYMENT-RESPONSE"))).toEqual({
      success: true,
      transaction: `0x${"cd".repeat(32)}`,
      network: "eip155:84532",
      payer: buyer.address,
      amount: "1000",
    });
  });
});

describe("streaming", () => {
  it("streams the paid body: the first chunk arrives while the origin is still writing", async () => {
    const res = await call("/held", { headers: { "PAYMENT-SIGNATURE": await v2Header() } });
    expect(res.status).toBe(200);
    expect(res.headers.get("PAYMENT-RESPONSE")).not.toBeNull();
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let seen = "";
    // If the Worker buffered the body, this would wait forever: the origin has not finished.
    while (!seen.includes("first half;")) {
      const { value } = await reader.read();
      seen += decoder.decode(value, { stream: true });
    }
    expect(seen).not.toContain("second half");
    await releaseOrigin();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += decoder.decode(value, { stream: true });
    }
    expect(seen).toBe("first half;second half");
  });

  it("forwards a large request body intact", async () => {
    const big = `${"x".repeat(1024 * 1024)}end`;
    const res = await call("/health", { method: "PUT", body: big });
    expect(res.status).toBe(200);
    const [seen] = await originLog();
    expect(seen?.body.length).toBe(big.length);
    expect(seen?.body.endsWith("end")).toBe(true);
  });
});

describe("redirects", () => {
  it("rewrites a redirect to the origin's host onto the public host", async () => {
    const res = await call("/redirect-home", {
      headers: { "PAYMENT-SIGNATURE": await v2Header() },
      redirect: "manual",
    });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("https://paywall.example/landed?x=1");
  });

  it("leaves a redirect to another host alone", async () => {
    const res = await call("/redirect-away", { redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("https://elsewhere.example/landed");
  });
});
