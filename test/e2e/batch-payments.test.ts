/**
 * batch-settlement sessions end to end, nothing mocked: the official `@x402/fetch` buyer with
 * `@x402/evm`'s batch-settlement client deposits once into a channel on the local chain, then pays
 * each request with a voucher the Worker checks itself (the official server scheme, channel
 * records in Durable Objects under wrangler dev); the seller's book claims and settles through the
 * official facilitator when the unclaimed total passes CHANNEL_CLAIM_THRESHOLD, and refunds the
 * channel once idle. Every balance is read on chain.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { x402Client } from "@x402/core/client";
import { toClientEvmSigner } from "@x402/evm";
import { BatchSettlementEvmScheme } from "@x402/evm/batch-settlement/client";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import type { PublicClient } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, BATCH_SETTLEMENT_ADDRESS, LOCAL_CHANNELS_ADMIN_TOKEN, ROLE } from "../../stack/accounts.ts";
import { usdcBalance } from "../../stack/chain.ts";
import { freeStackPorts, type Stack, startStack } from "../../stack/index.ts";
import { eventually } from "../support/poll.ts";

const PRICE = 1000n;
const DEPOSIT = 10_000n;
const REFUND_IDLE_SECONDS = 4;
const merchant = account(ROLE.merchant).address;
const buyerIndex = ROLE.extraBuyers + 5;
const buyer = account(buyerIndex).address;
let stack: Stack;
let dir: string | undefined;
let base: string;
let pay: typeof fetch;
let start: { buyer: bigint; merchant: bigint };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "paywall-batch-"));
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
    },
  });
  base = stack.worker.url;
  const signer = toClientEvmSigner(account(buyerIndex), stack.chain.publicClient as PublicClient);
  pay = wrapFetchWithPayment(fetch, new x402Client().register("eip155:*", new BatchSettlementEvmScheme(signer)));
  start = { buyer: await balance(buyer), merchant: await balance(merchant) };
}, 180_000);

afterAll(async () => {
  if (process.env.SHOW_WORKER_LOG) console.log(stack?.worker.process.output());
  await stack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const balance = (address: `0x${string}`) => usdcBalance(stack.chain.publicClient, address);
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

  it("keeps the owner's view behind the token", async () => {
    expect((await fetch(`${base}/__x402/channels`)).status).toBe(401);
    expect(
      (await fetch(`${base}/__x402/channels`, { headers: { authorization: "Bearer nope-nope-nope-nope" } })).status,
    ).toBe(401);
  });
});
