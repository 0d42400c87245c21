/**
 * `npm run pricing` against a real local KV store through wrangler (--local with a private
 * --persist-to directory): exit codes, messages, and what ends up in KV.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diffTables } from "../../scripts/pricing.ts";
import { explainWranglerError } from "../../scripts/wrangler-call.ts";
import { compilePricing, type PricingTable } from "../../src/pricing/document.ts";
import { startFacilitator } from "../support/loopback.ts";

const exec = promisify(execFile);
/** The CLI runs as a stranger would: no Cloudflare credentials inherited from whoever runs the tests. */
const withoutCredentials = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => {
  const copy = { ...env };
  for (const name of ["CLOUDFLARE_API_TOKEN", "CLOUDFLARE_API_KEY", "CLOUDFLARE_EMAIL", "CLOUDFLARE_ACCOUNT_ID"])
    delete copy[name];
  return copy;
};
let dir: string;
let kv: string[];

/** Runs the CLI; a last argument that is an object sets environment variables for it. */
async function cli(...args: (string | Record<string, string>)[]): Promise<{ code: number; out: string; err: string }> {
  const extra = typeof args.at(-1) === "object" ? (args.pop() as Record<string, string>) : {};
  try {
    const { stdout, stderr } = await exec(process.execPath, ["scripts/pricing.ts", ...(args as string[])], {
      env: { ...withoutCredentials(process.env), CI: "true", ...extra },
    });
    return { code: 0, out: stdout, err: stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout, err: e.stderr };
  }
}

const doc = (weatherPrice: string, extra: object[] = []) =>
  JSON.stringify({
    $schema: "./pricing.schema.json",
    version: 1,
    defaults: { network: "eip155:84532", payTo: "0x90F79bf6EB2c4f870365E785982E1f101E93b906" },
    routes: [
      { id: "weather", match: "GET /api/weather/:city", price: weatherPrice },
      { id: "reports", match: "/reports/*", price: "$0.05" },
      ...extra,
    ],
  });

afterAll(() => rm(dir, { recursive: true, force: true }));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pricing-cli-"));
  kv = ["--local", "--persist-to", join(dir, "state")];
  await writeFile(join(dir, "v1.json"), doc("$0.001"));
  await writeFile(
    join(dir, "v2.json"),
    doc("$0.002", [{ id: "health", match: "/health", price: "free" }]).replace(/,\s*\{"id":"reports"[^}]*\}/, ""),
  );
  await writeFile(join(dir, "bad.json"), doc("$1,000", [{ id: "weather", match: "/b/*/c", price: "$0.0000001" }]));
});

describe("validate", () => {
  it("says a valid document is valid and exits 0", async () => {
    const r = await cli("validate", "--file", join(dir, "v1.json"));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/valid, 2 routes \(version [0-9a-f]{16}\)/);
    expect(r.out).not.toContain("note:");
  });

  it('explains what settle "before" costs, without failing the document', async () => {
    await writeFile(
      join(dir, "upfront.json"),
      doc("$0.001", [{ id: "launch", match: "POST /launch", price: "$0.01", settle: "before" }]),
    );
    const r = await cli("validate", "--file", join(dir, "upfront.json"));
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      'note: launch: settle "before" (x402 upfront): the buyer is charged before the origin runs, so an origin error is paid for',
    );
    expect(r.out.match(/note:/g)).toHaveLength(1);
  });

  it("lists every problem with its JSON path and exits 1", async () => {
    const r = await cli("validate", "--file", join(dir, "bad.json"));
    expect(r.code).toBe(1);
    expect(r.err).toContain("4 problems");
    expect(r.err).toContain('$.routes[0].price: "$1,000" is not a plain decimal amount');
    expect(r.err).toContain('$.routes[2].id: duplicate id "weather"');
    expect(r.err).toContain('$.routes[2].match: "*" may only be the last segment');
    expect(r.err).toContain('$.routes[2].price: "$0.0000001" has more precision than the asset\'s 6 decimals');
  });

  it("answers a usage error with exit 2", async () => {
    expect((await cli("frobnicate")).code).toBe(2);
  });
});

describe("push, pull, diff against local KV", () => {
  it("refuses to push an invalid document and leaves KV untouched", async () => {
    const r = await cli("push", "--file", join(dir, "bad.json"), ...kv);
    expect(r.code).toBe(1);
    expect(r.err).toContain("Not pushed");
    expect((await cli("pull", "--file", join(dir, "pulled.json"), ...kv)).code).toBe(2);
  }, 60_000);

  it("pushes a valid document, and pull gets back exactly the same bytes", async () => {
    expect((await cli("push", "--file", join(dir, "v1.json"), ...kv)).code).toBe(0);
    const pulled = await cli("pull", "--file", join(dir, "pulled.json"), ...kv);
    expect(pulled.code).toBe(0);
    expect(await readFile(join(dir, "pulled.json"), "utf8")).toBe(await readFile(join(dir, "v1.json"), "utf8"));
  }, 60_000);

  it("diffs route by route: added, removed, price changed; none when equal", async () => {
    const same = await cli("diff", "--file", join(dir, "v1.json"), ...kv);
    expect(same.code).toBe(0);
    expect(same.out).toContain("No route-level differences.");
    const changed = await cli("diff", "--file", join(dir, "v2.json"), ...kv);
    expect(changed.code).toBe(1);
    expect(changed.out).toMatch(/^~ weather {2}price: 1000 of .* → 2000 of /m);
    expect(changed.out).toMatch(/^\+ health {2}\/health {2}free$/m);
    expect(changed.out).toMatch(/^- reports {2}\/reports\/\* {2}50000 of /m);
  }, 60_000);
});

describe("diff of dynamic prices", () => {
  const table = (routes: object[]): PricingTable => {
    const compiled = compilePricing(JSON.parse(doc("$0.001", routes)), "v", { network: undefined, payTo: undefined });
    if (!compiled.ok) throw new Error(JSON.stringify(compiled.problems));
    return compiled.table;
  };

  it("shows changed conditions and unit prices", () => {
    const before = table([
      { id: "big", match: "POST /infer", when: { body: { service: "llm-70b" } }, price: "$0.01" },
      { id: "batch", match: "GET /batch", price: "$0.001", per: { query: "count", min: 1, max: 10 } },
    ]);
    const after = table([
      { id: "big", match: "POST /infer", when: { body: { service: ["llm-70b", "llm-70b-fast"] } }, price: "$0.01" },
      { id: "batch", match: "GET /batch", price: "$0.001", per: { query: "count", min: 1, max: 50 } },
      { id: "small", match: "POST /infer", when: { body: { service: "llm-8b" } }, price: "$0.002" },
    ]);
    expect(diffTables(before, after)).toEqual([
      '~ big  when: body.service="llm-70b" → body.service="llm-70b"|"llm-70b-fast"',
      expect.stringMatching(
        /^~ batch {2}price: 1000 of .* per query\.count \(1-10\) → 1000 of .* per query\.count \(1-50\)$/,
      ),
      expect.stringMatching(/^\+ small {2}POST \/infer {2}when body\.service="llm-8b" {2}2000 of /),
    ]);
  });
});

describe("wrangler failures become instructions", () => {
  it.each([
    ["In a non-interactive environment, it's necessary to set a CLOUDFLARE_API_TOKEN", "not logged in"],
    ["You are not authenticated. Please run `wrangler login`.", "not logged in"],
    ['No namespace ID found for binding "PRICING"', "No KV namespace is bound as PRICING"],
    ["TypeError: fetch failed", "could not be reached"],
  ])("%s", (output, advice) => {
    expect(explainWranglerError(output)).toContain(advice);
  });

  it("explains a remote call without credentials", async () => {
    // No token in the environment and a fresh ./.xdg: wrangler stops at authentication, before
    // any network call or namespace lookup, so exactly one explanation applies.
    const r = await cli("pull", "--file", join(dir, "remote.json"));
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe(
      "wrangler is not logged in to Cloudflare: run `npm run wrangler -- login` (or set CLOUDFLARE_API_TOKEN). Or use --local for the local store.",
    );
  }, 60_000);
});

describe("warnings for prices default buyers skip", () => {
  it("names each route above the official clients' default caps, and an asset they do not know", async () => {
    await writeFile(
      join(dir, "caps.json"),
      JSON.stringify({
        version: 1,
        defaults: { network: "eip155:84532", payTo: "0x90F79bf6EB2c4f870365E785982E1f101E93b906" },
        assets: {
          t: {
            network: "eip155:84532",
            address: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            decimals: 6,
            eip712: { name: "T", version: "1" },
          },
        },
        routes: [
          { id: "cheap", match: "/cheap", price: "$0.01" },
          { id: "pricey", match: "/pricey", price: "$2.50" },
          { id: "middling", match: "/middling", price: "$0.50" },
          { id: "batch", match: "GET /batch", price: "$0.02", per: { query: "n", min: 1, max: 100 } },
          { id: "own-token", match: "/own", price: { amount: "1", asset: "t" } },
        ],
      }),
    );
    const r = await cli("validate", "--file", join(dir, "caps.json"));
    expect(r.code).toBe(0);
    const warnings = r.out.split("\n").filter((l) => l.includes("warning:"));
    expect(warnings).toEqual([
      expect.stringContaining(
        'pricey: up to $2.5 per payment, above the $1 @x402/fetch pays unasked: buyers must raise it, x402Client.setSpendControls({ maxAmountPerPayment: "$3" })',
      ),
      expect.stringContaining("middling: up to $0.5 per payment, above the $0.1 x402-fetch (v1) pays unasked"),
      expect.stringContaining(
        "batch: up to $2 (0.02 per query.n (up to 100)) per payment, above the $1 @x402/fetch pays unasked",
      ),
      expect.stringContaining(
        "own-token: pays in 0x5FbDB2315678afecb367f032d93F642f64180aa3 on eip155:84532, which @x402/fetch refuses unless the buyer allows it",
      ),
    ]);
  });
});

describe("validate --facilitators", () => {
  let facilitator: { port: number; close: () => Promise<void> };
  beforeAll(async () => {
    facilitator = await startFacilitator();
  });
  afterAll(() => facilitator.close());
  const script = (supported: object[]) =>
    fetch(`http://127.0.0.1:${facilitator.port}/__test/script`, {
      method: "POST",
      body: JSON.stringify({ supported }),
    });

  it("lists what each facilitator supports and exits 0 when every requirement has one", async () => {
    await script([
      { x402Version: 2, scheme: "exact", network: "eip155:84532" },
      { x402Version: 1, scheme: "exact", network: "base-sepolia" },
    ]);
    const r = await cli("validate", "--file", join(dir, "v1.json"), "--facilitators", {
      FACILITATOR_URL: `http://127.0.0.1:${facilitator.port}`,
    });
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      `facilitator default (http://127.0.0.1:${facilitator.port}): supports base-sepolia exact 1, eip155:84532 exact 2`,
    );
    expect(r.out).not.toContain("unsupported:");
  }, 60_000);

  it("names the routes no facilitator settles and exits 1", async () => {
    await script([{ x402Version: 2, scheme: "exact", network: "eip155:8453" }]);
    const r = await cli("validate", "--file", join(dir, "v1.json"), "--facilitators", {
      FACILITATOR_URL: `http://127.0.0.1:${facilitator.port}`,
    });
    expect(r.code).toBe(1);
    expect(r.out).toContain(
      "unsupported: exact on eip155:84532 (x402 v2): no configured facilitator lists it in /supported; routes weather, reports",
    );
    expect(r.out).toContain("unsupported: exact on eip155:84532 (x402 v1)");
  }, 60_000);

  it("explains a facilitator list it cannot use", async () => {
    const r = await cli("validate", "--file", join(dir, "v1.json"), "--facilitators", {
      FACILITATOR_URL: "",
      FACILITATORS: '[{"name":"a","url":"https://x.example","auth":"cdp"}]',
    });
    expect(r.code).toBe(2);
    expect(r.err).toContain("facilitators: CDP_API_KEY_ID must be set");
  }, 60_000);
});
