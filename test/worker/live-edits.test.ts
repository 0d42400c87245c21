/**
 * Safe live edits: a buyer who paid what a 402 said just before the owner changed the price is
 * accepted for that requirement's maxTimeoutSeconds after the isolate picked up the edit; after
 * that only the new price counts. Real KV, frozen clock.
 */
import { env } from "cloudflare:workers";
import { beforeEach, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import {
  amountOf,
  facilitatorLog,
  originLog,
  PRICING,
  requirement,
  resetServers,
  setPricing,
  testCtx,
  v1Header,
  v2Header,
} from "./helpers.ts";

const CACHE_SECONDS = 10;
let now: number;
let app: ReturnType<typeof createApp>;
const cachedEnv = { ...env, PRICING_CACHE_SECONDS: String(CACHE_SECONDS) } as never;

const get = (headers: Record<string, string> = {}) =>
  app.fetch(new Request("https://paywall.example/api/weather/paris", { headers }), cachedEnv, testCtx);
const priced = (price: string) => ({
  ...PRICING,
  routes: PRICING.routes.map((r) => (r.id === "weather" ? { ...r, price } : r)),
});

beforeEach(async () => {
  await resetServers();
  await setPricing();
  now = Date.now();
  app = createApp({ nowMs: () => now });
  expect(await amountOf(await get())).toBe("1000");
});

/** The owner raises the price; the isolate picks it up at its next KV read. */
async function raisePrice() {
  await setPricing(priced("$0.002"));
  now += CACHE_SECONDS * 1000;
  expect(await amountOf(await get())).toBe("2000");
}

it("accepts the old price within maxTimeoutSeconds of the edit (v2 and v1)", async () => {
  const paidAtOldPrice = await v2Header();
  const paidAtOldPriceV1 = await v1Header();
  await raisePrice();
  now += 59_000;
  expect((await get({ "PAYMENT-SIGNATURE": paidAtOldPrice })).status).toBe(200);
  expect((await get({ "X-PAYMENT": paidAtOldPriceV1 })).status).toBe(200);
  const settled = (await facilitatorLog()).filter((c) => c.url === "/settle").map((c) => JSON.parse(c.body));
  expect(settled[0].paymentRequirements.amount).toBe("1000");
  expect(settled[1].paymentRequirements.maxAmountRequired).toBe("1000");
});

it("never lets the old price through after the grace window", async () => {
  const paidAtOldPrice = await v2Header();
  await raisePrice();
  now += 61_000;
  const res = await get({ "PAYMENT-SIGNATURE": paidAtOldPrice });
  expect(res.status).toBe(402);
  expect(await res.json()).toMatchObject({ error: "amount_mismatch" });
  expect(await facilitatorLog()).toEqual([]);
});

it("accepts the new price at once", async () => {
  await raisePrice();
  const res = await get({ "PAYMENT-SIGNATURE": await v2Header({ requirement: requirement({ amount: "2000" }) }) });
  expect(res.status).toBe(200);
});

it("does not accept a price that no 402 ever offered", async () => {
  await raisePrice();
  const res = await get({ "PAYMENT-SIGNATURE": await v2Header({ requirement: requirement({ amount: "1500" }) }) });
  expect(res.status).toBe(402);
  expect(await res.json()).toMatchObject({ error: "amount_mismatch" });
});

it("honours an old body-dependent price, reading the body only for the old table, and forwards it intact", async () => {
  const route = (extra: object) => ({ ...PRICING, routes: [...PRICING.routes, ...[extra].flat()] });
  const big = { id: "infer-big", match: "POST /infer", when: { body: { service: "big" } }, price: "$0.01" };
  const small = { id: "infer-small", match: "POST /infer", when: { body: { service: "small" } }, price: "$0.002" };
  await setPricing(route([big, small]));
  now += CACHE_SECONDS * 1000;
  const body = '{"service": "big", "prompt": "hi"}';
  const post = (headers: Record<string, string> = {}) =>
    app.fetch(new Request("https://paywall.example/infer", { method: "POST", headers, body }), cachedEnv, testCtx);
  expect(await amountOf(await post())).toBe("10000");
  const paidAtOldPrice = await v2Header({ requirement: requirement({ amount: "10000" }) });

  // The owner replaces the per-service prices with one flat price.
  await setPricing(route({ id: "infer", match: "POST /infer", price: "$0.005" }));
  now += CACHE_SECONDS * 1000;
  expect(await amountOf(await post())).toBe("5000");

  const res = await post({ "PAYMENT-SIGNATURE": paidAtOldPrice });
  expect(res.status).toBe(200);
  const [seen] = await originLog();
  expect(seen?.body).toBe(body);
  expect(seen?.headers["x-payment-route"]).toBe("infer");
  const settled = (await facilitatorLog()).filter((c) => c.url === "/settle").map((c) => JSON.parse(c.body));
  expect(settled[0].paymentRequirements.amount).toBe("10000");
});
