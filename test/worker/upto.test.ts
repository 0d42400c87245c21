/**
 * `upto` routes in the Worker, with real miniflare KV and Durable Objects and loopback stubs for
 * the origin and facilitator (the real facilitator and buyer are in test/e2e/upto-payments.test.ts):
 * what the 402 offers, every bad permit refused with its own reason and no origin or facilitator
 * call, and the charge read from the origin's `Settlement-Overrides`, capped, defaulted and hidden.
 */
import { env } from "cloudflare:workers";
import type { Hex } from "viem";
import { beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import type { Permit2Authorization } from "../../src/schemes/payment.ts";
import {
  PERMIT2_ADDRESS,
  permit2Message,
  UPTO_PERMIT2_TYPES,
  UPTO_PROXY_ADDRESS,
} from "../../src/schemes/upto-evm/permit2.ts";
import { eventually } from "../support/poll.ts";
import {
  BASE_SEPOLIA_USDC,
  buyer,
  decodeBase64Json,
  encode,
  FACILITATOR_A,
  facilitatorLog,
  late,
  originLog,
  PAY_TO,
  resetServers,
  scriptFacilitator,
  setPricing,
  stranger,
  testCtx,
} from "./helpers.ts";

const FACILITATOR_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const NETWORK = "eip155:84532";
const MAXIMUM = "10000";

const PRICING = {
  version: 1,
  defaults: { network: NETWORK, payTo: PAY_TO },
  routes: [
    { id: "metered", match: "GET /metered", scheme: "upto", price: "$0.01" },
    { id: "defaulted", match: "GET /metered/defaulted", scheme: "upto", price: "$0.01", defaultCharge: "25%" },
    { id: "either", match: "GET /either", accepts: [{ price: "$0.001" }, { price: "$0.01", scheme: "upto" }] },
  ],
};

const SUPPORTED = [
  { x402Version: 2, scheme: "exact", network: NETWORK },
  { x402Version: 1, scheme: "exact", network: "base-sepolia" },
  { x402Version: 2, scheme: "upto", network: NETWORK, extra: { facilitatorAddress: FACILITATOR_ADDRESS } },
];

beforeEach(async () => {
  await resetServers();
  await setPricing(PRICING);
  await scriptFacilitator({ supported: SUPPORTED });
});

const worker = createApp();
const call = (path: string, init?: RequestInit) =>
  worker.fetch(
    new Request(`https://paywall.example${path}`, init),
    { ...env, FACILITATOR_URL: FACILITATOR_A } as never,
    testCtx,
  );

const now = () => Math.floor(Date.now() / 1000);

interface PermitOptions {
  signer?: typeof buyer;
  from?: Hex;
  token?: Hex;
  amount?: string;
  spender?: Hex;
  to?: Hex;
  facilitator?: Hex;
  deadline?: number;
  validAfter?: number;
  nonce?: bigint;
  accepted?: Record<string, unknown>;
}

/** A v2 upto payment as `@x402/evm`'s upto client makes it, with any field changed. */
async function uptoHeader(o: PermitOptions = {}): Promise<string> {
  const permit2Authorization = {
    from: o.from ?? buyer.address,
    permitted: { token: o.token ?? BASE_SEPOLIA_USDC, amount: o.amount ?? MAXIMUM },
    spender: o.spender ?? UPTO_PROXY_ADDRESS,
    nonce: String(o.nonce ?? BigInt(`0x${Buffer.from(crypto.getRandomValues(new Uint8Array(31))).toString("hex")}`)),
    deadline: String(o.deadline ?? now() + 300),
    witness: {
      to: o.to ?? PAY_TO,
      facilitator: o.facilitator ?? FACILITATOR_ADDRESS,
      validAfter: String(o.validAfter ?? 0),
    },
  };
  const p = permit2Authorization;
  const signature = await (o.signer ?? buyer).signTypedData({
    domain: { name: "Permit2", chainId: 84532, verifyingContract: PERMIT2_ADDRESS },
    types: UPTO_PERMIT2_TYPES,
    primaryType: "PermitWitnessTransferFrom",
    message: permit2Message(p as Permit2Authorization),
  });
  return encode({
    x402Version: 2,
    resource: { url: "https://paywall.example/metered" },
    accepted: {
      scheme: "upto",
      network: NETWORK,
      amount: MAXIMUM,
      asset: BASE_SEPOLIA_USDC,
      payTo: PAY_TO,
      maxTimeoutSeconds: 60,
      extra: { name: "USDC", version: "2", assetTransferMethod: "permit2", facilitatorAddress: FACILITATOR_ADDRESS },
      ...o.accepted,
    },
    payload: { signature, permit2Authorization },
  });
}

const verifies = { kind: "answer" as const, status: 200, body: { isValid: true, payer: buyer.address } };
const settles = {
  kind: "answer" as const,
  status: 200,
  body: { success: true, transaction: `0x${"ab".repeat(32)}`, network: NETWORK },
};

describe("an upto route's 402", () => {
  it("offers the maximum with the facilitator's address and EIP-2612 gas sponsoring, beside exact", async () => {
    const res = await call("/either");
    expect(res.status).toBe(402);
    const v2 = decodeBase64Json(res.headers.get("PAYMENT-REQUIRED"));
    expect(v2.accepts.map((a: { scheme: string; amount: string }) => [a.scheme, a.amount])).toEqual([
      ["exact", "1000"],
      ["upto", MAXIMUM],
    ]);
    expect(v2.accepts[1].extra).toEqual({
      name: "USDC",
      version: "2",
      assetTransferMethod: "permit2",
      facilitatorAddress: FACILITATOR_ADDRESS,
    });
    expect(Object.keys(v2.extensions)).toEqual(["eip2612GasSponsoring"]);
    // v1 has no upto: its body offers exact alone.
    const v1 = (await res.json()) as { accepts: { scheme: string }[] };
    expect(v1.accepts.map((a) => a.scheme)).toEqual(["exact"]);
  });

  it("fails closed with 503 while no facilitator has told its upto address, and leaves upto out beside exact", async () => {
    await scriptFacilitator({ supported: SUPPORTED.slice(0, 2) });
    const fresh = createApp();
    const get = (path: string) =>
      fresh.fetch(
        new Request(`https://paywall.example${path}`),
        { ...env, FACILITATOR_URL: FACILITATOR_A } as never,
        testCtx,
      );
    const only = await get("/metered");
    expect(only.status).toBe(503);
    expect(await only.json()).toMatchObject({ error: "facilitator_address_unknown", detail: NETWORK });
    const either = await get("/either");
    expect(
      decodeBase64Json(either.headers.get("PAYMENT-REQUIRED")).accepts.map((a: { scheme: string }) => a.scheme),
    ).toEqual(["exact"]);
    expect(await originLog()).toEqual([]);
  });
});

describe("a bad upto payment changes nothing", () => {
  const cases: [string, () => Promise<string>, number, string][] = [
    ["another spender", () => uptoHeader({ spender: stranger.address }), 402, "spender_mismatch"],
    ["another facilitator", () => uptoHeader({ facilitator: stranger.address }), 402, "facilitator_mismatch"],
    ["another recipient", () => uptoHeader({ to: stranger.address }), 402, "pay_to_mismatch"],
    ["another maximum", () => uptoHeader({ amount: "9999" }), 402, "amount_mismatch"],
    ["another maximum in accepted", () => uptoHeader({ accepted: { amount: "1" } }), 402, "amount_mismatch"],
    ["another token", () => uptoHeader({ token: stranger.address }), 402, "asset_mismatch"],
    ["an expired permit", () => uptoHeader({ deadline: now() - 5 }), 402, "payment_expired"],
    ["a permit expiring within seconds", () => uptoHeader({ deadline: now() + 2 }), 402, "payment_expired"],
    ["a permit not valid yet", () => uptoHeader({ validAfter: now() + 600 }), 402, "payment_not_yet_valid"],
    ["signed by someone else", () => uptoHeader({ signer: stranger }), 402, "invalid_signature"],
    [
      "a permit with no witness",
      async () => {
        const p = JSON.parse(atob(await uptoHeader()));
        delete p.payload.permit2Authorization.witness;
        return encode(p);
      },
      400,
      "payment_header_malformed",
    ],
    ["an upto payment for an exact-only price", () => uptoHeader(), 402, "scheme_mismatch"],
  ];
  for (const [name, header, status, reason] of cases) {
    it(name, async () => {
      const path = reason === "scheme_mismatch" ? "/either-exact" : "/metered";
      if (reason === "scheme_mismatch") {
        await setPricing({
          ...PRICING,
          routes: [...PRICING.routes, { id: "x", match: "GET /either-exact", price: "$0.01" }],
        });
      }
      const res = await call(path, { headers: { "PAYMENT-SIGNATURE": await header() } });
      expect(res.status).toBe(status);
      const body = status === 402 ? decodeBase64Json(res.headers.get("PAYMENT-REQUIRED")) : await res.json();
      expect(body.error).toBe(reason);
      expect(await originLog()).toEqual([]);
      expect((await facilitatorLog()).filter((r) => r.url !== "/supported")).toEqual([]);
    });
  }
});

describe("the charge", () => {
  const pay = async (path: string) => {
    await scriptFacilitator({ supported: SUPPORTED, verify: verifies, settle: settles });
    const res = await call(path, { headers: { "PAYMENT-SIGNATURE": await uptoHeader() } });
    const settled = (await facilitatorLog()).filter((r) => r.url === "/settle");
    return { res, settled: settled.map((r) => JSON.parse(r.body).paymentRequirements.amount) };
  };
  const report = (value: string) => `/metered?report=${encodeURIComponent(value)}`;

  it("is what the origin reports, settled as such, and the report never reaches the buyer", async () => {
    const { res, settled } = await pay(report('{"amount":"1234"}'));
    expect(res.status).toBe(200);
    expect(res.headers.get("settlement-overrides")).toBeNull();
    expect(await res.text()).toMatch(/^metered answer/);
    expect(settled).toEqual(["1234"]);
    expect(decodeBase64Json(res.headers.get("PAYMENT-RESPONSE"))).toMatchObject({ success: true, amount: "1234" });
    // The verify asked for the maximum the buyer signed.
    const verify = (await facilitatorLog()).find((r) => r.url === "/verify");
    expect(JSON.parse(verify?.body ?? "{}").paymentRequirements.amount).toBe(MAXIMUM);
  });

  it("reads dollars and percentages of the maximum", async () => {
    expect((await pay(report('{"amount":"$0.0025"}'))).settled).toEqual(["2500"]);
    await resetServers();
    expect((await pay(report('{"amount":"12.5%"}'))).settled).toEqual(["1250"]);
  });

  it("is the maximum when the origin reports more, nothing readable, or nothing", async () => {
    for (const value of ['{"amount":"10001"}', '{"amount":"$5"}', "{", '{"amount":7}', '{"amount":"-1"}']) {
      await resetServers();
      expect((await pay(report(value))).settled, value).toEqual([MAXIMUM]);
    }
    await resetServers();
    expect((await pay("/metered")).settled).toEqual([MAXIMUM]);
  });

  it("is the route's defaultCharge when the origin reports nothing, and the report when it does", async () => {
    expect((await pay("/metered/defaulted")).settled).toEqual(["2500"]);
    await resetServers();
    expect((await pay(`/metered/defaulted?report=${encodeURIComponent('{"amount":"10"}')}`)).settled).toEqual(["10"]);
  });
});

describe("an upto settlement whose outcome is unknown", () => {
  /** What the official facilitator answers once our own settlement has landed: the permit is spent. */
  const spent = {
    kind: "answer" as const,
    status: 400,
    body: { success: false, errorReason: "permit2_allowance_required", transaction: "", network: NETWORK },
  };
  const present = (header: string) => call("/metered", { headers: { "PAYMENT-SIGNATURE": header } });
  /** Presents the payment (409 each time) until the paywall has settled it a second time. */
  const untilSecondSettle = (header: string) =>
    eventually(
      "a second /settle",
      async () => {
        const again = await present(header);
        expect(again.status).toBe(409);
        await again.text();
        return (await facilitatorLog()).filter((r) => r.url === "/settle").length >= 2 ? true : undefined;
      },
      { intervalMs: 200 },
    );
  /** Still pending: not released (a 402 and a fresh verify would follow), not served. */
  const expectStillPending = async (header: string) => {
    const after = await present(header);
    expect(after.status).toBe(409);
    expect(await after.json()).toMatchObject({ error: "settlement_pending" });
    expect((await facilitatorLog()).filter((r) => r.url === "/verify")).toHaveLength(1);
    expect((await originLog()).length).toBe(1);
  };

  it("is kept pending, not released, when settling again is refused: the refusal cannot tell whether the first landed", async () => {
    // An unusable answer to /settle: the facilitator may have broadcast the transfer.
    await scriptFacilitator({ supported: SUPPORTED, verify: verifies, settle: { kind: "garbage" } });
    const header = await uptoHeader();
    const first = await present(header);
    expect(first.status).toBe(409);
    expect(await first.json()).toMatchObject({ error: "settlement_pending" });
    await scriptFacilitator({ supported: SUPPORTED, verify: verifies, settle: spent });
    // Once the first call has surely ended, the next presentation settles again; it is refused.
    await untilSecondSettle(header);
    await expectStillPending(header);
  });

  it("is kept pending when that second settle times out and its late answer is the same refusal", async () => {
    // FACILITATOR_SETTLE_TIMEOUT_MS is 1000 here: the second settle's answer comes after it gave up.
    await scriptFacilitator({
      supported: SUPPORTED,
      verify: verifies,
      settle: [{ kind: "garbage" }, late(spent, 1500), spent],
    });
    const header = await uptoHeader();
    const first = await present(header);
    expect(first.status).toBe(409);
    await first.text();
    await untilSecondSettle(header);
    await new Promise((resolve) => setTimeout(resolve, 1700)); // its late answer has come
    await expectStillPending(header);
  });
});
