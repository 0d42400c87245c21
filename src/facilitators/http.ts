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
import { readCapped } from "../body.ts";
import { MAX_FACILITATOR_REPLY_BYTES } from "../constants.ts";
import { type Failure, fail } from "../errors.ts";

export interface FacilitatorRequest {
  x402Version: 1 | 2;
  paymentPayload: unknown;
  paymentRequirements: unknown;
}

/** Scheme state a reply may carry (batch-settlement: the channel's balance and claims); never shown to buyers as is. */
const Extra = z.record(z.string(), z.unknown()).optional().catch(undefined);

const VerifyReplySchema = z.object({
  isValid: z.boolean(),
  invalidReason: z.string().nullish(),
  payer: z.string().nullish(),
  extra: Extra,
});

const SettleReplySchema = z.object({
  success: z.boolean(),
  errorReason: z.string().nullish(),
  payer: z.string().nullish(),
  transaction: z.string().max(256),
  network: z.string().max(128),
  amount: z.string().max(80).optional(),
  extra: Extra,
});

/** `GET /supported`: what the facilitator settles. Only the fields the paywall reads are checked. */
const SupportedReplySchema = z.object({
  kinds: z
    .array(
      z.object({
        x402Version: z.number(),
        scheme: z.string().max(64),
        network: z.string().max(128),
        extra: z.record(z.string(), z.unknown()).optional(),
      }),
    )
    .max(1000),
});

export type VerifyReply = z.infer<typeof VerifyReplySchema>;
export type SettleReply = z.infer<typeof SettleReplySchema>;
export type SupportedReply = z.infer<typeof SupportedReplySchema>;

/**
 * A failure says whether another facilitator may be asked instead: only when this one surely did
 * nothing (unreachable, timed out, or failing with a 5xx).
 */
export type FacilitatorResult<T> =
  | { ok: true; reply: T }
  /**
   * `unsent`: the request never left (nothing configured, no credentials): surely nothing happened.
   * `late`: the call ran out of time but is still waiting for the facilitator's answer.
   */
  | { ok: false; failure: Failure; retryable: boolean; unsent?: true; late?: Promise<FacilitatorResult<T>> };

export interface FacilitatorOptions {
  url: string;
  fetch: typeof fetch;
  verifyTimeoutMs: number;
  settleTimeoutMs: number;
  supportedTimeoutMs?: number;
  /** Headers for one call (a static Authorization, or a fresh CDP JWT); never logged. */
  authHeaders?: (method: "GET" | "POST", url: URL) => Promise<Record<string, string>>;
}

export interface Facilitator {
  verify(request: FacilitatorRequest): Promise<FacilitatorResult<VerifyReply>>;
  /**
   * `timeoutMs` (at most the configured settle timeout) when a settle budget is running out;
   * `lateMs`: past the timeout, the call goes on this much longer and its answer comes as `late`.
   */
  settle(request: FacilitatorRequest, timeoutMs?: number, lateMs?: number): Promise<FacilitatorResult<SettleReply>>;
  supported(): Promise<FacilitatorResult<SupportedReply>>;
}

const DEFAULT_SUPPORTED_TIMEOUT_MS = 3_000;

/** The official facilitator's "broadcast, not yet confirmed" (see FACTS: exactly once). */
export const SETTLEMENT_PENDING = "settlement_pending";

const UTF8 = new TextDecoder();

export function createFacilitator(options: FacilitatorOptions): Facilitator {
  const call = async <T extends object>(
    path: "/verify" | "/settle" | "/supported",
    body: FacilitatorRequest | undefined,
    schema: z.ZodType<T, z.ZodTypeDef, unknown>,
    timeoutMs: number,
    lateMs = 0,
  ): Promise<FacilitatorResult<T>> => {
    if (lateMs <= 0) return attempt(path, body, schema, timeoutMs);
    const answer = attempt(path, body, schema, timeoutMs + lateMs);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outOfTime = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    const first = await Promise.race([answer, outOfTime]);
    clearTimeout(timer);
    if (first) return first;
    return { ...timedOut(path), late: answer };
  };

  const attempt = async <T extends object>(
    path: "/verify" | "/settle" | "/supported",
    body: FacilitatorRequest | undefined,
    schema: z.ZodType<T, z.ZodTypeDef, unknown>,
    timeoutMs: number,
  ): Promise<FacilitatorResult<T>> => {
    const method = body === undefined ? "GET" : "POST";
    const url = `${options.url}${path}`;
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (options.authHeaders) {
      try {
        Object.assign(headers, await options.authHeaders(method, new URL(url)));
      } catch {
        return { ...bad(path, "could not make its authentication"), retryable: false, unsent: true };
      }
    }
    const signal = AbortSignal.timeout(timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await options.fetch(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        redirect: "manual",
        signal,
      });
      const length = Number(response.headers.get("content-length") ?? "0");
      if (length > MAX_FACILITATOR_REPLY_BYTES) {
        await response.body?.cancel();
        return { ...bad(path, `reply of ${length} bytes is too large`), retryable: false };
      }
      // A reply without Content-Length is read with the same ceiling, never to its end.
      const read = await readCapped(response.body, MAX_FACILITATOR_REPLY_BYTES);
      if (!read.ok) return { ...bad(path, "reply is too large"), retryable: false };
      text = UTF8.decode(read.bytes);
    } catch (error) {
      if (signal.aborted) return timedOut(path);
      return {
        ok: false,
        failure: fail(
          "facilitator_unreachable",
          `The facilitator could not be reached for ${path}.`,
          (error as Error).name,
        ),
        retryable: true,
      };
    }
    const failing = response.status >= 500;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { ...bad(path, `HTTP ${response.status}, not JSON`), retryable: failing };
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) return { ...bad(path, `HTTP ${response.status}, unexpected reply shape`), retryable: failing };
    const data = parsed.data as { isValid?: unknown; success?: unknown; errorReason?: unknown };
    const positive = data.isValid === true || data.success === true || path === "/supported";
    // A "yes" only counts on a 2xx; a "no" on a 2xx or a 4xx (facilitators use 400 for it). A
    // redirect or a 5xx is the facilitator (or something in front of it) failing, whatever its body says.
    const status = response.status;
    const pending = data.success === false && data.errorReason === SETTLEMENT_PENDING;
    const answered = (status >= 200 && status <= 299) || (!positive && status >= 400 && status <= 499) || pending;
    if (!answered) return { ...bad(path, `HTTP ${status}`), retryable: failing };
    return { ok: true, reply: parsed.data };
  };

  return {
    verify: (request) => call("/verify", request, VerifyReplySchema, options.verifyTimeoutMs),
    settle: (request, timeoutMs, lateMs) =>
      call(
        "/settle",
        request,
        SettleReplySchema,
        Math.min(timeoutMs ?? options.settleTimeoutMs, options.settleTimeoutMs),
        lateMs,
      ),
    supported: () =>
      call("/supported", undefined, SupportedReplySchema, options.supportedTimeoutMs ?? DEFAULT_SUPPORTED_TIMEOUT_MS),
  };
}

function timedOut(path: string): { ok: false; failure: Failure; retryable: true } {
  return {
    ok: false,
    failure: fail("facilitator_timeout", `The facilitator did not answer ${path} in time.`),
    retryable: true,
  };
}

function bad(path: string, detail: string): { ok: false; failure: Failure } {
  return {
    ok: false,
    failure: fail("facilitator_bad_response", `The facilitator gave an unusable answer to ${path}.`, detail),
  };
}
