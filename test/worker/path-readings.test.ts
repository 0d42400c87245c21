/**
 * Paths as origins read them (src/pricing/path-readings.ts), through the Worker with real KV: each
 * class is matched or refused by default, and relaxed by the pricing document's `paths` option for
 * an owner whose origin is strict. The frameworks' own behaviour is measured in
 * test/raw/origin-paths.test.ts.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { amountOf, call, originLog, PAY_TO, resetServers, setPricing } from "./helpers.ts";

const routes = [
  { id: "admin", match: "GET /admin/stats", price: "$0.002" },
  { id: "weather", match: "GET /api/weather/:city", price: "$0.001" },
  { id: "reports", match: "/Reports/*", price: "$0.05" },
  { id: "public", match: "/public/*", price: "free" },
];
const doc = (paths?: object) => ({
  version: 1,
  defaults: { network: "eip155:84532", payTo: PAY_TO, unmatched: "free" },
  ...(paths ? { paths } : {}),
  routes,
});

beforeEach(async () => {
  await resetServers();
});

describe("by default", () => {
  beforeEach(() => setPricing(doc()));

  it.each([
    ["upper case", "/ADMIN/STATS", "2000"],
    ["title case", "/Admin/Stats", "2000"],
    ["one trailing slash", "/Admin/Stats/", "2000"],
    ["a literal written in upper case in the document, requested in lower case", "/reports/q1", "50000"],
    ["case in a parameter kept as it is", "/API/Weather/PARIS", "1000"],
    ["a format suffix (Rails)", "/admin/stats.json", "2000"],
    ["a format suffix in upper case", "/ADMIN/STATS.XML", "2000"],
    // Found by the fuzzer (seed 1): Fastify serves /api/weather/ from /api/weather/:city, city "".
    ["a parameter left empty by a trailing slash (Fastify)", "/api/weather/", "1000"],
    ["… in upper case", "/API/Weather/", "1000"],
  ])("prices %s as the rule it spells", async (_name, path, amount) => {
    const res = await call(path);
    expect(res.status).toBe(402);
    expect(amountOf(res)).toBe(amount);
    expect(await originLog()).toEqual([]);
  });

  it.each([
    ["a ; parameter (Tomcat, Spring)", "/admin/stats;jsessionid=1", "path_parameter"],
    ["a ; parameter in a free area", "/public/a;b", "path_parameter"],
    ["Tomcat's /..;/ traversal", "/public/..;/admin/stats", "path_parameter"],
    ["a trailing dot (IIS)", "/admin/stats.", "trailing_dot_or_space"],
    ["a trailing dot inside", "/admin./stats", "trailing_dot_or_space"],
    ["a trailing encoded space (IIS)", "/admin/stats%20", "trailing_dot_or_space"],
  ])("refuses %s with 400 non_canonical_path", async (_name, path, problem) => {
    const res = await call(path);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "non_canonical_path", detail: problem });
    expect(await originLog()).toEqual([]);
  });

  it("forwards the path as spelled, and leaves a free path with a dot alone", async () => {
    expect((await call("/public/app.js")).status).toBe(200);
    expect((await call("/PUBLIC/App.JS")).status).toBe(200);
    expect((await originLog()).map((r) => r.url)).toEqual(["/base/public/app.js", "/base/PUBLIC/App.JS"]);
  });
});

describe("relaxed for a strict origin", () => {
  it('"case": "sensitive": an upper-case spelling is another path', async () => {
    await setPricing(doc({ case: "sensitive" }));
    expect((await call("/ADMIN/STATS")).status).toBe(200);
    expect((await call("/reports/q1")).status).toBe(200); // the document wrote /Reports
    const priced = await call("/Reports/q1");
    expect(priced.status).toBe(402);
    expect((await originLog()).map((r) => r.url)).toEqual(["/base/ADMIN/STATS", "/base/reports/q1"]);
  });

  it('"semicolons": "literal": a ; is part of the segment', async () => {
    await setPricing(doc({ semicolons: "literal" }));
    expect((await call("/public/a;b")).status).toBe(200);
    expect((await call("/api/weather/paris;x")).status).toBe(402);
    expect((await originLog()).map((r) => r.url)).toEqual(["/base/public/a;b"]);
  });

  it('"trailingDots": "literal": a trailing dot is part of the segment', async () => {
    await setPricing(doc({ trailingDots: "literal" }));
    expect((await call("/admin/stats.")).status).toBe(200);
    expect((await originLog()).map((r) => r.url)).toEqual(["/base/admin/stats."]);
  });

  it('"formatSuffix": "literal": /admin/stats.json is another path', async () => {
    await setPricing(doc({ formatSuffix: "literal" }));
    expect((await call("/admin/stats.json")).status).toBe(200);
    expect((await originLog()).map((r) => r.url)).toEqual(["/base/admin/stats.json"]);
  });
});
