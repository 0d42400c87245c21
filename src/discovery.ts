/**
 * What agents and catalogues can learn without paying. Pure apart from building Responses.
 *
 * - GET /.well-known/x402: every priced route with its requirements and discovery metadata,
 *   paged (1000 a page), cacheable for a minute and revalidated by the pricing version (ETag).
 *   Format (x402 has no settled one yet):
 *   `{ x402Version: 2, pricingVersion, resources: [{ id, match, method, description, mimeType,
 *   accepts, access?, per?, when?, settle?, extensions? }], next? }`.
 * - A probe of a route priced on its JSON body, sent with no body (how crawlers probe): a 402
 *   rather than a 400, offering every variant's price cheapest first, with the reason
 *   `pricing_input_missing` naming the fields that decide, and a bazaar description of the body.
 *   A payment made from it cannot be spent without a body (the real request, body and all, gets
 *   its exact price), so it only informs.
 */
import { CACHE_CONTROL_402 } from "./constants.ts";
import { fail } from "./errors.ts";
import type { Condition, RouteGroup } from "./pricing/conditions.ts";
import type { PricingTable, Requirement, RouteRule } from "./pricing/document.ts";
import { usualMethod } from "./pricing/pattern.ts";
import { type Built402, build402 } from "./responses.ts";
import { type BazaarExtension, bazaarExtension } from "./x402/bazaar.ts";

export const WELL_KNOWN_PATH = "/.well-known/x402";
const PAGE_SIZE = 1000;

/** Whether a group's price reads its body. */
export const readsBody = (group: RouteGroup) => group.fields.some((f) => f.source === "body");

export function probeAnswer(group: RouteGroup, resourceUrl: string, pricingVersion: string): Built402 | undefined {
  const priced = group.rules.filter((r) => r.accepts.length > 0);
  const first = priced[0];
  if (!first) return undefined;
  const seen = new Set<string>();
  const accepts: Requirement[] = [];
  for (const rule of priced) {
    for (const r of rule.accepts) {
      const key = `${r.network}|${r.asset}|${r.amount}|${r.payTo}`;
      if (seen.has(key)) continue;
      seen.add(key);
      accepts.push(r);
    }
  }
  accepts.sort((a, b) => (BigInt(a.amount) < BigInt(b.amount) ? -1 : BigInt(a.amount) > BigInt(b.amount) ? 1 : 0));
  const deciding = group.fields.filter((f) => f.source === "body").map((f) => f.key);
  const route: RouteRule = {
    ...first,
    accepts,
    discovery: priced.find((r) => r.discovery)?.discovery ?? bodyDiscovery(priced, usualMethod(first.match.trim())),
  };
  return build402(
    route,
    resourceUrl,
    fail(
      "pricing_input_missing",
      "This route's price depends on the JSON body; send the request with its body to be told its exact price.",
      deciding.join(", "),
    ),
    pricingVersion,
  );
}

/** A body description from the group's conditions: each field and the values that have a price. */
function bodyDiscovery(rules: RouteRule[], method: string): BazaarExtension {
  const values = new Map<string, Set<unknown>>();
  for (const rule of rules) {
    for (const condition of rule.when ?? ([] as Condition[])) {
      if (condition.field.source !== "body") continue;
      const known = values.get(condition.field.name) ?? new Set();
      for (const v of condition.values) known.add(v);
      values.set(condition.field.name, known);
    }
  }
  const properties = Object.fromEntries([...values].map(([name, vs]) => [name, { enum: [...vs] }]));
  const example = Object.fromEntries([...values].map(([name, vs]) => [name, [...vs][0]]));
  // Required: the fields every priced variant tests (the others only narrow a variant).
  const required = [...values.keys()].filter((name) =>
    rules.every((rule) => rule.when?.some((c) => c.field.source === "body" && c.field.name === name)),
  );
  return bazaarExtension(method === "*" ? "POST" : method, {
    input: example,
    inputSchema: { properties, required },
    bodyType: "json",
  });
}

/** GET /.well-known/x402[?page=N]. */
export function wellKnownResponse(table: PricingTable, request: Request): Response {
  const etag = `"${table.version}"`;
  const headers = {
    "content-type": "application/json; charset=utf-8",
    "cache-control": "public, max-age=60",
    etag,
    "access-control-allow-origin": "*",
  };
  if (request.headers.get("if-none-match") === etag) return new Response(null, { status: 304, headers });
  const page = Number(new URL(request.url).searchParams.get("page") ?? "1");
  if (!Number.isInteger(page) || page < 1) {
    return new Response(JSON.stringify({ error: "not_found", message: "No such page." }), {
      status: 404,
      headers: { "content-type": "application/json; charset=utf-8", "cache-control": CACHE_CONTROL_402 },
    });
  }
  const priced = table.routes.filter((r) => r.accepts.length > 0);
  const slice = priced.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE);
  const resources = slice.map((r) => ({
    id: r.id,
    match: r.match,
    method: usualMethod(r.match.trim()),
    description: r.description,
    mimeType: r.mimeType,
    accepts: r.accepts,
    ...(r.accessTtlSeconds !== undefined ? { access: { ttl: r.accessTtlSeconds } } : {}),
    ...(r.per ? { per: { [r.per.field.source]: r.per.field.name, min: r.per.min, max: r.per.max } } : {}),
    ...(r.when ? { when: Object.fromEntries(r.when.map((c) => [c.field.key, c.values])) } : {}),
    ...(r.settleBefore ? { settle: "before" } : {}),
    ...(r.discovery ? { extensions: { bazaar: r.discovery } } : {}),
  }));
  const next = page * PAGE_SIZE < priced.length ? `${WELL_KNOWN_PATH}?page=${page + 1}` : undefined;
  return new Response(
    JSON.stringify({ x402Version: 2, pricingVersion: table.version, resources, ...(next ? { next } : {}) }),
    { status: 200, headers },
  );
}
