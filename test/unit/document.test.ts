import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compilePricing, compilePricingText, isPlainRoute, PricingDocumentSchema } from "../../src/pricing/document.ts";

const PAY_TO = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const fallbacks = { network: undefined, payTo: undefined };
const T_USDC = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

const valid = {
  version: 1,
  defaults: { network: "eip155:84532", payTo: PAY_TO, maxTimeoutSeconds: 90 },
  assets: {
    tUSDC: { network: "eip155:31337", address: T_USDC, decimals: 6, eip712: { name: "Test USD", version: "1" } },
  },
  routes: [
    { id: "weather", match: "GET /api/weather/:city", price: "$0.001", description: "Current weather" },
    { id: "atomic", match: "/atomic", price: { amount: "250", asset: "tUSDC" } },
    { id: "named", match: "/named", price: "$0.02", asset: "tUSDC", access: { ttl: 60 } },
    {
      id: "multi",
      match: "POST /multi",
      accepts: [
        { price: "$0.01" },
        { price: "$0.01", network: "eip155:8453", payTo: "0x000000000000000000000000000000000000dEaD" },
      ],
    },
    { id: "free", match: "/free/*", price: "free" },
  ],
};

describe("compilePricing", () => {
  it("compiles a valid document into requirements", () => {
    const result = compilePricing(valid, "v", fallbacks);
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    const byId = Object.fromEntries(result.table.routes.map((r) => [r.id, r]));
    expect(byId.weather?.accepts).toEqual([
      {
        scheme: "exact",
        network: "eip155:84532",
        amount: "1000",
        asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        payTo: PAY_TO,
        maxTimeoutSeconds: 90,
        extra: { name: "USDC", version: "2" },
      },
    ]);
    expect(byId.atomic?.accepts[0]).toMatchObject({
      network: "eip155:31337",
      amount: "250",
      asset: T_USDC,
      extra: { name: "Test USD", version: "1" },
    });
    expect(byId.named?.accepts[0]).toMatchObject({ amount: "20000", asset: T_USDC });
    expect(byId.named?.accessTtlSeconds).toBe(60);
    expect(byId.multi?.accepts.map((a) => [a.network, a.amount, a.payTo])).toEqual([
      ["eip155:84532", "10000", PAY_TO],
      ["eip155:8453", "10000", "0x000000000000000000000000000000000000dEaD"],
    ]);
    expect(byId.free?.accepts).toEqual([]);
    expect(result.table.unmatched).toBe("free");
  });

  it("takes network and payTo from the Worker's vars when the document leaves them out", () => {
    const doc = { version: 1, routes: [{ id: "a", match: "/a", price: "$1" }] };
    expect(compilePricing(doc, "v", fallbacks).ok).toBe(false);
    const result = compilePricing(doc, "v", { network: "eip155:8453", payTo: PAY_TO });
    expect(result.ok && result.table.routes[0]?.accepts[0]).toMatchObject({
      network: "eip155:8453",
      payTo: PAY_TO,
      amount: "1000000",
    });
  });

  it("lists every problem in one answer, each with its JSON path", () => {
    const doc = {
      version: 1,
      defaults: { payTo: PAY_TO, network: "eip155:84532" },
      routes: [
        { id: "a", match: "GET /a", price: "$1,000" },
        { id: "a", match: "/b", price: "$0.0000001" },
        { id: "c", match: "/c/*/d", price: "$1" },
        { id: "d", match: "GET /a", price: "$1" },
        { id: "e", match: "/e", price: { amount: "5", asset: "nope" } },
        { id: "f", match: "/f", price: "$-1" },
        { id: "g", match: "/g", price: "free", access: { ttl: 60 } },
        { id: "h", match: "/h/%2F", price: "$1" },
        { id: "i", match: "/i", price: "$1", accepts: [{ price: "$1" }] },
      ],
    };
    const result = compilePricing(doc, "v", fallbacks);
    expect(result.ok).toBe(false);
    const problems = result.ok ? [] : result.problems;
    const at = (path: string) => problems.filter((p) => p.path === path).map((p) => p.message);
    expect(at("$.routes[0].price")).toEqual([expect.stringContaining("not a plain decimal")]);
    expect(at("$.routes[1].id")).toEqual([expect.stringContaining('duplicate id "a"')]);
    expect(at("$.routes[1].price")).toEqual([expect.stringContaining("more precision")]);
    expect(at("$.routes[2].match")).toEqual([expect.stringContaining('"*" may only be the last segment')]);
    expect(at("$.routes[3].match")).toEqual([expect.stringContaining("same requests as routes[0]")]);
    expect(at("$.routes[4].asset")).toEqual([expect.stringContaining('unknown asset "nope"')]);
    expect(at("$.routes[5].price")).toEqual([expect.stringContaining("not a plain decimal")]);
    expect(at("$.routes[6].access")).toEqual([expect.stringContaining("free route")]);
    expect(at("$.routes[7].match")).toEqual([expect.stringContaining("not canonical")]);
    expect(at("$.routes[8]")).toEqual([expect.stringContaining('exactly one of "price" or "accepts"')]);
  });

  it("reports shape errors with paths, including typos in field names", () => {
    const result = compilePricing(
      { version: 2, routes: [{ id: "x", match: "/x", prise: "$1" }], defaults: { payTo: "0x12" } },
      "v",
      fallbacks,
    );
    const paths = result.ok ? [] : result.problems.map((p) => p.path);
    expect(paths).toEqual(expect.arrayContaining(["$.version", "$.routes[0]", "$.defaults.payTo"]));
  });

  it("refuses text that is not JSON", () => {
    const result = compilePricingText("{ nope", "v", fallbacks);
    expect(result.ok ? [] : result.problems).toEqual([
      { path: "$", message: expect.stringContaining("not valid JSON") },
    ]);
  });

  it("refuses a network without a known stablecoin unless an asset is named", () => {
    const result = compilePricing(
      {
        version: 1,
        defaults: { payTo: PAY_TO, network: "eip155:999999" },
        routes: [{ id: "a", match: "/a", price: "$1" }],
      },
      "v",
      fallbacks,
    );
    expect(result.ok ? [] : result.problems).toEqual([
      { path: "$.routes[0].price", message: expect.stringContaining("no default stablecoin") },
    ]);
  });
});

describe("paths: how literals compare", () => {
  const compile = (paths: object | undefined, routes: object[]) =>
    compilePricing(
      { version: 1, defaults: { payTo: PAY_TO, network: "eip155:84532" }, ...(paths ? { paths } : {}), routes },
      "v",
      fallbacks,
    );
  const twoCases = [
    { id: "lower", match: "GET /admin/stats", price: "$1" },
    { id: "upper", match: "GET /ADMIN/stats", price: "$2" },
  ];

  it("refuses two rules that differ only by case by default: they price the same requests", () => {
    const result = compile(undefined, twoCases);
    expect(result.ok ? [] : result.problems).toEqual([
      { path: "$.routes[1].match", message: '"GET /ADMIN/stats" matches exactly the same requests as routes[0]' },
    ]);
  });

  it('keeps them apart with "case": "sensitive"', () => {
    const result = compile({ case: "sensitive" }, twoCases);
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.table.paths).toMatchObject({ caseInsensitive: false, refuseSemicolons: true });
  });

  it("refuses unknown path options", () => {
    const result = compile({ case: "upper" }, twoCases.slice(0, 1));
    expect(result.ok ? [] : result.problems.map((p) => p.path)).toEqual(["$.paths.case"]);
  });
});

describe("settle: before (x402 upfront)", () => {
  const compile = (routes: object[]) =>
    compilePricing({ version: 1, defaults: { payTo: PAY_TO, network: "eip155:84532" }, routes }, "v", fallbacks);

  it("marks the route and asks for the upfront flow in its requirements only", () => {
    const result = compile([
      { id: "act", match: "POST /act", price: "$0.01", settle: "before" },
      { id: "read", match: "GET /read", price: "$0.01" },
      { id: "explicit", match: "GET /explicit", price: "$0.01", settle: "after" },
    ]);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const [act, read, explicit] = result.table.routes;
    expect(act?.settleBefore).toBe(true);
    expect(act?.accepts[0]?.extra).toEqual({ name: "USDC", version: "2", paymentFlow: "upfront" });
    expect(read?.settleBefore).toBe(false);
    expect(read?.accepts[0]?.extra).toEqual({ name: "USDC", version: "2" });
    expect(explicit?.settleBefore).toBe(false);
    expect(explicit?.accepts[0]?.extra).toEqual({ name: "USDC", version: "2" });
  });

  it("refuses it on a free route, and any other value", () => {
    const free = compile([{ id: "f", match: "/f", price: "free", settle: "before" }]);
    expect(free.ok ? [] : free.problems).toEqual([
      { path: "$.routes[0].settle", message: "a free route is never settled" },
    ]);
    const other = compile([{ id: "x", match: "/x", price: "$1", settle: "now" }]);
    expect(other.ok ? [] : other.problems.map((p) => p.path)).toEqual(["$.routes[0].settle"]);
  });
});

describe("the fast shape check for plain routes", () => {
  const value = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.constantFrom("$0.01", "free", "GET /a", "/x/:y/*", "r-1.x_2", "", "x".repeat(65), "/".repeat(2049)),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.constant({ amount: "1", asset: "a" }),
    fc.constantFrom(0, 1, 60, 3600, 3601, 31_536_000, 31_536_001, 1.5, -1),
    fc.record({ ttl: fc.constantFrom(0, 1, 60, 31_536_000, 31_536_001, 2.5, "60") }, { requiredKeys: [] }),
    fc.constantFrom({ ttl: 60, extra: 1 }, { ttl: null }, JSON.parse('{"ttl":60,"__proto__":{}}')),
    fc.array(fc.string(), { maxLength: 2 }),
  );
  const key = fc.constantFrom(
    "id",
    "match",
    "price",
    "description",
    "mimeType",
    "access",
    "prise",
    "__proto__",
    "when",
    "maxTimeoutSeconds",
  );
  const routeLike = fc.oneof(
    fc.dictionary(key, value, { maxKeys: 6 }),
    // Each field at and just past its limit.
    fc.record(
      {
        id: fc.constantFrom("a", "b c", "", "x".repeat(64), "x".repeat(65)),
        match: fc.constantFrom("/a", "", "/".repeat(2048), "/".repeat(2049)),
        price: fc.constantFrom("$1", "", "free", 1),
        description: fc.constantFrom("d", "x".repeat(1024), "x".repeat(1025)),
        mimeType: fc.constantFrom("t", "x".repeat(256), "x".repeat(257)),
        access: fc.constantFrom({ ttl: 1 }, { ttl: 31_536_000 }, { ttl: 31_536_001 }, { ttl: 0 }, {}),
        maxTimeoutSeconds: fc.constantFrom(1, 3600, 3601, 0),
      },
      { requiredKeys: [] },
    ),
    fc.constantFrom(null, [], "route", 3),
  );

  it("vouches only for routes the schema accepts (zod stays the authority)", () => {
    fc.assert(
      fc.property(routeLike, (route) => {
        // Through JSON, as a document arrives from KV (so "__proto__" is an own key).
        const parsed = JSON.parse(JSON.stringify(route));
        if (isPlainRoute(parsed)) {
          expect(PricingDocumentSchema.safeParse({ version: 1, routes: [parsed] }).success).toBe(true);
        }
      }),
      { numRuns: 5000 },
    );
  });

  // Not vacuous, for every seed: each generated route is in the common shape and within every
  // bound, so the fast check must vouch for it, and zod must agree. (A count of vouched routes
  // from the generator above would depend on the seed.)
  const plainRoute = fc.record(
    {
      id: fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/),
      match: fc.constantFrom("/a", "GET /a/:b/*", "/".repeat(2048)),
      price: fc.constantFrom("$1", "free", "$0.000001"),
      description: fc.constantFrom("", "d", "x".repeat(1024)),
      mimeType: fc.constantFrom("", "t", "x".repeat(256)),
      access: fc.record({ ttl: fc.integer({ min: 1, max: 31_536_000 }) }),
      maxTimeoutSeconds: fc.integer({ min: 1, max: 3600 }),
    },
    { requiredKeys: ["id", "match", "price"] },
  );

  it("vouches for every route in the common shape within its bounds", () => {
    fc.assert(
      fc.property(plainRoute, (route) => {
        const parsed = JSON.parse(JSON.stringify(route));
        expect(isPlainRoute(parsed)).toBe(true);
        expect(PricingDocumentSchema.safeParse({ version: 1, routes: [parsed] }).success).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it("sends every other route through zod, with its path", () => {
    const result = compilePricing(
      {
        version: 1,
        defaults: { payTo: PAY_TO, network: "eip155:84532" },
        routes: [
          { id: "a", match: "/a", price: "$1" },
          JSON.parse('{"id":"b","match":"/b","price":"$1","__proto__":{"x":1}}'),
          { id: "c", match: "/c", price: "$1", description: 5 },
        ],
      },
      "v",
      fallbacks,
    );
    expect(result.ok ? [] : result.problems.map((p) => p.path)).toEqual(["$.routes[1]", "$.routes[2].description"]);
  });
});
