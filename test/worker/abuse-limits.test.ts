/**
 * Abuse limits: junk that passes the cheap checks cannot become unbounded facilitator traffic
 * (the Workers Rate Limiting binding, real under miniflare, per client IP and per payer), and
 * requests too large to be real are refused before any work that grows with them.
 */
import { env } from "cloudflare:workers";
import { privateKeyToAccount } from "viem/accounts";
import { beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import { call, facilitatorLog, originLog, resetServers, setPricing, testCtx, v2Header } from "./helpers.ts";

beforeEach(async () => {
  await resetServers();
  await setPricing();
});

/** A real miniflare limiter allowing 3 calls a minute per key (vitest.config.ts). */
const tight = {
  ...env,
  PAYMENT_RATE_LIMIT: (env as unknown as { TIGHT_RATE_LIMIT: RateLimit }).TIGHT_RATE_LIMIT,
} as never;
const fresh = async () => {
  const signer = privateKeyToAccount(randomKey());
  return v2Header({ signer, from: signer.address });
};
const randomKey = () =>
  `0x${[...crypto.getRandomValues(new Uint8Array(32))].map((b) => b.toString(16).padStart(2, "0")).join("")}` as const;

describe("facilitator-bound requests are rate limited", () => {
  it("per client IP: the fourth payment from one IP in a minute gets 429 rate_limited, no facilitator call", async () => {
    const app = createApp();
    const ip = `198.51.100.${Math.floor(Math.random() * 250)}`;
    const pay = async () => {
      const signer = privateKeyToAccount(randomKey());
      const header = await v2Header({ signer, from: signer.address });
      return app.fetch(
        new Request("https://paywall.example/api/weather/paris", {
          headers: { "PAYMENT-SIGNATURE": header, "cf-connecting-ip": ip },
        }),
        tight,
        testCtx,
      );
    };
    for (let i = 0; i < 3; i++) expect((await pay()).status).not.toBe(429);
    await resetServers();
    const limited = await pay();
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("60");
    expect(await limited.json()).toMatchObject({ error: "rate_limited", detail: "ip" });
    expect(await facilitatorLog()).toEqual([]);
    expect(await originLog()).toEqual([]);
  });

  it("per payer, whatever IPs it comes from", async () => {
    const app = createApp();
    const signer = privateKeyToAccount(randomKey());
    const pay = async (i: number) =>
      app.fetch(
        new Request("https://paywall.example/api/weather/paris", {
          headers: {
            "PAYMENT-SIGNATURE": await v2Header({ signer, from: signer.address }),
            "cf-connecting-ip": `203.0.113.${i}`,
          },
        }),
        tight,
        testCtx,
      );
    for (let i = 0; i < 3; i++) expect((await pay(i)).status).not.toBe(429);
    const limited = await pay(99);
    expect(limited.status).toBe(429);
    expect(await limited.json()).toMatchObject({ error: "rate_limited", detail: "payer" });
  });

  it("does not count what the local checks refuse", async () => {
    const app = createApp();
    const ip = `192.0.2.${Math.floor(Math.random() * 250)}`;
    const junk = (n: number) =>
      app.fetch(
        new Request("https://paywall.example/api/weather/paris", {
          headers: { "PAYMENT-SIGNATURE": btoa(`{"x402Version":2,"n":${n}}`), "cf-connecting-ip": ip },
        }),
        tight,
        testCtx,
      );
    for (let i = 0; i < 10; i++) expect((await junk(i)).status).toBe(400);
    const real = await app.fetch(
      new Request("https://paywall.example/api/weather/paris", {
        headers: { "PAYMENT-SIGNATURE": await fresh(), "cf-connecting-ip": ip },
      }),
      tight,
      testCtx,
    );
    expect(real.status).not.toBe(429);
  });
});

describe("size caps", () => {
  it.each([
    ["a path over 4 KiB", `/api/weather/${"a".repeat(4100)}`, {}, 414, "path_too_long"],
    ["a query over 16 KiB", `/health?q=${"a".repeat(16_400)}`, {}, 414, "query_too_long"],
    [
      "more than 100 headers on a priced route",
      "/api/weather/paris",
      Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`x-h${i}`, "1"])),
      431,
      "request_headers_too_large",
    ],
    [
      "more than 32 KiB of headers on a priced route",
      "/api/weather/paris",
      { "x-big": "a".repeat(33 * 1024) },
      431,
      "request_headers_too_large",
    ],
  ])("refuses %s", async (_name, path, headers, status, reason) => {
    const res = await call(path, { headers });
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ error: reason });
    expect(await originLog()).toEqual([]);
    expect(await facilitatorLog()).toEqual([]);
  });

  it("leaves a free route's headers to the origin", async () => {
    const res = await call("/health", { headers: { "x-big": "a".repeat(33 * 1024) } });
    expect(res.status).toBe(200);
  });
});
