/**
 * HTTP client for an x402 facilitator: POST /verify and POST /settle.
 *
 * Every call has a timeout, follows no redirects, reads at most MAX_FACILITATOR_REPLY_BYTES and
 * schema-checks the reply. A well-formed reply on a 2xx is an answer, and so is a "no"
 * (`isValid: false` / `success: false`) on a 4xx, and a `settlement_pending` on any status (the
 * official facilitator may send it with a 5xx: broadcast, not yet confirmed); anything else — a
 * "yes" on a 4xx, any 3xx or 5xx, garbage — is the facilitator failing, which the paywall turns
 * into a 502/503 without touching the origin. `fetch` is injected so tests need no global patching.
 */
import { z } from "@x402/core/schemas";
import { readCapped } from "./body.ts";
import { MAX_FACILITATOR_REPLY_BYTES } from "./constants.ts";
import { type Failure, fail } from "./errors.ts";

export interface FacilitatorRequest {
  x402Version: 1 | 2;
  paymentPayload: unknown;
  paymentRequirements: unknown;
}

const VerifyReplySchema = z.object({
  isValid: z.boolean(),
  invalidReason: z.string().nullish(),
  payer: z.string().nullish(),
});

const SettleReplySchema = z.object({
  success: z.boolean(),
  errorReason: z.string().nullish(),
  payer: z.string().nullish(),
  transaction: z.string().max(256),
  network: z.string().max(128),
});

export type VerifyReply = z.infer<typeof VerifyReplySchema>;
export type SettleReply = z.infer<typeof SettleReplySchema>;

export type FacilitatorResult<T> = { ok: true; reply: T } | { ok: false; failure: Failure };

export interface FacilitatorOptions {
  url: string;
  fetch: typeof fetch;
  verifyTimeoutMs: number;
  settleTimeoutMs: number;
  /** Sent as `Authorization`; never logged. */
  authorization?: string;
}

export interface Facilitator {
  verify(request: FacilitatorRequest): Promise<FacilitatorResult<VerifyReply>>;
  /** `timeoutMs` (at most the configured settle timeout) when a settle budget is running out. */
  settle(request: FacilitatorRequest, timeoutMs?: number): Promise<FacilitatorResult<SettleReply>>;
}

/** The official facilitator's "broadcast, not yet confirmed" (see FACTS: exactly once). */
export const SETTLEMENT_PENDING = "settlement_pending";

const UTF8 = new TextDecoder();

export function createFacilitator(options: FacilitatorOptions): Facilitator {
  const call = async <T extends { isValid?: boolean; success?: boolean; errorReason?: string | null }>(
    path: "/verify" | "/settle",
    body: FacilitatorRequest,
    schema: z.ZodType<T>,
    timeoutMs: number,
  ): Promise<FacilitatorResult<T>> => {
    const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
    if (options.authorization) headers.authorization = options.authorization;
    const signal = AbortSignal.timeout(timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await options.fetch(`${options.url}${path}`, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
        redirect: "manual",
        signal,
      });
      const length = Number(response.headers.get("content-length") ?? "0");
      if (length > MAX_FACILITATOR_REPLY_BYTES) {
        await response.body?.cancel();
        return bad(path, `reply of ${length} bytes is too large`);
      }
      // A reply without Content-Length is read with the same ceiling, never to its end.
      const read = await readCapped(response.body, MAX_FACILITATOR_REPLY_BYTES);
      if (!read.ok) return bad(path, "reply is too large");
      text = UTF8.decode(read.bytes);
    } catch (error) {
      if (signal.aborted) {
        return { ok: false, failure: fail("facilitator_timeout", `The facilitator did not answer ${path} in time.`) };
      }
      return {
        ok: false,
        failure: fail(
          "facilitator_unreachable",
          `The facilitator could not be reached for ${path}.`,
          (error as Error).name,
        ),
      };
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return bad(path, `HTTP ${response.status}, not JSON`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) return bad(path, `HTTP ${response.status}, unexpected reply shape`);
    const positive = parsed.data.isValid === true || parsed.data.success === true;
    // A "yes" only counts on a 2xx; a "no" on a 2xx or a 4xx (facilitators use 400 for it). A
    // redirect or a 5xx is the facilitator (or something in front of it) failing, whatever its body says.
    const status = response.status;
    const pending = parsed.data.success === false && parsed.data.errorReason === SETTLEMENT_PENDING;
    const answered = (status >= 200 && status <= 299) || (!positive && status >= 400 && status <= 499) || pending;
    if (!answered) return bad(path, `HTTP ${status}`);
    return { ok: true, reply: parsed.data };
  };

  return {
    verify: (request) => call("/verify", request, VerifyReplySchema, options.verifyTimeoutMs),
    settle: (request, timeoutMs) =>
      call(
        "/settle",
        request,
        SettleReplySchema,
        Math.min(timeoutMs ?? options.settleTimeoutMs, options.settleTimeoutMs),
      ),
  };
}

function bad(path: string, detail: string): { ok: false; failure: Failure } {
  return {
    ok: false,
    failure: fail("facilitator_bad_response", `The facilitator gave an unusable answer to ${path}.`, detail),
  };
}
