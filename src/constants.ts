/**
 * Numbers and names the whole Worker shares. Units are in the names.
 */

/**
 * Request size caps, checked before any work that grows with them. Generous for real clients
 * (browsers send ~2 KiB of headers; Cloudflare itself allows 128 KB of headers and 16 KB of URL):
 * they bound what junk can cost, not what an API may use.
 */
export const MAX_PATH_BYTES = 4 * 1024;
export const MAX_QUERY_BYTES = 16 * 1024;
/** Priced routes only: their headers are read (payment, dynamic prices) before anything else. */
export const MAX_HEADER_COUNT = 100;
export const MAX_HEADER_BYTES = 32 * 1024;
/** `Retry-After` for `429 rate_limited` unless RATE_LIMIT_PERIOD_SECONDS says otherwise. */
export const DEFAULT_RATE_LIMIT_PERIOD_SECONDS = 60;

/** Largest payment header we decode; an EIP-3009 payload is ~1 KiB, so 8 KiB is generous. */
export const MAX_PAYMENT_HEADER_BYTES = 8 * 1024;

/** The official facilitator refuses authorizations with less than 6 s left; refuse them first. */
export const MIN_VALIDITY_LEFT_SECONDS = 6;

/** Workers KV refuses an `expirationTtl` below 60 s. */
export const KV_MIN_TTL_SECONDS = 60;

export const DEFAULT_PRICING_CACHE_SECONDS = 10;
export const DEFAULT_VERIFY_TIMEOUT_MS = 5_000;
/** Settling waits for a transaction to be included, so it gets longer than verify. */
export const DEFAULT_SETTLE_TIMEOUT_MS = 15_000;
/**
 * All the time one request may spend on /settle, retries included: while the facilitator answers
 * `settlement_pending` (broadcast, not yet confirmed) the same payload is settled again until this
 * runs out; then the payment is recorded as pending and the buyer is told to come back with it.
 */
export const DEFAULT_SETTLE_BUDGET_MS = 20_000;
/**
 * How long a /settle call that ran out of time is still awaited, in the background, for the
 * answer only it can give (did the buyer pay?). 25 s covers the official Solana facilitator's own
 * 30 s confirmation wait after our 15 s timeout, and ends inside the 30 s a Worker's `waitUntil`
 * may run after its response (hence at most MAX_SETTLE_LATE_MS).
 */
export const DEFAULT_SETTLE_LATE_MS = 25_000;
export const MAX_SETTLE_LATE_MS = 28_000;
/** Pause between two /settle calls for one pending settlement. */
export const SETTLE_RETRY_DELAY_MS = 500;
/** How long the origin has to start answering (status and headers); its body may take longer. */
export const DEFAULT_ORIGIN_TIMEOUT_MS = 30_000;
/**
 * A claim's lease covers verify + origin + settle budget; this margin covers the KV and Durable
 * Object calls around them and reading a pending answer's body.
 */
export const LEASE_MARGIN_MS = 10_000;
/** Part of the margin a pending answer's body may take to read before it is kept. */
export const PENDING_BODY_READ_MS = 5_000;
/**
 * Answers kept for safe retries of a settled single-use payment (same payment → same answer):
 * at most this many body bytes, and at most this long (and never past the authorization's
 * validBefore, after which nobody can present it).
 */
export const DEFAULT_RETRY_BODY_LIMIT_BYTES = 1024 * 1024;
export const MAX_RETRY_BODY_LIMIT_BYTES = 16 * 1024 * 1024;
export const MAX_STORED_ANSWER_SECONDS = 24 * 3600;
/** A retry arriving while the first answer is still being copied waits this long, at most. */
export const ANSWER_CAPTURE_MS = 30_000;
/** Ledger rows outlive the authorization they record by this much, and never more than a week. */
export const LEDGER_GRACE_SECONDS = 24 * 3600;
export const LEDGER_MAX_KEEP_SECONDS = 7 * 24 * 3600;
/** `Retry-After` for a copy of a payment that is being served now: the first copy is usually done in a second. */
export const IN_PROGRESS_RETRY_AFTER_SECONDS = 1;
/** `Retry-After` for a payment whose settlement is still being confirmed on chain. */
export const PENDING_RETRY_AFTER_SECONDS = 5;
/**
 * Request bodies read to find a priced JSON field. The whole body must fit: a field can only be
 * read unambiguously (no later duplicate key) from a body read to its end. Bodies stay buffered
 * until forwarded, so the ceiling is well inside a Worker's 128 MB.
 */
export const DEFAULT_PRICING_BODY_LIMIT_BYTES = 64 * 1024;
export const MAX_PRICING_BODY_LIMIT_BYTES = 16 * 1024 * 1024;
/** Facilitator replies are small JSON; anything larger is not a facilitator talking. */
export const MAX_FACILITATOR_REPLY_BYTES = 64 * 1024;

/** Receipts kept in the isolate so a hot access-window route needs no KV read. */
export const RECEIPT_MEMO_ENTRIES = 10_000;
/**
 * Decoded payment headers kept in the isolate, so a reused header (an access window) is not
 * parsed and hashed again. Only headers up to PAYMENT_MEMO_MAX_BYTES are kept: ~5 MiB at most.
 */
export const PAYMENT_MEMO_ENTRIES = 2_000;
export const PAYMENT_MEMO_MAX_BYTES = 2_048;
/**
 * Encoded 402 answers kept in the isolate, per pricing version, route and URL; and as many
 * "this URL, unpaid, gets that 402" shortcuts. Only for URLs up to MEMO_MAX_URL_LENGTH.
 */
export const PAYMENT_REQUIRED_MEMO_ENTRIES = 1_000;
export const MEMO_MAX_URL_LENGTH = 2_048;

export const PRICING_KEY = "pricing";
export const RECEIPT_KEY_PREFIX = "r:";

export const HEADER = {
  paymentSignature: "PAYMENT-SIGNATURE",
  paymentRequired: "PAYMENT-REQUIRED",
  paymentResponse: "PAYMENT-RESPONSE",
  xPayment: "X-PAYMENT",
  xPaymentResponse: "X-PAYMENT-RESPONSE",
  payer: "X-Payment-Payer",
  route: "X-Payment-Route",
  pricingVersion: "X-Pricing-Version",
  originSecret: "X-Paywall-Secret",
  /** The origin's report of what an `upto` answer costs (`{"amount": …}`); never shown to buyers. */
  settlementOverrides: "Settlement-Overrides",
} as const;

/** Priced answers may hold paid content: never let a shared cache keep them. */
export const CACHE_CONTROL_PAID = "private, no-store";
/** A 402 must not be replayed from a cache either. */
export const CACHE_CONTROL_402 = "no-store";

export const BUILTIN_PREFIX = "/__x402/";
