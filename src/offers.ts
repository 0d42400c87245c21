/**
 * A route as a 402 offers it at this moment. Solana requirements need the facilitator's fee payer
 * (`extra.feePayer`), which only its `/supported` tells (facilitators/pool.ts reads and caches it);
 * a Solana option whose fee payer is unknown is left out rather than offered unpayable. Routes
 * without Solana options are returned as they are, with no await.
 */
import type { FacilitatorPool } from "./facilitators/pool.ts";
import { isSvmRequirement, type Requirement, type RouteRule } from "./pricing/document.ts";

/** The last offered copy of each route, while its fee payers stay the same. */
const offered = new WeakMap<RouteRule, { key: string; route: RouteRule }>();

export const hasSolanaOptions = (route: RouteRule): boolean => route.accepts.some(isSvmRequirement);

/** `missing` lists the Solana networks left out for want of a fee payer. */
export async function offeredRoute(
  route: RouteRule,
  facilitators: FacilitatorPool,
): Promise<{ route: RouteRule; missing: string[] }> {
  if (!hasSolanaOptions(route)) return { route, missing: [] };
  const networks = [...new Set(route.accepts.filter(isSvmRequirement).map((r) => r.network))];
  const payers = new Map<string, string | undefined>();
  for (const network of networks) payers.set(network, (await facilitators.feePayer(network))?.feePayer);
  const missing = networks.filter((n) => payers.get(n) === undefined);
  const key = networks.map((n) => payers.get(n) ?? "").join("|");
  const last = offered.get(route);
  if (last?.key === key) return { route: last.route, missing };
  const accepts: Requirement[] = [];
  for (const r of route.accepts) {
    if (!isSvmRequirement(r)) accepts.push(r);
    else {
      const feePayer = payers.get(r.network);
      if (feePayer) accepts.push(Object.freeze({ ...r, extra: Object.freeze({ ...r.extra, feePayer }) }));
    }
  }
  const copy = Object.freeze({ ...route, accepts });
  offered.set(route, { key, route: copy });
  return { route: copy, missing };
}
