/**
 * Dynamic prices inside workerd, real KV, loopback origin and facilitator stub: rules told apart by
 * query, header and JSON body conditions, and per-unit prices. Every request that could be read two
 * ways is refused before the origin or the facilitator hear of it.
 */
import { beforeEach, describe, expect, it } from "vitest";
import {
  call,
  decodeBase64Json,
  facilitatorLog,
  originLog,
  PAY_TO,
  requirement,
  resetServers,
  setPricing,
  v1Header,
  v2Header,
} from "./helpers.ts";

const DYNAMIC = {
  version: 1,
  defaults: { network: "eip155:84532", payTo: PAY_TO, maxTimeoutSeconds: 60, unmatched: "free" },
  routes: [
    // An inference API priced by the model named in the JSON body; unknown models are not sold.
    { id: "llm-70b", match: "POST /v1/infer", when: { body: { service: "llm-70b" } }, price: "$0.01" },
    { id: "llm-8b", match: "POST /v1/infer", when: { body: { service: ["llm-8b", "llm-8b-fast"] } }, price: "$0.002" },
    {
      id: "llm-70b-batch",
      match: "POST /v1/infer",
      when: { body: { service: "llm-70b", batch: true } },
      price: "$0.005",
    },
    // Query and header conditions, with an unconditional fallback.
    { id: "search", match: "GET /search", price: "$0.001" },
    { id: "search-deep", match: "GET /search", when: { query: { depth: "deep" } }, price: "$0.003" },
    { id: "search-free", match: "GET /search", when: { query: { depth: "preview" } }, price: "free" },
    { id: "search-gold", match: "GET /search", when: { header: { "X-Tier": "gold" } }, price: "$0.02" },
    {
      id: "search-gold-deep",
      match: "GET /search",
      when: { header: { "x-tier": "gold" }, query: { depth: "deep" } },
      price: "$0.05",
    },
    // Gold asking for a preview matches search-gold and search-free: the owner must say which wins.
    {
      id: "search-gold-preview",
      match: "GET /search",
      when: { header: { "x-tier": "gold" }, query: { depth: "preview" } },
      price: "free",
    },
    // Per unit of ?count=.
    { id: "batch", match: "GET /batch", price: "$0.001", per: { query: "count", min: 1, max: 100 } },
    // Per unit of a body field.
    {
      id: "tokens",
      match: "POST /tokens",
      price: { amount: "3", asset: "usdc" },
      per: { body: "n", min: 1, max: 1000 },
    },
    { id: "weather", match: "GET /api/weather/:city", price: "$0.001" },
  ],
  assets: {
    usdc: {
      network: "eip155:84532",
      address: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
      decimals: 6,
      eip712: { name: "USDC", version: "2" },
    },
  },
};

beforeEach(async () => {
  await resetServers();
  await setPricing(DYNAMIC);
});

const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  call(path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });

async function askedAmount(res: Response): Promise<string> {
  expect(res.status).toBe(402);
  return decodeBase64Json(res.headers.get("PAYMENT-REQUIRED")).accepts[0].amount;
}

async function expectRefused(res: Response, status: number, reason: string) {
  expect(res.status).toBe(status);
  expect(await res.json()).toMatchObject({ error: reason });
  expect(await originLog()).toEqual([]);
  expect(await facilitatorLog()).toEqual([]);
}

describe("JSON body conditions", () => {
  it("prices each service from the body, the most specific rule first", async () => {
    expect(await askedAmount(await post("/v1/infer", '{"service":"llm-70b","prompt":"hi"}'))).toBe("10000");
    expect(await askedAmount(await post("/v1/infer", '{"prompt":"hi","service":"llm-8b"}'))).toBe("2000");
    expect(await askedAmount(await post("/v1/infer", '{"service":"llm-8b-fast"}'))).toBe("2000");
    expect(await askedAmount(await post("/v1/infer", '{"service":"llm-70b","batch":true}'))).toBe("5000");
    // JSON types count: the string "true" is not true.
    expect(await askedAmount(await post("/v1/infer", '{"service":"llm-70b","batch":"true"}'))).toBe("10000");
    // An escaped key is the same key.
    expect(await askedAmount(await post("/v1/infer", '{"serv\\u0069ce":"llm-70b"}'))).toBe("10000");
    // Nested fields are not top-level fields.
    await expectRefused(await post("/v1/infer", '{"x":{"service":"llm-8b"}}'), 400, "no_matching_price");
    expect(await originLog()).toEqual([]);
  });

  it("refuses a service no rule sells instead of forwarding it free", async () => {
    await expectRefused(await post("/v1/infer", '{"service":"llm-405b"}'), 400, "no_matching_price");
    await expectRefused(await post("/v1/infer", "{}"), 400, "no_matching_price");
  });

  it("answers a probe with no body (how crawlers probe) with a 402 listing every variant, cheapest first", async () => {
    const res = await post("/v1/infer", "");
    expect(res.status).toBe(402);
    const required = decodeBase64Json(res.headers.get("PAYMENT-REQUIRED"));
    expect(required.error).toBe("pricing_input_missing");
    expect(required.accepts.map((a: { amount: string }) => a.amount)).toEqual(["2000", "5000", "10000"]);
    const { info, schema } = required.extensions.bazaar;
    expect(info.input).toMatchObject({ type: "http", method: "POST", bodyType: "json" });
    const body = schema.properties.input.properties.body;
    expect(body.properties.service.enum.sort()).toEqual(["llm-70b", "llm-8b", "llm-8b-fast"]);
    expect(body.properties.batch.enum).toEqual([true]);
    expect(body.required).toEqual(["service"]);
    expect(await res.json()).toMatchObject({ error: "pricing_input_missing", detail: "body.service, body.batch" });
    expect(await originLog()).toEqual([]);
  });

  it("refuses a body whose priced field appears twice, however it is spelt", async () => {
    await expectRefused(
      await post("/v1/infer", '{"service":"llm-70b","service":"llm-8b"}'),
      400,
      "pricing_input_ambiguous",
    );
    await expectRefused(
      await post("/v1/infer", '{"service":"llm-70b", "x": [1, {"a": "}"}], "serv\\u0069ce":"llm-8b"}'),
      400,
      "pricing_input_ambiguous",
    );
  });

  it("refuses bodies it cannot read as one JSON object, whatever the content type says", async () => {
    await expectRefused(await post("/v1/infer", '{"service":"llm-70b"'), 400, "pricing_body_unreadable");
    await expectRefused(await post("/v1/infer", '["llm-70b"]'), 400, "pricing_body_unreadable");
    await expectRefused(await post("/v1/infer", "service=llm-8b"), 400, "pricing_body_unreadable");
    await expectRefused(
      await call("/v1/infer", { method: "POST", body: new Uint8Array([0x7b, 0xff, 0x7d]) }),
      400,
      "pricing_body_unreadable",
    );
    // text/plain does not hide a JSON body from the price.
    const plain = await post("/v1/infer", '{"service":"llm-70b"}', { "content-type": "text/plain" });
    expect(await askedAmount(plain)).toBe("10000");
  });

  it("refuses a body over the limit before reading it all, declared or streamed", async () => {
    const big = JSON.stringify({ service: "llm-8b", prompt: "x".repeat(70 * 1024) });
    await expectRefused(await post("/v1/infer", big), 413, "pricing_body_too_large");
    const bytes = new TextEncoder().encode(big);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 8192) controller.enqueue(bytes.slice(i, i + 8192));
        controller.close();
      },
    });
    const res = await call("/v1/infer", { method: "POST", body: stream, duplex: "half" } as RequestInit);
    await expectRefused(res, 413, "pricing_body_too_large");
  });

  it("forwards the paid body byte for byte and names the rule it bought", async () => {
    const body = '{ "service" : "llm-70b",\n  "prompt": "héllo \\u00e9 ✓", "n": 1.50 }';
    const req = requirement({ amount: "10000" });
    const res = await post("/v1/infer", body, { "PAYMENT-SIGNATURE": await v2Header({ requirement: req }) });
    expect(res.status).toBe(200);
    const [seen] = await originLog();
    expect(seen?.body).toBe(body);
    expect(seen?.headers["x-payment-route"]).toBe("llm-70b");
    expect(seen?.headers["content-type"]).toBe("application/json");
  });

  it("does not let the cheap service's price buy the expensive one", async () => {
    const cheap = requirement({ amount: "2000" });
    const res = await post("/v1/infer", '{"service":"llm-70b"}', {
      "PAYMENT-SIGNATURE": await v2Header({ requirement: cheap }),
    });
    expect(res.status).toBe(402);
    expect(await res.json()).toMatchObject({ error: "amount_mismatch" });
    expect(await originLog()).toEqual([]);
    expect(await facilitatorLog()).toEqual([]);
  });

  it("prices a v1 buyer the same way", async () => {
    const res = await post("/v1/infer", '{"service":"llm-8b"}');
    expect(res.status).toBe(402);
    const body = await res.json();
    expect(body).toMatchObject({ x402Version: 1, accepts: [{ maxAmountRequired: "2000" }] });
    const paid = await post("/v1/infer", '{"service":"llm-8b"}', {
      "X-PAYMENT": await v1Header({ requirement: requirement({ amount: "2000" }) }),
    });
    expect(paid.status).toBe(200);
    expect((await originLog())[0]?.headers["x-payment-route"]).toBe("llm-8b");
  });
});

describe("query and header conditions", () => {
  it("picks the narrowest rule whose conditions all hold", async () => {
    expect(await askedAmount(await call("/search?q=x"))).toBe("1000");
    expect(await askedAmount(await call("/search?q=x&depth=deep"))).toBe("3000");
    expect(await askedAmount(await call("/search?q=x&depth=d%65ep"))).toBe("3000");
    expect(await askedAmount(await call("/search?depth=shallow"))).toBe("1000");
    expect(await askedAmount(await call("/search", { headers: { "x-tier": "gold" } }))).toBe("20000");
    expect(await askedAmount(await call("/search?depth=deep", { headers: { "X-TIER": "gold" } }))).toBe("50000");
    // Header values are exact.
    expect(await askedAmount(await call("/search", { headers: { "x-tier": "Gold" } }))).toBe("1000");
    expect(await originLog()).toEqual([]);
  });

  it("forwards a free variant without payment", async () => {
    const res = await call("/search?depth=preview&q=x");
    expect(res.status).toBe(200);
    expect((await originLog()).map((r) => r.url)).toEqual(["/base/search?depth=preview&q=x"]);
  });

  it("refuses a priced query parameter given twice, in any spelling", async () => {
    await expectRefused(await call("/search?depth=preview&depth=deep"), 400, "pricing_input_ambiguous");
    await expectRefused(await call("/search?depth=deep&d%65pth=preview"), 400, "pricing_input_ambiguous");
    await expectRefused(await call("/search?depth=%E0%A4%A"), 400, "pricing_input_invalid");
    // Parameters nobody prices on may repeat.
    expect(await askedAmount(await call("/search?q=a&q=b"))).toBe("1000");
  });

  it("refuses a priced header sent twice", async () => {
    const headers = new Headers();
    headers.append("x-tier", "gold");
    headers.append("x-tier", "bronze");
    await expectRefused(await call("/search", { headers }), 400, "pricing_input_ambiguous");
  });

  it("answers a preflight for a group with a priced variant", async () => {
    const res = await call("/search", {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "GET" },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-headers")).toContain("PAYMENT-SIGNATURE");
  });
});

describe("per-unit prices", () => {
  it("multiplies the unit price by ?count=", async () => {
    expect(await askedAmount(await call("/batch?count=1"))).toBe("1000");
    expect(await askedAmount(await call("/batch?count=37"))).toBe("37000");
    expect(await askedAmount(await call("/batch?count=100"))).toBe("100000");
  });

  it.each([
    ["/batch", "pricing_input_missing"],
    ["/batch?count=0", "pricing_input_invalid"],
    ["/batch?count=101", "pricing_input_invalid"],
    ["/batch?count=05", "pricing_input_invalid"],
    ["/batch?count=5.0", "pricing_input_invalid"],
    ["/batch?count=+5", "pricing_input_invalid"],
    ["/batch?count=-1", "pricing_input_invalid"],
    ["/batch?count=1e2", "pricing_input_invalid"],
    ["/batch?count=", "pricing_input_invalid"],
    ["/batch?count=1&count=100", "pricing_input_ambiguous"],
  ])("refuses %s with 400 %s", async (path, reason) => {
    await expectRefused(await call(path), 400, reason);
  });

  it("charges exactly count × unit, and a payment for fewer units does not buy more", async () => {
    const five = requirement({ amount: "5000" });
    const short = await call("/batch?count=6", {
      headers: { "PAYMENT-SIGNATURE": await v2Header({ requirement: five }) },
    });
    expect(short.status).toBe(402);
    expect(await short.json()).toMatchObject({ error: "amount_mismatch" });
    expect(await originLog()).toEqual([]);

    const res = await call("/batch?count=5", {
      headers: { "PAYMENT-SIGNATURE": await v2Header({ requirement: five }) },
    });
    expect(res.status).toBe(200);
    const [verify] = await facilitatorLog();
    expect(JSON.parse(verify?.body ?? "{}").paymentRequirements.amount).toBe("5000");
  });

  it("reads a unit count from a JSON body field", async () => {
    expect(await askedAmount(await post("/tokens", '{"n": 250, "text": "…"}'))).toBe("750");
    await expectRefused(await post("/tokens", '{"n": 2.5}'), 400, "pricing_input_invalid");
    await expectRefused(await post("/tokens", '{"n": 1001}'), 400, "pricing_input_invalid");
    await expectRefused(await post("/tokens", '{"n": 2, "n": 1000}'), 400, "pricing_input_ambiguous");
    await expectRefused(await post("/tokens", '{"text": "…"}'), 400, "pricing_input_missing");
  });
});

describe("the published price list", () => {
  it("shows conditions and unit prices", async () => {
    const res = await call("/__x402/pricing");
    expect(res.status).toBe(200);
    const { routes } = (await res.json()) as { routes: { id: string; when?: unknown; per?: unknown }[] };
    const byId = Object.fromEntries(routes.map((r) => [r.id, r]));
    expect(byId["llm-8b"]?.when).toEqual({ body: { service: ["llm-8b", "llm-8b-fast"] } });
    expect(byId["search-gold-deep"]?.when).toEqual({ query: { depth: ["deep"] }, header: { "x-tier": ["gold"] } });
    expect(byId.batch?.per).toEqual({ query: "count", min: 1, max: 100 });
  });
});
