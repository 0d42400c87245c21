/**
 * Pricing from KV (cache, last-known-good, fail closed), configuration errors, built-in endpoints,
 * CORS, canonical paths and the service-binding origin mode.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import {
  amountOf,
  call,
  facilitatorLog,
  originLog,
  PAY_TO,
  PRICING,
  requirement,
  resetServers,
  setPricing,
  testCtx,
  testEnv,
  v2Header,
} from "./helpers.ts";

beforeEach(async () => {
  await resetServers();
  await setPricing();
});

function priced(price: string) {
  return { ...PRICING, routes: PRICING.routes.map((r) => (r.id === "weather" ? { ...r, price } : r)) };
}

describe("pricing from KV", () => {
  it("fails closed with 503 when KV has never held a valid document", async () => {
    await testEnv.PRICING.delete("pricing");
    const app = createApp();
    const res = await app.fetch(new Request("https://paywall.example/health"), env, testCtx);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: "pricing_unavailable", detail: "missing" });
    await setPricing("{ not json");
    const invalid = await createApp().fetch(new Request("https://paywall.example/api/weather/x"), env, testCtx);
    expect(invalid.status).toBe(503);
    expect(await invalid.json()).toMatchObject({ error: "pricing_unavailable", detail: "invalid" });
    expect(await originLog()).toEqual([]);
  });

  it("keeps serving the last valid table when KV later holds an invalid document", async () => {
    const app = createApp();
    const first = await app.fetch(new Request("https://paywall.example/api/weather/x"), env, testCtx);
    expect(first.status).toBe(402);
    expect(await amountOf(first)).toBe("1000");
    await setPricing({ version: 1, routes: [{ id: "broken", match: "GET /x", price: "$-1" }] });
    const after = await app.fetch(new Request("https://paywall.example/api/weather/x"), env, testCtx);
    expect(after.status).toBe(402);
    expect(await amountOf(after)).toBe("1000");
  });

  it("caches the compiled table for PRICING_CACHE_SECONDS, then picks up an edit without a restart", async () => {
    let now = 1_800_000_000_000;
    const app = createApp({ nowMs: () => now });
    const cachedEnv = { ...env, PRICING_CACHE_SECONDS: "30" };
    const get = () => app.fetch(new Request("https://paywall.example/api/weather/x"), cachedEnv, testCtx);
    expect(await amountOf(await get())).toBe("1000");
    await setPricing(priced("$0.002"));
    now += 29_000;
    expect(await amountOf(await get())).toBe("1000");
    now += 1_000;
    expect(await amountOf(await get())).toBe("2000");
  });

  it("answers 403 for unmatched paths under unmatched: deny, and forwards free routes", async () => {
    await setPricing({ ...PRICING, defaults: { ...PRICING.defaults, unmatched: "deny" } });
    expect((await call("/nope")).status).toBe(403);
    expect((await call("/health")).status).toBe(200);
  });

  it("picks the most specific rule whatever the order in the document", async () => {
    const routes = [
      { id: "any", match: "/api/*", price: "$0.003" },
      { id: "param", match: "GET /api/weather/:city", price: "$0.002" },
      { id: "literal", match: "GET /api/weather/paris", price: "free" },
    ];
    for (const order of [routes, [...routes].reverse()]) {
      await setPricing({ version: 1, defaults: PRICING.defaults, routes: order });
      expect((await call("/api/weather/paris")).status).toBe(200);
      expect(await amountOf(await call("/api/weather/oslo"))).toBe("2000");
      expect(await amountOf(await call("/api/other"))).toBe("3000");
    }
  });
});

describe("access window end", () => {
  it("serves a paid access route until its ttl, then refuses with access_window_expired", async () => {
    let now = Date.now();
    const pending: Promise<unknown>[] = [];
    const app = createApp({ nowMs: () => now });
    const waitCtx = { ...testCtx, waitUntil: (p: Promise<unknown>) => void pending.push(p) } as ExecutionContext;
    const header = await v2Header({ requirement: requirement({ amount: "50000" }) });
    const get = () =>
      app.fetch(
        new Request("https://paywall.example/reports/q1", { headers: { "PAYMENT-SIGNATURE": header } }),
        env,
        waitCtx,
      );
    expect((await get()).status).toBe(200);
    await Promise.all(pending);
    await resetServers();
    now += 3599_000;
    expect((await get()).status).toBe(200);
    now += 1_000;
    const expired = await get();
    expect(expired.status).toBe(402);
    expect(await expired.json()).toMatchObject({ error: "access_window_expired" });
    expect(await facilitatorLog()).toEqual([]);
    expect((await originLog()).length).toBe(1);
  });
});

describe("configuration", () => {
  it.each([
    ["FACILITATOR_URL", { FACILITATOR_URL: "not a url" }],
    ["FACILITATOR_URL", { FACILITATOR_URL: undefined }],
    ["ORIGIN_URL", { ORIGIN_URL: "ftp://origin.example" }],
    ["ORIGIN_URL", { ORIGIN_URL: undefined }],
    ["PAY_TO", { PAY_TO: "0x1234" }],
    ["NETWORK", { NETWORK: "base" }],
    ["PRICING_CACHE_SECONDS", { PRICING_CACHE_SECONDS: "-5" }],
    ["FACILITATOR_VERIFY_TIMEOUT_MS", { FACILITATOR_VERIFY_TIMEOUT_MS: "0" }],
    // Past 28 s a late answer would outlive the 30 s a Worker's waitUntil may run.
    ["SETTLE_LATE_MS", { SETTLE_LATE_MS: "28001" }],
    ["SETTLE_LATE_MS", { SETTLE_LATE_MS: "soon" }],
    ["RECEIPTS", { RECEIPTS: undefined }],
  ])("answers 500 naming %s when it is bad", async (name, patch) => {
    const res = await createApp().fetch(
      new Request("https://paywall.example/health"),
      { ...env, ...patch } as never,
      testCtx,
    );
    expect(res.status).toBe(500);
    const body = (await res.json()) as { error: string; message: string; detail: string };
    expect(body.error).toBe("config_invalid");
    expect(body.detail).toBe(name);
    expect(body.message).toContain(name);
  });

  it("never echoes a secret's value", async () => {
    const secret = "Bearer sup3r-s3cret\nInjected: yes";
    const res = await createApp().fetch(
      new Request("https://paywall.example/health"),
      { ...env, FACILITATOR_AUTHORIZATION: secret },
      testCtx,
    );
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).toContain("FACILITATOR_AUTHORIZATION");
    expect(text).not.toContain("sup3r");
  });

  it("sends the facilitator secret to the facilitator and the origin secret to the origin only", async () => {
    const app = createApp();
    const secrets = { ...env, FACILITATOR_AUTHORIZATION: "Bearer fac-secret", ORIGIN_SHARED_SECRET: "origin-secret" };
    const res = await app.fetch(
      new Request("https://paywall.example/api/weather/x", { headers: { "PAYMENT-SIGNATURE": await v2Header() } }),
      secrets,
      testCtx,
    );
    expect(res.status).toBe(200);
    const [seen] = await originLog();
    expect(seen?.headers["x-paywall-secret"]).toBe("origin-secret");
    expect(seen?.headers.authorization).toBeUndefined();
    expect((await facilitatorLog()).map((c) => c.headers.authorization)).toEqual([
      "Bearer fac-secret",
      "Bearer fac-secret",
    ]);
    const text = await res.text();
    expect(text).not.toContain("fac-secret");
  });
});

describe("built-in endpoints", () => {
  it("GET /__x402/health answers 200", async () => {
    const res = await call("/__x402/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", pricing: { loaded: true } });
    expect(await originLog()).toEqual([]);
  });

  it("GET /__x402/health answers 200 even with no pricing", async () => {
    await testEnv.PRICING.delete("pricing");
    const res = await createApp().fetch(new Request("https://paywall.example/__x402/health"), env, testCtx);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ pricing: { loaded: false } });
  });

  it("GET /__x402/pricing lists the public prices and the document version", async () => {
    const res = await call("/__x402/pricing");
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.version).toMatch(/^[0-9a-f]{16}$/);
    expect(body.routes.map((r: { id: string }) => r.id)).toEqual([
      "weather",
      "reports",
      "health",
      "failing",
      "redirecting",
      "held",
    ]);
    expect(body.routes[0]).toMatchObject({ id: "weather", free: false, accepts: [{ amount: "1000", payTo: PAY_TO }] });
    expect(body.routes[1].access).toEqual({ ttl: 3600 });
    expect(body.routes[2]).toMatchObject({ id: "health", free: true, accepts: [] });
  });

  it("answers 404 for other built-in paths and 405 for other methods, never reaching the origin", async () => {
    expect((await call("/__x402/nope")).status).toBe(404);
    expect((await call("/__x402/health", { method: "POST" })).status).toBe(405);
    expect(await originLog()).toEqual([]);
  });
});

describe("CORS", () => {
  it("answers a preflight for a priced route, allowing the payment headers", async () => {
    const res = await call("/api/weather/paris", {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "GET",
        "access-control-request-headers": "payment-signature, x-payment, content-type",
      },
    });
    expect(res.status).toBe(204);
    const allowed = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    expect(allowed).toContain("payment-signature");
    expect(allowed).toContain("x-payment");
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(await originLog()).toEqual([]);
  });

  it("exposes PAYMENT-REQUIRED on a 402", async () => {
    const res = await call("/api/weather/paris", { headers: { origin: "https://app.example" } });
    expect(res.status).toBe(402);
    const exposed = res.headers.get("access-control-expose-headers") ?? "";
    expect(exposed).toContain("PAYMENT-REQUIRED");
    expect(exposed).toContain("PAYMENT-RESPONSE");
    expect(exposed).toContain("X-PAYMENT-RESPONSE");
  });

  it("leaves preflights for free routes to the origin", async () => {
    const res = await call("/health", {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "GET" },
    });
    expect(res.status).toBe(200);
    expect((await originLog()).map((r) => r.method)).toEqual(["OPTIONS"]);
  });
});

describe("canonical paths (shapes that reach the Worker through fetch)", () => {
  // Shapes the URL parser already resolves (`..`, `.`, `\`, `%2e%2e` segments) are covered against
  // a raw socket in test/raw/ and in the unit tests.
  it.each([
    ["encoded slash", "/api/weather%2Fparis", "encoded_separator"],
    ["encoded slash, lower case", "/api/weather%2fparis", "lowercase_percent"],
    ["encoded backslash", "/api/weather%5Cparis", "encoded_separator"],
    ["double slash", "/api//weather/paris", "empty_segment"],
    ["leading double slash (open-proxy shape)", "//evil.example/api/weather/paris", "empty_segment"],
    ["encoded unreserved letter", "/api/w%65ather/paris", "encoded_unreserved"],
    ["encoded dot inside a segment", "/api/weather/paris%2E", "encoded_unreserved"],
    ["lower-case hex", "/api/weather/caf%c3%a9", "lowercase_percent"],
    ["malformed percent", "/api/weather/%zz", "malformed_percent"],
    ["truncated percent", "/api/weather/%A", "malformed_percent"],
    ["overlong UTF-8 dot", "/api/weather/%C0%AE%C0%AE", "invalid_utf8"],
    ["encoded NUL", "/api/weather/a%00b", "encoded_control"],
    ["encoded newline", "/api/weather/a%0Ab", "encoded_control"],
  ])("refuses %s with 400 non_canonical_path", async (_name, path, problem) => {
    const res = await call(path);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "non_canonical_path", detail: problem });
    expect(await originLog()).toEqual([]);
  });

  it("forwards exactly the path it matched", async () => {
    expect((await call("/health/")).status).toBe(200);
    expect((await call("/caf%C3%A9/x:y@z,a=b")).status).toBe(200);
    expect((await originLog()).map((r) => r.url)).toEqual(["/base/health/", "/base/caf%C3%A9/x:y@z,a=b"]);
  });
});

describe("service-binding origin", () => {
  it("forwards through the ORIGIN binding when there is no ORIGIN_URL", async () => {
    const bound = {
      ...env,
      ORIGIN: (env as unknown as { ORIGIN_SERVICE: Fetcher }).ORIGIN_SERVICE,
      ORIGIN_URL: undefined,
    };
    const app = createApp();
    const free = await app.fetch(new Request("https://paywall.example/health?q=1"), bound, testCtx);
    expect(free.status).toBe(200);
    expect(await free.json()).toMatchObject({ via: "service-binding", url: "https://paywall.example/health?q=1" });
    const paid = await app.fetch(
      new Request("https://paywall.example/api/weather/x", { headers: { "PAYMENT-SIGNATURE": await v2Header() } }),
      bound,
      { ...testCtx, waitUntil: () => {} } as ExecutionContext,
    );
    expect(paid.status).toBe(200);
    expect(await paid.json()).toMatchObject({ via: "service-binding", route: "weather", payment: null });
    expect(await originLog()).toEqual([]);
  });
});
