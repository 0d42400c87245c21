/**
 * Payments made by the official client code, not by our test helpers: `@x402/evm`'s
 * `ExactEvmScheme` (v2) and its v1 scheme, driven by `@x402/core`'s x402Client and `@x402/fetch`.
 * If src's EIP-712 domain or types were wrong, these signatures would fail the local check.
 */
import { exports } from "cloudflare:workers";
import { x402Client } from "@x402/core/client";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { wrapFetchWithPayment } from "@x402/fetch";
import { beforeEach, describe, expect, it } from "vitest";
import {
  buyer,
  decodeBase64Json,
  encode,
  facilitatorLog,
  originLog,
  PAY_TO,
  resetServers,
  setPricing,
} from "./helpers.ts";

beforeEach(async () => {
  await resetServers();
  await setPricing();
});

const worker = ((input: RequestInfo | URL, init?: RequestInit) =>
  exports.default.fetch(new Request(input, init))) as typeof fetch;
const officialClient = () => registerExactEvmScheme(new x402Client(), { signer: buyer });

describe("payments signed by the official ExactEvmScheme client", () => {
  it("v2 through @x402/fetch: the local signature check accepts it, one verify and one settle", async () => {
    const res = await wrapFetchWithPayment(worker, officialClient())("https://paywall.example/api/weather/paris");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ path: "/base/api/weather/paris", secret: "paid content" });
    expect(decodeBase64Json(res.headers.get("PAYMENT-RESPONSE"))).toMatchObject({
      success: true,
      payer: buyer.address,
    });
    const calls = await facilitatorLog();
    expect(calls.map((c) => c.url)).toEqual(["/verify", "/settle"]);
    const sent = JSON.parse(calls[0]?.body ?? "{}").paymentPayload;
    expect(sent.payload.authorization).toMatchObject({ from: buyer.address, to: PAY_TO, value: "1000" });
    expect((await originLog()).map((r) => r.headers["x-payment-payer"])).toEqual([buyer.address]);
  });

  it("v1: the payload the official v1 scheme signs from the 402's v1 body is accepted", async () => {
    const unpaid = await worker("https://paywall.example/api/weather/lima");
    expect(unpaid.status).toBe(402);
    const v1Required = await unpaid.json();
    const payload = await officialClient().createPaymentPayload(v1Required as never);
    expect(payload.x402Version).toBe(1);
    const res = await worker("https://paywall.example/api/weather/lima", { headers: { "X-PAYMENT": encode(payload) } });
    expect(res.status).toBe(200);
    expect(decodeBase64Json(res.headers.get("X-PAYMENT-RESPONSE"))).toMatchObject({
      success: true,
      network: "base-sepolia",
    });
    expect((await facilitatorLog()).map((c) => c.url)).toEqual(["/verify", "/settle"]);
  });

  it("refuses the official client's payment once its signature is altered", async () => {
    const unpaid = await worker("https://paywall.example/api/weather/rome");
    const required = decodeBase64Json(unpaid.headers.get("PAYMENT-REQUIRED"));
    const payload = (await officialClient().createPaymentPayload(required)) as any;
    payload.payload.authorization.validBefore = String(Number(payload.payload.authorization.validBefore) - 1);
    const res = await worker("https://paywall.example/api/weather/rome", {
      headers: { "PAYMENT-SIGNATURE": encode(payload) },
    });
    expect(res.status).toBe(402);
    expect(await res.json()).toMatchObject({ error: "invalid_signature" });
    expect(await facilitatorLog()).toEqual([]);
    expect(await originLog()).toEqual([]);
  });
});
