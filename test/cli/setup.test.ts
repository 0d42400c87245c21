/**
 * `npm run setup`: the plan, the config it writes, and a real run of it — the real wrangler
 * against a loopback stand-in of the Cloudflare API (Cloudflare itself is remote) — ending with
 * `wrangler deploy --dry-run` of the config it wrote. No run here touches the repo's own files.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  isPlaceholderId,
  planNamespaces,
  readiness,
  readWorkerConfig,
  secretsNeeded,
  withNamespaceIds,
} from "../../scripts/setup-plan.ts";
import { compilePricing, type PricingTable } from "../../src/pricing/document.ts";
import { account } from "../../stack/accounts.ts";
import { solanaSigner } from "../../stack/solana.ts";
import { WRANGLER_BIN } from "../../stack/wrangler-bin.ts";
import { type CloudflareStandIn, startCloudflareStandIn } from "../support/cloudflare-api-stand-in.ts";

const exec = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const REPO_TOML = await readFile(join(ROOT, "wrangler.toml"), "utf8");
const REPO_PRICING = await readFile(join(ROOT, "pricing.json"), "utf8");
const ANVIL = new Map(
  Array.from({ length: 20 }, (_, i) => [account(i).address.toLowerCase(), `anvil's test account #${i}`]),
);
const MERCHANT = "0x1111111111111111111111111111111111111111";
const PRICING_ID = "5f0a1b2c3d4e5f60718293a4b5c6d7e8";
const RECEIPTS_ID = "0a9b8c7d6e5f40312233445566778899";

const withoutCredentials = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => {
  const copy = { ...env };
  for (const name of Object.keys(copy)) if (name.startsWith("CLOUDFLARE_")) delete copy[name];
  return copy;
};

async function setup(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await exec(process.execPath, [join(ROOT, "scripts/setup.ts"), ...args], {
      cwd: ROOT,
      env: { ...withoutCredentials(process.env), CI: "true", ...env },
    });
    return { code: 0, out: stdout, err: stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout, err: e.stderr };
  }
}

function table(doc: object): PricingTable {
  const compiled = compilePricing(doc, "v", { network: undefined, payTo: undefined });
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.problems));
  return compiled.table;
}

const mainnetDoc = (payTo: string) => ({
  version: 1,
  defaults: { network: "eip155:8453", payTo },
  routes: [{ id: "weather", match: "GET /api/weather/:city", price: "$0.001" }],
});

/** wrangler.toml as an owner going live would have it: public origin, CDP for Base, PayAI after it. */
const liveToml = REPO_TOML.replace('ORIGIN_URL = "http://127.0.0.1:8788"', 'ORIGIN_URL = "https://api.example.com"')
  .replace(
    'FACILITATOR_URL = "http://127.0.0.1:8789"',
    `FACILITATORS = '[{"name":"cdp","url":"https://api.cdp.coinbase.com/platform/v2/x402","networks":["eip155:8453"],"auth":"cdp"},{"name":"payai","url":"https://facilitator.payai.network"}]'`,
  )
  .replace('PAY_TO = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"', `PAY_TO = "${MERCHANT}"`)
  .replace('NETWORK = "eip155:84532"', 'NETWORK = "eip155:8453"');

describe("reading wrangler.toml", () => {
  it("finds the worker, its KV placeholders, the ledger and the rate limit in the repo's own file", () => {
    const config = readWorkerConfig(REPO_TOML);
    expect(config.name).toBe("x402-edge-paywall");
    expect(config.kv).toEqual([
      { binding: "PRICING", id: "00000000000000000000000000000000" },
      { binding: "RECEIPTS", id: "00000000000000000000000000000001" },
    ]);
    expect(config.kv.every((k) => isPlaceholderId(k.id))).toBe(true);
    expect(config.durableObjects).toEqual([
      { name: "LEDGER", className: "PaymentLedger" },
      { name: "CHANNELS", className: "PaymentChannel" },
      { name: "CHANNEL_BOOKS", className: "ChannelBook" },
    ]);
    expect(config.rateLimits).toEqual([{ name: "PAYMENT_RATE_LIMIT", namespaceId: "1001", limit: "60", period: "60" }]);
    expect(config.vars.ORIGIN_URL).toBe("http://127.0.0.1:8788");
  });

  it("reads a FACILITATORS list written as a literal string", () => {
    expect(JSON.parse(readWorkerConfig(liveToml).vars.FACILITATORS ?? "")).toHaveLength(2);
  });
});

describe("the namespace plan", () => {
  const config = readWorkerConfig(REPO_TOML);

  it("finds a namespace by its title, creates the other, and creates nothing when the ids are there", () => {
    const existing = [{ id: PRICING_ID, title: "x402-edge-paywall-PRICING" }];
    expect(planNamespaces(config, existing)).toEqual([
      { binding: "PRICING", action: "use", id: PRICING_ID, title: "x402-edge-paywall-PRICING" },
      { binding: "RECEIPTS", action: "create", title: "x402-edge-paywall-RECEIPTS" },
    ]);
    const written = readWorkerConfig(withNamespaceIds(REPO_TOML, { PRICING: PRICING_ID, RECEIPTS: RECEIPTS_ID }));
    expect(planNamespaces(written, [...existing, { id: RECEIPTS_ID, title: "x402-edge-paywall-RECEIPTS" }])).toEqual([
      { binding: "PRICING", action: "keep", id: PRICING_ID },
      { binding: "RECEIPTS", action: "keep", id: RECEIPTS_ID },
    ]);
  });

  it("never overwrites an id the account does not have, and marks everything unchecked without a login", () => {
    const written = readWorkerConfig(withNamespaceIds(REPO_TOML, { PRICING: PRICING_ID }));
    expect(planNamespaces(written, [])[0]).toEqual({ binding: "PRICING", action: "missing", id: PRICING_ID });
    expect(planNamespaces(written, undefined).map((s) => s.action)).toEqual(["unchecked", "unchecked"]);
  });
});

describe("the config it writes", () => {
  it("changes exactly the two id lines, and writing the same ids again changes nothing", () => {
    const written = withNamespaceIds(REPO_TOML, { PRICING: PRICING_ID, RECEIPTS: RECEIPTS_ID });
    const before = REPO_TOML.split("\n");
    const after = written.split("\n");
    expect(after).toHaveLength(before.length);
    const changed = after.flatMap((line, i) => (line === before[i] ? [] : [[before[i], line]]));
    expect(changed).toEqual([
      ['id = "00000000000000000000000000000000"', `id = "${PRICING_ID}"`],
      ['id = "00000000000000000000000000000001"', `id = "${RECEIPTS_ID}"`],
    ]);
    expect(withNamespaceIds(written, { PRICING: PRICING_ID, RECEIPTS: RECEIPTS_ID })).toBe(written);
  });

  it("adds an id line to a block that has none, and refuses bindings it does not declare or bad ids", () => {
    const bare = '[[kv_namespaces]]\nbinding = "PRICING"\n\n[vars]\nX = "1"\n';
    expect(withNamespaceIds(bare, { PRICING: PRICING_ID })).toBe(
      `[[kv_namespaces]]\nbinding = "PRICING"\nid = "${PRICING_ID}"\n\n[vars]\nX = "1"\n`,
    );
    expect(() => withNamespaceIds(REPO_TOML, { CACHE: PRICING_ID })).toThrow("declares no KV binding CACHE");
    expect(() => withNamespaceIds(REPO_TOML, { PRICING: 'x"\nmain = "evil.js' })).toThrow("not a KV namespace id");
  });
});

describe("secrets and what to fix before taking real money", () => {
  it("asks for the CDP key pair and each header secret the facilitator list names", () => {
    const vars = {
      FACILITATORS: JSON.stringify([
        { name: "cdp", url: "https://api.cdp.coinbase.com/platform/v2/x402", auth: "cdp" },
        { name: "own", url: "https://x402.example.com", auth: { header: "OWN_TOKEN" } },
      ]),
    };
    expect(secretsNeeded(vars).map((s) => [s.name, s.required])).toEqual([
      ["CDP_API_KEY_ID", true],
      ["CDP_API_KEY_SECRET", true],
      ["OWN_TOKEN", true],
      ["ORIGIN_SHARED_SECRET", false],
      ["CHANNELS_ADMIN_TOKEN", false],
    ]);
    expect(secretsNeeded({ FACILITATOR_URL: "https://f.example" }).map((s) => s.name)).toEqual([
      "FACILITATOR_AUTHORIZATION",
      "ORIGIN_SHARED_SECRET",
      "CHANNELS_ADMIN_TOKEN",
    ]);
  });

  it("the repo as cloned: loopback origin and facilitator to fix, test network and test payee noted", () => {
    const findings = readiness(readWorkerConfig(REPO_TOML), table(JSON.parse(REPO_PRICING)), ANVIL);
    expect(findings.filter((f) => f.level === "fix").map((f) => f.text)).toEqual([
      expect.stringMatching(/^ORIGIN_URL is http:\/\/127\.0\.0\.1:8788, which a deployed Worker cannot reach/),
      expect.stringMatching(/^FACILITATOR_URL \(http:\/\/127\.0\.0\.1:8789\) is on this machine/),
    ]);
    expect(findings.filter((f) => f.level === "refuse")).toEqual([]);
    expect(findings.map((f) => f.text)).toContainEqual(expect.stringContaining("anvil's test account #3"));
  });

  it("refuses a real-money route that pays anvil's test account, or the zero address", () => {
    const config = readWorkerConfig(liveToml);
    for (const payTo of [account(3).address, "0x0000000000000000000000000000000000000000"]) {
      const refused = readiness(config, table(mainnetDoc(payTo)), ANVIL).filter((f) => f.level === "refuse");
      expect(refused).toHaveLength(1);
    }
  });

  it("refuses a Solana mainnet route paying a local Solana key, named as spelled", async () => {
    const seller = (await solanaSigner("seller")).address;
    const known = new Map([...ANVIL, [seller, "the local Solana's seller key"]]);
    const doc = {
      version: 1,
      defaults: { network: "eip155:8453", payTo: { eip155: MERCHANT, solana: seller } },
      routes: [{ id: "sol", match: "GET /sol", price: "$0.001", network: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp" }],
    };
    const refused = readiness(readWorkerConfig(liveToml), table(doc), known).filter((f) => f.level === "refuse");
    expect(refused.map((f) => f.text)).toEqual([
      expect.stringContaining(`payTo ${seller} is the local Solana's seller key; its private key is public`),
    ]);
  });

  it("a configuration ready for Base mainnet has nothing to fix", () => {
    const findings = readiness(
      readWorkerConfig(liveToml),
      table(mainnetDoc(MERCHANT)),
      ANVIL,
      new Set(["ORIGIN_SHARED_SECRET"]),
    );
    expect(findings).toEqual([]);
  });

  /** liveToml with some `[vars]` lines replaced: { FACILITATORS: "FACILITATOR_URL = …" } */
  const varsChanged = (lines: Record<string, string>) =>
    Object.entries(lines).reduce(
      (toml, [name, line]) => toml.replace(new RegExp(`^${name} = .*$`, "m"), line),
      liveToml,
    );

  it.each([
    [
      "x402.org settling mainnet",
      { FACILITATORS: 'FACILITATOR_URL = "https://x402.org/facilitator"' },
      /^FACILITATOR_URL \(https:\/\/x402\.org\/facilitator\) settles on test networks only/,
    ],
    [
      "no facilitator for the network",
      { FACILITATORS: `FACILITATORS = '[{"name":"a","url":"https://f.example","networks":["eip155:84532"]}]'` },
      /^no facilitator is configured for eip155:8453/,
    ],
    [
      "a broken facilitator list",
      { FACILITATORS: `FACILITATORS = '[{"name":"a","url":"ftp://f.example"}]'` },
      /^FACILITATORS\[0\]\.url must be an http\(s\) URL/,
    ],
    ["a private origin", { ORIGIN_URL: 'ORIGIN_URL = "http://10.1.2.3"' }, /^ORIGIN_URL is http:\/\/10\.1\.2\.3/],
    ["no origin at all", { ORIGIN_URL: "" }, /^ORIGIN_URL is not set/],
  ])("%s is the one thing to fix", (_, lines, message) => {
    const findings = readiness(
      readWorkerConfig(varsChanged(lines)),
      table(mainnetDoc(MERCHANT)),
      ANVIL,
      new Set(["ORIGIN_SHARED_SECRET"]),
    );
    expect(findings).toHaveLength(1);
    expect(findings[0]?.level).toBe("fix");
    expect(findings[0]?.text).toMatch(message);
  });
});

describe("npm run setup", () => {
  let dir: string;
  let api: CloudflareStandIn;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "setup-"));
    await writeFile(join(dir, "wrangler.toml"), REPO_TOML);
    await writeFile(join(dir, "pricing.json"), REPO_PRICING);
    // The config's `main = "src/index.ts"` is relative to it: the copy builds the repo's source.
    await symlink(join(ROOT, "src"), join(dir, "src"));
    api = await startCloudflareStandIn();
  });
  afterAll(async () => {
    await api?.close();
    await rm(dir, { recursive: true, force: true });
  });
  const files = () => ["--config", join(dir, "wrangler.toml"), "--pricing", join(dir, "pricing.json")];

  it("without a login: prints the plan, says how to log in, changes nothing (exit 0 with --dry-run, 2 without)", async () => {
    for (const [flags, code] of [
      [["--dry-run"], 0],
      [[], 2],
    ] as const) {
      const r = await setup([...flags, ...files()]);
      expect(r.code).toBe(code);
      expect(r.out).toContain('KV PRICING: find or create namespace "x402-edge-paywall-PRICING"');
      expect(r.out).toContain("Durable Object LEDGER (PaymentLedger): nothing to create");
      expect(r.out).toMatch(/Pricing: push .*pricing\.json \(10 routes, version [0-9a-f]{16}\)/);
      expect(r.out).toContain("npm run wrangler -- secret put ORIGIN_SHARED_SECRET");
      expect(r.out).toContain("fix: ORIGIN_URL is http://127.0.0.1:8788");
      expect(r.err).toContain("wrangler is not logged in to Cloudflare: run `npm run wrangler -- login`");
      expect(r.err).toContain("Nothing was changed.");
    }
    expect(await readFile(join(dir, "wrangler.toml"), "utf8")).toBe(REPO_TOML);
  }, 60_000);

  it("logged in: creates both namespaces, writes their ids, pushes the prices, lists the secrets", async () => {
    const r = await setup(files(), api.env);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(api.unknown).toEqual([]);
    expect(api.namespaces.map((n) => n.title)).toEqual(["x402-edge-paywall-PRICING", "x402-edge-paywall-RECEIPTS"]);
    const config = readWorkerConfig(await readFile(join(dir, "wrangler.toml"), "utf8"));
    expect(config.kv).toEqual(api.namespaces.map((n) => ({ binding: n.title.split("-").at(-1), id: n.id })));
    expect(api.values.get(api.namespaces[0]?.id ?? "")?.get("pricing")).toBe(REPO_PRICING);
    expect(r.out).toContain('Created KV namespace "x402-edge-paywall-PRICING".');
    expect(r.out).toContain("optional: ORIGIN_SHARED_SECRET: sent to the origin");
    expect(r.out).toMatch(/Then deploy: npm run wrangler -- deploy --config .*wrangler\.toml/);
  }, 60_000);

  it("run again: creates nothing, keeps the ids, pushes the prices again, and shows which secrets are set", async () => {
    api.secrets.set("x402-edge-paywall", ["ORIGIN_SHARED_SECRET"]);
    const toml = await readFile(join(dir, "wrangler.toml"), "utf8");
    const before = api.calls.length;
    const r = await setup(files(), api.env);
    expect(r.code).toBe(0);
    expect(api.calls.slice(before).filter((c) => c.method === "POST")).toEqual([]);
    expect(api.namespaces).toHaveLength(2);
    expect(await readFile(join(dir, "wrangler.toml"), "utf8")).toBe(toml);
    expect(r.out).toContain(`KV PRICING: keep namespace ${api.namespaces[0]?.id} (already in the config)`);
    expect(r.out).toContain("ORIGIN_SHARED_SECRET [set]");
    expect(r.out).not.toContain("secret put ORIGIN_SHARED_SECRET");
    expect(r.out).not.toContain("without ORIGIN_SHARED_SECRET");
  }, 60_000);

  it("the config it wrote deploys: wrangler deploy --dry-run binds the new namespaces", async () => {
    const { stdout } = await exec(
      process.execPath,
      [WRANGLER_BIN, "deploy", "--dry-run", "--config", join(dir, "wrangler.toml"), "--outdir", join(dir, "dist")],
      {
        cwd: ROOT,
        env: {
          ...withoutCredentials(process.env),
          WRANGLER_SEND_METRICS: "false",
          XDG_CONFIG_HOME: join(ROOT, ".xdg"),
        },
      },
    );
    for (const n of api.namespaces) {
      expect(stdout).toMatch(new RegExp(`env\\.${n.title.split("-").at(-1)} \\(${n.id}\\)\\s+KV Namespace`));
    }
    expect(stdout).toMatch(/env\.LEDGER \(PaymentLedger\)\s+Durable Object/);
    expect(stdout).toContain("--dry-run: exiting now.");
  }, 120_000);

  it("refuses real-money prices paid to a test account before calling Cloudflare at all", async () => {
    await writeFile(join(dir, "mainnet.json"), JSON.stringify(mainnetDoc(account(3).address)));
    const before = api.calls.length;
    const r = await setup(["--config", join(dir, "wrangler.toml"), "--pricing", join(dir, "mainnet.json")], api.env);
    expect(r.code).toBe(1);
    expect(r.err).toContain("refused: payTo 0x90f79bf6eb2c4f870365e785982e1f101e93b906 is anvil's test account #3");
    expect(api.calls.slice(before)).toEqual([]);
  }, 60_000);

  it("stops, changing nothing, when the config names a namespace the account does not have", async () => {
    const toml = withNamespaceIds(REPO_TOML, { PRICING: PRICING_ID });
    await writeFile(join(dir, "foreign.toml"), toml);
    const r = await setup(["--config", join(dir, "foreign.toml"), "--pricing", join(dir, "pricing.json")], api.env);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`names KV namespace ${PRICING_ID}, which this Cloudflare account does not have`);
    expect(await readFile(join(dir, "foreign.toml"), "utf8")).toBe(toml);
  }, 60_000);

  it("an invalid pricing document stops it with every problem (exit 1)", async () => {
    await writeFile(
      join(dir, "bad.json"),
      JSON.stringify({ version: 1, routes: [{ id: "a", match: "/a", price: "$1,0" }] }),
    );
    const r = await setup(["--dry-run", "--config", join(dir, "wrangler.toml"), "--pricing", join(dir, "bad.json")]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('$.routes[0].price: "$1,0" is not a plain decimal amount');
  }, 60_000);
});
