/**
 * The request path, as one function over the parts (see ARCHITECTURE.md):
 * canonical path → pricing → free/unmatched → payment header → decode → fit the route → local
 * checks → identity → settled already? (KV receipt, else the ledger) → claim in the ledger →
 * /verify → origin → /settle (only for origin status < 400) → ledger + receipt → answer.
 *
 * Exactly once. A payment is claimed in its ledger object (a Durable Object per payment identity)
 * before the origin is called, so however many copies of it arrive, wherever, the origin runs once;
 * the others get `409 payment_in_progress`. Outcomes are recorded there: released when nobody was
 * charged (origin ≥ 400, verify or settle refused), settled (with the origin's answer kept, so the
 * same payment presented again gets the same answer), or pending (broadcast, not confirmed: the
 * answer is kept and the buyer comes back with the same payment).
 *
 * Settlement happens as soon as the origin's status and headers arrive, before its body is read:
 * bodies stream to the buyer and are never buffered whole, and if settlement fails the body is
 * cancelled unread, so unpaid content never leaves the Worker. The cost of this choice: the
 * buyer is charged once the origin has *started* a successful answer; an origin that fails
 * mid-body after a 2xx has still been paid for, exactly as with a direct paid API call.
 * Routes with `settle: "before"` (x402 `upfront`) settle first and then run the origin once.
 */
import type { Config } from "./config.ts";
import {
  HEADER,
  IN_PROGRESS_RETRY_AFTER_SECONDS,
  KV_MIN_TTL_SECONDS,
  LEDGER_GRACE_SECONDS,
  LEDGER_MAX_KEEP_SECONDS,
  MAX_HEADER_BYTES,
  MAX_HEADER_COUNT,
  MAX_PATH_BYTES,
  MAX_QUERY_BYTES,
  MAX_STORED_ANSWER_SECONDS,
  MEMO_MAX_URL_LENGTH,
  PAYMENT_MEMO_MAX_BYTES,
  PENDING_BODY_READ_MS,
  PENDING_RETRY_AFTER_SECONDS,
} from "./constants.ts";
import { probeAnswer, readsBody } from "./discovery.ts";
import { type Failure, fail } from "./errors.ts";
import type { FacilitatorRequest } from "./facilitators/http.ts";
import type { FacilitatorPool } from "./facilitators/pool.ts";
import { answerResponse, copyForRetries, mayKeep, readForPending } from "./ledger/answer.ts";
import type { Ledger, PaymentHandle } from "./ledger/client.ts";
import type { ClaimResult, LedgerRecord, StoredAnswer } from "./ledger/types.ts";
import type { BoundedMap } from "./memo.ts";
import { forwardToOrigin } from "./origin.ts";
import { canonicalisePath } from "./path.ts";
import { isGroup, resolveRule } from "./pricing/conditions.ts";
import type { PricingTable, Requirement, RouteRule } from "./pricing/document.ts";
import { isPriced, routeFor } from "./pricing/path-readings.ts";
import type { PricingStore, RetiredTable } from "./pricing/store.ts";
import { type Receipt, type ReceiptStore, receiptKey, receiptTtlSeconds } from "./receipts.ts";
import { FieldReader } from "./request-fields.ts";
import {
  answer402,
  type Built402,
  build402,
  errorResponse,
  markPaid,
  paymentFailureResponse,
  preflightResponse,
  retryLaterResponse,
  withCors,
} from "./responses.ts";
import { checkAuthorization, checkSignature, findRequirement, selectRequirement } from "./schemes/exact-evm/checks.ts";
import { exactEvmIdentity } from "./schemes/exact-evm/identity.ts";
import { decodePayment, type Payment } from "./schemes/exact-evm/payment.ts";
import { type SettleOutcome, settleWithinBudget } from "./settlement.ts";
import { encodeHeaderJson } from "./x402/codec.ts";
import { toV1Network } from "./x402/networks.ts";
import { toRequirementV1 } from "./x402/requirements.ts";

export interface Runtime {
  config: Config;
  pricing: PricingStore;
  receipts: ReceiptStore;
  facilitators: FacilitatorPool;
  ledger: Ledger;
  /** Payment header → the decoded payment, and what its signature was checked for. */
  payments: BoundedMap<string, DecodedPayment>;
  /** Request URL → the 402 it got when unpaid, for routes whose price reads nothing but the URL. */
  unpaid: BoundedMap<string, UnpaidAnswer>;
  nowMs: () => number;
  log: (event: string, detail: Record<string, unknown>) => void;
}

type WaitUntil = (promise: Promise<unknown>) => void;

export interface DecodedPayment {
  version: 1 | 2;
  payment: Payment;
  /** Set once the signature recovered to the payer under this token's domain (that requirement's). */
  checked?: { domain: string; identity: string; key: string; requirement: Requirement };
}

export interface UnpaidAnswer {
  pricingVersion: string;
  method: string;
  built: Built402;
}

/** `url` is `splitRawUrl(request.url)`, which the caller has already done. */
export async function handleRequest(
  request: Request,
  url: { path: string; query: string },
  rt: Runtime,
  waitUntil: WaitUntil,
): Promise<Response> {
  const { path, query } = url;
  const nowMs = rt.nowMs();
  const current = rt.pricing.current(nowMs);
  // The same unpaid request as before gets the same 402 without checking the path or matching
  // again: both depend only on the URL, the method and the table, which the shortcut is keyed on.
  if (current?.ok) {
    const unpaid = rt.unpaid.get(request.url);
    if (
      unpaid?.pricingVersion === current.table.version &&
      unpaid.method === request.method &&
      !hasPaymentHeader(request.headers)
    ) {
      return answer402(unpaid.built);
    }
  }
  if (path.length > MAX_PATH_BYTES) {
    return errorResponse(fail("path_too_long", `The request path is longer than ${MAX_PATH_BYTES} bytes.`));
  }
  if (query.length > MAX_QUERY_BYTES) {
    return errorResponse(fail("query_too_long", `The query string is longer than ${MAX_QUERY_BYTES} bytes.`));
  }
  const canonical = canonicalisePath(path);
  if (!canonical.ok) {
    return errorResponse(fail("non_canonical_path", "The request path is not in canonical form.", canonical.problem));
  }
  const pricing = current ?? (await rt.pricing.get(nowMs));
  if (!pricing.ok) {
    return errorResponse(
      fail("pricing_unavailable", "No valid pricing table is loaded; refusing to serve.", pricing.why),
    );
  }
  const table = pricing.table;
  const preflightMethod = preflightMethodOf(request);
  const routed = routeFor(table, preflightMethod ?? request.method, path, canonical.segments);
  if (!routed.ok) {
    return errorResponse(
      fail("non_canonical_path", "The request path has a shape origins read in other ways.", routed.problem),
    );
  }
  const entry = routed.entry;

  if (!entry) {
    if (table.unmatched === "deny")
      return errorResponse(fail("route_denied", "No route is configured for this request."));
    return forwardFree(request, rt.config, path, query, undefined);
  }
  if (preflightMethod) {
    // A preflight carries none of the fields a dynamic price reads: any priced variant decides.
    return isPriced(entry) ? preflightResponse(request) : forwardFree(request, rt.config, path, query, undefined);
  }
  let route: RouteRule;
  let fields: FieldReader | undefined;
  if (isGroup(entry)) {
    // A crawler probes with no body: tell it what the route costs instead of refusing it.
    if (readsBody(entry) && !hasPaymentHeader(request.headers) && hasNoBody(request)) {
      const probe = probeAnswer(entry, request.url, table.version);
      if (probe) return answer402(probe);
    }
    fields = new FieldReader(request, query, rt.config.bodyLimitBytes);
    const read = await fields.read(entry.fields);
    const resolved = read.ok ? resolveRule(entry, read.values) : read;
    if (!resolved.ok) {
      rt.log("price_unresolved", { reason: resolved.failure.reason, detail: resolved.failure.detail });
      return withCors(errorResponse(resolved.failure));
    }
    route = resolved.route;
  } else {
    route = entry;
  }
  if (route.accepts.length === 0) return forwardFree(request, rt.config, path, query, fields);
  return handlePriced(request, rt, waitUntil, {
    table,
    retired: pricing.retired,
    route,
    method: request.method,
    segments: canonical.segments,
    path,
    query,
    fields,
  });
}

async function forwardFree(
  request: Request,
  config: Config,
  path: string,
  query: string,
  fields: FieldReader | undefined,
): Promise<Response> {
  const forwarded = await forwardToOrigin(config, { request, path, query, body: bodyOf(request, fields) });
  return forwarded.ok ? forwarded.response : errorResponse(forwarded.failure);
}

interface Priced {
  table: PricingTable;
  retired: readonly RetiredTable[];
  route: RouteRule;
  method: string;
  segments: string[];
  path: string;
  query: string;
  /** Set when the route's price reads request fields; holds the body if it was read. */
  fields: FieldReader | undefined;
}

/** One paid request, once its payment is decoded and checked: what every later step needs. */
interface Paid {
  request: Request;
  rt: Runtime;
  waitUntil: WaitUntil;
  p: Priced;
  version: 1 | 2;
  payment: Payment;
  /** The route's requirement this payment is for. */
  requirement: Requirement;
  /** Receipt key in KV (a hash of the identity). */
  key: string;
  /** The payment's ledger object, made on first use (a receipt often answers without it). */
  readonly ledger: PaymentHandle;
  /** `METHOD path?query`: a stored answer is only given back for the same request. */
  requestKey: string;
  /** The facilitator that verified the payment; it, and only it, settles it. */
  via?: string;
  refuse: (failure: Failure) => Response;
}

/** The body to forward: the bytes read to price the request, else the untouched stream. */
function bodyOf(request: Request, fields: FieldReader | undefined): BodyInit | null {
  return fields?.bodyRead ? (fields.bodyBytes ?? null) : request.body;
}

async function handlePriced(request: Request, rt: Runtime, waitUntil: WaitUntil, p: Priced): Promise<Response> {
  const { route } = p;
  const resourceUrl = request.url;
  const refuse = (failure: Failure) => {
    rt.log("payment_refused", { route: route.id, reason: failure.reason, detail: failure.detail });
    return paymentFailureResponse(route, resourceUrl, failure, p.table.version);
  };

  const tooLarge = headersTooLarge(request.headers);
  if (tooLarge) return refuse(tooLarge);
  const v2Header = request.headers.get(HEADER.paymentSignature);
  const v1Header = request.headers.get(HEADER.xPayment);
  if (v2Header !== null && v1Header !== null) {
    return refuse(fail("payment_header_conflict", "Send PAYMENT-SIGNATURE or X-PAYMENT, not both."));
  }
  if (v2Header === null && v1Header === null) {
    const version = p.table.version;
    const built = build402(route, resourceUrl, fail("payment_required", "This resource requires payment."), version);
    // Only the URL chose this route and its price (no request fields): the next time it comes
    // unpaid, handleRequest can answer at once.
    if (p.fields === undefined && request.method !== "OPTIONS" && resourceUrl.length <= MEMO_MAX_URL_LENGTH) {
      rt.unpaid.set(resourceUrl, { pricingVersion: version, method: request.method, built });
    }
    return answer402(built);
  }
  const version = v2Header !== null ? 2 : 1;
  const header = (v2Header ?? v1Header) as string;
  let known = rt.payments.get(header);
  if (known?.version !== version) {
    const decoded = decodePayment(header, version);
    if (!decoded.ok) return refuse(decoded.failure);
    known = { version, payment: decoded.payment };
    if (header.length <= PAYMENT_MEMO_MAX_BYTES) rt.payments.set(header, known);
  }
  const { payment } = known;
  const nowSeconds = Math.floor(rt.nowMs() / 1000);
  const paidFor = (identity: string, key: string, requirement: Requirement): Paid => {
    let handle: PaymentHandle | undefined;
    return {
      request,
      rt,
      waitUntil,
      p,
      version,
      payment,
      requirement,
      key,
      get ledger() {
        handle ??= rt.ledger.forPayment(identity);
        return handle;
      },
      requestKey: `${request.method} ${p.path}${p.query}`,
      refuse,
    };
  };

  // A header whose signature was checked before (an access window in use, a retry): its receipt,
  // if this location has one, answers before anything is fitted or checked again.
  if (known.checked) {
    const { identity, key, requirement } = known.checked;
    const receipt = await rt.receipts.get(key, nowSeconds);
    if (receipt) return answerFromReceipt(paidFor(identity, key, requirement), receipt);
  }

  // Which of the route's requirements the payment is for: its terms now, or what a 402 offered
  // just before a price edit. A payment that fits neither may still be one already settled.
  const selected = selectRequirement(payment, route);
  const terms = selected.ok ? checkAuthorization(payment, selected.requirement, nowSeconds) : selected.failure;
  const requirement = !terms && selected.ok ? selected.requirement : await selectFromRetired(payment, request, rt, p);
  const domain = requirement ?? findRequirement(payment, route);
  if (!domain) return refuse(terms as Failure);

  // The signature must recover to the payer before the payment's identity means anything: the
  // identity (network, asset, payer, nonce) is public once settled.
  const domainKey = `${domain.network}|${domain.asset}|${domain.extra.name}|${domain.extra.version}`;
  const firstCheck = known.checked?.domain !== domainKey;
  if (firstCheck) {
    const badSignature = await checkSignature(payment, domain);
    if (badSignature) return refuse(badSignature);
    const identity = exactEvmIdentity(payment, domain);
    known.checked = { domain: domainKey, identity, key: await receiptKey(identity), requirement: domain };
  }
  const { identity, key } = known.checked as NonNullable<DecodedPayment["checked"]>;
  const paid = paidFor(identity, key, domain);

  // Settled already? A receipt in this location's KV answers without a ledger round trip.
  const receipt = firstCheck ? await rt.receipts.get(key, nowSeconds) : undefined;
  if (receipt) return answerFromReceipt(paid, receipt);

  if (!requirement) {
    // Not fitting today's terms, and unknown here: only the ledger can say it was settled elsewhere.
    if (terms && MAYBE_SETTLED.has(terms.reason)) {
      const looked = await paid.ledger.lookup(rt.nowMs());
      if (looked.ok && looked.value.kind !== "none") return answerKnown(paid, looked.value);
    }
    return refuse(terms as Failure);
  }

  // From here on the payment costs facilitator calls: bounded per client and per payer.
  const limited = await rateLimited(rt, request, payment.authorization.from);
  if (limited) return limited;

  const claimed = await paid.ledger.claim(rt.nowMs());
  if (!claimed.ok) return refuse(claimed.failure);
  if (claimed.value.kind !== "claimed") return answerKnown(paid, claimed.value);
  return route.settleBefore ? settleThenServe(paid) : serveThenSettle(paid);
}

/**
 * A settled payment this location has a receipt for: its window, or — for the same request, when
 * the ledger kept the answer — that answer (fetched from the ledger), or a refusal.
 */
async function answerFromReceipt(paid: Paid, receipt: Receipt): Promise<Response> {
  if (!receipt.answerKept || receipt.request !== paid.requestKey || isAccessWindow(receipt, paid.p.route)) {
    return serveSettled(paid, receipt, undefined);
  }
  const stored = await paid.ledger.lookup(paid.rt.nowMs());
  if (!stored.ok) return paid.refuse(stored.failure);
  if (stored.value.kind === "settled") {
    return serveSettled(paid, receiptOf(stored.value.record, true), stored.value.answer, true);
  }
  return serveSettled(paid, receipt, undefined);
}

/** Priced routes read their headers (payment, dynamic prices): refuse what no client sends. */
function headersTooLarge(headers: Headers): Failure | undefined {
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
async function rateLimited(rt: Runtime, request: Request, payer: string): Promise<Response | undefined> {
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

/** How long a settled record waits for its answer's copy, to write both at once. */
const QUICK_COPY_MS = 50;

/** Fit failures a payment settled under older terms (or a while ago) would show. */
const MAYBE_SETTLED = new Set(["amount_mismatch", "pay_to_mismatch", "payment_expired"]);

/** The ledger knows this payment: someone holds it, it settled, or its settlement is pending. */
function answerKnown(paid: Paid, known: Exclude<ClaimResult, { kind: "claimed" }>): Promise<Response> | Response {
  switch (known.kind) {
    case "busy":
      // The copy being served is usually done within a second, however long its lease runs.
      return retryLaterResponse(
        fail("payment_in_progress", "This payment is being served right now; present it again shortly."),
        IN_PROGRESS_RETRY_AFTER_SECONDS,
      );
    case "settled":
      return serveSettled(paid, receiptOf(known.record, known.answer !== undefined), known.answer, true);
    case "pending":
      return known.leased ? confirmPending(paid, known.record, known.answer) : pendingResponse(paid, known.record);
  }
}

/**
 * A settled payment presented again: its access window, the answer it bought (same request), or
 * a refusal. Learnt from the ledger, the receipt is remembered in this isolate.
 */
async function serveSettled(
  paid: Paid,
  receipt: Receipt,
  answer: StoredAnswer | undefined,
  fromLedger = false,
): Promise<Response> {
  const { rt, p, version } = paid;
  const nowSeconds = Math.floor(rt.nowMs() / 1000);
  if (fromLedger) rt.receipts.remember(paid.key, receipt, Math.max(receipt.expiresAt, nowSeconds + KV_MIN_TTL_SECONDS));
  if (isAccessWindow(receipt, p.route)) {
    if (receipt.expiresAt <= nowSeconds) {
      return paid.refuse(
        fail("access_window_expired", "The access window bought with this payment has ended.", receipt.tx),
      );
    }
    const forwarded = await forwardToOrigin(rt.config, {
      request: paid.request,
      path: p.path,
      query: p.query,
      body: bodyOf(paid.request, p.fields),
      payer: receipt.payer,
      routeId: p.route.id,
    });
    if (!forwarded.ok) return markPaid(errorResponse(forwarded.failure));
    return markPaid(forwarded.response, receiptHeader(version, receipt));
  }
  if (answer && receipt.request === paid.requestKey && answerFresh(receipt, nowSeconds)) {
    rt.log("payment_replayed", { route: p.route.id, tx: receipt.tx });
    return markPaid(answerResponse(answer), receiptHeader(version, receipt));
  }
  return paid.refuse(fail("payment_already_used", "This payment has already been settled.", receipt.tx));
}

/** The x402 `authorization` flow: verify, run the origin, settle only if it succeeded. */
async function serveThenSettle(paid: Paid): Promise<Response> {
  const { rt, p, version, payment, requirement } = paid;
  const facilitatorRequest = facilitatorRequestOf(paid);
  const verified = await rt.facilitators.verify(facilitatorRequest, payment.network, "exact");
  if (!verified.ok || !verified.reply.isValid) {
    await paid.ledger.release();
    if (!verified.ok) return paid.refuse(verified.failure);
    return paid.refuse(
      fail("verify_rejected", "The facilitator rejected this payment.", verified.reply.invalidReason ?? "unknown"),
    );
  }
  const payer = verified.reply.payer ?? payment.authorization.from;
  paid.via = verified.via;

  const forwarded = await forwardToOrigin(rt.config, {
    request: paid.request,
    path: p.path,
    query: p.query,
    body: bodyOf(paid.request, p.fields),
    payer,
    routeId: p.route.id,
    timeoutMs: rt.config.originTimeoutMs,
  });
  if (!forwarded.ok) {
    await paid.ledger.release();
    return markPaid(errorResponse(forwarded.failure));
  }
  const response = forwarded.response;
  // The origin failed: nobody is charged, and the buyer may retry with the same payment.
  if (response.status >= 400) {
    await paid.ledger.release();
    return markPaid(response);
  }

  const outcome = await settle(paid, facilitatorRequest, undefined);
  const record = recordOf(paid, payer, requirement, outcome, facilitatorRequest, false);
  switch (outcome.kind) {
    case "refused":
      await response.body?.cancel();
      await paid.ledger.release();
      return paid.refuse(fail("settle_failed", "The payment could not be settled.", outcome.reason));
    case "pending":
      return keepPending(paid, record, response);
    case "settled": {
      rt.log("payment_settled", { route: p.route.id, payer: record.payer, amount: record.amount, tx: record.tx });
      if (!isSingleUse(p.route) || !mayKeep(response, rt.config.retryBodyLimitBytes)) {
        // Off the critical path: until this lands, the claim still holds off every copy of the payment.
        paid.waitUntil(recordSettled(paid, record, undefined));
        return markPaid(response, receiptHeader(version, receiptOf(record, false)));
      }
      const { response: streamed, copy } = copyForRetries(response, rt.config.retryBodyLimitBytes);
      paid.waitUntil(recordSettled(paid, record, copy));
      return markPaid(streamed, receiptHeader(version, receiptOf(record, false)));
    }
  }
}

/**
 * The x402 `upfront` flow (`settle: "before"`), for origins with side effects: settle, then run the
 * origin once. The buyer is charged even if the origin then fails, and a retry gets that answer.
 */
async function settleThenServe(paid: Paid, pendingBefore?: LedgerRecord): Promise<Response> {
  const { rt, requirement } = paid;
  const facilitatorRequest = pendingBefore?.settleRequest ?? facilitatorRequestOf(paid);
  // Nothing was verified first: the facilitator it was sent to before, else the first for the network.
  paid.via = pendingBefore?.facilitator ?? rt.facilitators.firstFor(paid.payment.network, "exact", paid.version);
  const outcome = await settle(paid, facilitatorRequest, pendingBefore);
  const payer =
    outcome.kind === "settled" && outcome.reply.payer ? outcome.reply.payer : paid.payment.authorization.from;
  const record = recordOf(paid, payer, requirement, outcome, facilitatorRequest, true);
  if (outcome.kind === "refused") {
    await paid.ledger.release();
    return paid.refuse(fail("settle_failed", "The payment could not be settled.", outcome.reason));
  }
  if (outcome.kind === "pending") return keepPending(paid, record, undefined);

  // Recorded before the origin runs, so a copy arriving meanwhile finds it settled (and, for a
  // single-use route, waits for the answer being copied).
  const capture = isSingleUse(paid.p.route) && rt.config.retryBodyLimitBytes > 0;
  const written = paid.ledger.settle(rt.nowMs(), record, capture, ledgerExpiresAtMs(record));
  await written;
  rt.log("payment_settled", { route: paid.p.route.id, payer: record.payer, amount: record.amount, tx: record.tx });
  const forwarded = await forwardToOrigin(rt.config, {
    request: paid.request,
    path: paid.p.path,
    query: paid.p.query,
    body: bodyOf(paid.request, paid.p.fields),
    payer,
    routeId: paid.p.route.id,
    timeoutMs: rt.config.originTimeoutMs,
  });
  const response = forwarded.ok ? forwarded.response : errorResponse(forwarded.failure);
  return finishAnswer(paid, record, response, capture, written);
}

/**
 * A pending payment presented again, and this request now holds its lease: settle the same
 * request again. Confirmed → the kept answer (or, upfront, the origin runs now); failed → released.
 */
async function confirmPending(paid: Paid, record: LedgerRecord, answer: StoredAnswer | undefined): Promise<Response> {
  const { rt } = paid;
  if (record.upfront) return settleThenServe(paid, record);
  paid.via = record.facilitator;
  const outcome = await settle(paid, record.settleRequest ?? facilitatorRequestOf(paid), record);
  if (outcome.kind === "refused") {
    await paid.ledger.release();
    return paid.refuse(
      fail("settle_failed", "The payment's pending settlement failed; nobody was charged.", outcome.reason),
    );
  }
  if (outcome.kind === "pending") {
    // Still not confirmed: the kept answer stays, and the lease is given back for the next try.
    const still = { ...record, tx: outcome.tx || record.tx };
    await paid.ledger.pend(still, undefined, 0, ledgerExpiresAtMs(still));
    return pendingResponse(paid, still);
  }
  const settled: LedgerRecord = { ...record, tx: outcome.reply.transaction || record.tx, settleRequest: undefined };
  await paid.ledger.settle(rt.nowMs(), settled, false, ledgerExpiresAtMs(settled));
  const receipt = receiptOf(settled, answer !== undefined);
  writeReceipt(paid, receipt);
  rt.log("payment_confirmed", { route: paid.p.route.id, payer: settled.payer, amount: settled.amount, tx: settled.tx });
  return serveSettled(paid, receipt, answer, true);
}

/**
 * Records a settlement in the ledger, then the receipt in KV (saying whether the answer was kept).
 * With a `copy` of the answer under way: a small answer is usually copied within QUICK_COPY_MS,
 * and then goes with the record in one write; otherwise the record goes first (retries wait for
 * the answer) and the answer follows. Until the record lands, the claim holds off every copy.
 */
async function recordSettled(
  paid: Paid,
  record: LedgerRecord,
  copy: Promise<StoredAnswer | undefined> | undefined,
): Promise<void> {
  const expiresAtMs = ledgerExpiresAtMs(record);
  let kept = false;
  if (!copy) {
    await paid.ledger.settle(paid.rt.nowMs(), record, false, expiresAtMs);
  } else {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const slow = new Promise<"slow">((resolve) => {
      timer = setTimeout(() => resolve("slow"), QUICK_COPY_MS);
    });
    const quick = await Promise.race([copy, slow]);
    clearTimeout(timer);
    if (quick !== "slow") {
      kept = (await paid.ledger.settle(paid.rt.nowMs(), record, false, expiresAtMs, quick)) && quick !== undefined;
    } else {
      const written = await paid.ledger.settle(paid.rt.nowMs(), record, true, expiresAtMs);
      const answer = await copy;
      kept = written && (await paid.ledger.keepAnswer(answer)) && answer !== undefined;
    }
  }
  await writeReceiptNow(paid, receiptOf(record, kept));
}

/**
 * Streams a settled payment's answer to the buyer; with `capture`, keeps a copy in the ledger once
 * the settled record is `written` there (a copy kept before it would be refused). The KV receipt
 * follows, saying whether the answer was kept.
 */
function finishAnswer(
  paid: Paid,
  record: LedgerRecord,
  response: Response,
  capture: boolean,
  written: Promise<boolean>,
): Response {
  const receipt = receiptOf(record, false);
  if (!capture) {
    writeReceipt(paid, receipt);
    return markPaid(response, receiptHeader(paid.version, receipt));
  }
  const { response: streamed, copy } = copyForRetries(response, paid.rt.config.retryBodyLimitBytes);
  paid.waitUntil(
    copy.then(async (answer) => {
      const kept = (await written) && (await paid.ledger.keepAnswer(answer)) && answer !== undefined;
      await writeReceiptNow(paid, receiptOf(record, kept));
    }),
  );
  return markPaid(streamed, receiptHeader(paid.version, receipt));
}

/**
 * Settlement was broadcast but not confirmed within the budget (or its outcome is unknown): keep
 * the answer with the pending payment and tell the buyer to come back with the same payment. An
 * answer too large or too slow to keep is delivered now instead: the transfer has been sent, and
 * leaving the buyer charged without the content would be worse.
 */
async function keepPending(paid: Paid, record: LedgerRecord, response: Response | undefined): Promise<Response> {
  const { rt } = paid;
  const unknown = record.tx === "";
  // An unknown outcome may still be in flight at the facilitator: do not settle it again before
  // that call has surely finished.
  const notBeforeMs = unknown ? rt.nowMs() + rt.config.settleTimeoutMs : 0;
  const expiresAtMs = ledgerExpiresAtMs(record);
  rt.log("payment_pending", { route: paid.p.route.id, payer: record.payer, tx: record.tx });
  if (!response) {
    if (!(await paid.ledger.pend(record, undefined, notBeforeMs, expiresAtMs))) {
      return errorResponse(fail("ledger_unavailable", "The payment's pending settlement could not be recorded."));
    }
    return pendingResponse(paid, record);
  }
  const read = await readForPending(response, rt.config.retryBodyLimitBytes, PENDING_BODY_READ_MS);
  const kept = await paid.ledger.pend(record, read.answer, notBeforeMs, expiresAtMs);
  if (read.answer && kept) return pendingResponse(paid, record);
  const content = read.answer ? answerResponse(read.answer) : (read.response as Response);
  return markPaid(content, pendingHeader(paid.version, record));
}

function pendingResponse(paid: Paid, record: LedgerRecord): Response {
  return retryLaterResponse(
    fail(
      "settlement_pending",
      "The payment was sent to the chain and is not confirmed yet; present the same payment again to get the answer.",
      record.tx || undefined,
    ),
    PENDING_RETRY_AFTER_SECONDS,
    pendingHeader(paid.version, record),
  );
}

/** Settles with the facilitator that verified the payment (`paid.via`), never with another. */
async function settle(paid: Paid, request: FacilitatorRequest, pending: LedgerRecord | undefined) {
  const { rt, payment } = paid;
  return settleWithinBudget(
    (req, timeoutMs) => rt.facilitators.settle(req, paid.via, payment.network, "exact", timeoutMs),
    request,
    { budgetMs: rt.config.settleBudgetMs, ...(pending ? { broadcast: { tx: pending.tx } } : {}) },
  );
}

function facilitatorRequestOf(paid: Paid): FacilitatorRequest {
  const { version, payment, requirement, p, request } = paid;
  return {
    x402Version: version,
    paymentPayload: payment.raw,
    paymentRequirements: version === 2 ? requirement : toRequirementV1(requirement, p.route, request.url),
  };
}

/** `settleRequest` is kept with a pending record: confirming must repeat exactly that request. */
function recordOf(
  paid: Paid,
  payer: string,
  requirement: Requirement,
  outcome: SettleOutcome,
  settleRequest: FacilitatorRequest,
  upfront: boolean,
): LedgerRecord {
  const nowSeconds = Math.floor(paid.rt.nowMs() / 1000);
  const settled = outcome.kind === "settled";
  return {
    routeId: paid.p.route.id,
    request: paid.requestKey,
    payer: settled && outcome.reply.payer ? outcome.reply.payer : payer,
    amount: requirement.amount,
    asset: requirement.asset,
    network: paid.payment.network,
    tx: settled ? outcome.reply.transaction : outcome.kind === "pending" ? outcome.tx : "",
    settledAt: nowSeconds,
    accessUntil: nowSeconds + (paid.p.route.accessTtlSeconds ?? 0),
    validBefore: paid.payment.authorization.validBefore,
    ...(outcome.kind === "pending" ? { settleRequest } : {}),
    ...(paid.via ? { facilitator: paid.via } : {}),
    ...(upfront ? { upfront: true } : {}),
  };
}

function receiptOf(record: LedgerRecord, answerKept: boolean): Receipt {
  return {
    routeId: record.routeId,
    request: record.request,
    payer: record.payer,
    network: record.network,
    asset: record.asset,
    amount: record.amount,
    tx: record.tx,
    settledAt: record.settledAt,
    expiresAt: record.accessUntil,
    validBefore: record.validBefore,
    answerKept,
  };
}

function writeReceipt(paid: Paid, receipt: Receipt): void {
  paid.waitUntil(writeReceiptNow(paid, receipt));
}

function writeReceiptNow(paid: Paid, receipt: Receipt): Promise<void> {
  const nowSeconds = Math.floor(paid.rt.nowMs() / 1000);
  return paid.rt.receipts.put(paid.key, receipt, receiptTtlSeconds(receipt, nowSeconds), nowSeconds);
}

/** A ledger row outlives the authorization (and the access window) it records, within a week. */
function ledgerExpiresAtMs(record: LedgerRecord): number {
  const validBefore = Number(BigInt(record.validBefore) > 2n ** 40n ? 2n ** 40n : BigInt(record.validBefore));
  const keep = Math.max(validBefore + LEDGER_GRACE_SECONDS, record.accessUntil);
  return Math.min(keep, record.settledAt + LEDGER_MAX_KEEP_SECONDS) * 1000;
}

const isSingleUse = (route: RouteRule) => route.accessTtlSeconds === undefined;

/** The payment bought an access window on this route (whatever the route's settings are now). */
const isAccessWindow = (receipt: Receipt, route: RouteRule) =>
  receipt.routeId === route.id && receipt.expiresAt > receipt.settledAt;

/** A kept answer is given back for a day at most, and never once the authorization has expired. */
const answerFresh = (receipt: Receipt, nowSeconds: number) =>
  nowSeconds < receipt.settledAt + MAX_STORED_ANSWER_SECONDS && BigInt(nowSeconds) < BigInt(receipt.validBefore);

/**
 * A payment made against what a 402 offered just before a price edit: accepted if it fits a
 * retired table's route for the same request, within that requirement's maxTimeoutSeconds of the
 * swap (see pricing/store.ts). Otherwise undefined, and the current price stands.
 */
async function selectFromRetired(
  payment: Payment,
  request: Request,
  rt: Runtime,
  p: Priced,
): Promise<Requirement | undefined> {
  const nowMs = rt.nowMs();
  for (const { table, retiredAtMs } of p.retired) {
    const routed = routeFor(table, p.method, p.path, p.segments);
    const entry = routed.ok ? routed.entry : undefined;
    if (!entry) continue;
    let old: RouteRule;
    if (isGroup(entry)) {
      p.fields ??= new FieldReader(request, p.query, rt.config.bodyLimitBytes);
      const read = await p.fields.read(entry.fields);
      const resolved = read.ok ? resolveRule(entry, read.values) : read;
      if (!resolved.ok) continue;
      old = resolved.route;
    } else {
      old = entry;
    }
    if (old.accepts.length === 0) continue;
    const selected = selectRequirement(payment, old);
    if (!selected.ok) continue;
    if (checkAuthorization(payment, selected.requirement, Math.floor(nowMs / 1000))) continue;
    if (nowMs - retiredAtMs <= selected.requirement.maxTimeoutSeconds * 1000) return selected.requirement;
  }
  return undefined;
}

/** `PAYMENT-RESPONSE` (v2) or `X-PAYMENT-RESPONSE` (v1) with the base64 SettleResponse. */
function settlementHeader(
  version: 1 | 2,
  settlement: { success: boolean; errorReason?: string; transaction: string; network: string; payer?: string },
): [string, string] {
  const body = {
    success: settlement.success,
    ...(settlement.errorReason ? { errorReason: settlement.errorReason } : {}),
    transaction: settlement.transaction,
    network: version === 1 ? (toV1Network(settlement.network) ?? settlement.network) : settlement.network,
    ...(settlement.payer ? { payer: settlement.payer } : {}),
  };
  return [version === 2 ? HEADER.paymentResponse : HEADER.xPaymentResponse, encodeHeaderJson(body)];
}

function pendingHeader(version: 1 | 2, record: LedgerRecord): [string, string] {
  return settlementHeader(version, {
    success: false,
    errorReason: "settlement_pending",
    transaction: record.tx,
    network: record.network,
    payer: record.payer,
  });
}

/**
 * The settlement header for a settled payment served again. Receipts live in the isolate's memo,
 * so each is encoded once per protocol version rather than on every visit of its access window.
 */
function receiptHeader(version: 1 | 2, receipt: Receipt): [string, string] {
  let encoded = encodedReceipts.get(receipt);
  if (!encoded) {
    encoded = {};
    encodedReceipts.set(receipt, encoded);
  }
  encoded[version] ??= settlementHeader(version, {
    success: true,
    transaction: receipt.tx,
    network: receipt.network,
    payer: receipt.payer,
  });
  return encoded[version];
}

const encodedReceipts = new WeakMap<Receipt, { 1?: [string, string]; 2?: [string, string] }>();

const hasPaymentHeader = (headers: Headers) => headers.has(HEADER.paymentSignature) || headers.has(HEADER.xPayment);
const hasNoBody = (request: Request) => request.body === null || request.headers.get("content-length") === "0";

/** The method a CORS preflight asks about, or undefined when this is not a preflight. */
function preflightMethodOf(request: Request): string | undefined {
  if (request.method !== "OPTIONS" || !request.headers.has("origin")) return undefined;
  return request.headers.get("access-control-request-method")?.toUpperCase() ?? undefined;
}
