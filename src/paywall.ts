/**
 * The request path, as one function over the parts (see ARCHITECTURE.md):
 * canonical path → pricing → free/unmatched → payment header → decode → receipt → local checks →
 * /verify → origin → /settle (only for origin status < 400) → receipt → answer.
 *
 * Settlement happens as soon as the origin's status and headers arrive, before its body is read:
 * bodies stream to the buyer and are never buffered whole, and if settlement fails the body is
 * cancelled unread, so unpaid content never leaves the Worker. The cost of this choice: the
 * buyer is charged once the origin has *started* a successful answer; an origin that fails
 * mid-body after a 2xx has still been paid for, exactly as with a direct paid API call.
 */
import type { Config } from "./config.ts";
import { HEADER, MEMO_MAX_URL_LENGTH, PAYMENT_MEMO_MAX_BYTES } from "./constants.ts";
import { type Failure, fail } from "./errors.ts";
import type { Facilitator, SettleReply } from "./facilitator.ts";
import type { BoundedMap } from "./memo.ts";
import { forwardToOrigin } from "./origin.ts";
import { canonicalisePath } from "./path.ts";
import { isGroup, resolveRule } from "./pricing/conditions.ts";
import type { PricingTable, Requirement, RouteRule } from "./pricing/document.ts";
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
  withCors,
} from "./responses.ts";
import { checkAuthorization, checkSignature, selectRequirement } from "./x402/checks.ts";
import { encodeHeaderJson } from "./x402/codec.ts";
import { toV1Network } from "./x402/networks.ts";
import { decodePayment, type Payment } from "./x402/payment.ts";
import { toRequirementV1 } from "./x402/requirements.ts";

export interface Runtime {
  config: Config;
  pricing: PricingStore;
  receipts: ReceiptStore;
  facilitator: Facilitator;
  /** Payment header → the decoded payment and its receipt key. */
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
  key: string;
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
  const entry = table.matcher.match(preflightMethod ?? request.method, canonical.segments);

  if (!entry) {
    if (table.unmatched === "deny")
      return errorResponse(fail("route_denied", "No route is configured for this request."));
    return forwardFree(request, rt.config, path, query, undefined);
  }
  if (preflightMethod) {
    // A preflight carries none of the fields a dynamic price reads: any priced variant decides.
    const priced = isGroup(entry) ? entry.rules.some((r) => r.accepts.length > 0) : entry.accepts.length > 0;
    return priced ? preflightResponse(request) : forwardFree(request, rt.config, path, query, undefined);
  }
  let route: RouteRule;
  let fields: FieldReader | undefined;
  if (isGroup(entry)) {
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
    known = { version, payment: decoded.payment, key: await receiptKey(decoded.payment) };
    if (header.length <= PAYMENT_MEMO_MAX_BYTES) rt.payments.set(header, known);
  }
  const { payment, key } = known;
  const nowSeconds = Math.floor(rt.nowMs() / 1000);

  // A payment we have already settled: an open access window on this route, or a refusal.
  const receipt = await rt.receipts.get(key, nowSeconds);
  if (receipt) {
    if (receipt.routeId !== route.id || route.accessTtlSeconds === undefined) {
      return refuse(fail("payment_already_used", "This payment has already been settled.", receipt.tx));
    }
    if (receipt.expiresAt <= nowSeconds) {
      return refuse(fail("access_window_expired", "The access window bought with this payment has ended.", receipt.tx));
    }
    const forwarded = await forwardToOrigin(rt.config, {
      request,
      path: p.path,
      query: p.query,
      body: bodyOf(request, p.fields),
      payer: receipt.payer,
      routeId: route.id,
    });
    if (!forwarded.ok) return markPaid(errorResponse(forwarded.failure));
    return markPaid(forwarded.response, receiptHeader(version, receipt));
  }

  const fitted = fitPayment(payment, route, nowSeconds);
  let requirement: Requirement;
  if (fitted.ok) {
    requirement = fitted.requirement;
  } else {
    const offeredBefore = await selectFromRetired(payment, request, rt, p);
    if (!offeredBefore) return refuse(fitted.failure);
    requirement = offeredBefore;
  }
  const badSignature = await checkSignature(payment, requirement);
  if (badSignature) return refuse(badSignature);

  const facilitatorRequest = {
    x402Version: version,
    paymentPayload: payment.raw,
    paymentRequirements: version === 2 ? requirement : toRequirementV1(requirement, route, resourceUrl),
  } as const;
  const verified = await rt.facilitator.verify(facilitatorRequest);
  if (!verified.ok) return refuse(verified.failure);
  if (!verified.reply.isValid) {
    return refuse(
      fail("verify_rejected", "The facilitator rejected this payment.", verified.reply.invalidReason ?? "unknown"),
    );
  }
  const payer = verified.reply.payer ?? payment.authorization.from;

  const forwarded = await forwardToOrigin(rt.config, {
    request,
    path: p.path,
    query: p.query,
    body: bodyOf(request, p.fields),
    payer,
    routeId: route.id,
  });
  if (!forwarded.ok) return markPaid(errorResponse(forwarded.failure));
  const response = forwarded.response;
  // The origin failed: nobody is charged, and the buyer may retry with the same payment.
  if (response.status >= 400) return markPaid(response);

  const settled = await rt.facilitator.settle(facilitatorRequest);
  if (!settled.ok || !settled.reply.success) {
    await response.body?.cancel();
    if (!settled.ok) return refuse(settled.failure);
    return refuse(fail("settle_failed", "The payment could not be settled.", settled.reply.errorReason ?? "unknown"));
  }

  const stored: Receipt = {
    routeId: route.id,
    payer: settled.reply.payer ?? payer,
    network: payment.network,
    asset: requirement.asset,
    amount: requirement.amount,
    tx: settled.reply.transaction,
    settledAt: nowSeconds,
    expiresAt: nowSeconds + (route.accessTtlSeconds ?? 0),
  };
  waitUntil(
    rt.receipts.put(key, stored, receiptTtlSeconds(stored, payment.authorization.validBefore, nowSeconds), nowSeconds),
  );
  rt.log("payment_settled", { route: route.id, payer: stored.payer, amount: stored.amount, tx: stored.tx });
  return markPaid(response, settlementHeader(version, settled.reply));
}

/** `PAYMENT-RESPONSE` (v2) or `X-PAYMENT-RESPONSE` (v1) with the base64 SettleResponse. */
function settlementHeader(version: 1 | 2, settlement: SettleReply): [string, string] {
  const body = {
    success: settlement.success,
    transaction: settlement.transaction,
    network: version === 1 ? (toV1Network(settlement.network) ?? settlement.network) : settlement.network,
    ...(settlement.payer ? { payer: settlement.payer } : {}),
  };
  return [version === 2 ? HEADER.paymentResponse : HEADER.xPaymentResponse, encodeHeaderJson(body)];
}

/** The route's requirement this payment is for, with its recipient, amount and validity window checked. */
function fitPayment(
  payment: Payment,
  route: RouteRule,
  nowSeconds: number,
): { ok: true; requirement: Requirement } | { ok: false; failure: Failure } {
  const selected = selectRequirement(payment, route);
  if (!selected.ok) return selected;
  const failure = checkAuthorization(payment, selected.requirement, nowSeconds);
  return failure ? { ok: false, failure } : selected;
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
    const entry = table.matcher.match(p.method, p.segments);
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
    const fitted = fitPayment(payment, old, Math.floor(nowMs / 1000));
    if (fitted.ok && nowMs - retiredAtMs <= fitted.requirement.maxTimeoutSeconds * 1000) return fitted.requirement;
  }
  return undefined;
}

/**
 * The settlement header for a request served from a receipt. Receipts live in the isolate's memo,
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

/** The method a CORS preflight asks about, or undefined when this is not a preflight. */
function preflightMethodOf(request: Request): string | undefined {
  if (request.method !== "OPTIONS" || !request.headers.has("origin")) return undefined;
  return request.headers.get("access-control-request-method")?.toUpperCase() ?? undefined;
}
