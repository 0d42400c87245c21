/**
 * Solana buyers end to end, nothing mocked: the local Solana (litesvm behind our RPC), the
 * official facilitator with `@x402/svm` registered beside EVM, the Worker under wrangler dev, and
 * the official buyers — `@x402/fetch` with `ExactSvmScheme` (v2) and `x402-fetch` (v1). Balances are
 * read from the chain. Routes take USDC on Base Sepolia (the local anvil) and on Solana devnet.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KeyPairSigner } from "@solana/kit";
import { x402Client } from "@x402/core/client";
import { decodePaymentRequiredHeader, encodePaymentSignatureHeader } from "@x402/core/http";
import type { PaymentRequired, PaymentRequirements } from "@x402/core/types";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import { ExactSvmScheme } from "@x402/svm/exact/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { wrapFetchWithPayment as wrapFetchWithPaymentV1 } from "x402-fetch";
import { account, ROLE } from "../../stack/accounts.ts";
import { usdcBalance } from "../../stack/chain.ts";
import { freeStackPorts, type Stack, startStack } from "../../stack/index.ts";
import { SOLANA_DEVNET, solanaSigner } from "../../stack/solana.ts";
import { eventually } from "../support/poll.ts";

let stack: Stack;
let dir: string | undefined;
let base: string;
let buyer: KeyPairSigner;
let seller: KeyPairSigner;
let stranger: KeyPairSigner;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "paywall-e2e-svm-"));
  const pricing = JSON.parse(await readFile("pricing.json", "utf8"));
  // The failing and the slow endpoints take Solana too, for the not-charged and many-copies cases.
  for (const route of pricing.routes) {
    if (route.id === "fail" || route.id === "slow") {
      route.accepts = [{ price: route.price }, { price: route.price, network: SOLANA_DEVNET }];
      delete route.price;
    }
  }
  const pricingFile = join(dir, "pricing.json");
  await writeFile(pricingFile, JSON.stringify(pricing));
  stack = await startStack({
    ports: await freeStackPorts(),
    pricingFile,
    persistDir: join(dir, "state"),
    // Short settle windows, so that a slow chain (confirmations held back) outlives them: one
    // /settle call 2 s, and its answer awaited 3 s more (production: 15 s and 25 s).
    workerVars: { FACILITATOR_SETTLE_TIMEOUT_MS: "2000", SETTLE_BUDGET_MS: "2500", SETTLE_LATE_MS: "3000" },
  });
  base = stack.worker.url;
  buyer = await solanaSigner("buyer");
  seller = await solanaSigner("seller");
  stranger = await solanaSigner("stranger");
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const usdcOf = (owner: KeyPairSigner) => stack.solana.chain.usdcOf(owner.address);
const calls = (path: string) => stack.facilitator.calls.filter((c) => c.path === path).length;
const originCalls = (path: string) => stack.origin.received.filter((r) => r.path.startsWith(path)).length;
const svmClient = () =>
  new x402Client().register(SOLANA_DEVNET, new ExactSvmScheme(buyer, { rpcUrl: stack.solana.url }));

async function required(url: string): Promise<PaymentRequired> {
  const unpaid = await fetch(url);
  expect(unpaid.status).toBe(402);
  return decodePaymentRequiredHeader(unpaid.headers.get("PAYMENT-REQUIRED") ?? "");
}

/** A PAYMENT-SIGNATURE the official client makes for the route's Solana option, not yet sent. */
async function solanaHeader(url: string, change?: (r: PaymentRequirements) => PaymentRequirements): Promise<string> {
  const offer = await required(url);
  const solana = offer.accepts.find((a) => a.network === SOLANA_DEVNET) as PaymentRequirements;
  // Pay `change(requirement)` but claim to have accepted the requirement as offered.
  const paid = change ? change(structuredClone(solana)) : solana;
  const payload = await svmClient().createPaymentPayload({ ...offer, accepts: [paid] });
  return encodePaymentSignatureHeader({ ...payload, accepted: solana });
}

describe("the 402 offers Solana beside EVM", () => {
  it("lists both options in v2 and in the v1 body, with the facilitator's fee payer", async () => {
    const response = await fetch(`${base}/api/weather/oslo`);
    expect(response.status).toBe(402);
    const v2 = decodePaymentRequiredHeader(response.headers.get("PAYMENT-REQUIRED") ?? "");
    const feePayer = (await solanaSigner("facilitator")).address;
    expect(v2.accepts.map((a) => a.network)).toEqual(["eip155:84532", SOLANA_DEVNET]);
    expect(v2.accepts[1]).toMatchObject({
      scheme: "exact",
      amount: "1000",
      asset: "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
      payTo: seller.address,
      extra: { feePayer },
    });
    const v1 = (await response.json()) as { accepts: { network: string; extra: unknown }[] };
    expect(v1.accepts.map((a) => a.network)).toEqual(["base-sepolia", "solana-devnet"]);
    expect(v1.accepts[1]?.extra).toEqual({ feePayer });
  });
});

describe("Solana buyers pay", () => {
  it("v2 (@x402/fetch, ExactSvmScheme): 200, one transfer, balances moved on chain", async () => {
    const [buyer0, seller0] = [await usdcOf(buyer), await usdcOf(seller)];
    const pay = wrapFetchWithPayment(fetch, svmClient());
    const response = await pay(`${base}/api/weather/lima`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ city: "lima" });
    const settlement = decodePaymentResponseHeader(response.headers.get("PAYMENT-RESPONSE") ?? "");
    expect(settlement).toMatchObject({ success: true, network: SOLANA_DEVNET, payer: buyer.address });
    expect(await usdcOf(buyer)).toBe(buyer0 - 1000n);
    expect(await usdcOf(seller)).toBe(seller0 + 1000n);
  });

  it("v1 (x402-fetch on solana-devnet): 200, balances moved on chain", async () => {
    const [buyer0, seller0] = [await usdcOf(buyer), await usdcOf(seller)];
    const pay = wrapFetchWithPaymentV1(fetch, buyer as never, undefined, undefined, {
      svmConfig: { rpcUrl: stack.solana.url },
    }) as typeof fetch;
    const response = await pay(`${base}/api/weather/quito`);
    expect(response.status).toBe(200);
    expect(await usdcOf(buyer)).toBe(buyer0 - 1000n);
    expect(await usdcOf(seller)).toBe(seller0 + 1000n);
  });

  it("one route, paid by an EVM buyer and by a Solana buyer, each on its own chain", async () => {
    const evmBuyer = account(ROLE.buyer);
    const merchant = account(ROLE.merchant).address;
    const evm0 = await usdcBalance(stack.chain.publicClient, merchant);
    const sol0 = await usdcOf(seller);
    const evmPay = wrapFetchWithPayment(fetch, new x402Client().register("eip155:*", new ExactEvmScheme(evmBuyer)));
    expect((await evmPay(`${base}/api/weather/accra`)).status).toBe(200);
    expect((await wrapFetchWithPayment(fetch, svmClient())(`${base}/api/weather/accra`)).status).toBe(200);
    expect(await usdcBalance(stack.chain.publicClient, merchant)).toBe(evm0 + 1000n);
    expect(await usdcOf(seller)).toBe(sol0 + 1000n);
  });
});

describe("exactly once, and never charged for nothing", () => {
  it("replayed: the same answer for the same request, payment_already_used for another, one transfer", async () => {
    const url = `${base}/api/weather/hanoi`;
    const header = await solanaHeader(url);
    const buyer0 = await usdcOf(buyer);
    const first = await fetch(url, { headers: { "PAYMENT-SIGNATURE": header } });
    expect(first.status).toBe(200);
    const body = await first.text();
    const settles = calls("/settle");
    const again = await fetch(url, { headers: { "PAYMENT-SIGNATURE": header } });
    expect(again.status).toBe(200);
    expect(await again.text()).toBe(body);
    expect(again.headers.get("PAYMENT-RESPONSE")).toBe(first.headers.get("PAYMENT-RESPONSE"));
    expect(calls("/settle")).toBe(settles);
    expect(originCalls("/api/weather/hanoi")).toBe(1);
    // The same payment for another request: already used, nothing forwarded, nothing charged.
    const elsewhere = await fetch(`${base}/api/weather/hue`, { headers: { "PAYMENT-SIGNATURE": header } });
    expect(elsewhere.status).toBe(402);
    expect(((await elsewhere.json()) as { error: string }).error).toBe("payment_already_used");
    expect(originCalls("/api/weather/hue")).toBe(0);
    expect(calls("/settle")).toBe(settles);
    expect(await usdcOf(buyer)).toBe(buyer0 - 1000n);
  });

  it("runs a slow origin once for 8 copies of one payment sent at once: one transfer, 7 × 409", async () => {
    const url = `${base}/api/slow?ms=800`;
    const header = await solanaHeader(url);
    const buyer0 = await usdcOf(buyer);
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => fetch(url, { headers: { "PAYMENT-SIGNATURE": header } })),
    );
    const statuses = answers.map((a) => a.status).sort();
    for (const a of answers) await a.body?.cancel();
    expect(statuses).toEqual([200, 409, 409, 409, 409, 409, 409, 409]);
    expect(originCalls("/api/slow")).toBe(1);
    expect(await usdcOf(buyer)).toBe(buyer0 - 1000n);
  });

  it("an origin 500 charges nothing: the payment is released, not settled", async () => {
    const url = `${base}/api/fail`;
    const header = await solanaHeader(url);
    const buyer0 = await usdcOf(buyer);
    const settles = calls("/settle");
    const response = await fetch(url, { headers: { "PAYMENT-SIGNATURE": header } });
    expect(response.status).toBe(500);
    expect(calls("/settle")).toBe(settles);
    expect(await usdcOf(buyer)).toBe(buyer0);
  });
});

describe("refused before the facilitator or the origin sees them", () => {
  const refusedLocally = async (header: string, status: number, reason: string) => {
    const [verifies, origin] = [calls("/verify"), originCalls("/api/weather/bern")];
    const response = await fetch(`${base}/api/weather/bern`, { headers: { "PAYMENT-SIGNATURE": header } });
    expect(response.status).toBe(status);
    expect(((await response.json()) as { error: string }).error).toBe(reason);
    expect(calls("/verify")).toBe(verifies);
    expect(originCalls("/api/weather/bern")).toBe(origin);
  };
  const url = () => `${base}/api/weather/bern`;

  it("a transfer to someone else, claimed as the route's terms", async () => {
    await refusedLocally(await solanaHeader(url(), (r) => ({ ...r, payTo: stranger.address })), 402, "pay_to_mismatch");
  });

  it("a transfer of less than the price", async () => {
    await refusedLocally(await solanaHeader(url(), (r) => ({ ...r, amount: "999" })), 402, "amount_mismatch");
  });

  it("a transaction whose fee payer is not the facilitator's", async () => {
    const header = await solanaHeader(url(), (r) => ({ ...r, extra: { feePayer: stranger.address } }));
    await refusedLocally(header, 402, "fee_payer_mismatch");
  });

  it("a changed buyer signature", async () => {
    const payload = JSON.parse(atob(await solanaHeader(url())));
    const tx = Buffer.from(payload.payload.transaction, "base64");
    tx[1 + 64 + 5] = (tx[1 + 64 + 5] as number) ^ 0xff; // the buyer's signature, the second one
    payload.payload.transaction = tx.toString("base64");
    await refusedLocally(btoa(JSON.stringify(payload)), 402, "invalid_signature");
  });

  it("a transaction that is not one", async () => {
    const payload = JSON.parse(atob(await solanaHeader(url())));
    payload.payload.transaction = "AAAA";
    await refusedLocally(btoa(JSON.stringify(payload)), 400, "payment_header_malformed");
  });
});

describe("a Solana payment on a slow chain", () => {
  it("whose /settle outlives our timeout is delivered from the facilitator's late answer: charged once", async () => {
    const url = `${base}/api/weather/lagos`;
    const header = await solanaHeader(url);
    const [buyer0, settles] = [await usdcOf(buyer), calls("/settle")];
    stack.solana.chain.confirmationsHeld = true;
    try {
      const first = await fetch(url, { headers: { "PAYMENT-SIGNATURE": header } });
      // Our call ran out of time while the facilitator waits for the confirmation.
      expect(first.status).toBe(409);
      expect(((await first.json()) as { error: string }).error).toBe("settlement_pending");
    } finally {
      stack.solana.chain.confirmationsHeld = false;
    }
    // The facilitator now sees it confirmed and answers the call we stopped waiting for; that
    // answer settles the payment in its ledger object, and the same payment gets the kept answer.
    const delivered = await eventually(
      "the late settlement",
      async () => {
        const again = await fetch(url, { headers: { "PAYMENT-SIGNATURE": header } });
        if (again.status === 200) return again;
        expect(again.status).toBe(409);
        await again.text();
        return undefined;
      },
      { timeoutMs: 15_000, intervalMs: 250 },
    );
    expect(await delivered.json()).toMatchObject({ city: "lagos" });
    expect(calls("/settle") - settles).toBe(1);
    expect(originCalls("/api/weather/lagos")).toBe(1);
    expect(await usdcOf(buyer)).toBe(buyer0 - 1000n);
  });

  it("whose answer never reaches us is kept pending, not released, when settling again is refused", async () => {
    const url = `${base}/api/weather/accra-late`;
    const header = await solanaHeader(url);
    const [buyer0, settles] = [await usdcOf(buyer), calls("/settle")];
    stack.solana.chain.confirmationsHeld = true;
    try {
      const first = await fetch(url, { headers: { "PAYMENT-SIGNATURE": header } });
      expect(first.status).toBe(409);
      await first.text();
      // Still unconfirmed after our late wait: once that has ended, the next presentation settles
      // again, and the facilitator, still confirming the first, refuses it (duplicate_settlement).
      // That refusal cannot tell a landed transaction from a lost one: the payment stays pending.
      await eventually(
        "a second /settle",
        async () => {
          const again = await fetch(url, { headers: { "PAYMENT-SIGNATURE": header } });
          expect(again.status).toBe(409);
          await again.text();
          return calls("/settle") - settles >= 2 ? true : undefined;
        },
        { timeoutMs: 15_000, intervalMs: 250 },
      );
      const after = await fetch(url, { headers: { "PAYMENT-SIGNATURE": header } });
      expect(after.status).toBe(409);
      expect(((await after.json()) as { error: string }).error).toBe("settlement_pending");
    } finally {
      stack.solana.chain.confirmationsHeld = false;
    }
    // One transaction ran, and nothing was released for the buyer to pay again.
    expect(await usdcOf(buyer)).toBe(buyer0 - 1000n);
    expect(originCalls("/api/weather/accra-late")).toBe(1);
  });
});
