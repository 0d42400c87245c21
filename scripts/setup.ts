/**
 * `npm run setup [-- --dry-run] [--config wrangler.toml] [--pricing pricing.json]`
 *
 * Gets a clone ready for `wrangler deploy` on the owner's Cloudflare account:
 * 1. validates the pricing document (the Worker's own validator) and what it pays to: a real-money
 *    route paying a test account whose key is public is refused before anything changes;
 * 2. finds or creates each KV namespace (titled `<worker>-<binding>`) and writes its id into the
 *    config, leaving every other byte of it as it was; an id already there is kept, and one the
 *    account does not have stops setup rather than being overwritten;
 * 3. pushes the pricing document to KV PRICING/pricing;
 * 4. prints the `wrangler secret put` commands still needed and what to fix before deploying.
 * The Durable Object and the rate limiter need no creating: deploy makes them from wrangler.toml.
 * Without a Cloudflare login (or with --dry-run) it prints the plan and changes nothing.
 * Running it again is safe: it finds what it created. Exit codes: 0 done (or planned, with
 * --dry-run), 1 the pricing document or its payees are refused, 2 wrangler or Cloudflare failed
 * (not logged in included).
 */
import { readFile, writeFile } from "node:fs/promises";
import { relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { contentHash } from "../src/pricing/hash.ts";
import { account } from "../stack/accounts.ts";
import { SOLANA_ROLE, type SolanaRole, solanaSigner } from "../stack/solana.ts";
import { validateText } from "./pricing.ts";
import {
  type Finding,
  type Namespace,
  type NamespaceStep,
  planNamespaces,
  readiness,
  readWorkerConfig,
  type SecretNeed,
  secretsNeeded,
  type WorkerConfig,
  withNamespaceIds,
} from "./setup-plan.ts";
import { callWrangler, NOT_LOGGED_IN, WranglerError } from "./wrangler-call.ts";
import { ROOT } from "./wrangler-env.ts";

const USAGE = "usage: npm run setup [-- --dry-run] [--config wrangler.toml] [--pricing pricing.json]";
/** anvil's public test mnemonic: its first accounts are what the local stack and examples pay to. */
const TEST_ACCOUNTS = 20;

export async function main(argv: string[]): Promise<number> {
  let options: ReturnType<typeof parse>;
  try {
    options = parse(argv);
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { configFile, pricingFile, dryRun } = options;
  const toml = await readFile(configFile, "utf8").catch(() => undefined);
  const pricing = await readFile(pricingFile, "utf8").catch(() => undefined);
  if (toml === undefined || pricing === undefined) {
    console.error(`${shown(toml === undefined ? configFile : pricingFile)}: cannot read it`);
    return 2;
  }
  const config = readWorkerConfig(toml);
  const checked = validateText(pricing, config.vars);
  if (!checked.ok) {
    console.error(`${shown(pricingFile)}: ${checked.problems.length} problem(s); nothing was set up.`);
    for (const p of checked.problems) console.error(`  ${p.path}: ${p.message}`);
    return 1;
  }
  const accounts = await testAccounts();
  const refused = readiness(config, checked.table, accounts).filter((f) => f.level === "refuse");
  if (refused.length > 0) {
    for (const f of refused) console.error(`refused: ${f.text}`);
    console.error("Nothing was set up.");
    return 1;
  }
  const wrangler = (args: string[]) => callWrangler([...args, "--config", configFile]);

  let existing: Namespace[] | undefined;
  let loginProblem: string | undefined;
  try {
    existing = parseNamespaceList(await wrangler(["kv", "namespace", "list"]));
  } catch (error) {
    if (!(error instanceof WranglerError)) throw error;
    if (!error.notLoggedIn) {
      console.error(error.message);
      return 2;
    }
    loginProblem = NOT_LOGGED_IN;
  }
  const steps = planNamespaces(config, existing);
  const secretsSet = existing ? await secretNames(wrangler) : undefined;
  const findings = readiness(config, checked.table, accounts, secretsSet);
  const version = await contentHash(pricing);

  console.log(`Setup of Worker "${config.name}" (${shown(configFile)}), prices from ${shown(pricingFile)}:`);
  for (const line of describePlan(config, steps, checked.table.routes.length, version, shown(pricingFile)))
    console.log(`  ${line}`);

  const missing = steps.filter((s) => s.action === "missing");
  if (missing.length > 0) {
    for (const s of missing) {
      console.error(
        `${s.binding}: ${shown(configFile)} names KV namespace ${s.id}, which this Cloudflare account does not have. Put the right id there, or 00000000000000000000000000000000 to let setup find or create "${config.name}-${s.binding}".`,
      );
    }
    console.error("Nothing was set up.");
    return 2;
  }
  if (loginProblem || dryRun) {
    printSecrets(secretsNeeded(config.vars), secretsSet);
    printFindings(findings);
    if (loginProblem) {
      console.error(`\n${loginProblem}, then run \`npm run setup\` again. Nothing was changed.`);
      return dryRun ? 0 : 2;
    }
    console.log("\nDry run: nothing was changed.");
    return 0;
  }

  try {
    const ids: Record<string, string> = {};
    for (const step of steps) {
      if (step.action === "create") {
        await wrangler(["kv", "namespace", "create", step.title]);
        console.log(`Created KV namespace "${step.title}".`);
      }
    }
    // The ids come from the account, not from create's printed snippet (whose wording may change).
    const now = steps.some((s) => s.action === "create")
      ? parseNamespaceList(await wrangler(["kv", "namespace", "list"]))
      : (existing ?? []);
    for (const step of steps) {
      if (step.action === "keep") continue;
      const id = step.action === "use" ? step.id : now.find((n) => "title" in step && n.title === step.title)?.id;
      if (!id) throw new WranglerError(`KV namespace for ${step.binding} was created but is not listed yet`, false);
      ids[step.binding] = id;
    }
    if (Object.keys(ids).length > 0) {
      await writeFile(configFile, withNamespaceIds(toml, ids));
      console.log(`Wrote ${Object.keys(ids).join(" and ")} ids into ${shown(configFile)}.`);
    }
    await wrangler(["kv", "key", "put", "--binding", "PRICING", "pricing", "--path", pricingFile, "--remote"]);
    console.log(`Pushed ${shown(pricingFile)} to KV PRICING/pricing (version ${version}).`);
  } catch (error) {
    if (!(error instanceof WranglerError)) throw error;
    console.error(`${error.message}\nSetup stopped; running it again picks up where it stopped.`);
    return 2;
  }
  printSecrets(secretsNeeded(config.vars), secretsSet);
  printFindings(findings);
  console.log(
    `\nThen deploy: npm run wrangler -- deploy${configFile === resolve(ROOT, "wrangler.toml") ? "" : ` --config ${shown(configFile)}`}`,
  );
  return 0;
}

function describePlan(
  config: WorkerConfig,
  steps: NamespaceStep[],
  routes: number,
  version: string,
  pricingFile: string,
): string[] {
  const lines = steps.map(describeStep);
  for (const d of config.durableObjects) {
    lines.push(`Durable Object ${d.name} (${d.className}): nothing to create, deploy makes it from the migration`);
  }
  for (const r of config.rateLimits) {
    const limit = r.limit ? `${r.limit} per ${r.period} s per client and per payer, per location` : "as configured";
    lines.push(
      `Rate limit ${r.name}: ${limit}; nothing to create (namespace_id ${r.namespaceId} must not be used by another rate limit in the account)`,
    );
  }
  lines.push(`Pricing: push ${pricingFile} (${routes} routes, version ${version}) to KV PRICING/pricing`);
  return lines;
}

function describeStep(s: NamespaceStep): string {
  const head = `KV ${s.binding}:`;
  switch (s.action) {
    case "keep":
      return `${head} keep namespace ${s.id} (already in the config)`;
    case "use":
      return `${head} use the existing namespace "${s.title}" (${s.id}) and write its id into the config`;
    case "create":
      return `${head} create namespace "${s.title}" and write its id into the config`;
    case "missing":
      return `${head} namespace ${s.id} is not in this account`;
    case "unchecked":
      return s.id
        ? `${head} keep namespace ${s.id} (not checked: not logged in)`
        : `${head} find or create namespace "${s.title}" and write its id into the config`;
  }
}

function printSecrets(needs: SecretNeed[], set: ReadonlySet<string> | undefined): void {
  console.log("\nSecrets (`npm run wrangler -- secret put NAME` asks for the value; never put them in wrangler.toml):");
  for (const need of needs) {
    const state = set === undefined ? "" : set.has(need.name) ? " [set]" : " [not set]";
    const todo = set?.has(need.name) ? "" : `npm run wrangler -- secret put ${need.name}`;
    console.log(
      `  ${need.required ? "required" : "optional"}: ${need.name}${state}: ${need.why}${todo ? `\n      ${todo}` : ""}`,
    );
  }
}

function printFindings(findings: Finding[]): void {
  if (findings.length === 0) return;
  console.log("\nBefore taking real money:");
  for (const f of findings) console.log(`  ${f.level}: ${f.text}`);
}

/** `wrangler kv namespace list` prints the account's namespaces as JSON. */
export function parseNamespaceList(stdout: string): Namespace[] {
  const start = stdout.indexOf("[");
  let list: unknown;
  try {
    list = JSON.parse(stdout.slice(start));
  } catch {
    list = undefined;
  }
  if (start < 0 || !Array.isArray(list)) {
    throw new WranglerError(`wrangler kv namespace list printed no list:\n${stdout.slice(0, 500)}`, false);
  }
  return list.flatMap((n) =>
    n && typeof n.id === "string" && typeof n.title === "string" ? [{ id: n.id, title: n.title }] : [],
  );
}

/** The Worker's secret names, or undefined before its first deploy (or when they cannot be listed). */
async function secretNames(wrangler: (args: string[]) => Promise<string>): Promise<Set<string> | undefined> {
  try {
    const stdout = await wrangler(["secret", "list", "--format", "json"]);
    const list: unknown = JSON.parse(stdout.slice(stdout.indexOf("[")));
    if (!Array.isArray(list)) return undefined;
    return new Set(list.flatMap((s) => (typeof s?.name === "string" ? [s.name] : [])));
  } catch {
    return undefined;
  }
}

/** Keys anyone can use: anvil's mnemonic and the local Solana's fixed seeds (stack/solana.ts). */
async function testAccounts(): Promise<Map<string, string>> {
  const known = new Map<string, string>(
    Array.from({ length: TEST_ACCOUNTS }, (_, i) => [account(i).address.toLowerCase(), `anvil's test account #${i}`]),
  );
  for (const role of Object.keys(SOLANA_ROLE) as SolanaRole[]) {
    known.set((await solanaSigner(role)).address, `the local Solana's ${role} key`);
  }
  return known;
}

function shown(file: string): string {
  const rel = relative(process.env.INIT_CWD ?? process.cwd(), file);
  return rel.startsWith("..") ? file : rel;
}

function parse(argv: string[]) {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "dry-run": { type: "boolean", default: false },
      config: { type: "string", default: "wrangler.toml" },
      pricing: { type: "string", default: "pricing.json" },
    },
  });
  if (positionals.length > 0) throw new Error(`unexpected argument: ${positionals.join(" ")}`);
  const cwd = process.env.INIT_CWD ?? process.cwd();
  return {
    dryRun: values["dry-run"],
    configFile: resolve(cwd, values.config),
    pricingFile: resolve(cwd, values.pricing),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exit(await main(process.argv.slice(2)));
}
