/**
 * Shared helpers for Worker tests: they run inside workerd, call the Worker through
 * `exports.default.fetch`, keep prices in the real miniflare KV, and read what the loopback origin
 * and facilitator received.
 */
import { env, exports } from "cloudflare:workers";
import { type Hex, type PrivateKeyAccount, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { EvmRequirement } from "../../src/pricing/document.ts";
import { TRANSFER_WITH_AUTHORIZATION } from "../support/eip3009.ts";

export const PAY_TO = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
export const BASE_SEPOLIA_USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
export const buyer = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
export const stranger = privateKeyToAccount("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a");

export const testEnv = env as unknown as Record<string, unknown> & { PRICING: KVNamespace; RECEIPTS: KVNamespace };
const originBase = `http://127.0.0.1:${testEnv.ORIGIN_PORT}`;
const facilitatorBase = `http://127.0.0.1:${testEnv.FACILITATOR_PORT}`;
export const FACILITATOR_A = facilitatorBase;
export const FACILITATOR_B = `http://127.0.0.1:${testEnv.FACILITATOR_B_PORT}`;

export const PRICING = {
  version: 1,
  defaults: { network: "eip155:84532", payTo: PAY_TO, maxTimeoutSeconds: 60, unmatched: "free" },
  routes: [
    { id: "weather", match: "GET /api/weather/:city", price: "$0.001", description: "Current weather" },
    { id: "reports", match: "/reports/*", price: "$0.05", access: { ttl: 3600 }, description: "Reports" },
    { id: "health", match: "/health", price: "free" },
    { id: "failing", match: "/status/*", price: "$0.001" },
    { id: "redirecting", match: "/redirect-home", price: "$0.001" },
    { id: "held", match: "/held", price: "$0.001" },
  ],
};

export async function setPricing(doc: unknown = PRICING): Promise<void> {
  await testEnv.PRICING.put("pricing", typeof doc === "string" ? doc : JSON.stringify(doc));
}

export function call(path: string, init?: RequestInit): Promise<Response> {
  return exports.default.fetch(new Request(`https://paywall.example${path}`, init));
}

export async function resetServers(): Promise<void> {
  await fetch(`${originBase}/__test/reset`, { method: "POST" });
  await fetch(`${facilitatorBase}/__test/reset`, { method: "POST" });
  await fetch(`${FACILITATOR_B}/__test/reset`, { method: "POST" });
}

/** What the second facilitator received. */
export async function facilitatorBLog(): Promise<Received[]> {
  return (await fetch(`${FACILITATOR_B}/__test/log`)).json();
}

export async function scriptFacilitatorB(script: Parameters<typeof scriptFacilitator>[0]): Promise<void> {
  await fetch(`${FACILITATOR_B}/__test/script`, { method: "POST", body: JSON.stringify(script) });
}

export interface Received {
  method: string;
  url: string;
  headers: Record<string, string | undefined>;
  body: string;
}

/** Lets every held `/held` origin response finish. */
export async function releaseOrigin(): Promise<void> {
  await fetch(`${originBase}/__test/release`, { method: "POST" });
}

export async function originLog(): Promise<Received[]> {
  return (await fetch(`${originBase}/__test/log`)).json();
}

export async function facilitatorLog(): Promise<Received[]> {
  return (await fetch(`${facilitatorBase}/__test/log`)).json();
}

export type Behaviour =
  | { kind: "answer"; status: number; body: unknown }
  | { kind: "garbage" }
  | { kind: "hang" }
  | { kind: "late"; afterMs: number; status: number; body: unknown }
  | { kind: "huge"; body: unknown };
/** Sets the stub's next answers: one behaviour, or a list used one per call (the last one sticks). */
export async function scriptFacilitator(script: {
  verify?: Behaviour | Behaviour[];
  settle?: Behaviour | Behaviour[];
  supported?: { x402Version: number; scheme: string; network: string; extra?: Record<string, unknown> }[] | "fail";
  requireCdp?: { keyId: string; publicKeyPem: string };
}): Promise<void> {
  await fetch(`${facilitatorBase}/__test/script`, { method: "POST", body: JSON.stringify(script) });
}

/** The same answer, given only after `afterMs` (past the Worker's facilitator timeout, say). */
export function late(behaviour: Behaviour, afterMs: number): Behaviour {
  if (behaviour.kind !== "answer") throw new Error("only an answer can come late");
  return { kind: "late", afterMs, status: behaviour.status, body: behaviour.body };
}

/** What the official facilitator answers while a settlement is broadcast but not confirmed. */
export const PENDING_TX = `0x${"ee".repeat(32)}`;
export const settlementPending = (status = 200): Behaviour => ({
  kind: "answer",
  status,
  body: { success: false, errorReason: "settlement_pending", transaction: PENDING_TX, network: "eip155:84532" },
});
export const settlementSucceeds = (tx = PENDING_TX): Behaviour => ({
  kind: "answer",
  status: 200,
  body: { success: true, transaction: tx, network: "eip155:84532" },
});

export function requirement(overrides: Partial<EvmRequirement> = {}): EvmRequirement {
  return {
    scheme: "exact",
    network: "eip155:84532",
    amount: "1000",
    asset: BASE_SEPOLIA_USDC,
    payTo: PAY_TO,
    maxTimeoutSeconds: 60,
    extra: { name: "USDC", version: "2" },
    ...overrides,
  };
}

export interface SignOptions {
  requirement?: EvmRequirement;
  signer?: PrivateKeyAccount;
  from?: Hex;
  to?: Hex;
  value?: string;
  validAfter?: number;
  validBefore?: number;
  nonce?: Hex;
  /** Sign under another EIP-712 domain name (a forged or mistaken token). */
  domainName?: string;
}

export async function signAuthorization(o: SignOptions = {}) {
  const req = o.requirement ?? requirement();
  const now = Math.floor(Date.now() / 1000);
  const signer = o.signer ?? buyer;
  const authorization = {
    from: o.from ?? buyer.address,
    to: (o.to ?? req.payTo) as Hex,
    value: o.value ?? req.amount,
    validAfter: String(o.validAfter ?? 0),
    validBefore: String(o.validBefore ?? now + 3600),
    nonce: o.nonce ?? toHex(crypto.getRandomValues(new Uint8Array(32))),
  };
  const [namespace, chainId] = req.network.split(":");
  if (namespace !== "eip155") throw new Error(`not an EVM network: ${req.network}`);
  const signature = await signer.signTypedData({
    domain: {
      name: o.domainName ?? req.extra.name,
      version: req.extra.version,
      chainId: Number(chainId),
      verifyingContract: req.asset as Hex,
    },
    types: { TransferWithAuthorization: TRANSFER_WITH_AUTHORIZATION },
    primaryType: "TransferWithAuthorization",
    message: {
      from: authorization.from,
      to: authorization.to,
      value: BigInt(authorization.value),
      validAfter: BigInt(authorization.validAfter),
      validBefore: BigInt(authorization.validBefore),
      nonce: authorization.nonce,
    },
  });
  return { signature, authorization };
}

export function encode(value: unknown): string {
  return btoa(JSON.stringify(value));
}

/** A v2 `PAYMENT-SIGNATURE` value; `accepted` defaults to the requirement signed for. */
export async function v2Header(
  o: SignOptions & { accepted?: Partial<EvmRequirement>; url?: string } = {},
): Promise<string> {
  const req = o.requirement ?? requirement();
  const payload = await signAuthorization(o);
  return encode({
    x402Version: 2,
    resource: { url: o.url ?? "https://paywall.example/api/weather/paris" },
    accepted: { ...req, ...o.accepted },
    payload,
  });
}

/** A v1 `X-PAYMENT` value. */
export async function v1Header(o: SignOptions & { network?: string } = {}): Promise<string> {
  const payload = await signAuthorization(o);
  return encode({ x402Version: 1, scheme: "exact", network: o.network ?? "base-sepolia", payload });
}

export function decodeBase64Json(value: string | null): any {
  if (value === null) throw new Error("header missing");
  return JSON.parse(atob(value));
}

/** The amount of the first requirement in a 402's PAYMENT-REQUIRED header. */
export function amountOf(res: Response): string {
  return decodeBase64Json(res.headers.get("PAYMENT-REQUIRED")).accepts[0].amount;
}

/** An ExecutionContext for tests that call an app's fetch directly. */
export const testCtx = {
  waitUntil: () => {},
  passThroughOnException: () => {},
  props: {},
} as unknown as ExecutionContext;
