/**
 * `npm run pricing -- validate|push|pull|diff [--file pricing.json] [--local] [--persist-to DIR]`
 *
 * - validate: every problem with its JSON path; exit 1 when there is any. Same code as the Worker.
 *             Then notes and warnings (pricing-checks.ts); with --facilitators, each facilitator's
 *             /supported, exit 1 when a requirement has no facilitator to settle it.
 * - push:     validate, then write the file to KV (PRICING/pricing); an invalid document is refused.
 * - pull:     write what KV holds to the file.
 * - diff:     route-level changes from what KV holds to the file: added, removed, match or price changed.
 * KV access goes through wrangler (`--local` for the local store that `npm run dev` uses, remote
 * otherwise). Exit codes: 0 ok, 1 invalid document or differences found by diff, 2 usage or KV errors.
 */
import { readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { compilePricingText, type PricingTable, type Problem, type RouteRule } from "../src/pricing/document.ts";
import { contentHash } from "../src/pricing/hash.ts";
import { devVars, facilitatorReport, routeNotes, spendWarnings } from "./pricing-checks.ts";
import { callWrangler, WranglerError } from "./wrangler-call.ts";
import { ROOT } from "./wrangler-env.ts";

const USAGE =
  "usage: npm run pricing -- validate|push|pull|diff [--file pricing.json] [--local] [--persist-to DIR] [--facilitators]";

export class KvError extends Error {}

/**
 * Validates JSON text exactly as the Worker does, with the same fallbacks: PAY_TO and NETWORK from
 * wrangler.toml's [vars].
 */
export function validateText(
  text: string,
  vars: Record<string, string> = wranglerVars(),
): { ok: true; table: PricingTable } | { ok: false; problems: Problem[] } {
  const result = compilePricingText(text, "local", {
    network: vars.NETWORK,
    payTo: vars.PAY_TO as `0x${string}` | undefined,
  });
  return result.ok ? { ok: true, table: result.table } : { ok: false, problems: result.problems };
}

/** The simple `KEY = "value"` lines of wrangler.toml's [vars] table (all this CLI needs from it). */
export function wranglerVars(toml = readFileSync(resolve(ROOT, "wrangler.toml"), "utf8")): Record<string, string> {
  const vars: Record<string, string> = {};
  let inVars = false;
  for (const line of toml.split("\n")) {
    const table = /^\s*\[+([^\]]+)\]+/.exec(line);
    if (table) inVars = table[1]?.trim() === "vars";
    // Basic ("…") and literal ('…', used for JSON such as FACILITATORS) TOML strings on one line.
    const pair = inVars ? /^\s*([A-Z_][A-Z0-9_]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/.exec(line) : null;
    const value = pair?.[2] ?? pair?.[3];
    if (pair?.[1] && value !== undefined) vars[pair[1]] = value;
  }
  return vars;
}

interface KvOptions {
  local: boolean;
  persistTo?: string;
}

async function wrangler(args: string[], kv: KvOptions): Promise<string> {
  const where = kv.local ? ["--local", ...(kv.persistTo ? ["--persist-to", kv.persistTo] : [])] : ["--remote"];
  try {
    return await callWrangler([...args, ...where]);
  } catch (error) {
    if (!(error instanceof WranglerError)) throw error;
    // The local store needs no login and no network: say how to use it instead.
    const hint =
      error.notLoggedIn || /could not be reached/.test(error.message) ? " Or use --local for the local store." : "";
    throw new KvError(`${error.message}${hint}`);
  }
}

export async function readKv(kv: KvOptions): Promise<string | undefined> {
  // `kv key get` prints the value; a missing key is reported as "Value not found".
  try {
    const stdout = await wrangler(["kv", "key", "get", "--binding", "PRICING", "pricing", "--text"], kv);
    if (/^Value not found/m.test(stdout) || stdout.trim() === "") return undefined;
    // wrangler prints the value followed by one newline of its own.
    return stdout.endsWith("\n") ? stdout.slice(0, -1) : stdout;
  } catch (error) {
    if (/Value not found/.test((error as Error).message)) return undefined;
    throw error;
  }
}

export async function writeKv(file: string, kv: KvOptions): Promise<void> {
  await wrangler(["kv", "key", "put", "--binding", "PRICING", "pricing", "--path", file], kv);
}

/** Route-level differences between two compiled tables, keyed by route id. */
export function diffTables(before: PricingTable | undefined, after: PricingTable): string[] {
  const old = new Map((before?.routes ?? []).map((r) => [r.id, r]));
  const now = new Map(after.routes.map((r) => [r.id, r]));
  const lines: string[] = [];
  for (const [id, route] of now) {
    const was = old.get(id);
    if (!was) lines.push(`+ ${id}  ${route.match}${describeWhen(route, "  when ")}  ${describePrice(route)}`);
    else {
      if (was.match !== route.match) lines.push(`~ ${id}  match: ${was.match} → ${route.match}`);
      if (describePrice(was) !== describePrice(route))
        lines.push(`~ ${id}  price: ${describePrice(was)} → ${describePrice(route)}`);
      if (describeWhen(was) !== describeWhen(route))
        lines.push(`~ ${id}  when: ${describeWhen(was) || "always"} → ${describeWhen(route) || "always"}`);
      if (was.accessTtlSeconds !== route.accessTtlSeconds) {
        lines.push(
          `~ ${id}  access: ${was.accessTtlSeconds ?? "single use"} → ${route.accessTtlSeconds ?? "single use"}`,
        );
      }
    }
  }
  for (const [id, route] of old) {
    if (!now.has(id)) lines.push(`- ${id}  ${route.match}${describeWhen(route, "  when ")}  ${describePrice(route)}`);
  }
  if (before && before.unmatched !== after.unmatched)
    lines.push(`~ defaults.unmatched: ${before.unmatched} → ${after.unmatched}`);
  return lines;
}

function describePrice(route: RouteRule): string {
  if (route.accepts.length === 0) return "free";
  const per = route.per ? ` per ${route.per.field.key} (${route.per.min}-${route.per.max})` : "";
  return route.accepts.map((a) => `${a.amount} of ${a.asset} on ${a.network} to ${a.payTo}${per}`).join(" | ");
}

/** `body.service=llm-70b|llm-8b query.tier=pro`, or "" for a rule without conditions. */
function describeWhen(route: RouteRule, prefix = ""): string {
  if (!route.when) return "";
  return prefix + route.when.map((c) => `${c.field.key}=${c.values.map((v) => JSON.stringify(v)).join("|")}`).join(" ");
}

/** A path as the user would write it: relative to where they are, when that is shorter. */
function shown(file: string): string {
  const rel = relative(process.env.INIT_CWD ?? process.cwd(), file);
  return rel.startsWith("..") ? file : rel;
}

function printProblems(file: string, problems: Problem[]): void {
  console.error(`${shown(file)}: ${problems.length} problem${problems.length === 1 ? "" : "s"}`);
  for (const p of problems) console.error(`  ${p.path}: ${p.message}`);
}

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { command, file, kv } = parsed;
  try {
    switch (command) {
      case "validate":
      case "push":
      case "diff": {
        const text = await readFile(file, "utf8").catch(() => undefined);
        if (text === undefined) {
          console.error(`${shown(file)}: cannot read it`);
          return 2;
        }
        const checked = validateText(text);
        if (!checked.ok) {
          printProblems(file, checked.problems);
          if (command === "push") console.error("Not pushed: fix the problems first.");
          return 1;
        }
        if (command === "validate") {
          console.log(`${shown(file)}: valid, ${checked.table.routes.length} routes (version ${await version(text)})`);
          for (const note of routeNotes(checked.table)) console.log(`  note: ${note}`);
          for (const warning of spendWarnings(checked.table)) console.log(`  warning: ${warning}`);
          return parsed.facilitators ? await checkFacilitators(checked.table) : 0;
        }
        if (command === "push") {
          await writeKv(file, kv);
          console.log(
            `Pushed ${file} to ${kv.local ? "local" : "remote"} KV PRICING/pricing (version ${await version(text)}).`,
          );
          return 0;
        }
        const current = await readKv(kv);
        const before = current === undefined ? undefined : validateText(current);
        if (current === undefined) console.log("KV holds no pricing document yet; everything is new.");
        else if (!before?.ok)
          console.log("KV holds an invalid document (the Worker ignores it); comparing against nothing.");
        const lines = diffTables(before?.ok ? before.table : undefined, checked.table);
        console.log(lines.length === 0 ? "No route-level differences." : lines.join("\n"));
        return lines.length === 0 ? 0 : 1;
      }
      case "pull": {
        const current = await readKv(kv);
        if (current === undefined) {
          console.error(`KV (${kv.local ? "local" : "remote"}) holds no pricing document.`);
          return 2;
        }
        await writeFile(file, current);
        const checked = validateText(current);
        console.log(`Wrote ${shown(file)}${checked.ok ? "" : " (note: it is not valid; the Worker ignores it)"}.`);
        return 0;
      }
    }
  } catch (error) {
    if (error instanceof KvError) {
      console.error(error.message);
      return 2;
    }
    throw error;
  }
}

/** `--facilitators`: ask each configured facilitator what it supports; exit 1 if a route has none. */
async function checkFacilitators(table: PricingTable): Promise<number> {
  const env = { ...wranglerVars(), ...devVars(), ...(process.env as Record<string, string | undefined>) };
  const report = await facilitatorReport(table, env);
  if (!report.ok) {
    console.error(`facilitators: ${report.problem}`);
    return 2;
  }
  for (const f of report.health) {
    const what =
      f.supported.state === "known"
        ? `supports ${f.supported.kinds.length === 0 ? "nothing" : f.supported.kinds.map((k) => k.split("|").reverse().join(" ")).join(", ")}`
        : f.supported.state === "failed"
          ? `could not be asked: ${f.supported.reason}`
          : "not asked";
    console.log(`  facilitator ${f.name} (${f.url}): ${what}`);
  }
  for (const u of report.unsupported) {
    console.log(
      `  unsupported: ${u.scheme} on ${u.network} (x402 v${u.x402Version}): ${u.why}; routes ${u.routes.join(", ")}${u.routeCount > u.routes.length ? ` and ${u.routeCount - u.routes.length} more` : ""}`,
    );
  }
  return report.unsupported.length === 0 ? 0 : 1;
}

function parse(argv: string[]) {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      file: { type: "string", default: "pricing.json" },
      local: { type: "boolean", default: false },
      facilitators: { type: "boolean", default: false },
      "persist-to": { type: "string" },
    },
  });
  const command = positionals[0];
  if (positionals.length !== 1 || !["validate", "push", "pull", "diff"].includes(command ?? "")) {
    throw new Error(`unknown command: ${positionals.join(" ") || "(none)"}`);
  }
  // `npm run` starts scripts in the project root; paths are meant relative to where the user typed them.
  const cwd = process.env.INIT_CWD ?? process.cwd();
  return {
    command: command as "validate" | "push" | "pull" | "diff",
    facilitators: values.facilitators,
    file: resolve(cwd, values.file),
    kv: {
      local: values.local,
      ...(values["persist-to"] ? { persistTo: resolve(cwd, values["persist-to"]) } : {}),
    },
  };
}

function version(text: string): Promise<string> {
  return contentHash(text);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exit(await main(process.argv.slice(2)));
}
