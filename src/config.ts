/**
 * Worker bindings and vars, validated in one pass (the app does it once per `env`, i.e. per isolate).
 * A bad var is a deployment mistake: the Worker answers 500 `config_invalid` naming the var,
 * never echoing a secret's value.
 */
import { isAddress } from "viem";
import {
  DEFAULT_ORIGIN_TIMEOUT_MS,
  DEFAULT_PRICING_BODY_LIMIT_BYTES,
  DEFAULT_PRICING_CACHE_SECONDS,
  DEFAULT_RATE_LIMIT_PERIOD_SECONDS,
  DEFAULT_RETRY_BODY_LIMIT_BYTES,
  DEFAULT_SETTLE_BUDGET_MS,
  DEFAULT_SETTLE_LATE_MS,
  DEFAULT_SETTLE_TIMEOUT_MS,
  DEFAULT_VERIFY_TIMEOUT_MS,
  LEASE_MARGIN_MS,
  MAX_PRICING_BODY_LIMIT_BYTES,
  MAX_RETRY_BODY_LIMIT_BYTES,
  MAX_SETTLE_LATE_MS,
} from "./constants.ts";
import { type FacilitatorConfig, parseFacilitators } from "./facilitators/config.ts";
import { parseHttpUrl } from "./http-url.ts";
import type { PaymentLedger } from "./ledger/payment-ledger.ts";
import type { ChannelBook, PaymentChannel } from "./sessions/channel-objects.ts";

/** What wrangler.toml, `wrangler secret` and `.dev.vars` provide. */
export interface Bindings {
  PRICING: KVNamespace;
  RECEIPTS: KVNamespace;
  /** The payment ledger: one Durable Object per payment (ledger/payment-ledger.ts). */
  LEDGER: DurableObjectNamespace<PaymentLedger>;
  /** batch-settlement channels, one Durable Object each, and each seller's book (sessions/). */
  CHANNELS?: DurableObjectNamespace<PaymentChannel>;
  CHANNEL_BOOKS?: DurableObjectNamespace<ChannelBook>;
  /** Seconds between a seller's claim-and-settle runs (default 600). */
  CHANNEL_CLAIM_INTERVAL_SECONDS?: string;
  /** A channel's unclaimed amount (atomic units) that starts a claim run at once (default 1000000). */
  CHANNEL_CLAIM_THRESHOLD?: string;
  /** A channel idle this long is refunded its unclaimed balance (default 86400). */
  CHANNEL_REFUND_IDLE_SECONDS?: string;
  /** Secret: bearer token for GET /__x402/channels; without it that endpoint answers 404. */
  CHANNELS_ADMIN_TOKEN?: string;
  /** Optional service binding; when present the origin is reached through it. */
  ORIGIN?: Fetcher;
  /**
   * Optional Rate Limiting binding: facilitator-bound requests per client IP and per payer
   * (limit and period are set on the binding in wrangler.toml).
   */
  PAYMENT_RATE_LIMIT?: RateLimit;
  /** The binding's period (10 or 60), for `Retry-After` on a 429. */
  RATE_LIMIT_PERIOD_SECONDS?: string;
  ORIGIN_URL?: string;
  FACILITATOR_URL?: string;
  /** The facilitators, in order of preference (facilitators/config.ts), as JSON or structured vars. */
  FACILITATORS?: string | unknown[];
  /** Secrets for auth "cdp". */
  CDP_API_KEY_ID?: string;
  CDP_API_KEY_SECRET?: string;
  PAY_TO?: string;
  NETWORK?: string;
  PRICING_CACHE_SECONDS?: string;
  FACILITATOR_VERIFY_TIMEOUT_MS?: string;
  FACILITATOR_SETTLE_TIMEOUT_MS?: string;
  SETTLE_BUDGET_MS?: string;
  SETTLE_LATE_MS?: string;
  ORIGIN_TIMEOUT_MS?: string;
  RETRY_BODY_LIMIT_BYTES?: string;
  PRICING_BODY_LIMIT_BYTES?: string;
  /** Secret: sent verbatim as `Authorization` on every facilitator call. */
  FACILITATOR_AUTHORIZATION?: string;
  /** Secret: sent to the origin as `X-Paywall-Secret` so it can refuse traffic that skipped us. */
  ORIGIN_SHARED_SECRET?: string;
}

export interface Config {
  /** Origin base: scheme, host and an optional path prefix without trailing slash. */
  originUrl: URL | undefined;
  /** `originUrl` as the string request paths are appended to, e.g. `https://api.example.com/v1`. */
  originBase: string | undefined;
  originBinding: Fetcher | undefined;
  /** In order of preference; each with its networks and auth (secrets included: never logged). */
  facilitators: FacilitatorConfig[];
  /** Fallbacks for the pricing document's `defaults`. */
  payTo: `0x${string}` | undefined;
  network: string | undefined;
  pricingCacheMs: number;
  verifyTimeoutMs: number;
  settleTimeoutMs: number;
  /** All the time one request spends on /settle, retries while `settlement_pending` included. */
  settleBudgetMs: number;
  /** Past a /settle call's timeout, how long its answer is still awaited in the background. */
  settleLateMs: number;
  /** How long the origin has to send its status and headers. */
  originTimeoutMs: number;
  /** Largest origin body kept for safe retries of a settled single-use payment; 0 keeps none. */
  retryBodyLimitBytes: number;
  /** How long a claim on a payment is held: verify + origin + settle budget + a margin. */
  leaseMs: number;
  ledger: DurableObjectNamespace<PaymentLedger>;
  /** Limits facilitator-bound requests per client IP and per payer; undefined = no limit. */
  paymentRateLimit: RateLimit | undefined;
  rateLimitPeriodSeconds: number;
  /** Most bytes of a request body read to price it (rules with `when.body` or `per.body`). */
  bodyLimitBytes: number;
  originSharedSecret: string | undefined;
  /** batch-settlement: undefined when the CHANNELS and CHANNEL_BOOKS bindings are not configured. */
  sessions: SessionConfig | undefined;
}

export interface SessionConfig {
  channels: DurableObjectNamespace<PaymentChannel>;
  books: DurableObjectNamespace<ChannelBook>;
  claimIntervalSeconds: number;
  claimThreshold: bigint;
  refundIdleSeconds: number;
  adminToken: string | undefined;
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; variable: string; problem: string };

const CAIP2_EVM = /^eip155:[1-9][0-9]*$/;

export function parseConfig(env: Bindings): ConfigResult {
  const bad = (variable: string, problem: string): ConfigResult => ({ ok: false, variable, problem });

  if (!isKv(env.PRICING)) return bad("PRICING", "KV namespace binding PRICING is missing");
  if (!isKv(env.RECEIPTS)) return bad("RECEIPTS", "KV namespace binding RECEIPTS is missing");
  if (!isNamespace(env.LEDGER)) {
    return bad("LEDGER", "Durable Object binding LEDGER (class PaymentLedger) is missing");
  }

  const originBinding = env.ORIGIN && typeof env.ORIGIN.fetch === "function" ? env.ORIGIN : undefined;
  let originUrl: URL | undefined;
  if (env.ORIGIN_URL !== undefined && env.ORIGIN_URL !== "") {
    originUrl = parseHttpUrl(env.ORIGIN_URL);
    if (!originUrl) return bad("ORIGIN_URL", "must be an http(s) URL without query, fragment or credentials");
  } else if (!originBinding) {
    return bad("ORIGIN_URL", "is required unless a service binding named ORIGIN is configured");
  }

  const facilitators = parseFacilitators(env as unknown as Record<string, unknown>);
  if (!facilitators.ok) return bad(facilitators.variable, facilitators.problem);

  let payTo: `0x${string}` | undefined;
  if (env.PAY_TO !== undefined && env.PAY_TO !== "") {
    if (!isAddress(env.PAY_TO, { strict: false })) return bad("PAY_TO", "must be a 0x-prefixed 20-byte address");
    payTo = env.PAY_TO;
  }
  let network: string | undefined;
  if (env.NETWORK !== undefined && env.NETWORK !== "") {
    if (!CAIP2_EVM.test(env.NETWORK)) return bad("NETWORK", "must be a CAIP-2 EVM network such as eip155:8453");
    network = env.NETWORK;
  }

  const cacheSeconds = parseWholeNumber(env.PRICING_CACHE_SECONDS, DEFAULT_PRICING_CACHE_SECONDS);
  if (cacheSeconds === undefined || cacheSeconds > 3600) {
    return bad("PRICING_CACHE_SECONDS", "must be a whole number of seconds from 0 to 3600");
  }
  const verifyTimeoutMs = parseWholeNumber(env.FACILITATOR_VERIFY_TIMEOUT_MS, DEFAULT_VERIFY_TIMEOUT_MS);
  if (!verifyTimeoutMs || verifyTimeoutMs > 60_000) {
    return bad("FACILITATOR_VERIFY_TIMEOUT_MS", "must be a whole number of milliseconds from 1 to 60000");
  }
  const settleTimeoutMs = parseWholeNumber(env.FACILITATOR_SETTLE_TIMEOUT_MS, DEFAULT_SETTLE_TIMEOUT_MS);
  if (!settleTimeoutMs || settleTimeoutMs > 120_000) {
    return bad("FACILITATOR_SETTLE_TIMEOUT_MS", "must be a whole number of milliseconds from 1 to 120000");
  }

  const settleBudgetMs = parseWholeNumber(env.SETTLE_BUDGET_MS, DEFAULT_SETTLE_BUDGET_MS);
  if (!settleBudgetMs || settleBudgetMs > 300_000) {
    return bad("SETTLE_BUDGET_MS", "must be a whole number of milliseconds from 1 to 300000");
  }
  const settleLateMs = parseWholeNumber(env.SETTLE_LATE_MS, DEFAULT_SETTLE_LATE_MS);
  if (settleLateMs === undefined || settleLateMs > MAX_SETTLE_LATE_MS) {
    return bad("SETTLE_LATE_MS", `must be a whole number of milliseconds from 0 to ${MAX_SETTLE_LATE_MS}`);
  }
  const originTimeoutMs = parseWholeNumber(env.ORIGIN_TIMEOUT_MS, DEFAULT_ORIGIN_TIMEOUT_MS);
  if (!originTimeoutMs || originTimeoutMs > 300_000) {
    return bad("ORIGIN_TIMEOUT_MS", "must be a whole number of milliseconds from 1 to 300000");
  }
  const retryBodyLimitBytes = parseWholeNumber(env.RETRY_BODY_LIMIT_BYTES, DEFAULT_RETRY_BODY_LIMIT_BYTES);
  if (retryBodyLimitBytes === undefined || retryBodyLimitBytes > MAX_RETRY_BODY_LIMIT_BYTES) {
    return bad("RETRY_BODY_LIMIT_BYTES", `must be a whole number of bytes from 0 to ${MAX_RETRY_BODY_LIMIT_BYTES}`);
  }

  let paymentRateLimit: RateLimit | undefined;
  if (env.PAYMENT_RATE_LIMIT !== undefined) {
    if (typeof (env.PAYMENT_RATE_LIMIT as RateLimit).limit !== "function") {
      return bad("PAYMENT_RATE_LIMIT", "must be a Rate Limiting binding ([[ratelimits]] in wrangler.toml)");
    }
    paymentRateLimit = env.PAYMENT_RATE_LIMIT;
  }
  const rateLimitPeriodSeconds = parseWholeNumber(env.RATE_LIMIT_PERIOD_SECONDS, DEFAULT_RATE_LIMIT_PERIOD_SECONDS);
  if (rateLimitPeriodSeconds !== 10 && rateLimitPeriodSeconds !== 60) {
    return bad("RATE_LIMIT_PERIOD_SECONDS", "must be 10 or 60, the binding's period");
  }

  const bodyLimitBytes = parseWholeNumber(env.PRICING_BODY_LIMIT_BYTES, DEFAULT_PRICING_BODY_LIMIT_BYTES);
  if (!bodyLimitBytes || bodyLimitBytes > MAX_PRICING_BODY_LIMIT_BYTES) {
    return bad("PRICING_BODY_LIMIT_BYTES", `must be a whole number of bytes from 1 to ${MAX_PRICING_BODY_LIMIT_BYTES}`);
  }

  let sessions: SessionConfig | undefined;
  if (isNamespace(env.CHANNELS) && isNamespace(env.CHANNEL_BOOKS)) {
    const claimIntervalSeconds = parseWholeNumber(env.CHANNEL_CLAIM_INTERVAL_SECONDS, 600);
    if (!claimIntervalSeconds || claimIntervalSeconds > 86_400) {
      return bad("CHANNEL_CLAIM_INTERVAL_SECONDS", "must be a whole number of seconds from 1 to 86400");
    }
    const threshold = env.CHANNEL_CLAIM_THRESHOLD ?? "1000000";
    if (!/^[1-9][0-9]{0,30}$/.test(threshold)) {
      return bad("CHANNEL_CLAIM_THRESHOLD", "must be a positive whole number of atomic units");
    }
    const refundIdleSeconds = parseWholeNumber(env.CHANNEL_REFUND_IDLE_SECONDS, 86_400);
    if (!refundIdleSeconds) return bad("CHANNEL_REFUND_IDLE_SECONDS", "must be a positive whole number of seconds");
    const adminToken = env.CHANNELS_ADMIN_TOKEN || undefined;
    if (adminToken !== undefined && adminToken.length < 16) {
      return bad("CHANNELS_ADMIN_TOKEN", "must be at least 16 characters");
    }
    sessions = {
      channels: env.CHANNELS as DurableObjectNamespace<PaymentChannel>,
      books: env.CHANNEL_BOOKS as DurableObjectNamespace<ChannelBook>,
      claimIntervalSeconds,
      claimThreshold: BigInt(threshold),
      refundIdleSeconds,
      adminToken,
    };
  }

  // Secrets are checked for shape only; the message never repeats them.
  const originSharedSecret = env.ORIGIN_SHARED_SECRET || undefined;
  if (originSharedSecret !== undefined && !isHeaderValue(originSharedSecret)) {
    return bad("ORIGIN_SHARED_SECRET", "is not a valid HTTP header value");
  }

  return {
    ok: true,
    config: {
      originUrl,
      originBase: originUrl ? `${originUrl.origin}${originUrl.pathname.replace(/\/+$/, "")}` : undefined,
      originBinding,
      facilitators: facilitators.facilitators,
      payTo,
      network,
      pricingCacheMs: cacheSeconds * 1000,
      verifyTimeoutMs,
      settleTimeoutMs,
      settleBudgetMs,
      settleLateMs,
      originTimeoutMs,
      retryBodyLimitBytes,
      leaseMs: verifyTimeoutMs + originTimeoutMs + settleBudgetMs + LEASE_MARGIN_MS,
      ledger: env.LEDGER,
      paymentRateLimit,
      rateLimitPeriodSeconds,
      bodyLimitBytes,
      originSharedSecret,
      sessions,
    },
  };
}

function isKv(value: unknown): value is KVNamespace {
  return typeof value === "object" && value !== null && typeof (value as KVNamespace).get === "function";
}

function isNamespace(value: unknown): value is DurableObjectNamespace<PaymentLedger> {
  return (
    typeof value === "object" && value !== null && typeof (value as DurableObjectNamespace).getByName === "function"
  );
}

function parseWholeNumber(raw: string | undefined, fallback: number): number | undefined {
  if (raw === undefined || raw === "") return fallback;
  if (!/^[0-9]{1,9}$/.test(raw)) return undefined;
  return Number(raw);
}

function isHeaderValue(value: string): boolean {
  // RFC 9110 field-value: visible ASCII, space and tab; no CR/LF.
  return /^[\t\x20-\x7e]+$/.test(value);
}
