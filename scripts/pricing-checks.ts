/**
 * What `npm run pricing -- validate` tells an owner about a valid document, beyond its problems:
 * - notes: choices with a cost that is easy to miss (settle "before");
 * - warnings: prices the official buyers, left at their defaults, silently skip — an asset they do
 *   not recognise, or more than they pay unasked ($1 for @x402/fetch, 0.1 USDC for x402-fetch);
 * - with `--facilitators`: each configured facilitator's GET /supported, and the requirements no
 *   facilitator will settle, so they never cost a buyer a failed payment.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { findDefaultAsset as findDefaultEvmAsset } from "@x402/evm";
import { findDefaultAsset as findDefaultSvmAsset } from "@x402/svm";
import { parseFacilitators } from "../src/facilitators/config.ts";
import { FacilitatorPool } from "../src/facilitators/pool.ts";
import { unsupportedRoutes } from "../src/facilitators/unsupported.ts";
import type { PricingTable } from "../src/pricing/document.ts";
import { ROOT } from "./wrangler-env.ts";

/** @x402/fetch 2.x refuses by default any payment above this many dollars (spendControls). */
const V2_DEFAULT_CAP_USD = 1;
/** x402-fetch 1.x refuses by default more than 0.1 USDC (its maxValue argument). */
const V1_DEFAULT_CAP_USD = 0.1;

export function routeNotes(table: PricingTable): string[] {
  const notes: string[] = [];
  for (const route of table.routes) {
    if (route.settleBefore) {
      notes.push(
        `${route.id}: settle "before" (x402 upfront): the buyer is charged before the origin runs, so an origin error is paid for (and a retry with the same payment gets that same error); use it for actions that must not run unpaid, keep "after" (the default) for reads.`,
      );
    }
  }
  return notes;
}

export function spendWarnings(table: PricingTable): string[] {
  const warnings: string[] = [];
  for (const route of table.routes) {
    for (const requirement of route.accepts) {
      // Each client scheme recognises its own family's default assets (ExactSvmScheme: @x402/svm's).
      const find = requirement.network.startsWith("solana:") ? findDefaultSvmAsset : findDefaultEvmAsset;
      const known = find(requirement.asset, requirement.network as `${string}:${string}`);
      if (!known) {
        warnings.push(
          `${route.id}: pays in ${requirement.asset} on ${requirement.network}, which @x402/fetch refuses unless the buyer allows it: x402Client.setSpendControls({ allowedAssets: [{ network: "${requirement.network}", asset: "${requirement.asset}" }] }).`,
        );
        continue;
      }
      const dollars = Number(requirement.amount) / 10 ** known.decimals;
      const unit = route.per ? ` per ${route.per.field.key} (up to ${route.per.max})` : "";
      const most = route.per ? dollars * route.per.max : dollars;
      if (most > V2_DEFAULT_CAP_USD) {
        warnings.push(
          `${route.id}: up to $${trim(most)}${unit ? ` (${trim(dollars)}${unit})` : ""} per payment, above the $${V2_DEFAULT_CAP_USD} @x402/fetch pays unasked: buyers must raise it, x402Client.setSpendControls({ maxAmountPerPayment: "$${trim(Math.ceil(most))}" }).`,
        );
      } else if (most > V1_DEFAULT_CAP_USD) {
        warnings.push(
          `${route.id}: up to $${trim(most)} per payment, above the $${V1_DEFAULT_CAP_USD} x402-fetch (v1) pays unasked: v1 buyers must pass a larger maxValue to wrapFetchWithPayment.`,
        );
      }
    }
  }
  return warnings;
}

const trim = (n: number) => String(Number(n.toFixed(6)));

/**
 * The facilitators the Worker would use (wrangler.toml [vars], then .dev.vars, then the
 * environment: the same names the Worker reads), asked for /supported now.
 */
export async function facilitatorReport(table: PricingTable, env: Record<string, string | undefined>) {
  const parsed = parseFacilitators(env);
  if (!parsed.ok) return { ok: false as const, problem: `${parsed.variable} ${parsed.problem}` };
  const pool = new FacilitatorPool(parsed.facilitators, {
    fetch,
    verifyTimeoutMs: 5_000,
    settleTimeoutMs: 5_000,
    nowMs: Date.now,
    log: () => {},
  });
  await pool.refreshSupported();
  return { ok: true as const, health: pool.health(), unsupported: unsupportedRoutes(pool, table) };
}

/** `KEY=value` lines of .dev.vars (git-ignored local secrets), if the file is there. */
export function devVars(file = resolve(ROOT, ".dev.vars")): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return {};
  }
  const vars: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const pair = /^\s*([A-Z_][A-Z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (pair?.[1]) vars[pair[1]] = (pair[2] ?? "").replace(/^"(.*)"$/s, "$1");
  }
  return vars;
}
