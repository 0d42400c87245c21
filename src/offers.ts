/**
 * A route as a 402 offers it at this moment. Some requirements name a key of the facilitator that
 * will settle them, which only its `/supported` tells (facilitators/pool.ts reads and caches it):
 * Solana `exact` its fee payer (`extra.feePayer`), EVM `upto` the address allowed to settle
 * (`extra.facilitatorAddress`), `batch-settlement` the receiver authorizer that signs the seller's
 * claims (`extra.receiverAuthorizer`). An option whose key is unknown is left out rather than offered
 * unpayable. Routes without such options are returned as they are, with no await.
 */
import type { FacilitatorPool } from "./facilitators/pool.ts";
import {
  isBatchRequirement,
  isSvmRequirement,
  isUptoRequirement,
  type Requirement,
  type RouteRule,
} from "./pricing/document.ts";

/** The last offered copy of each route, while the facilitator keys it names stay the same. */
const offered = new WeakMap<RouteRule, { key: string; route: RouteRule }>();

const needsSigner = (r: Requirement) => isSvmRequirement(r) || isUptoRequirement(r) || isBatchRequirement(r);

export const hasSignerOptions = (route: RouteRule): boolean => route.accepts.some(needsSigner);

/** `missing` lists the `scheme|network` pairs left out for want of the facilitator's key. */
export async function offeredRoute(
  route: RouteRule,
  facilitators: FacilitatorPool,
): Promise<{ route: RouteRule; missing: string[] }> {
  if (!hasSignerOptions(route)) return { route, missing: [] };
  const kinds = [...new Set(route.accepts.filter(needsSigner).map((r) => `${r.scheme}|${r.network}`))];
  const signers = new Map<string, string | undefined>();
  for (const kind of kinds) {
    const [scheme, network] = kind.split("|") as [string, string];
    signers.set(kind, (await facilitators.signer(scheme, network))?.signer);
  }
  const missing = kinds.filter((k) => signers.get(k) === undefined);
  const key = kinds.map((k) => signers.get(k) ?? "").join("|");
  const last = offered.get(route);
  if (last?.key === key) return { route: last.route, missing };
  const accepts: Requirement[] = [];
  for (const r of route.accepts) {
    if (!needsSigner(r)) {
      accepts.push(r);
      continue;
    }
    const signer = signers.get(`${r.scheme}|${r.network}`);
    if (!signer) continue;
    const extra = isUptoRequirement(r)
      ? { ...r.extra, facilitatorAddress: signer }
      : isBatchRequirement(r)
        ? { ...r.extra, receiverAuthorizer: signer }
        : { ...r.extra, feePayer: signer };
    accepts.push(Object.freeze({ ...r, extra: Object.freeze(extra) }) as Requirement);
  }
  const copy = Object.freeze({ ...route, accepts });
  offered.set(route, { key, route: copy });
  return { route: copy, missing };
}
