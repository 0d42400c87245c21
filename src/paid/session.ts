/**
 * A request paid on a batch-settlement channel (sessions/): a deposit (the first request, which
 * the facilitator verifies and settles on chain), or a voucher (every later one, checked here by
 * the official server scheme against the channel's record: no facilitator call, no chain call).
 * The same shape as the `authorization` flow: verify, run the origin, commit the voucher (or
 * settle the deposit) only when it answered below 400 — else the channel's reservation is
 * released and the voucher is never counted — then stream the answer.
 *
 * Exactly once per voucher: the scheme reserves the channel for one request at a time in its
 * Durable Object (a second request on a channel in flight is refused with the scheme's own
 * `channel_busy`), and a voucher counts only if its cumulative amount is exactly one price above
 * what the channel has been charged. A payment refused for its amount gets the scheme's
 * corrective 402, which tells the buyer's client the channel's state.
 */
import type { PaymentPayload, PaymentRequirements, SettleResponse } from "@x402/core/types";
import { CACHE_CONTROL_402, HEADER } from "../constants.ts";
import { type Failure, fail } from "../errors.ts";
import { forwardToOrigin } from "../origin.ts";
import type { Runtime } from "../paywall.ts";
import { type BatchRequirement, isBatchRequirement, type Requirement } from "../pricing/document.ts";
import { rateLimited } from "../request-limits.ts";
import { errorResponse, markPaid, withCors } from "../responses.ts";
import type { SessionPayment } from "../schemes/payment.ts";
import type { Seller } from "../sessions/sessions.ts";
import { encodeHeaderJson } from "../x402/codec.ts";
import { bodyOf, type Priced, type WaitUntil } from "./paid.ts";

type Server = Seller["server"];

/** The official scheme's refusal of a voucher's signature (it does not depend on the channel's record). */
const BAD_VOUCHER_SIGNATURE = "invalid_batch_settlement_evm_voucher_signature";
/** The scheme's own refusals made on the channel's record, before any facilitator call. */
const RECORD_REFUSALS = new Set([
  "invalid_batch_settlement_evm_cumulative_amount_mismatch",
  "invalid_batch_settlement_evm_channel_busy",
  "invalid_batch_settlement_evm_verification_state_unavailable",
]);

export async function serveSession(
  request: Request,
  rt: Runtime,
  waitUntil: WaitUntil,
  p: Priced,
  payment: SessionPayment,
  refuse: (failure: Failure) => Response,
): Promise<Response> {
  const sessions = await rt.sessions?.();
  if (!sessions) {
    return errorResponse(
      fail("config_invalid", "batch-settlement needs the CHANNELS and CHANNEL_BOOKS Durable Object bindings."),
    );
  }
  const requirement = selectBatch(payment, p.route.accepts);
  if (!requirement.ok) return refuse(requirement.failure);
  // A deposit or a refund costs facilitator calls (a voucher none): bounded as other payments are.
  if (payment.kind !== "voucher") {
    const limited = await rateLimited(rt, request, payment.payer);
    if (limited) return limited;
  }
  const seller = sessions.sellerFor(requirement.requirement);
  const reqs = requirement.requirement as unknown as PaymentRequirements;
  const payload = payment.raw as unknown as PaymentPayload;

  // Verified on this isolate's copy of the channel; a refusal is never given on a copy (another
  // isolate may have moved the channel on): that verifies again, once, from a fresh read — but
  // a bad signature is bad whatever the channel's state, and a deposit refused by the
  // facilitator (not by the channel's record) would only cost it a second call.
  let attempt = seller.forRequest();
  let verified: Awaited<ReturnType<Server["verifyPayment"]>>;
  try {
    verified = await attempt.server.verifyPayment(payload, reqs);
    const again =
      !verified.isValid &&
      attempt.storage.servedCopy &&
      verified.invalidReason !== BAD_VOUCHER_SIGNATURE &&
      (payment.kind !== "deposit" || RECORD_REFUSALS.has(verified.invalidReason ?? ""));
    if (again) {
      attempt = seller.forRequest(true);
      verified = await attempt.server.verifyPayment(payload, reqs);
    }
  } catch (error) {
    rt.log("session_verify_failed", { route: p.route.id, error: (error as Error).message });
    return errorResponse(
      fail("facilitator_unreachable", "The payment could not be verified.", (error as Error).message),
    );
  }
  const { server } = attempt;
  const refused = (reason: string) => sessionRefusal(server, p, request.url, payload, reason);
  if (!verified.isValid) {
    rt.log("payment_refused", { route: p.route.id, reason: "verify_rejected", detail: verified.invalidReason });
    return refused(verified.invalidReason ?? "invalid");
  }
  const cancel = () => server.createPaymentCancellationDispatcher(payload, reqs).cancel({ reason: "handler_failed" });
  const ctx: SessionContext = {
    rt,
    p,
    seller,
    server,
    payment,
    payload,
    reqs,
    refused,
    waitUntil,
    threshold: sessions.config.claimThreshold,
  };
  // A refund request: the scheme answers it itself (the origin never runs), then the facilitator
  // returns the channel's unclaimed balance to the buyer.
  const answered = (verified as { skipHandler?: { contentType?: string; body?: unknown } }).skipHandler;
  if (answered || payment.kind === "refund") {
    if (!answered) {
      await cancel();
      return refused("refund_not_acknowledged");
    }
    return settleAndAnswer(
      ctx,
      new Response(JSON.stringify(answered.body ?? {}), {
        headers: { "content-type": answered.contentType ?? "application/json" },
      }),
    );
  }

  const forwarded = await forwardToOrigin(rt.config, {
    request,
    path: p.path,
    query: p.query,
    body: bodyOf(request, p.fields),
    payer: verified.payer ?? undefined,
    routeId: p.route.id,
    timeoutMs: rt.config.originTimeoutMs,
  });
  if (!forwarded.ok || forwarded.response.status >= 400) {
    // The voucher is not counted: the channel is free for the buyer's next request.
    await cancel();
    return forwarded.ok ? markPaid(forwarded.response) : markPaid(errorResponse(forwarded.failure));
  }
  return settleAndAnswer(ctx, forwarded.response);
}

/** What settling a session payment needs, besides the answer to give for it. */
interface SessionContext {
  rt: Runtime;
  p: Priced;
  seller: Seller;
  /** The request's own resource server (Seller.forRequest), which verified the payment. */
  server: Server;
  payment: SessionPayment;
  payload: PaymentPayload;
  reqs: PaymentRequirements;
  refused: (reason: string) => Promise<Response>;
  waitUntil: WaitUntil;
  threshold: bigint;
}

/**
 * Commits the voucher (or settles the deposit or refund) and answers with `response`; if that
 * fails, the answer is cancelled unread and the buyer gets the scheme's 402.
 */
async function settleAndAnswer(ctx: SessionContext, response: Response): Promise<Response> {
  const { rt, p, seller, server, payment, payload, reqs, refused, waitUntil, threshold } = ctx;
  let settled: SettleResponse;
  try {
    settled = await server.settlePayment(payload, reqs);
  } catch (error) {
    settled = { success: false, errorReason: (error as Error).message, transaction: "", network: reqs.network };
  }
  if (!settled.success) {
    await response.body?.cancel();
    rt.log("payment_refused", { route: p.route.id, reason: "settle_failed", detail: settled.errorReason });
    return refused(settled.errorReason ?? "settle_failed");
  }
  rt.log(`session_${payment.kind}`, {
    route: p.route.id,
    channel: payment.channelId,
    cumulative: payment.maxClaimableAmount,
    tx: settled.transaction || undefined,
  });
  waitUntil(bookkeeping(seller, threshold, payment, settled, rt.nowMs()));
  return markPaid(response, [HEADER.paymentResponse, encodeHeaderJson(settled)]);
}

/** A new channel joins its seller's book; a channel far enough ahead of its claims asks for a claim run now. */
async function bookkeeping(
  seller: Seller,
  threshold: bigint,
  payment: SessionPayment,
  settled: SettleResponse,
  nowMs: number,
): Promise<void> {
  if (payment.kind === "deposit") {
    await seller.book().add({ channelId: payment.channelId.toLowerCase(), nowMs, settings: seller.settings });
  }
  const state = (settled.extra?.channelState ?? {}) as { chargedCumulativeAmount?: string; totalClaimed?: string };
  const charged = BigInt(state.chargedCumulativeAmount ?? payment.maxClaimableAmount);
  const claimed = BigInt(state.totalClaimed ?? "0");
  if (charged - claimed >= threshold) await seller.book().claimSoon({ nowMs });
}

type Selected = { ok: true; requirement: BatchRequirement } | { ok: false; failure: Failure };

/** The route's batch-settlement requirement the payment was made for, as offered. */
function selectBatch(payment: SessionPayment, accepts: readonly Requirement[]): Selected {
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  const onNetwork = accepts.filter(
    (r): r is BatchRequirement => isBatchRequirement(r) && r.network === payment.network,
  );
  if (onNetwork.length === 0) {
    return {
      ok: false,
      failure: fail(
        "scheme_mismatch",
        'This route is not paid with "batch-settlement" on that network.',
        payment.network,
      ),
    };
  }
  const accepted = payment.accepted;
  const requirement = accepted ? onNetwork.find((r) => same(r.asset, accepted.asset)) : undefined;
  if (!accepted || !requirement) {
    return { ok: false, failure: fail("asset_mismatch", "This route is not paid in that asset.", accepted?.asset) };
  }
  if (!same(accepted.payTo, requirement.payTo)) {
    return { ok: false, failure: fail("pay_to_mismatch", "The payment names another recipient.", accepted.payTo) };
  }
  if (accepted.amount !== requirement.amount) {
    return { ok: false, failure: fail("amount_mismatch", `This route costs ${requirement.amount}.`, accepted.amount) };
  }
  return { ok: true, requirement };
}

/**
 * A 402 for a session payment the scheme refused, made by the request's own resource server (the
 * one that refused it) so that it carries the scheme's correction (the channel's state) when the
 * voucher's amount was off.
 */
async function sessionRefusal(
  server: Server,
  p: Priced,
  resourceUrl: string,
  payload: PaymentPayload,
  reason: string,
): Promise<Response> {
  const required = await server.createPaymentRequiredResponse(
    p.route.accepts as unknown as PaymentRequirements[],
    { url: resourceUrl, description: p.route.description, mimeType: p.route.mimeType },
    reason,
    undefined,
    undefined,
    payload,
  );
  return withCors(
    new Response(JSON.stringify({ error: "verify_rejected", message: "The payment was refused.", detail: reason }), {
      status: 402,
      headers: {
        "content-type": "application/json",
        "cache-control": CACHE_CONTROL_402,
        [HEADER.paymentRequired]: encodeHeaderJson(required),
        [HEADER.pricingVersion]: p.table.version,
      },
    }),
  );
}
