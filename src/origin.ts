/**
 * Forwarding to the origin, by URL (`ORIGIN_URL`) or through a service binding (`ORIGIN`).
 *
 * - The forwarded path is the canonical raw path that was matched, appended to ORIGIN_URL's path;
 *   the query goes through byte for byte. The host is always the origin's: no open proxying.
 * - Request: hop-by-hop headers, payment headers and any client-sent copies of our own headers are
 *   removed; `X-Payment-Payer` / `X-Payment-Route` are added for paid requests, and
 *   `X-Paywall-Secret` when ORIGIN_SHARED_SECRET is set.
 * - Response: redirects are not followed; a `Location` on the origin's own host is rewritten to the
 *   public host; hop-by-hop headers are dropped. Content encodings pass through untouched: the
 *   Workers runtime negotiates them itself.
 * - A request holding a payment's claim gives the origin ORIGIN_TIMEOUT_MS to send its status and
 *   headers (`504 origin_timeout`, nobody charged), so the claim's lease always outlasts the call;
 *   the body may then take as long as it takes (the timer is cleared, so a long stream is not cut).
 *   Free requests and access-window visits hold no claim and pass through without a timer of ours.
 * - Bodies stream both ways; nothing is buffered. The common case — nothing to strip, nothing to
 *   add — copies no headers at all (measured: this path is most of a free request's cost).
 */
import type { Config } from "./config.ts";
import { HEADER } from "./constants.ts";
import { type Failure, fail } from "./errors.ts";
import { copyResponse } from "./responses.ts";

export interface ForwardInput {
  request: Request;
  path: string;
  query: string;
  /** The request body as it is to be forwarded (the stream, or the bytes read to price it). */
  body: BodyInit | null;
  payer?: string;
  routeId?: string;
  /** How long the origin has to start answering (set when a payment's claim is held). */
  timeoutMs?: number;
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
const HOP_BY_HOP_SET = new Set(HOP_BY_HOP);
/**
 * Fields workerd itself keeps off the wire (checked with a raw-socket origin, workerd 1.20261117):
 * on responses to the client all six; on subrequests connection, keep-alive, te and trailer, and
 * it frames bodies itself. It does NOT drop `upgrade` on a subrequest: it turns a forwarded
 * `Upgrade: websocket` into a WebSocket handshake to the origin, so that one is always stripped.
 * Leaving the dropped ones to the runtime spares a Headers copy on nearly every request, since
 * HTTP/1.1 clients send `Connection: keep-alive`.
 */
const DROPPED_BY_RUNTIME = new Set(["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"]);
const DROPPED_FROM_SUBREQUESTS = new Set(["connection", "keep-alive", "te", "trailer"]);
const STRIPPED = new Set(
  [...HOP_BY_HOP, ...OURS].map((name) => name.toLowerCase()).filter((name) => !DROPPED_FROM_SUBREQUESTS.has(name)),
);

export async function forwardToOrigin(config: Config, input: ForwardInput): Promise<Forwarded> {
  const { request } = input;
  const target = `${config.originBase ?? publicOrigin(request.url)}${input.path}${input.query}`;

  // Not AbortSignal.timeout: aborting after the headers have arrived would cut the body short.
  const abort = input.timeoutMs === undefined ? undefined : new AbortController();
  const timer = abort ? setTimeout(() => abort.abort(), input.timeoutMs) : undefined;
  const init: RequestInit = {
    method: request.method,
    headers: forwardedHeaders(request.headers, config, input),
    body: input.body,
    redirect: "manual",
    ...(abort ? { signal: abort.signal } : {}),
  };
  let response: Response;
  try {
    response = config.originBinding ? await config.originBinding.fetch(target, init) : await fetch(target, init);
  } catch (error) {
    if (abort?.signal.aborted) {
      return {
        ok: false,
        failure: fail("origin_timeout", `The origin did not answer within ${input.timeoutMs} ms.`),
      };
    }
    return {
      ok: false,
      failure: fail("origin_unreachable", "The origin could not be reached.", (error as Error).name),
    };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
  return { ok: true, response: cleanResponse(response, config, request.url) };
}

function forwardedHeaders(incoming: Headers, config: Config, input: ForwardInput): Headers {
  const adds = input.payer !== undefined || input.routeId !== undefined || config.originSharedSecret !== undefined;
  // One pass over the (few) incoming headers: each has()/delete() is a call into the runtime.
  const strip: string[] = [];
  for (const [name, value] of incoming) {
    if (STRIPPED.has(name)) strip.push(name);
    else if (name === "connection") {
      for (const listed of value.split(",")) {
        const token = listed.trim().toLowerCase();
        if (token && !DROPPED_FROM_SUBREQUESTS.has(token)) strip.push(token);
      }
    }
  }
  if (!adds && strip.length === 0) return incoming;
  const headers = new Headers(incoming);
  for (const name of strip) headers.delete(name);
  if (input.payer) headers.set(HEADER.payer, input.payer);
  if (input.routeId) headers.set(HEADER.route, input.routeId);
  if (config.originSharedSecret) headers.set(HEADER.originSecret, config.originSharedSecret);
  return headers;
}

/**
 * Returns the origin's response itself when there is nothing to change; a copy otherwise.
 * The runtime drops `connection`, `keep-alive`, `te`, `trailer`, `transfer-encoding` and `upgrade`
 * itself when it sends a response (checked with workerd 1.20261117: they are visible here and
 * absent on the wire), so they cost no copy; nearly every HTTP/1.1 origin sends the first two.
 * What it keeps and a proxy must not pass on: the `proxy-*` fields and the names `connection` lists.
 */
function cleanResponse(response: Response, config: Config, publicUrl: string): Response {
  let location: string | null = null;
  const drop: string[] = [];
  for (const [name, value] of response.headers) {
    if (name === "location") location = value;
    else if (name === "connection") {
      for (const listed of value.split(",")) {
        const token = listed.trim().toLowerCase();
        if (token && !DROPPED_BY_RUNTIME.has(token)) drop.push(token);
      }
    } else if (HOP_BY_HOP_SET.has(name) && !DROPPED_BY_RUNTIME.has(name)) drop.push(name);
  }
  const rewritten = location && config.originUrl ? rewriteLocation(location, config.originUrl, publicUrl) : location;
  if (rewritten === location && drop.length === 0) return response;
  const headers = new Headers(response.headers);
  for (const name of drop) headers.delete(name);
  if (rewritten && rewritten !== location) headers.set("location", rewritten);
  return copyResponse(response, headers);
}

/** A redirect to the origin's own host becomes one to the public host; others are left alone. */
export function rewriteLocation(location: string, origin: URL, publicUrl: string): string {
  if (!/^[a-z][a-z0-9+.-]*:/i.test(location) && !location.startsWith("//")) return location;
  let url: URL;
  try {
    url = new URL(location, origin);
  } catch {
    return location;
  }
  if (url.origin !== origin.origin) return location;
  const prefix = origin.pathname.replace(/\/+$/, "");
  let path = url.pathname;
  if (prefix && (path === prefix || path.startsWith(`${prefix}/`))) path = path.slice(prefix.length) || "/";
  return `${publicOrigin(publicUrl)}${path}${url.search}${url.hash}`;
}

/** `https://host:port` of an absolute URL, without parsing (the raw path may not be canonical). */
function publicOrigin(url: string): string {
  const scheme = url.indexOf("://");
  const slash = url.indexOf("/", scheme + 3);
  return slash < 0 ? url : url.slice(0, slash);
}
