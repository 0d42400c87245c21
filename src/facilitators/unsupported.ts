/**
 * The requirement kinds (scheme, network, x402 version) a pricing table offers that no configured
 * facilitator will settle, each with the routes that offer it: they would cost buyers a failed
 * payment. Shown by GET /__x402/health and `npm run pricing -- validate --facilitators`. Pure
 * apart from what the pool has learnt from /supported.
 */
import type { PricingTable } from "../pricing/document.ts";
import { toV1Network } from "../x402/networks.ts";
import type { FacilitatorPool } from "./pool.ts";

/** Routes listed per unsupported requirement kind, at most: a big table would list thousands. */
const UNSUPPORTED_ROUTES_SHOWN = 20;

export function unsupportedRoutes(pool: FacilitatorPool, table: PricingTable) {
  const kinds = new Map<
    string,
    { need: { scheme: string; network: string; x402Version: 1 | 2; v1Network?: string }; routes: string[] }
  >();
  for (const route of table.routes) {
    for (const requirement of route.accepts) {
      // upto is an x402 v2 scheme: v1 buyers are never offered it.
      const v1Network = requirement.scheme === "exact" ? toV1Network(requirement.network) : undefined;
      for (const x402Version of v1Network ? ([2, 1] as const) : ([2] as const)) {
        const key = `${x402Version}|${requirement.scheme}|${requirement.network}`;
        const kind = kinds.get(key) ?? {
          need: {
            scheme: requirement.scheme,
            network: requirement.network,
            x402Version,
            ...(v1Network ? { v1Network } : {}),
          },
          routes: [],
        };
        if (kind.routes.at(-1) !== route.id) kind.routes.push(route.id);
        kinds.set(key, kind);
      }
    }
  }
  const missing = pool.unsupported([...kinds.values()].map((k) => k.need));
  return missing.map((m) => {
    const routes = kinds.get(`${m.x402Version}|${m.scheme}|${m.network}`)?.routes ?? [];
    return { ...m, routes: routes.slice(0, UNSUPPORTED_ROUTES_SHOWN), routeCount: routes.length };
  });
}
