/**
 * Matching a canonical path the way widely used origins read it. Pure.
 *
 * The canonical check (../path.ts) gives every path one spelling as the paywall reads it; but the
 * paid content is served by the origin, which reads paths its own way. The rule this module keeps:
 * no request that a widely used origin framework would route to a priced rule's handler is
 * forwarded free. Measured against Express, Fastify, Koa and Hono (test/raw/origin-paths.test.ts)
 * and written down for those that cannot run here (Tomcat, Spring, IIS, ASP.NET, Rails, Django,
 * nginx), each class is either matched or refused, by the table's PathOptions:
 * - letter case: Express, Koa, IIS and ASP.NET route case-insensitively → literals are matched
 *   case-insensitively (ASCII). An origin that is case-sensitive answers such a spelling 404,
 *   and an origin error is never charged.
 * - `;` parameters: Tomcat, Jetty and Spring strip `;…` from every segment (`/..;/` becomes a
 *   `..`) → refused.
 * - trailing dots and spaces in a segment: IIS and ASP.NET strip them → refused.
 * - a `.format` suffix: Rails routes `/a/b.json` to the `/a/b` handler → a path not priced as
 *   spelled, but priced without its last segment's extension, is priced as that rule.
 * - a trailing slash: read as no slash, but Fastify routes `/a/b/` to `/a/b/:param` with an empty
 *   parameter (found by the fuzzer) → a path ending in "/" not priced as read is also read with an
 *   empty last segment, and priced as the rule that matches (always on: it only ever prices).
 * Percent-encoded unreserved characters (decoded by Fastify and Hono), dot segments (resolved by
 * Hono and every URL parser), repeated slashes (merged by nginx) and backslashes (IIS) are refused
 * by the canonical check already.
 */
import type { PathProblem } from "../path.ts";
import { isGroup, type RouteEntry } from "./conditions.ts";
import type { PricingTable } from "./document.ts";

export type Routed =
  | { ok: true; entry: RouteEntry | undefined }
  | { ok: false; problem: Extract<PathProblem, "path_parameter" | "trailing_dot_or_space"> };

const UPPER = /[A-Z]/;
/** What Rails takes for a format: one extension of letters and digits, no dot. */
const FORMAT = /^[A-Za-z0-9]{1,16}$/;

export function routeFor(table: PricingTable, method: string, path: string, segments: readonly string[]): Routed {
  const { paths } = table;
  if (paths.refuseSemicolons && path.includes(";")) return { ok: false, problem: "path_parameter" };
  if (paths.refuseTrailingDots) {
    for (const segment of segments) {
      if (segment.endsWith(".") || segment.endsWith("%20")) return { ok: false, problem: "trailing_dot_or_space" };
    }
  }
  const matched = paths.caseInsensitive && UPPER.test(path) ? segments.map((s) => s.toLowerCase()) : segments;
  const entry = table.matcher.match(method, matched);
  if (isPriced(entry)) return { ok: true, entry };
  if (path.endsWith("/")) {
    const withEmptyLast = table.matcher.match(method, [...matched, ""]);
    if (isPriced(withEmptyLast)) return { ok: true, entry: withEmptyLast };
  }
  if (!paths.formatSuffix || matched.length === 0) return { ok: true, entry };
  const last = matched[matched.length - 1] as string;
  const dot = last.lastIndexOf(".");
  if (dot <= 0 || !FORMAT.test(last.slice(dot + 1))) return { ok: true, entry };
  const withoutFormat = table.matcher.match(method, [...matched.slice(0, -1), last.slice(0, dot)]);
  return { ok: true, entry: isPriced(withoutFormat) ? withoutFormat : entry };
}

/** Whether an entry prices anything: a priced rule, or a group with at least one priced variant. */
export function isPriced(entry: RouteEntry | undefined): boolean {
  if (!entry) return false;
  return isGroup(entry) ? entry.rules.some((rule) => rule.accepts.length > 0) : entry.accepts.length > 0;
}
