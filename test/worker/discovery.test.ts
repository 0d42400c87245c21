/**
 * Discovery: routes that declare `discovery` carry x402's bazaar extension in their 402 (v2) and
 * an outputSchema in the v1 body, and GET /.well-known/x402 lists every priced route. (That the
 * extensions satisfy the official validator is checked in Node: test/raw/discovery.test.ts.)
 */
import { beforeEach, describe, expect, it } from "vitest";
import { DISCOVERABLE } from "../support/discoverable.ts";
import { call, decodeBase64Json, originLog, PAY_TO, resetServers, setPricing } from "./helpers.ts";

beforeEach(async () => {
  await resetServers();
  await setPricing(DISCOVERABLE);
});

describe("the 402 of a discoverable route", () => {
  it("carries the bazaar extension in PAYMENT-REQUIRED and an outputSchema in the v1 body", async () => {
    const res = await call("/api/weather/paris");
    expect(res.status).toBe(402);
    const required = decodeBase64Json(res.headers.get("PAYMENT-REQUIRED"));
    expect(required.extensions.bazaar.info).toEqual({
      input: { type: "http", method: "GET", queryParams: { units: "metric" } },
      output: { type: "json", example: { city: "paris", temperatureC: 12 } },
    });
    const v1 = (await res.json()) as { accepts: { outputSchema: unknown }[] };
    expect(v1.accepts[0]?.outputSchema).toEqual({
      input: { type: "http", method: "GET", discoverable: true, queryParams: { units: "metric" } },
      output: { city: "paris", temperatureC: 12 },
    });
  });

  it("describes a body route's body", async () => {
    const required = decodeBase64Json(
      (await call("/v1/summarise", { method: "POST" })).headers.get("PAYMENT-REQUIRED"),
    );
    expect(required.extensions.bazaar.info.input).toEqual({
      type: "http",
      method: "POST",
      bodyType: "json",
      body: { text: "a long text" },
    });
  });

  it("has no extension when the route declares none", async () => {
    const required = decodeBase64Json((await call("/reports/q1")).headers.get("PAYMENT-REQUIRED"));
    expect(required.extensions).toBeUndefined();
  });
});

describe("GET /.well-known/x402", () => {
  it("lists every priced route with its requirements and metadata, publicly cacheable, never from the origin", async () => {
    const res = await call("/.well-known/x402");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("public, max-age=60");
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    const body = (await res.json()) as { x402Version: number; pricingVersion: string; resources: any[]; next?: string };
    expect(body.x402Version).toBe(2);
    expect(res.headers.get("etag")).toBe(`"${body.pricingVersion}"`);
    expect(body.resources.map((r) => r.id)).toEqual(["weather", "summarise", "reports"]);
    expect(body.resources[0]).toMatchObject({
      match: "GET /api/weather/:city",
      method: "GET",
      description: "Current weather",
      accepts: [{ scheme: "exact", network: "eip155:84532", amount: "1000", payTo: PAY_TO }],
      extensions: { bazaar: { info: { input: { method: "GET" } } } },
    });
    expect(body.resources[2]).toMatchObject({ access: { ttl: 3600 }, method: "*" });
    expect(body.next).toBeUndefined();
    expect(await originLog()).toEqual([]);
  });

  it("answers 304 to a client that has this version, and pages a big table", async () => {
    const first = await call("/.well-known/x402");
    const etag = first.headers.get("etag") as string;
    const again = await call("/.well-known/x402", { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);

    const routes = Array.from({ length: 2500 }, (_, i) => ({ id: `r${i}`, match: `GET /r/${i}`, price: "$0.001" }));
    await setPricing({ ...DISCOVERABLE, routes });
    const page1 = (await (await call("/.well-known/x402")).json()) as { resources: unknown[]; next: string };
    expect(page1.resources).toHaveLength(1000);
    expect(page1.next).toBe("/.well-known/x402?page=2");
    const page3 = (await (await call("/.well-known/x402?page=3")).json()) as { resources: unknown[]; next?: string };
    expect(page3.resources).toHaveLength(500);
    expect(page3.next).toBeUndefined();
    expect((await call("/.well-known/x402?page=0")).status).toBe(404);
    expect((await call("/.well-known/x402", { method: "POST" })).status).toBe(405);
  });
});
