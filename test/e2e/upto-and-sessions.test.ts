/**
 * The two newer schemes end to end, on one local stack, nothing mocked: the official `@x402/fetch`
 * buyer with `@x402/evm`'s clients, the Worker under wrangler dev, the official facilitator on the
 * local chain (our Permit2 subset, upto proxy and batch-settlement contracts at the official
 * addresses). Balances and Transfer events are read on chain.
 *
 * - Metered `upto`: the buyer signs a Permit2 maximum (gasless: an EIP-2612 permit, no ETH); the
 *   Worker runs the origin, reads the charge it reports in `Settlement-Overrides`, and the
 *   facilitator settles that amount.
 * - batch-settlement sessions: the buyer deposits once into a channel, then pays each request with
 *   a voucher the Worker checks itself (the official server scheme, channel records in Durable
 *   Objects); the seller's book claims and settles when the unclaimed total passes
 *   CHANNEL_CLAIM_THRESHOLD, and refunds the channel once idle or when the buyer asks.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { x402Client } from "@x402/core/client";
import { PaymentRequiredV2Schema } from "@x402/core/schemas";
import { toClientEvmSigner } from "@x402/evm";
import { BatchSettlementEvmScheme } from "@x402/evm/batch-settlement/client";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import { createTestClient, http, type PublicClient, parseEventLogs } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  account,
  BATCH_SETTLEMENT_ADDRESS,
  LOCAL_CHANNELS_ADMIN_TOKEN,
  NETWORK,
  PERMIT2_ADDRESS,
  ROLE,
  USDC_ADDRESS,
} from "../../stack/accounts.ts";
import { localChain, USDC_ABI, usdcBalance } from "../../stack/chain.ts";
import { freeStackPorts, type Stack, startStack } from "../../stack/index.ts";
import { eventually } from "../support/poll.ts";

const merchant = account(ROLE.merchant).address;
/** The upto route's maximum: $0.01 of a 6-decimal token. */
const MAXIMUM = 10_000n;
/** The session route's price and the deposit the official client makes (its minDeposit, $0.01). */
const PRICE = 1000n;
const DEPOSIT = 10_000n;
const REFUND_IDLE_SECONDS = 3;
let stack: Stack;
let dir: string | undefined;
let base: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "paywall-upto-sessions-"));
  const pricingFile = join(dir, "pricing.json");
  await writeFile(pricingFile, await readFile("pricing.json", "utf8"));
  stack = await startStack({
    ports: await freeStackPorts(),
    pricingFile,
    persistDir: join(dir, "state"),
    workerVars: {
      CHANNEL_CLAIM_THRESHOLD: String(8n * PRICE),
      CHANNEL_REFUND_IDLE_SECONDS: String(REFUND_IDLE_SECONDS),
      CHANNEL_CLAIM_INTERVAL_SECONDS: "3600",
      // The slow-chain test waits out one settle call: kept short. The facilitator waits for
      // receipts as long as the official one does by default (minutes), so a slow chain makes
      // our call run out of time with the outcome unknown.
      FACILITATOR_SETTLE_TIMEOUT_MS: "3000",
      SETTLE_BUDGET_MS: "3500",
    },
  });
  base = stack.worker.url;
}, 180_000);

afterAll(async () => {
  if (process.env.SHOW_WORKER_LOG) console.log(stack?.worker.process.output());
  await stack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const balance = (address: `0x${string}`) => usdcBalance(stack.chain.publicClient, address);
/** The local chain's test controls (balances, automine, mining). */
const anvil = () =>
  createTestClient({ chain: localChain(stack.chain.rpcUrl), mode: "anvil", transport: http(stack.chain.rpcUrl) });

/** An official v2 upto buyer with no ETH at all; its raw fetch records every payment header it sends. */
async function uptoBuyer(index: number) {
  const test = anvil();
  await test.setBalance({ address: account(index).address, value: 0n });
  const sent: string[] = [];
  const recording = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const header = request.headers.get("PAYMENT-SIGNATURE");
    if (header) sent.push(header);
    return fetch(request);
  }) as typeof fetch;
  const signer = toClientEvmSigner(account(index), stack.chain.publicClient as PublicClient);
  const pay = wrapFetchWithPayment(recording, new x402Client().register("eip155:*", new UptoEvmScheme(signer)));
  return { pay, sent, address: account(index).address };
}

const settles = () => stack.facilitator.calls.filter((c) => c.path === "/settle");
const completes = () => stack.origin.received.filter((r) => r.path.startsWith("/api/complete")).length;

async function transfersIn(tx: `0x${string}`) {
  const receipt = await stack.chain.publicClient.getTransactionReceipt({ hash: tx });
  expect(receipt.status).toBe("success");
  const logs = receipt.logs.filter((log) => log.address.toLowerCase() === USDC_ADDRESS.toLowerCase());
  return (
    parseEventLogs({ abi: USDC_ABI as never, eventName: "Transfer", logs }) as unknown as {
      args: { from: string; to: string; value: bigint };
    }[]
  ).map((t) => [t.args.from, t.args.to, t.args.value]);
}

describe("an upto route's 402", () => {
  it("offers the maximum with the facilitator's settling address and gas sponsoring, to v2 buyers only", async () => {
    const res = await fetch(`${base}/api/complete?words=3`);
    expect(res.status).toBe(402);
    const v2 = PaymentRequiredV2Schema.parse(JSON.parse(atob(res.headers.get("PAYMENT-REQUIRED") ?? "")));
    expect(v2.accepts).toEqual([
      {
        scheme: "upto",
        network: NETWORK,
        amount: String(MAXIMUM),
        asset: USDC_ADDRESS,
        payTo: merchant,
        maxTimeoutSeconds: 60,
        extra: {
          name: "USDC",
          version: "2",
          assetTransferMethod: "permit2",
          facilitatorAddress: account(ROLE.facilitator).address,
        },
      },
    ]);
    expect(v2.extensions?.eip2612GasSponsoring).toMatchObject({ info: { version: "1" } });
    // x402 v1 has no upto: a v1 buyer is offered nothing it cannot pay.
    expect(((await res.json()) as { accepts: unknown[] }).accepts).toEqual([]);
  });
});

describe("paying an upto route", () => {
  it("charges what the origin reports, from a buyer with no ETH and no allowance, and hides the report", async () => {
    const buyer = await uptoBuyer(ROLE.extraBuyers + 11);
    const [buyerBefore, merchantBefore] = [await balance(buyer.address), await balance(merchant)];
    const res = await buyer.pay(`${base}/api/complete?words=7`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ words: 7 });
    expect(res.headers.get("settlement-overrides")).toBeNull();
    const settlement = decodePaymentResponseHeader(res.headers.get("PAYMENT-RESPONSE") ?? "");
    expect(settlement).toMatchObject({ success: true, network: NETWORK, payer: buyer.address, amount: "700" });
    expect(await transfersIn(settlement.transaction as `0x${string}`)).toEqual([[buyer.address, merchant, 700n]]);
    expect(await balance(buyer.address)).toBe(buyerBefore - 700n);
    expect(await balance(merchant)).toBe(merchantBefore + 700n);
    expect(await stack.chain.publicClient.getBalance({ address: buyer.address })).toBe(0n);
    // The permit gave Permit2 the maximum; the settlement used 700 of it.
    const allowance = await stack.chain.publicClient.readContract({
      address: USDC_ADDRESS,
      abi: USDC_ABI,
      functionName: "allowance",
      args: [buyer.address, PERMIT2_ADDRESS],
    });
    expect(allowance).toBe(MAXIMUM - 700n);
    // The facilitator settled the charge, not the maximum.
    const lastSettle = settles().at(-1)?.body as { paymentRequirements: { amount: string } } | undefined;
    expect(lastSettle?.paymentRequirements.amount).toBe("700");
  });

  it("charges the maximum for a report above it, a missing one or an unreadable one", async () => {
    const buyer = await uptoBuyer(ROLE.extraBuyers + 10);
    for (const report of ['{"amount":"$1"}', "none", "not json"]) {
      const before = await balance(buyer.address);
      const res = await buyer.pay(`${base}/api/complete?words=2&report=${encodeURIComponent(report)}`);
      expect(res.status, report).toBe(200);
      const settlement = decodePaymentResponseHeader(res.headers.get("PAYMENT-RESPONSE") ?? "");
      expect(settlement.amount, report).toBe(String(MAXIMUM));
      expect(await balance(buyer.address), report).toBe(before - MAXIMUM);
    }
  });

  it("charges nothing for a report of 0, and a percentage or dollar report is read as the official server reads it", async () => {
    const buyer = await uptoBuyer(ROLE.extraBuyers + 9);
    const cases: [string, bigint][] = [
      ['{"amount":"0"}', 0n],
      ['{"amount":"25%"}', 2_500n],
      ['{"amount":"$0.0042"}', 4_200n],
    ];
    for (const [report, charged] of cases) {
      const before = await balance(buyer.address);
      const res = await buyer.pay(`${base}/api/complete?words=1&report=${encodeURIComponent(report)}`);
      expect(res.status, report).toBe(200);
      expect(decodePaymentResponseHeader(res.headers.get("PAYMENT-RESPONSE") ?? "").amount, report).toBe(
        String(charged),
      );
      expect(await balance(buyer.address), report).toBe(before - charged);
    }
  });

  it("gives the same answer to the same payment presented again, with no second charge or origin run", async () => {
    const buyer = await uptoBuyer(ROLE.extraBuyers + 8);
    const first = await buyer.pay(`${base}/api/complete?words=4`);
    expect(first.status).toBe(200);
    const body = await first.text();
    const [header] = buyer.sent;
    const [before, runs, settled] = [await balance(buyer.address), completes(), settles().length];
    const again = await fetch(`${base}/api/complete?words=4`, { headers: { "PAYMENT-SIGNATURE": header as string } });
    expect(again.status).toBe(200);
    expect(await again.text()).toBe(body);
    expect(again.headers.get("PAYMENT-RESPONSE")).toBe(first.headers.get("PAYMENT-RESPONSE"));
    expect([await balance(buyer.address), completes(), settles().length]).toEqual([before, runs, settled]);
  });

  it("on a slow chain, keeps waiting for the settlement it could not see the end of: charged once, answer delivered", async () => {
    const buyer = await uptoBuyer(ROLE.extraBuyers + 3);
    const [buyerBefore, merchantBefore, runs, settled] = [
      await balance(buyer.address),
      await balance(merchant),
      completes(),
      settles().length,
    ];
    const chain = anvil();
    await chain.setAutomine(false);
    try {
      const pending = await buyer.pay(`${base}/api/complete?words=3`);
      // Our /settle call ran out of time with the transaction in the mempool: the buyer is told to
      // come back with the same payment (the official buyer does not pay again).
      expect(pending.status).toBe(409);
      expect(((await pending.json()) as { error: string }).error).toBe("settlement_pending");
      expect(buyer.sent).toHaveLength(1);
      expect(await balance(buyer.address)).toBe(buyerBefore);
      await chain.mine({ blocks: 1 });
      expect(await balance(buyer.address)).toBe(buyerBefore - 300n);
    } finally {
      await chain.setAutomine(true);
    }
    // The facilitator's late answer (settled) reaches the payment's ledger object; the same
    // payment then gets the answer kept for it. Settling again instead would be refused
    // (permit2_allowance_required: the permit is spent), which once released the payment and left
    // this buyer charged without the content.
    const delivered = await eventually(
      "the kept answer",
      async () => {
        const again = await fetch(`${base}/api/complete?words=3`, {
          headers: { "PAYMENT-SIGNATURE": buyer.sent[0] as string },
        });
        if (again.status === 200) return again;
        expect(again.status).toBe(409);
        await again.body?.cancel();
        return undefined;
      },
      { timeoutMs: 10_000, intervalMs: 1_000 },
    );
    expect(await delivered.json()).toMatchObject({ words: 3 });
    const settlement = decodePaymentResponseHeader(delivered.headers.get("PAYMENT-RESPONSE") ?? "");
    expect(settlement).toMatchObject({ success: true, amount: "300" });
    expect(await transfersIn(settlement.transaction as `0x${string}`)).toEqual([[buyer.address, merchant, 300n]]);
    expect(completes()).toBe(runs + 1);
    expect(settles().length).toBe(settled + 1);
    expect(await balance(buyer.address)).toBe(buyerBefore - 300n);
    expect(await balance(merchant)).toBe(merchantBefore + 300n);
  });

  it("runs the origin once for 12 copies of one payment sent at once, and settles once", async () => {
    const buyer = await uptoBuyer(ROLE.extraBuyers + 7);
    // Sign one payment by letting the buyer pay once for a 402 we keep, then send copies raw.
    const probe = await buyer.pay(`${base}/api/complete?words=3`);
    expect(probe.status).toBe(200);
    const signer = toClientEvmSigner(account(ROLE.extraBuyers + 7), stack.chain.publicClient as PublicClient);
    const client = new x402Client().register("eip155:*", new UptoEvmScheme(signer));
    const unpaid = await fetch(`${base}/api/complete?words=6`);
    const required = JSON.parse(atob(unpaid.headers.get("PAYMENT-REQUIRED") ?? ""));
    const payload = await client.createPaymentPayload(required);
    const header = btoa(JSON.stringify(payload));
    const [before, runs, settled] = [await balance(buyer.address), completes(), settles().length];
    const answers = await Promise.all(
      Array.from({ length: 12 }, () =>
        fetch(`${base}/api/complete?words=6`, { headers: { "PAYMENT-SIGNATURE": header } }),
      ),
    );
    const statuses = answers.map((a) => a.status);
    // One ran; the others were held off while it did (409), or got its kept answer after (200).
    expect(statuses.filter((s) => s !== 200 && s !== 409)).toEqual([]);
    expect(completes() - runs).toBe(1);
    expect(settles().length - settled).toBe(1);
    expect(await balance(buyer.address)).toBe(before - 600n);
  });

  it("charges nothing when the origin fails, and the same payment then pays for a good answer", async () => {
    const buyer = await uptoBuyer(ROLE.extraBuyers + 6);
    const bad = await buyer.pay(`${base}/api/complete?words=5000`);
    expect(bad.status).toBe(400);
    const [header] = buyer.sent;
    const [before, settled] = [await balance(buyer.address), settles().length];
    expect(bad.headers.get("PAYMENT-RESPONSE")).toBeNull();
    const good = await fetch(`${base}/api/complete?words=5`, { headers: { "PAYMENT-SIGNATURE": header as string } });
    expect(good.status).toBe(200);
    expect(settles().length - settled).toBe(1);
    expect(await balance(buyer.address)).toBe(before - 500n);
  });
});

const buyerIndex = ROLE.extraBuyers + 5;
const buyer = account(buyerIndex).address;
let pay: typeof fetch;
let start: { buyer: bigint; merchant: bigint };
const facilitatorCalls = () => stack.facilitator.calls.length;
const settlesOfType = (type: string) =>
  stack.facilitator.calls.filter(
    (c) =>
      c.path === "/settle" &&
      (c.body as { paymentPayload: { payload: { type?: string } } }).paymentPayload.payload.type === type,
  ).length;

interface Listed {
  sellers: {
    receiver: string;
    channels: {
      payer: string;
      deposited: string;
      charged: string;
      claimed: string;
      settled: string;
      outstanding: string;
    }[];
  }[];
}
const admin = { authorization: `Bearer ${LOCAL_CHANNELS_ADMIN_TOKEN}` };
async function channel() {
  const res = await fetch(`${base}/__x402/channels`, { headers: admin });
  expect(res.status).toBe(200);
  const listed = (await res.json()) as Listed;
  return listed.sellers.flatMap((s) => s.channels).find((c) => c.payer.toLowerCase() === buyer.toLowerCase());
}

async function quote(symbol = "ACME") {
  const res = await pay(`${base}/api/quote/${symbol}`);
  const header = res.headers.get("PAYMENT-RESPONSE");
  return { res, settlement: header ? decodePaymentResponseHeader(header) : undefined, body: await res.text() };
}

describe("a batch-settlement session", () => {
  beforeAll(async () => {
    const signer = toClientEvmSigner(account(buyerIndex), stack.chain.publicClient as PublicClient);
    pay = wrapFetchWithPayment(fetch, new x402Client().register("eip155:*", new BatchSettlementEvmScheme(signer)));
    start = { buyer: await balance(buyer), merchant: await balance(merchant) };
  });

  it("deposits once, then pays six more requests by voucher with no facilitator call", async () => {
    const first = await quote();
    expect(first.res.status).toBe(200);
    expect(first.settlement?.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    expect(await balance(buyer)).toBe(start.buyer - DEPOSIT);
    expect(await balance(BATCH_SETTLEMENT_ADDRESS)).toBeGreaterThanOrEqual(DEPOSIT);
    const before = facilitatorCalls();
    for (let i = 0; i < 6; i++) {
      const { res, settlement } = await quote();
      expect(res.status).toBe(200);
      expect(settlement).toMatchObject({ success: true, transaction: "" });
    }
    expect(facilitatorCalls()).toBe(before);
    // Nothing has reached the seller yet: seven requests are vouchers in the channel.
    expect(await balance(merchant)).toBe(start.merchant);
    expect(await channel()).toMatchObject({
      deposited: String(DEPOSIT),
      charged: "7000",
      claimed: "0",
      outstanding: "7000",
    });
  });

  it("does not count a voucher whose request the origin failed", async () => {
    const { res } = await quote("DOWN");
    expect(res.status).toBe(503);
    expect(res.headers.get("PAYMENT-RESPONSE")).toBeNull();
    expect(await channel()).toMatchObject({ charged: "7000" });
    expect((await quote()).res.status).toBe(200);
    expect(await channel()).toMatchObject({ charged: "8000" });
  });

  it("claims and settles on its own once the unclaimed total reaches the threshold", async () => {
    // The eighth voucher brought the channel to 8000 unclaimed: the seller's book claims now.
    await eventually(
      "the seller's claim and settlement",
      async () => ((await balance(merchant)) === start.merchant + 8000n ? true : undefined),
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    expect(settlesOfType("claim")).toBe(1);
    expect(settlesOfType("settle")).toBe(1);
    expect(await channel()).toMatchObject({ charged: "8000", claimed: "8000", settled: "8000", outstanding: "0" });
  });

  it("answers concurrent requests on one channel with the scheme's own answers, never a 5xx", async () => {
    const before = BigInt((await channel())?.charged ?? "0");
    const results = await Promise.all([quote(), quote(), quote()]);
    const statuses = results.map((r) => r.res.status);
    expect(statuses.every((s) => s === 200 || s === 402)).toBe(true);
    const ok = statuses.filter((s) => s === 200).length;
    expect(ok).toBeGreaterThanOrEqual(1);
    expect(BigInt((await channel())?.charged ?? "0")).toBe(before + BigInt(ok) * PRICE);
  });

  it("refunds the idle channel's unclaimed balance to the buyer, after claiming what it owes", async () => {
    const charged = BigInt((await channel())?.charged ?? "0");
    await new Promise((resolve) => setTimeout(resolve, (REFUND_IDLE_SECONDS + 1) * 1000));
    const res = await fetch(`${base}/__x402/channels/claim`, { method: "POST", headers: admin });
    expect(res.status).toBe(200);
    await eventually("the refund", async () => ((await balance(buyer)) === start.buyer - charged ? true : undefined), {
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    expect(await balance(merchant)).toBe(start.merchant + charged);
  });

  it("refunds a buyer who asks, with the official client's refund, after claiming what its vouchers owe", async () => {
    const index = ROLE.extraBuyers + 4;
    const address = account(index).address;
    const scheme = new BatchSettlementEvmScheme(
      toClientEvmSigner(account(index), stack.chain.publicClient as PublicClient),
    );
    const payHere = wrapFetchWithPayment(fetch, new x402Client().register("eip155:*", scheme));
    const before = await balance(address);
    for (let i = 0; i < 3; i++) expect((await payHere(`${base}/api/quote/REFUND`)).status).toBe(200);
    expect(await balance(address)).toBe(before - DEPOSIT);
    const runs = stack.origin.received.length;
    await scheme.refund(`${base}/api/quote/REFUND`);
    // The refund request ran no origin; the buyer has back all but its three vouchers.
    expect(stack.origin.received.filter((r) => r.path === "/api/quote/REFUND").length).toBe(3);
    expect(stack.origin.received.length).toBe(runs);
    expect(await balance(address)).toBe(before - 3n * PRICE);
  });

  it("keeps the owner's view behind the token", async () => {
    expect((await fetch(`${base}/__x402/channels`)).status).toBe(401);
    expect(
      (await fetch(`${base}/__x402/channels`, { headers: { authorization: "Bearer nope-nope-nope-nope" } })).status,
    ).toBe(401);
  });
});

describe("a deposit on a slow chain", () => {
  it("outliving the settle timeout is answered 402; the buyer's next deposit tops up the same channel, and nothing is lost", async () => {
    const index = ROLE.extraBuyers + 2;
    const who = account(index).address;
    const signer = toClientEvmSigner(account(index), stack.chain.publicClient as PublicClient);
    const kinds: string[] = [];
    const recording = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      const header = request.headers.get("PAYMENT-SIGNATURE");
      if (header) kinds.push((JSON.parse(atob(header)) as { payload: { type: string } }).payload.type);
      return fetch(request);
    }) as typeof fetch;
    const payer = wrapFetchWithPayment(
      recording,
      new x402Client().register("eip155:*", new BatchSettlementEvmScheme(signer)),
    );
    const before = await balance(who);
    const chain = anvil();
    await chain.setAutomine(false);
    try {
      const first = await payer(`${base}/api/quote/SLOW`);
      // Our /settle call ran out of time with the deposit in the mempool: no answer given for it.
      expect(first.status).toBe(402);
      expect(((await first.json()) as { detail: string }).detail).toMatch(/^facilitator_timeout/);
      await chain.mine({ blocks: 1 });
      // The deposit landed: the buyer's money is in its own channel, not the seller's.
      expect(await balance(who)).toBe(before - DEPOSIT);
    } finally {
      await chain.setAutomine(true);
    }
    // The official client deposits again; the same channel (one config) takes both.
    await eventually(
      "a paid answer",
      async () => ((await payer(`${base}/api/quote/SLOW`)).status === 200 ? true : undefined),
      { timeoutMs: 10_000, intervalMs: 500 },
    );
    expect((await payer(`${base}/api/quote/SLOW`)).status).toBe(200);
    expect(kinds.filter((k) => k === "deposit")).toHaveLength(2);
    expect(await balance(who)).toBe(before - 2n * DEPOSIT);
    const listed = (await (await fetch(`${base}/__x402/channels`, { headers: admin })).json()) as Listed;
    const mine = listed.sellers.flatMap((s) => s.channels).filter((c) => c.payer.toLowerCase() === who.toLowerCase());
    // Both deposits are on the channel's record (an idle refund returns what vouchers did not charge).
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ deposited: String(2n * DEPOSIT), charged: String(2n * PRICE) });
  }, 60_000);
});
