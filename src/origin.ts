/**
 * Forwarding to the origin, by URL (`ORIGIN_URL`) or through a service binding (`ORIGIN`).
 *
 * - The forwarded path is the canonical raw path that was matched, appended to ORIGIN_URL's path;
 *   the query goes through byte for byte. The host is always the origin's: no open proxying.
 * - Request: hop-by-hop headers, payment headers and any client-sent copies of our own headers are
 *   removed; `X-Payment-Payer` / `X-Payment-Route` are added for paid requests, and
 *   `X-Paywall-Secret` when ORIGIN_SHARED_SECRET is set.
 * - Response: hono's proxy helper strips hop-by-hop headers and fixes encodings; redirects are not
 *   followed, and a `Location` on the origin's own host is rewritten to the public host.
 * - Bodies stream both ways; nothing is buffered.
 */
import { proxy } from "hono/proxy";
import type { Config } from "./config";
import { HEADER } from "./constants";
import { type Failure, fail } from "./errors";

export interface ForwardInput {
  request: Request;
  path: string;
  query: string;
  payer?: string;
  routeId?: string;
}

export type Forwarded = { ok: true; response: Response } | { ok: false; failure: Failure };

// RFC 9110 §7.6.1, plus the ones every proxy drops.
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];
const OURS = [HEADER.paymentSignature, HEADER.xPayment, HEADER.payer, HEADER.route, HEADER.originSecret];

export async function forwardToOrigin(config: Config, input: ForwardInput): Promise<Forwarded> {
  const publicUrl = new URL(input.request.url);
  const base = config.originUrl ?? publicUrl;
  const prefix = config.originUrl ? config.originUrl.pathname.replace(/\/+$/, "") : "";
  const target = `${base.origin}${prefix}${input.path}${input.query}`;

  const headers = new Headers(input.request.headers);
  for (const name of (headers.get("connection") ?? "").split(",")) {
    if (name.trim()) headers.delete(name.trim());
  }
  for (const name of HOP_BY_HOP) headers.delete(name);
  for (const name of OURS) headers.delete(name);
  if (input.payer) headers.set(HEADER.payer, input.payer);
  if (input.routeId) headers.set(HEADER.route, input.routeId);
  if (config.originSharedSecret) headers.set(HEADER.originSecret, config.originSharedSecret);

  const binding = config.originBinding;
  let response: Response;
  try {
    response = await proxy(target, {
      raw: input.request,
      headers,
      redirect: "manual",
      ...(binding ? { customFetch: (request: Request) => binding.fetch(request) } : {}),
    });
  } catch (error) {
    return {
      ok: false,
      failure: fail("origin_unreachable", "The origin could not be reached.", (error as Error).name),
    };
  }

  const location = response.headers.get("location");
  if (location && config.originUrl) {
    const rewritten = rewriteLocation(location, config.originUrl, prefix, publicUrl);
    if (rewritten !== location) response.headers.set("location", rewritten);
  }
  return { ok: true, response };
}

/** A redirect to the origin's own host becomes one to the public host; others are left alone. */
export function rewriteLocation(location: string, origin: URL, prefix: string, publicUrl: URL): string {
  let url: URL;
  try {
    url = new URL(location, origin);
  } catch {
    return location;
  }
  if (url.origin !== origin.origin) return location;
  if (!/^[a-z][a-z0-9+.-]*:/i.test(location) && !location.startsWith("//")) return location;
  let path = url.pathname;
  if (prefix && (path === prefix || path.startsWith(`${prefix}/`))) path = path.slice(prefix.length) || "/";
  return `${publicUrl.origin}${path}${url.search}${url.hash}`;
}
