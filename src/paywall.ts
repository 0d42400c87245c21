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
 *
 * This file reads a request as far as the claim; what follows lives in `paid/`: `flows.ts` (the
 * two flows), `known.ts` (a payment already settled, pending or being served), `answers.ts`
 * (settlement headers, the pending 409), `paid.ts` (records and receipts made from an outcome).
 */
import type { Config } from "./config.ts";
import { HEADER, MAX_PATH_BYTES, MAX_QUERY_BYTES, MEMO_MAX_URL_LENGTH, PAYMENT_MEMO_MAX_BYTES } from "./constants.ts";
import { probeAnswer, readsBody } from "./discovery.ts";
import { type Failure, fail } from "./errors.ts";
import type { FacilitatorPool } from "./facilitators/pool.ts";
import type { Ledger, PaymentHandle } from "./ledger/client.ts";
import type { BoundedMap } from "./memo.ts";
import { hasSignerOptions, offeredRoute } from "./offers.ts";
import { forwardToOrigin } from "./origin.ts";
import { serveThenSettle, settleThenServe } from "./paid/flows.ts";
import { answerFromReceipt, answerKnown } from "./paid/known.ts";
import { bodyOf, type Paid, type Priced, type WaitUntil } from "./paid/paid.ts";
import { canonicalisePath } from "./path.ts";
import { isGroup, resolveRule } from "./pricing/conditions.ts";
import type { Requirement, RouteRule } from "./pricing/document.ts";
import { isPriced, routeFor } from "./pricing/path-readings.ts";
import type { PricingStore } from "./pricing/store.ts";
import { type Receipt, type ReceiptStore, receiptKey } from "./receipts.ts";
import { FieldReader } from "./request-fields.ts";
import { headersTooLarge, rateLimited } from "./request-limits.ts";
import {
  answer402,
  type Built402,
  build402,
  errorResponse,
  paymentFailureResponse,
  preflightResponse,
  withCors,
} from "./responses.ts";
import { decodePayment, type Payment } from "./schemes/payment.ts";
import { schemeOf } from "./schemes/scheme.ts";
import type { Sessions } from "./sessions/sessions.ts";

export interface Runtime {
  config: Config;
  pricing: PricingStore;
  receipts: ReceiptStore;
  facilitators: FacilitatorPool;
  ledger: Ledger;
  /** batch-settlement channels (loaded on first use), when their Durable Object bindings are configured. */
  sessions: (() => Promise<Sessions>) | undefined;
  /** Payment header → the decoded payment, and what its signature was checked for. */
  payments: BoundedMap<string, DecodedPayment>;
  /** Request URL → the 402 it got when unpaid, for routes whose price reads nothing but the URL. */
  unpaid: BoundedMap<string, UnpaidAnswer>;
  nowMs: () => number;
  log: (event: string, detail: Record<string, unknown>) => void;
}

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

async function handlePriced(request: Request, rt: Runtime, waitUntil: WaitUntil, p: Priced): Promise<Response> {
  const resourceUrl = request.url;
  // Solana and upto options are offered with the facilitator's key (fee payer, settling address),
  // or not at all while it is unknown.
  const signed = hasSignerOptions(p.route);
  if (signed) {
    const offered = await offeredRoute(p.route, rt.facilitators);
    if (offered.route.accepts.length === 0) {
      const upto = offered.missing.some((kind) => !kind.startsWith("exact|"));
      const networks = [...new Set(offered.missing.map((kind) => kind.slice(kind.indexOf("|") + 1)))].join(",");
      return errorResponse(
        upto
          ? fail(
              "facilitator_address_unknown",
              "No facilitator has told the key it settles these payments with; this route cannot be paid right now.",
              networks,
            )
          : fail(
              "fee_payer_unknown",
              "No facilitator has told its Solana fee payer; this route cannot be paid right now.",
              networks,
            ),
      );
    }
    p.route = offered.route;
  }
  const { route } = p;
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
    // Only the URL chose this route and its price (no request fields, no facilitator key learnt
    // since): the next time it comes unpaid, handleRequest can answer at once.
    if (
      !signed &&
      p.fields === undefined &&
      request.method !== "OPTIONS" &&
      resourceUrl.length <= MEMO_MAX_URL_LENGTH
    ) {
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
    // A voucher on a batch-settlement channel: the session flow (paid/session.ts) takes it from here.
    if (decoded.payment.scheme === "batch-settlement") {
      return (await import("./paid/session.ts")).serveSession(request, rt, waitUntil, p, decoded.payment, refuse);
    }
    known = { version, payment: decoded.payment };
    if (header.length <= PAYMENT_MEMO_MAX_BYTES) rt.payments.set(header, known);
  }
  const { payment } = known;
  const scheme = schemeOf(payment);
  const nowSeconds = Math.floor(rt.nowMs() / 1000);
  const fit = { nowSeconds, mints: p.table.mints };
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
  const selected = scheme.select(payment, route.accepts);
  const terms = selected.ok ? await scheme.terms(payment, selected.requirement, fit) : selected.failure;
  const requirement = !terms && selected.ok ? selected.requirement : await selectFromRetired(payment, request, rt, p);
  const domain = requirement ?? scheme.find(payment, route.accepts);
  if (!domain) return refuse(terms as Failure);

  // The signature must hold before the payment's identity means anything: the identity (EVM:
  // network, asset, payer, nonce; Solana: the message) is public once settled.
  // Settled already? A receipt in this location's KV answers without a ledger round trip. It is
  // read while the signature is checked (the read is on its way before the check's CPU starts),
  // and used only once the signature holds: a bad signature costs one KV read and changes nothing.
  const domainKey = scheme.signatureKey(domain);
  const firstCheck = known.checked?.domain !== domainKey;
  let receipt: Receipt | undefined;
  if (firstCheck) {
    // A payment whose identity cannot be read (a permit nonce that is no number, say) is refused.
    const identity = await scheme.identity(payment, domain).catch(() => undefined);
    const key = identity === undefined ? undefined : await receiptKey(identity);
    const reading = key === undefined ? undefined : rt.receipts.get(key, nowSeconds);
    if (reading) await yieldToIo();
    const badSignature = await scheme.signature(payment, domain);
    if (badSignature) return refuse(badSignature);
    if (identity === undefined || key === undefined || !reading) {
      return refuse(fail("payment_header_malformed", "The payment's identity cannot be read.", "identity"));
    }
    known.checked = { domain: domainKey, identity, key, requirement: domain };
    receipt = await reading;
  }
  const { identity, key } = known.checked as NonNullable<DecodedPayment["checked"]>;
  const paid = paidFor(identity, key, domain);
  if (receipt) return answerFromReceipt(paid, receipt);

  if (!requirement) {
    // Not fitting today's terms, and unknown here: only the ledger can say it was settled elsewhere.
    if (terms && scheme.maybeSettled.has(terms.reason)) {
      const looked = await paid.ledger.lookup(rt.nowMs());
      if (looked.ok && looked.value.kind !== "none") return answerKnown(paid, looked.value);
    }
    return refuse(terms as Failure);
  }

  // From here on the payment costs facilitator calls: bounded per client and per payer.
  const limited = await rateLimited(rt, request, scheme.payer(payment));
  if (limited) return limited;

  const claimed = await paid.ledger.claim(rt.nowMs());
  if (!claimed.ok) return refuse(claimed.failure);
  if (claimed.value.kind !== "claimed") return answerKnown(paid, claimed.value);
  return route.settleBefore ? settleThenServe(paid) : serveThenSettle(paid);
}

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
    if (hasSignerOptions(old)) old = (await offeredRoute(old, rt.facilitators)).route;
    const scheme = schemeOf(payment);
    const selected = scheme.select(payment, old.accepts);
    if (!selected.ok) continue;
    const fit = { nowSeconds: Math.floor(nowMs / 1000), mints: table.mints };
    if (await scheme.terms(payment, selected.requirement, fit)) continue;
    if (nowMs - retiredAtMs <= selected.requirement.maxTimeoutSeconds * 1000) return selected.requirement;
  }
  return undefined;
}

const hasPaymentHeader = (headers: Headers) => headers.has(HEADER.paymentSignature) || headers.has(HEADER.xPayment);

const hasNoBody = (request: Request) => request.body === null || request.headers.get("content-length") === "0";

/** The method a CORS preflight asks about, or undefined when this is not a preflight. */
function preflightMethodOf(request: Request): string | undefined {
  if (request.method !== "OPTIONS" || !request.headers.has("origin")) return undefined;
  return request.headers.get("access-control-request-method")?.toUpperCase() ?? undefined;
}

/**
 * Lets the runtime's event loop run once, so that I/O just started (a KV read) goes out before
 * the CPU-bound work that follows, and overlaps it, instead of starting after it.
 */
function yieldToIo(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
