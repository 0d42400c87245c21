/**
 * Turning results into HTTP answers: error bodies, 402s in both protocol versions, CORS for
 * priced routes. Pure apart from building `Response` objects.
 */
import { CACHE_CONTROL_402, CACHE_CONTROL_PAID, HEADER } from "./constants";
import { type Failure, failureBody, statusOf } from "./errors";
import type { RouteRule } from "./pricing/document";
import { encodeHeaderJson } from "./x402/codec";
import { buildPaymentRequired, buildPaymentRequiredV1 } from "./x402/requirements";

const JSON_TYPE = "application/json; charset=utf-8";
const EXPOSED = [HEADER.paymentRequired, HEADER.paymentResponse, HEADER.xPaymentResponse, HEADER.pricingVersion];

/** Any failure that is not about paying: `{error, message, detail?}`, never cached. */
export function errorResponse(failure: Failure): Response {
  return new Response(JSON.stringify(failureBody(failure)), {
    status: statusOf(failure.reason),
    headers: { "content-type": JSON_TYPE, "cache-control": CACHE_CONTROL_402 },
  });
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
  const status = statusOf(failure.reason);
  if (status !== 402) return withCors(errorResponse(failure));
  const body = {
    ...buildPaymentRequiredV1(route, resourceUrl, failure.reason),
    message: failure.message,
    ...(failure.detail !== undefined ? { detail: failure.detail } : {}),
  };
  const headers = new Headers({
    "content-type": JSON_TYPE,
    "cache-control": CACHE_CONTROL_402,
    [HEADER.paymentRequired]: encodeHeaderJson(buildPaymentRequired(route, resourceUrl, failure.reason)),
    [HEADER.pricingVersion]: pricingVersion,
  });
  return withCors(new Response(JSON.stringify(body), { status, headers }));
}

/** Marks an answer on a priced route: private, uncacheable, readable by browser buyers. */
export function markPaid(response: Response): Response {
  response.headers.set("cache-control", CACHE_CONTROL_PAID);
  response.headers.delete("expires");
  return withCors(response);
}

/** Lets browser buyers read the payment headers. An origin's own CORS choice is kept. */
export function withCors(response: Response): Response {
  const headers = response.headers;
  if (!headers.has("access-control-allow-origin")) headers.set("access-control-allow-origin", "*");
  const exposed = headers.get("access-control-expose-headers");
  headers.set("access-control-expose-headers", exposed ? `${exposed}, ${EXPOSED.join(", ")}` : EXPOSED.join(", "));
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
