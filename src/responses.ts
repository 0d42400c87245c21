/**
 * Turning results into HTTP answers: error bodies, 402s in both protocol versions, CORS for
 * priced routes. Pure apart from building `Response` objects.
 */
import {
  CACHE_CONTROL_402,
  CACHE_CONTROL_PAID,
  HEADER,
  MEMO_MAX_URL_LENGTH,
  PAYMENT_REQUIRED_MEMO_ENTRIES,
} from "./constants.ts";
import { type Failure, failureBody, statusOf } from "./errors.ts";
import { BoundedMap } from "./memo.ts";
import { isBatchRequirement, isSvmRequirement, isUptoRequirement, type RouteRule } from "./pricing/document.ts";
import { encodeHeaderJson } from "./x402/codec.ts";
import { buildPaymentRequired, buildPaymentRequiredV1 } from "./x402/requirements.ts";

const JSON_TYPE = "application/json; charset=utf-8";
const EXPOSED_LIST = [
  HEADER.paymentRequired,
  HEADER.paymentResponse,
  HEADER.xPaymentResponse,
  HEADER.pricingVersion,
].join(", ");

/** Any failure that is not about paying: `{error, message, detail?}`, never cached. */
export function errorResponse(failure: Failure): Response {
  return new Response(JSON.stringify(failureBody(failure)), {
    status: statusOf(failure.reason),
    headers: { "content-type": JSON_TYPE, "cache-control": CACHE_CONTROL_402 },
  });
}

/**
 * "Come back with the same payment": a copy of a payment that is being served now
 * (`payment_in_progress`), or one whose settlement is not confirmed yet (`settlement_pending`).
 * A 409 with `Retry-After`, never a 402: on a 402 the official clients would sign and pay again.
 */
export function retryLaterResponse(
  failure: Failure,
  retryAfterSeconds: number,
  extra?: [name: string, value: string],
): Response {
  const response = withCors(errorResponse(failure));
  response.headers.set("retry-after", String(retryAfterSeconds));
  if (extra) response.headers.set(extra[0], extra[1]);
  return response;
}

/**
 * A failure on a priced route. 402s carry the requirements again (v2 header, v1 body, `error` =
 * the reason) so the buyer can pay correctly; other statuses get the plain error body.
 */
export function paymentFailureResponse(
  route: RouteRule,
  resourceUrl: string,
  failure: Failure,
  pricingVersion: string,
): Response {
  if (statusOf(failure.reason) !== 402) return withCors(errorResponse(failure));
  return answer402(build402(route, resourceUrl, failure, pricingVersion));
}

/** A 402's parts, built once and answered many times. */
export interface Built402 {
  body: string;
  headers: Headers;
}

export const answer402 = (built: Built402): Response =>
  new Response(built.body, { status: 402, headers: built.headers });

/** The parts of a 402 for `failure` (whose status must be 402). */
export function build402(route: RouteRule, resourceUrl: string, failure: Failure, pricingVersion: string): Built402 {
  // The plain "pay first" answer is the hot one and depends only on these, so it is built once.
  // The amount is part of the key: a per-unit price may depend on the body, which the URL does not show.
  // So are the facilitator keys (Solana fee payers, upto addresses), which may change (offers.ts).
  const memoKey =
    failure.detail === undefined && resourceUrl.length <= MEMO_MAX_URL_LENGTH
      ? `${pricingVersion}|${route.id}|${route.accepts[0]?.amount}|${failure.reason}|${resourceUrl}${signersOf(route)}`
      : undefined;
  let built = memoKey === undefined ? undefined : built402.get(memoKey);
  if (!built) {
    built = {
      body: JSON.stringify({
        ...buildPaymentRequiredV1(route, resourceUrl, failure.reason),
        message: failure.message,
        ...(failure.detail !== undefined ? { detail: failure.detail } : {}),
      }),
      headers: new Headers([
        ["content-type", JSON_TYPE],
        ["cache-control", CACHE_CONTROL_402],
        [HEADER.paymentRequired, encodeHeaderJson(buildPaymentRequired(route, resourceUrl, failure.reason))],
        [HEADER.pricingVersion, pricingVersion],
        ["access-control-allow-origin", "*"],
        ["access-control-expose-headers", EXPOSED_LIST],
      ]),
    };
    if (memoKey !== undefined) built402.set(memoKey, built);
  }
  return built;
}

const built402 = new BoundedMap<string, Built402>(PAYMENT_REQUIRED_MEMO_ENTRIES);

/** `|` and the facilitator key of each Solana and upto option, in order; "" for a route without one. */
function signersOf(route: RouteRule): string {
  let key = "";
  for (const r of route.accepts) {
    if (isSvmRequirement(r)) key += `|${r.network}=${r.extra.feePayer ?? ""}`;
    else if (isUptoRequirement(r)) key += `|upto:${r.network}=${r.extra.facilitatorAddress ?? ""}`;
    else if (isBatchRequirement(r)) key += `|batch:${r.network}=${r.extra.receiverAuthorizer ?? ""}`;
  }
  return key;
}

/**
 * Marks an answer on a priced route: private, uncacheable, readable by browser buyers, plus any
 * extra headers (the settlement). Always a copy: the origin's response headers are immutable.
 */
export function markPaid(response: Response, extra?: [name: string, value: string]): Response {
  const headers = new Headers(response.headers);
  headers.set("cache-control", CACHE_CONTROL_PAID);
  headers.delete("expires");
  // What the origin says an upto answer costs is for the paywall, not the buyer.
  headers.delete(HEADER.settlementOverrides);
  if (extra) headers.set(extra[0], extra[1]);
  return withCors(copyResponse(response, headers));
}

/**
 * A response with new headers and the same status and streaming body. An explicit init: passing
 * the Response itself as init measured ~45 µs slower per request in workerd.
 */
export function copyResponse(response: Response, headers: Headers): Response {
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

/** Lets browser buyers read the payment headers. An origin's own CORS choice is kept. */
export function withCors(response: Response): Response {
  const headers = response.headers;
  if (!headers.has("access-control-allow-origin")) headers.set("access-control-allow-origin", "*");
  const exposed = headers.get("access-control-expose-headers");
  headers.set("access-control-expose-headers", exposed ? `${exposed}, ${EXPOSED_LIST}` : EXPOSED_LIST);
  return response;
}

/** Answer to a CORS preflight for a priced route. */
export function preflightResponse(request: Request): Response {
  const asked = request.headers.get("access-control-request-headers");
  const allowed = [HEADER.paymentSignature, HEADER.xPayment, ...(asked ? [asked] : [])].join(", ");
  return new Response(null, {
    status: 204,
    headers: {
      "access-control-allow-origin": "*",
      "access-control-allow-methods": request.headers.get("access-control-request-method") ?? "GET",
      "access-control-allow-headers": allowed,
      "access-control-max-age": "600",
      vary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
    },
  });
}
