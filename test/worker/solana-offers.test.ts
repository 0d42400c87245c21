/**
 * Solana options in a 402 need the facilitator's fee payer, which only its `/supported` tells:
 * read once per isolate, offered as `extra.feePayer` in v2 and v1, left out while unknown (a route
 * with nothing else to offer fails closed with 503), and never asked for on free routes. Real
 * miniflare KV and the loopback facilitator stub.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import {
  FACILITATOR_A,
  facilitatorLog,
  originLog,
  PAY_TO,
  resetServers,
  scriptFacilitator,
  setPricing,
  testCtx,
} from "./helpers.ts";

const SOLANA_DEVNET = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
const DEVNET_USDC = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";
const SELLER = "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse";
const FEE_PAYER = "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu";

const PRICING = {
  version: 1,
  defaults: { network: "eip155:84532", payTo: { eip155: PAY_TO, solana: SELLER }, unmatched: "free" },
  routes: [
    { id: "only", match: "GET /sol/only", accepts: [{ price: "$0.001", network: SOLANA_DEVNET }] },
    {
      id: "mixed",
      match: "GET /sol/mixed",
      accepts: [{ price: "$0.001" }, { price: "$0.002", network: SOLANA_DEVNET }],
    },
    { id: "health", match: "/health", price: "free" },
  ],
};

const WITH_SOLANA = [
  { x402Version: 2, scheme: "exact", network: "eip155:84532" },
  { x402Version: 2, scheme: "exact", network: SOLANA_DEVNET, extra: { feePayer: FEE_PAYER } },
  { x402Version: 1, scheme: "exact", network: "solana-devnet", extra: { feePayer: FEE_PAYER } },
];

beforeEach(async () => {
  await resetServers();
  await setPricing(PRICING);
});

/** A fresh app: its facilitator pool has read no `/supported` yet. */
function app(nowMs?: () => number, extra: Record<string, string> = {}) {
  const worker = createApp(nowMs ? { nowMs } : {});
  const vars = { ...env, FACILITATOR_URL: FACILITATOR_A, ...extra } as never;
  return (path: string) => worker.fetch(new Request(`https://paywall.example${path}`), vars, testCtx);
}

const offered = (response: Response) =>
  JSON.parse(atob(response.headers.get("PAYMENT-REQUIRED") ?? "")) as {
    accepts: { network: string; amount: string; asset: string; payTo: string; extra: Record<string, unknown> }[];
  };

describe("Solana options and the facilitator's fee payer", () => {
  it("offers the fee payer /supported lists, in v2 and in the v1 body, reading /supported once", async () => {
    await scriptFacilitator({ supported: WITH_SOLANA });
    const get = app();
    const first = await get("/sol/mixed");
    expect(first.status).toBe(402);
    expect(offered(first).accepts).toEqual([
      expect.objectContaining({ network: "eip155:84532", amount: "1000" }),
      {
        scheme: "exact",
        network: SOLANA_DEVNET,
        amount: "2000",
        asset: DEVNET_USDC,
        payTo: SELLER,
        maxTimeoutSeconds: 60,
        extra: { feePayer: FEE_PAYER },
      },
    ]);
    const v1 = (await first.json()) as { accepts: { network: string; extra: unknown; maxAmountRequired: string }[] };
    expect(v1.accepts.map((a) => a.network)).toEqual(["base-sepolia", "solana-devnet"]);
    expect(v1.accepts[1]).toMatchObject({ maxAmountRequired: "2000", extra: { feePayer: FEE_PAYER } });
    expect((await get("/sol/only")).status).toBe(402);
    expect((await facilitatorLog()).map((c) => c.url)).toEqual(["/supported"]);
  });

  it("leaves a Solana option out while no facilitator has told its fee payer; with nothing else, 503", async () => {
    await scriptFacilitator({ supported: [{ x402Version: 2, scheme: "exact", network: "eip155:84532" }] });
    const get = app();
    const mixed = await get("/sol/mixed");
    expect(mixed.status).toBe(402);
    expect(offered(mixed).accepts.map((a) => a.network)).toEqual(["eip155:84532"]);
    const only = await get("/sol/only");
    expect(only.status).toBe(503);
    expect(await only.json()).toMatchObject({ error: "fee_payer_unknown", detail: SOLANA_DEVNET });
    expect(await originLog()).toEqual([]);
  });

  it("fails closed when the facilitator cannot be read, and asks nothing for a free route", async () => {
    const worker = createApp();
    const vars = { ...env, FACILITATOR_URL: "http://127.0.0.1:9" } as never;
    const get = (path: string) => worker.fetch(new Request(`https://paywall.example${path}`), vars, testCtx);
    const free = await get("/health");
    expect(free.status).toBe(200);
    await free.text();
    const only = await get("/sol/only");
    expect(only.status).toBe(503);
    expect(await only.json()).toMatchObject({ error: "fee_payer_unknown" });
  });

  it("keeps offering a fee payer learnt before when a later /supported read fails (frozen clock)", async () => {
    await scriptFacilitator({ supported: WITH_SOLANA });
    let now = Date.now();
    const get = app(() => now);
    expect(offered(await get("/sol/only")).accepts[0]?.extra).toEqual({ feePayer: FEE_PAYER });
    // Eleven minutes on, the re-read answers 500: the last fee payer told still stands.
    await scriptFacilitator({ supported: "fail" });
    now += 11 * 60_000;
    expect(offered(await get("/sol/only")).accepts[0]?.extra).toEqual({ feePayer: FEE_PAYER });
    await new Promise((r) => setTimeout(r, 50)); // the re-read runs in the background
    const again = await get("/sol/only");
    expect(again.status).toBe(402);
    expect(offered(again).accepts[0]?.extra).toEqual({ feePayer: FEE_PAYER });
    expect((await facilitatorLog()).map((c) => c.url)).toEqual(["/supported", "/supported"]);
  });

  it("offers a fee payer learnt later at the same URL: Solana routes skip the unpaid-402 shortcut", async () => {
    await scriptFacilitator({ supported: [{ x402Version: 2, scheme: "exact", network: "eip155:84532" }] });
    let now = Date.now();
    // Prices cached for an hour: the unpaid-402 shortcut (keyed on URL and pricing version) is live.
    const get = app(() => now, { PRICING_CACHE_SECONDS: "3600" });
    expect(offered(await get("/sol/mixed")).accepts.map((a) => a.network)).toEqual(["eip155:84532"]);
    await scriptFacilitator({ supported: WITH_SOLANA });
    now += 11 * 60_000; // /supported is read again after 10 minutes
    const later = await get("/sol/mixed");
    expect(offered(later).accepts.map((a) => a.network)).toEqual(["eip155:84532", SOLANA_DEVNET]);
  });
});
