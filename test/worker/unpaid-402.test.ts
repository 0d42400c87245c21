/**
 * The unpaid shortcut: a URL that got a 402 gets the same 402 again without the path check or the
 * matcher, while the pricing table is unchanged. It must never answer anything but that: not a
 * paid request, not a preflight, not another method, not a route whose price reads the request,
 * not after an edit. Real KV, frozen clock (the shortcut needs a cached table: PRICING_CACHE_SECONDS > 0).
 */
import { env } from "cloudflare:workers";
import { beforeEach, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import {
  amountOf,
  facilitatorLog,
  originLog,
  PRICING,
  resetServers,
  setPricing,
  testCtx,
  v2Header,
} from "./helpers.ts";

const CACHE_SECONDS = 10;
let now: number;
let app: ReturnType<typeof createApp>;
const cachedEnv = { ...env, PRICING_CACHE_SECONDS: String(CACHE_SECONDS) } as never;

const call = (path: string, init?: RequestInit) =>
  app.fetch(new Request(`https://paywall.example${path}`, init), cachedEnv, testCtx);

const WITH_BODY_PRICES = {
  ...PRICING,
  routes: [
    ...PRICING.routes,
    { id: "infer-big", match: "POST /v1/infer", when: { body: { service: "big" } }, price: "$0.01" },
    { id: "infer-small", match: "POST /v1/infer", when: { body: { service: "small" } }, price: "$0.002" },
    { id: "batch", match: "GET /v1/batch", per: { query: "count", min: 1, max: 10 }, price: "$0.001" },
  ],
};

beforeEach(async () => {
  await resetServers();
  await setPricing(WITH_BODY_PRICES);
  now = Date.now();
  app = createApp({ nowMs: () => now });
});

it("answers a repeated unpaid request with the same 402, byte for byte", async () => {
  const first = await call("/api/weather/paris?units=metric");
  expect(first.status).toBe(402);
  const second = await call("/api/weather/paris?units=metric");
  expect(second.status).toBe(402);
  expect([...second.headers]).toEqual([...first.headers]);
  expect(await second.text()).toBe(await first.text());
  expect(await originLog()).toEqual([]);
  expect(await facilitatorLog()).toEqual([]);
});

it("still checks and settles a payment sent to a URL that got a 402", async () => {
  expect((await call("/api/weather/paris")).status).toBe(402);
  const paid = await call("/api/weather/paris", { headers: { "PAYMENT-SIGNATURE": await v2Header() } });
  expect(paid.status).toBe(200);
  expect((await facilitatorLog()).map((c) => c.url)).toEqual(["/verify", "/settle"]);
});

it("still refuses a bad payment header sent to a URL that got a 402", async () => {
  expect((await call("/api/weather/paris")).status).toBe(402);
  const res = await call("/api/weather/paris", { headers: { "X-PAYMENT": "%%%" } });
  expect(res.status).toBe(400);
  expect(((await res.json()) as { error: string }).error).toBe("payment_header_malformed");
});

it("answers a preflight to a URL that got a 402 as a preflight", async () => {
  expect((await call("/reports/q1", { method: "OPTIONS" })).status).toBe(402);
  const preflight = await call("/reports/q1", {
    method: "OPTIONS",
    headers: { origin: "https://buyer.example", "access-control-request-method": "GET" },
  });
  expect(preflight.status).toBe(204);
});

it("keys on the method: another method on the same URL is matched afresh", async () => {
  expect((await call("/api/weather/paris")).status).toBe(402);
  // The weather rule is GET-only; a POST to the same URL is unmatched, hence free.
  const post = await call("/api/weather/paris", { method: "POST", body: "x" });
  expect(post.status).toBe(200);
  expect((await originLog()).map((r) => r.method)).toEqual(["POST"]);
});

it("never answers a route whose price reads the body or the query from the shortcut", async () => {
  const infer = (service: string) =>
    call("/v1/infer", {
      method: "POST",
      body: JSON.stringify({ service }),
      headers: { "content-type": "application/json" },
    });
  expect(amountOf(await infer("big"))).toBe("10000");
  expect(amountOf(await infer("small"))).toBe("2000");
  expect((await infer("unknown")).status).toBe(400);
  expect(amountOf(await call("/v1/batch?count=3"))).toBe("3000");
  expect(amountOf(await call("/v1/batch?count=3"))).toBe("3000");
  expect((await call("/v1/batch?count=3&count=4")).status).toBe(400);
});

it("shows an edited price to the next unpaid request once the table is reloaded", async () => {
  expect(amountOf(await call("/api/weather/paris"))).toBe("1000");
  await setPricing({
    ...WITH_BODY_PRICES,
    routes: WITH_BODY_PRICES.routes.map((r) => (r.id === "weather" ? { ...r, price: "$0.003" } : r)),
  });
  // Within PRICING_CACHE_SECONDS the isolate has not read KV yet (documented staleness).
  expect(amountOf(await call("/api/weather/paris"))).toBe("1000");
  now += CACHE_SECONDS * 1000;
  // Another request reloads the table; the remembered 402 for this URL is from the old one.
  expect((await call("/health")).status).toBe(200);
  const edited = await call("/api/weather/paris");
  expect(amountOf(edited)).toBe("3000");
  expect(amountOf(await call("/api/weather/paris"))).toBe("3000");
});

it("refuses a non-canonical spelling of a URL that got a 402", async () => {
  expect((await call("/api/weather/paris")).status).toBe(402);
  const res = await call("/api/weather/p%61ris");
  expect(res.status).toBe(400);
  expect(((await res.json()) as { error: string }).error).toBe("non_canonical_path");
});
