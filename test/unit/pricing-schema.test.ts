/**
 * pricing.schema.json against the Worker's own validator: every document the schema refuses, the
 * Worker refuses too (an editor never flags a document the Worker would accept), and the shipped
 * examples pass both.
 */
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { compilePricing } from "../../src/pricing/document.ts";

const schema = JSON.parse(readFileSync("pricing.schema.json", "utf8"));
// strictRequired would flag the standard `oneOf: [{required: [price]}, {required: [accepts]}]` idiom.
const validate = new Ajv2020({ allErrors: true, strict: true, strictRequired: false }).compile(schema);
const fallbacks = { network: undefined, payTo: undefined };
const PAY_TO = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const base = { version: 1, defaults: { network: "eip155:84532", payTo: PAY_TO } };
const withRoute = (route: object) => ({ ...base, routes: [{ id: "r", match: "GET /r", ...route }] });

const VALID = [
  JSON.parse(readFileSync("pricing.json", "utf8")),
  JSON.parse(readFileSync("bench/pricing.json", "utf8")),
  withRoute({ price: "$0.001" }),
  withRoute({ price: "free" }),
  withRoute({ price: "$1", access: { ttl: 60 }, maxTimeoutSeconds: 30, description: "d", mimeType: "text/plain" }),
  withRoute({ accepts: [{ price: "$0.01" }, { price: "$0.01", network: "eip155:8453", payTo: PAY_TO }] }),
  withRoute({ price: "$0.01", when: { query: { model: ["a", "b"] }, header: { "X-Tier": "gold" } } }),
  withRoute({ price: "$0.01", when: { body: { service: "llm-70b", stream: true, n: 2 } } }),
  withRoute({ price: "free", when: { body: { service: ["x", 1, false] } } }),
  withRoute({ price: "$0.001", per: { query: "count", min: 1, max: 100 } }),
  withRoute({ price: "$0.01", settle: "before" }),
  withRoute({
    price: "$0.01",
    discovery: { input: { q: "x" }, inputSchema: { properties: {} }, output: { example: { a: 1 } } },
  }),
  {
    ...withRoute({ price: "$0.01" }),
    paths: { case: "sensitive", semicolons: "literal", trailingDots: "literal", formatSuffix: "literal" },
  },
  { ...withRoute({ price: "$0.01" }), paths: {} },
  withRoute({ price: "$0.01", settle: "after", access: { ttl: 60 } }),
  withRoute({ price: "$0.05", scheme: "upto" }),
  withRoute({ price: "$0.05", scheme: "upto", defaultCharge: "25%" }),
  withRoute({ accepts: [{ price: "$0.01" }, { price: "$0.05", scheme: "upto", defaultCharge: "$0.002" }] }),
  withRoute({ price: "$0.001", per: { body: "n", min: 1, max: 100 }, when: { body: { service: "x" } } }),
  {
    ...base,
    assets: { t: { network: "eip155:31337", address: PAY_TO, decimals: 6, eip712: { name: "T", version: "1" } } },
    routes: [{ id: "t", match: "/t/*", price: { amount: "250", asset: "t" } }],
  },
];

const INVALID = [
  { routes: [] },
  { ...base, version: 2, routes: [] },
  { ...base, routes: [{ id: "r", match: "GET /r" }] },
  withRoute({ price: "$1", accepts: [{ price: "$1" }] }),
  withRoute({ price: "$1,000" }),
  withRoute({ price: "$-1" }),
  withRoute({ price: "1.00" }),
  withRoute({ price: { amount: "0", asset: "x" } }),
  withRoute({ price: "$1", prise: "$2" }),
  withRoute({ price: "$1", access: { ttl: 0 } }),
  withRoute({ price: "$1", network: "base" }),
  withRoute({ price: "$1", payTo: "0x1234" }),
  { ...base, routes: [{ id: "bad id!", match: "/r", price: "$1" }] },
  { ...base, routes: [{ id: "r", match: "no-slash", price: "$1" }] },
  { ...base, defaults: { ...base.defaults, unmatched: "maybe" }, routes: [] },
  withRoute({ price: "$1", when: {} }),
  withRoute({ price: "$1", when: { query: {} } }),
  withRoute({ price: "$1", when: { cookie: { a: "b" } } }),
  withRoute({ price: "$1", when: { query: { m: [] } } }),
  withRoute({ price: "$1", when: { query: { m: 1 } } }),
  withRoute({ price: "$1", when: { header: { "bad name": "x" } } }),
  withRoute({ price: "$1", when: { header: { "x-a": "a,b" } } }),
  withRoute({ price: "$1", when: { header: { "x-a": " padded" } } }),
  withRoute({ price: "$1", when: { body: { m: { nested: 1 } } } }),
  withRoute({ price: "$1", per: { query: "n", min: 1 } }),
  withRoute({ price: "$1", per: { min: 1, max: 2 } }),
  withRoute({ price: "$1", per: { query: "n", header: "x-n", min: 1, max: 2 } }),
  withRoute({ price: "$1", per: { query: "n", min: 0, max: 2 } }),
  withRoute({ price: "$1", settle: "first" }),
  withRoute({ price: "$1", discovery: { examples: [] } }),
  withRoute({ price: "$1", discovery: { bodyType: "xml" } }),
  { ...withRoute({ price: "$1" }), paths: { case: "upper" } },
  { ...withRoute({ price: "$1" }), paths: { slashes: "merge" } },
  withRoute({ price: "$1", settle: true }),
  withRoute({ price: "$1", scheme: "deferred" }),
  withRoute({ price: "$1", scheme: "upto", defaultCharge: "a quarter" }),
  withRoute({ price: "$1", scheme: "upto", defaultCharge: "25.001%" }),
  withRoute({ price: "$1", per: { query: "n", min: 1, max: 2.5 } }),
  withRoute({ price: "$1", when: { query: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`f${i}`, "x"])) } }),
];

describe("pricing.schema.json", () => {
  it.each(VALID.map((doc, i) => [i, doc]))("accepts valid document %i, as the Worker does", (_i, doc) => {
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    const compiled = compilePricing(doc, "v", fallbacks);
    expect(compiled.ok, JSON.stringify(compiled.ok ? "" : compiled.problems)).toBe(true);
  });

  it.each(INVALID.map((doc, i) => [i, doc]))("refuses invalid document %i, and so does the Worker", (_i, doc) => {
    expect(validate(doc)).toBe(false);
    expect(compilePricing(doc, "v", fallbacks).ok).toBe(false);
  });

  it("is named by pricing.json, so editors pick it up", () => {
    expect(JSON.parse(readFileSync("pricing.json", "utf8")).$schema).toBe("./pricing.schema.json");
  });
});
