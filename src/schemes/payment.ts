/**
 * Decoding a buyer's payment header into a `Payment`. Pure.
 * Steps, each with its own failure: size cap → base64/JSON → x402 envelope schema (the official
 * `@x402/core` one) → version must fit the header → scheme `exact` or (v2, EVM) `upto` → the
 * payload: an EIP-3009 authorization (EVM `exact`), a partly signed transaction (Solana `exact`)
 * or a Permit2 witness transfer (EVM `upto`).
 */
import { PaymentPayloadV1Schema, PaymentPayloadV2Schema, z } from "@x402/core/schemas";
import { type Failure, fail } from "../errors.ts";
import type { Requirement } from "../pricing/document.ts";
import { decodeHeaderJson } from "../x402/codec.ts";
import { familyOf, fromV1Network } from "../x402/networks.ts";
import { decodeTransaction, MAX_TRANSACTION_BYTES, type SolanaTransaction } from "./exact-svm/transaction.ts";

export type Hex = `0x${string}`;

export interface Authorization {
  from: Hex;
  to: Hex;
  value: string;
  validAfter: string;
  validBefore: string;
  nonce: Hex;
}

/** What an `upto` buyer signs: a Permit2 `PermitWitnessTransferFrom` of at most `permitted.amount`. */
export interface Permit2Authorization {
  from: Hex;
  permitted: { token: Hex; amount: string };
  spender: Hex;
  nonce: string;
  deadline: string;
  witness: { to: Hex; facilitator: Hex; validAfter: string };
}

interface PaymentBase {
  version: 1 | 2;
  scheme: "exact" | "upto";
  /** CAIP-2, also for v1 payloads. */
  network: string;
  /** v2 only: the requirement the buyer says it accepted. */
  accepted?: { scheme: string; network: string; amount: string; asset: string; payTo: string };
  /** The decoded JSON exactly as sent, forwarded to the facilitator untouched. */
  raw: Record<string, unknown>;
}

export interface EvmPayment extends PaymentBase {
  family: "evm";
  scheme: "exact";
  authorization: Authorization;
  signature: Hex;
}

export interface SvmPayment extends PaymentBase {
  family: "svm";
  scheme: "exact";
  transaction: SolanaTransaction;
}

export interface UptoPayment extends PaymentBase {
  family: "evm";
  scheme: "upto";
  permit2: Permit2Authorization;
  signature: Hex;
}

/**
 * A batch-settlement payment: a deposit (with its first voucher) or a voucher on an open channel.
 * Only its shape is checked here; the official server scheme checks the rest (sessions/).
 */
export interface SessionPayment extends Omit<PaymentBase, "scheme"> {
  family: "evm";
  scheme: "batch-settlement";
  channelId: Hex;
  maxClaimableAmount: string;
  kind: "deposit" | "voucher" | "refund";
  /** The channel's payer, as the payload says. */
  payer: Hex;
}

export type Payment = EvmPayment | SvmPayment | UptoPayment;

const Address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "must be a 20-byte hex address");
const Uint = z.string().regex(/^(0|[1-9][0-9]{0,77})$/, "must be a decimal integer string");

const ExactEvmPayloadSchema = z.object({
  signature: z.string().regex(/^0x(?:[0-9a-fA-F]{2}){1,4096}$/, "must be hex bytes"),
  authorization: z.object({
    from: Address,
    to: Address,
    value: Uint,
    validAfter: Uint,
    validBefore: Uint,
    nonce: z.string().regex(/^0x[0-9a-fA-F]{64}$/, "must be 32 hex bytes"),
  }),
});

// What a buyer may send: a deposit, a voucher, or a refund request. The scheme's other payload
// types (claim, settle) are the seller's own, sent to the facilitator, and never accepted here.
const SessionPayloadSchema = z.object({
  type: z.enum(["deposit", "voucher", "refund"]),
  channelConfig: z.object({ payer: Address, receiver: Address, token: Address }).passthrough(),
  voucher: z.object({
    channelId: z.string().regex(/^0x[0-9a-fA-F]{64}$/, "must be 32 hex bytes"),
    maxClaimableAmount: Uint,
    signature: z.string().regex(/^0x(?:[0-9a-fA-F]{2}){1,4096}$/, "must be hex bytes"),
  }),
  deposit: z.object({ amount: Uint }).passthrough().optional(),
});

const UptoPayloadSchema = z.object({
  signature: z.string().regex(/^0x(?:[0-9a-fA-F]{2}){1,4096}$/, "must be hex bytes"),
  permit2Authorization: z.object({
    from: Address,
    permitted: z.object({ token: Address, amount: Uint }),
    spender: Address,
    nonce: Uint,
    deadline: Uint,
    witness: z.object({ to: Address, facilitator: Address, validAfter: Uint }),
  }),
});

// A transaction's wire bytes in base64, at most one packet.
const ExactSvmPayloadSchema = z.object({
  transaction: z
    .string()
    .max(Math.ceil(MAX_TRANSACTION_BYTES / 3) * 4, "must be at most one packet (1232 bytes) of transaction")
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, "must be base64"),
});

/** Which of a route's requirements a payment is for, or why none. */
export type Selected = { ok: true; requirement: Requirement } | { ok: false; failure: Failure };

export type PaymentResult = { ok: true; payment: Payment | SessionPayment } | { ok: false; failure: Failure };

/** `expectedVersion` is 2 for `PAYMENT-SIGNATURE`, 1 for `X-PAYMENT`. */
export function decodePayment(header: string, expectedVersion: 1 | 2): PaymentResult {
  const no = (failure: Failure): PaymentResult => ({ ok: false, failure });
  const decoded = decodeHeaderJson(header);
  if (!decoded.ok) {
    if (decoded.problem === "too_large") {
      return no(fail("payment_header_too_large", "The payment header is larger than 8 KiB."));
    }
    return no(fail("payment_header_malformed", "The payment header is not base64-encoded JSON.", decoded.problem));
  }
  const value = decoded.value;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return no(fail("payment_header_malformed", "The payment header is not a JSON object.", "not_object"));
  }
  const raw = value as Record<string, unknown>;
  if (raw.x402Version !== expectedVersion) {
    const header = expectedVersion === 2 ? "PAYMENT-SIGNATURE" : "X-PAYMENT";
    return no(
      fail(
        "unsupported_x402_version",
        `${header} carries x402Version ${expectedVersion} payloads only.`,
        String(raw.x402Version),
      ),
    );
  }

  let scheme: string;
  let network: string | undefined;
  let accepted: Payment["accepted"];
  let inner: unknown;
  if (expectedVersion === 2) {
    const envelope = PaymentPayloadV2Schema.safeParse(raw);
    if (!envelope.success) return no(schemaFailure(envelope.error));
    const a = envelope.data.accepted;
    accepted = { scheme: a.scheme, network: a.network, amount: a.amount, asset: a.asset, payTo: a.payTo };
    scheme = a.scheme;
    network = a.network;
    inner = envelope.data.payload;
  } else {
    const envelope = PaymentPayloadV1Schema.safeParse(raw);
    if (!envelope.success) return no(schemaFailure(envelope.error));
    scheme = envelope.data.scheme;
    network = fromV1Network(envelope.data.network);
    if (network === undefined) {
      return no(fail("network_mismatch", "This route is not paid on that network.", envelope.data.network));
    }
    inner = envelope.data.payload;
  }
  const evmV2 = expectedVersion === 2 && familyOf(network) === "evm";
  const upto = scheme === "upto" && evmV2;
  const session = scheme === "batch-settlement" && evmV2;
  if (scheme !== "exact" && !upto && !session) {
    return no(
      fail(
        "scheme_mismatch",
        'Only the "exact" scheme (and "upto" and "batch-settlement" on EVM, in x402 v2) is accepted.',
        scheme,
      ),
    );
  }
  const base = { version: expectedVersion, network, ...(accepted ? { accepted } : {}), raw };
  if (session) {
    const parsed = SessionPayloadSchema.safeParse(inner);
    if (!parsed.success) return no(schemaFailure(parsed.error, "payload"));
    return {
      ok: true,
      payment: {
        ...base,
        family: "evm",
        scheme: "batch-settlement",
        channelId: parsed.data.voucher.channelId as Hex,
        maxClaimableAmount: parsed.data.voucher.maxClaimableAmount,
        kind: parsed.data.type,
        payer: parsed.data.channelConfig.payer as Hex,
      },
    };
  }
  if (upto) {
    const permit = UptoPayloadSchema.safeParse(inner);
    if (!permit.success) return no(schemaFailure(permit.error, "payload"));
    return {
      ok: true,
      payment: {
        ...base,
        family: "evm",
        scheme: "upto",
        permit2: permit.data.permit2Authorization as Permit2Authorization,
        signature: permit.data.signature as Hex,
      },
    };
  }

  if (familyOf(network) === "svm") {
    const svm = ExactSvmPayloadSchema.safeParse(inner);
    if (!svm.success) return no(schemaFailure(svm.error, "payload"));
    const bytes = base64Bytes(svm.data.transaction);
    const decodedTx = bytes ? decodeTransaction(bytes) : { ok: false as const, problem: "not base64" };
    if (!decodedTx.ok) {
      return no(fail("payment_header_malformed", "The payment's transaction cannot be read.", decodedTx.problem));
    }
    return { ok: true, payment: { ...base, family: "svm", scheme: "exact", transaction: decodedTx.tx } };
  }
  const exact = ExactEvmPayloadSchema.safeParse(inner);
  if (!exact.success) return no(schemaFailure(exact.error, "payload"));
  return {
    ok: true,
    payment: {
      ...base,
      family: "evm",
      scheme: "exact",
      authorization: exact.data.authorization as Authorization,
      signature: exact.data.signature as Hex,
    },
  };
}

function base64Bytes(text: string): Uint8Array | undefined {
  try {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return undefined;
  }
}

function schemaFailure(error: z.ZodError, prefix?: string): Failure {
  const issue = error.issues[0];
  const path = [...(prefix ? [prefix] : []), ...(issue?.path ?? [])].join(".");
  return fail(
    "payment_header_malformed",
    "The payment does not follow the x402 payload schema.",
    `${path || "(root)"}: ${issue?.message ?? "invalid"}`,
  );
}
