/**
 * Limits on a priced request before any work that grows with it or costs a facilitator call:
 * header count and size, and the Rate Limiting binding per client IP and per payer.
 */
import { MAX_HEADER_BYTES, MAX_HEADER_COUNT } from "./constants.ts";
import { type Failure, fail } from "./errors.ts";
import type { Runtime } from "./paywall.ts";
import { retryLaterResponse } from "./responses.ts";

/** Priced routes read their headers (payment, dynamic prices): refuse what no client sends. */
export function headersTooLarge(headers: Headers): Failure | undefined {
  let count = 0;
  let bytes = 0;
  for (const [name, value] of headers) {
    count++;
    bytes += name.length + value.length + 4; // ": " and CRLF, as on the wire
  }
  if (count > MAX_HEADER_COUNT) {
    return fail("request_headers_too_large", `More than ${MAX_HEADER_COUNT} request headers.`, String(count));
  }
  if (bytes > MAX_HEADER_BYTES) {
    return fail("request_headers_too_large", `More than ${MAX_HEADER_BYTES} bytes of request headers.`, String(bytes));
  }
  return undefined;
}

/**
 * The Rate Limiting binding, per client IP (Cloudflare's CF-Connecting-IP) and per payer, before
 * any facilitator call: junk that passes the local checks (a real signature from a throwaway key)
 * cannot turn into unbounded facilitator traffic. A limiter that fails lets the request through
 * (logged): it protects capacity, and refusing paying buyers because it is down would be worse.
 */
export async function rateLimited(rt: Runtime, request: Request, payer: string): Promise<Response | undefined> {
  const limiter = rt.config.paymentRateLimit;
  if (!limiter) return undefined;
  const ip = request.headers.get("cf-connecting-ip") ?? "unknown";
  let outcomes: RateLimitOutcome[];
  try {
    outcomes = await Promise.all([
      limiter.limit({ key: `ip:${ip}` }),
      limiter.limit({ key: `payer:${payer.toLowerCase()}` }),
    ]);
  } catch (error) {
    rt.log("rate_limit_error", { message: (error as Error).message });
    return undefined;
  }
  const over = outcomes[0]?.success === false ? "ip" : outcomes[1]?.success === false ? "payer" : undefined;
  if (!over) return undefined;
  rt.log("rate_limited", { by: over });
  return retryLaterResponse(
    fail("rate_limited", "Too many payment attempts; try again later.", over),
    rt.config.rateLimitPeriodSeconds,
  );
}
