/**
 * Every bad payment header gets 400 or 402 with its own reason, and changes nothing: the origin
 * and the facilitator see no request at all.
 */
import { beforeEach, expect, it } from "vitest";
import {
  BASE_SEPOLIA_USDC,
  buyer,
  call,
  encode,
  facilitatorLog,
  originLog,
  PAY_TO,
  requirement,
  resetServers,
  setPricing,
  signAuthorization,
  stranger,
  v1Header,
  v2Header,
} from "./helpers.ts";

beforeEach(async () => {
  await resetServers();
  await setPricing();
});

const now = () => Math.floor(Date.now() / 1000);

type Case = [name: string, headers: () => Promise<Record<string, string>>, status: number, reason: string];

const v2 = (make: () => Promise<string>) => async () => ({ "PAYMENT-SIGNATURE": await make() });
const v1 = (make: () => Promise<string>) => async () => ({ "X-PAYMENT": await make() });

const cases: Case[] = [
  ["missing", async () => ({}), 402, "payment_required"],
  [
    "oversize (over 8 KiB)",
    async () => ({ "PAYMENT-SIGNATURE": "A".repeat(8 * 1024 + 4) }),
    400,
    "payment_header_too_large",
  ],
  ["not base64", async () => ({ "PAYMENT-SIGNATURE": "!!!not*base64!!!" }), 400, "payment_header_malformed"],
  ["not JSON", async () => ({ "PAYMENT-SIGNATURE": btoa("hello, world") }), 400, "payment_header_malformed"],
  ["JSON but not an object", async () => ({ "PAYMENT-SIGNATURE": btoa("[1,2,3]") }), 400, "payment_header_malformed"],
  [
    "invalid UTF-8 inside the base64",
    async () => ({ "PAYMENT-SIGNATURE": btoa("\xff\xfe{}") }),
    400,
    "payment_header_malformed",
  ],
  [
    "unknown x402Version",
    v2(async () => encode({ ...JSON.parse(atob(await v2Header())), x402Version: 3 })),
    400,
    "unsupported_x402_version",
  ],
  ["a v1 payload in PAYMENT-SIGNATURE", v2(() => v1Header()), 400, "unsupported_x402_version"],
  ["a v2 payload in X-PAYMENT", v1(() => v2Header()), 400, "unsupported_x402_version"],
  [
    "both headers at once",
    async () => ({ "PAYMENT-SIGNATURE": await v2Header(), "X-PAYMENT": await v1Header() }),
    400,
    "payment_header_conflict",
  ],
  [
    "missing the accepted requirement",
    v2(async () => {
      const { accepted: _drop, ...rest } = JSON.parse(atob(await v2Header()));
      return encode(rest);
    }),
    400,
    "payment_header_malformed",
  ],
  [
    "missing the authorization",
    v2(async () => encode({ ...JSON.parse(atob(await v2Header())), payload: { signature: "0x00" } })),
    400,
    "payment_header_malformed",
  ],
  [
    "a non-hex signature",
    v2(async () => {
      const p = JSON.parse(atob(await v2Header()));
      p.payload.signature = "0xzz";
      return encode(p);
    }),
    400,
    "payment_header_malformed",
  ],
  ["an unknown scheme", v2(() => v2Header({ accepted: { scheme: "deferred" as "exact" } })), 402, "scheme_mismatch"],
  // An upto payment must carry a Permit2 witness transfer, not an EIP-3009 authorization.
  [
    "upto with an exact payload",
    v2(() => v2Header({ accepted: { scheme: "upto" as "exact" } })),
    400,
    "payment_header_malformed",
  ],
  ["wrong network", v2(() => v2Header({ accepted: { network: "eip155:8453" } })), 402, "network_mismatch"],
  ["unknown v1 network", v1(() => v1Header({ network: "moonnet" })), 402, "network_mismatch"],
  ["wrong v1 network", v1(() => v1Header({ network: "base" })), 402, "network_mismatch"],
  [
    "wrong asset",
    v2(() => v2Header({ accepted: { asset: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913" } })),
    402,
    "asset_mismatch",
  ],
  ["wrong payTo in accepted", v2(() => v2Header({ accepted: { payTo: stranger.address } })), 402, "pay_to_mismatch"],
  ["wrong recipient in the signed authorization", v2(() => v2Header({ to: stranger.address })), 402, "pay_to_mismatch"],
  ["wrong recipient (v1)", v1(() => v1Header({ to: stranger.address })), 402, "pay_to_mismatch"],
  ["wrong amount in accepted", v2(() => v2Header({ accepted: { amount: "1" } })), 402, "amount_mismatch"],
  ["wrong amount in the signed authorization", v2(() => v2Header({ value: "999" })), 402, "amount_mismatch"],
  ["wrong amount (v1)", v1(() => v1Header({ value: "1" })), 402, "amount_mismatch"],
  ["expired", v2(() => v2Header({ validBefore: now() - 10 })), 402, "payment_expired"],
  ["expiring within seconds", v2(() => v2Header({ validBefore: now() + 3 })), 402, "payment_expired"],
  ["expired (v1)", v1(() => v1Header({ validBefore: now() - 10 })), 402, "payment_expired"],
  ["not yet valid", v2(() => v2Header({ validAfter: now() + 600 })), 402, "payment_not_yet_valid"],
  [
    "a tampered signature",
    v2(async () => {
      const p = JSON.parse(atob(await v2Header()));
      const sig: string = p.payload.signature;
      p.payload.signature = sig.slice(0, 10) + (sig[10] === "a" ? "b" : "a") + sig.slice(11);
      return encode(p);
    }),
    402,
    "invalid_signature",
  ],
  [
    "a tampered authorization (value raised after signing)",
    v2(async () => {
      const { signature, authorization } = await signAuthorization({ value: "1000" });
      return encode({
        x402Version: 2,
        accepted: requirement(),
        payload: { signature, authorization: { ...authorization, nonce: `0x${"11".repeat(32)}` } },
      });
    }),
    402,
    "invalid_signature",
  ],
  [
    "a signature by someone else",
    v2(() => v2Header({ signer: stranger, from: buyer.address })),
    402,
    "invalid_signature",
  ],
  [
    "a signature by someone else (v1)",
    v1(() => v1Header({ signer: stranger, from: buyer.address })),
    402,
    "invalid_signature",
  ],
  [
    "a signature under another token's domain",
    v2(() => v2Header({ domainName: "USD Coin" })),
    402,
    "invalid_signature",
  ],
];

it.each(cases)("refuses a payment header that is %s", async (_name, headers, status, reason) => {
  const res = await call("/api/weather/paris", { headers: await headers() });
  expect(res.status).toBe(status);
  const body = (await res.json()) as { error: string };
  expect(body.error).toBe(reason);
  if (status === 402) {
    // A 402 always tells the buyer again what to pay.
    const required = JSON.parse(atob(res.headers.get("PAYMENT-REQUIRED") ?? ""));
    expect(required.accepts[0]).toMatchObject({ payTo: PAY_TO, asset: BASE_SEPOLIA_USDC, amount: "1000" });
    expect(required.error).toBe(reason);
  }
  expect(res.headers.get("cache-control")).toBe("no-store");
  expect(await originLog()).toEqual([]);
  expect(await facilitatorLog()).toEqual([]);
});
