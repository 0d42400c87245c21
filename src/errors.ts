/**
 * Every expected failure is a `Failure`: a stable machine-readable reason plus optional detail.
 * `statusOf` is the one place a reason becomes an HTTP status; it is an exhaustive switch, so a
 * new reason does not compile until it has a status.
 */

export type Reason =
  // the request itself
  | "non_canonical_path"
  | "path_too_long"
  | "query_too_long"
  | "request_headers_too_large"
  | "rate_limited"
  | "route_denied"
  | "unauthorized"
  | "method_not_allowed"
  | "not_found"
  // the request fields a dynamic price reads
  | "no_matching_price"
  | "pricing_input_missing"
  | "pricing_input_invalid"
  | "pricing_input_ambiguous"
  | "pricing_body_unreadable"
  | "pricing_body_too_large"
  // the payment header
  | "payment_header_too_large"
  | "payment_header_conflict"
  | "payment_header_malformed"
  | "unsupported_x402_version"
  // the payment against the route
  | "payment_required"
  | "scheme_mismatch"
  | "network_mismatch"
  | "asset_mismatch"
  | "pay_to_mismatch"
  | "amount_mismatch"
  | "payment_expired"
  | "payment_not_yet_valid"
  | "invalid_signature"
  | "transaction_not_allowed"
  | "fee_payer_mismatch"
  | "spender_mismatch"
  | "facilitator_mismatch"
  | "payment_already_used"
  | "access_window_expired"
  | "verify_rejected"
  | "settle_failed"
  // the payment's state in the ledger: come back with the same payment
  | "payment_in_progress"
  | "settlement_pending"
  // our dependencies
  | "pricing_unavailable"
  | "facilitator_unreachable"
  | "fee_payer_unknown"
  | "facilitator_address_unknown"
  | "facilitator_timeout"
  | "facilitator_bad_response"
  | "origin_unreachable"
  | "origin_timeout"
  | "ledger_unavailable"
  | "config_invalid"
  | "internal_error";

export interface Failure {
  reason: Reason;
  /** Safe to show the client: never a secret, never a stack. */
  message: string;
  /** Extra machine-readable detail, e.g. the facilitator's own reason. */
  detail?: string;
}

export function fail(reason: Reason, message: string, detail?: string): Failure {
  return detail === undefined ? { reason, message } : { reason, message, detail };
}

export function statusOf(reason: Reason): number {
  switch (reason) {
    case "non_canonical_path":
    case "payment_header_too_large":
    case "payment_header_conflict":
    case "payment_header_malformed":
    case "unsupported_x402_version":
    case "no_matching_price":
    case "pricing_input_missing":
    case "pricing_input_invalid":
    case "pricing_input_ambiguous":
    case "pricing_body_unreadable":
      return 400;
    case "payment_required":
    case "scheme_mismatch":
    case "network_mismatch":
    case "asset_mismatch":
    case "pay_to_mismatch":
    case "amount_mismatch":
    case "payment_expired":
    case "payment_not_yet_valid":
    case "invalid_signature":
    case "transaction_not_allowed":
    case "fee_payer_mismatch":
    case "spender_mismatch":
    case "facilitator_mismatch":
    case "payment_already_used":
    case "access_window_expired":
    case "verify_rejected":
    case "settle_failed":
      return 402;
    case "unauthorized":
      return 401;
    case "route_denied":
      return 403;
    case "payment_in_progress":
    case "settlement_pending":
      return 409;
    case "not_found":
      return 404;
    case "method_not_allowed":
      return 405;
    case "path_too_long":
    case "query_too_long":
      return 414;
    case "rate_limited":
      return 429;
    case "request_headers_too_large":
      return 431;
    case "pricing_body_too_large":
      return 413;
    case "config_invalid":
    case "internal_error":
      return 500;
    case "facilitator_unreachable":
    case "facilitator_bad_response":
    case "origin_unreachable":
      return 502;
    case "pricing_unavailable":
    case "facilitator_timeout":
    case "fee_payer_unknown":
    case "facilitator_address_unknown":
    case "ledger_unavailable":
      return 503;
    case "origin_timeout":
      return 504;
  }
}

/** Body shape for every error that is not a 402: `{ error, message, detail? }`. */
export function failureBody(failure: Failure): Record<string, string> {
  const body: Record<string, string> = { error: failure.reason, message: failure.message };
  if (failure.detail !== undefined) body.detail = failure.detail;
  return body;
}
