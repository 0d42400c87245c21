/**
 * A repeat buyer's vouchers served by two isolates of the Worker (two apps over the same real
 * miniflare Durable Objects, each with its own channel copies), while a claim run moves the
 * channel elsewhere: every voucher is answered 200 and counted exactly once, a copy that went
 * stale never writes its old totals back (the claimed total survives), and a voucher refused on
 * a stale copy is checked again from a fresh read instead of being refused. No facilitator call:
 * the channel's on-chain state is fresh, so every check is local.
 */
import { env } from "cloudflare:workers";
import type { Channel } from "@x402/evm/batch-settlement/server";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { beforeEach, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import type { PaymentChannel } from "../../src/sessions/channel-objects.ts";
import { DurableChannelStorage } from "../../src/sessions/storage.ts";
import { decodeHeaderJson, encodeHeaderJson } from "../../src/x402/codec.ts";
import { channelOf, voucherOf } from "../support/batch-settlement.ts";
import {
  BASE_SEPOLIA_USDC,
  facilitatorLog,
  originLog,
  PAY_TO,
  resetServers,
  scriptFacilitator,
  setPricing,
  testCtx,
} from "./helpers.ts";

const NETWORK = "eip155:84532";
const RECEIVER_AUTHORIZER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const channels = (env as unknown as { CHANNELS: DurableObjectNamespace<PaymentChannel> }).CHANNELS;

beforeEach(async () => {
  await resetServers();
  await setPricing({
    version: 1,
    defaults: { network: NETWORK, payTo: PAY_TO },
    routes: [{ id: "quote", match: "GET /quote", scheme: "batch-settlement", price: "$0.001" }],
  });
  await scriptFacilitator({
    supported: [
      { x402Version: 2, scheme: "exact", network: NETWORK },
      {
        x402Version: 2,
        scheme: "batch-settlement",
        network: NETWORK,
        extra: { receiverAuthorizer: RECEIVER_AUTHORIZER },
      },
    ],
  });
});

it("two isolates and a claim run on one channel: each voucher paid once, no stale write, no stale refusal", async () => {
  const a = createApp();
  const b = createApp();
  const get = (app: ReturnType<typeof createApp>, headers: Record<string, string> = {}) =>
    app.fetch(new Request("https://paywall.example/quote", { headers }), env as never, testCtx);

  // The route's requirement as the 402 offers it, and a channel for it already funded and charged once.
  const offer = await get(a);
  expect(offer.status).toBe(402);
  const decoded = decodeHeaderJson(offer.headers.get("PAYMENT-REQUIRED") ?? "");
  const requirement = (decoded.ok ? (decoded.value as { accepts: Record<string, unknown>[] }) : { accepts: [] })
    .accepts[0] as { amount: string; extra: { withdrawDelay: number } };
  const payer = privateKeyToAccount(generatePrivateKey());
  const { channelConfig, channelId } = channelOf(payer, {
    receiver: PAY_TO,
    receiverAuthorizer: RECEIVER_AUTHORIZER,
    token: BASE_SEPOLIA_USDC,
    withdrawDelay: requirement.extra.withdrawDelay,
    salt: 7,
  });
  const price = BigInt(requirement.amount);
  const now = Date.now();
  const elsewhere = new DurableChannelStorage(channels, async () => []);
  await elsewhere.updateChannel(channelId, () => ({
    channelId,
    channelConfig: channelConfig as unknown as Channel["channelConfig"],
    chargedCumulativeAmount: String(price),
    signedMaxClaimable: String(price),
    signature: "0x",
    balance: String(100n * price),
    totalClaimed: "0",
    withdrawRequestedAt: 0,
    refundNonce: 0,
    onchainSyncedAt: now,
    lastRequestTimestamp: now,
  }));
  const voucher = async (n: bigint) => ({
    "PAYMENT-SIGNATURE": encodeHeaderJson({
      x402Version: 2,
      accepted: requirement,
      payload: { type: "voucher", channelConfig, voucher: await voucherOf(payer, channelId, n * price) },
    }),
  });
  const paid = async (app: ReturnType<typeof createApp>, n: bigint) => {
    const res = await get(app, await voucher(n));
    const text = await res.text();
    expect(res.status, `voucher ${n}: ${text}`).toBe(200);
  };
  const record = async () => (await elsewhere.get(channelId)) as Channel;

  await paid(a, 2n); // a now holds a copy of the channel
  // A claim run (another isolate) claims 2 prices on chain; a's copy still says 0 claimed.
  await elsewhere.updateChannel(channelId, (c) => (c ? { ...c, totalClaimed: String(2n * price) } : c));
  await paid(a, 3n); // checked on the stale copy; its reservation is refused, then paid on a fresh read
  expect(await record()).toMatchObject({
    chargedCumulativeAmount: String(3n * price),
    totalClaimed: String(2n * price),
  });
  await paid(b, 4n); // the other isolate moves the channel on; a's copy is one voucher behind
  await paid(a, 5n); // refused on a's copy (its amount looks one voucher ahead), paid on a fresh read
  await paid(a, 6n); // and a's copy is current again
  expect(await record()).toMatchObject({
    chargedCumulativeAmount: String(6n * price),
    totalClaimed: String(2n * price),
  });
  expect((await record()).pendingRequest).toBeUndefined();
  // Each paid voucher ran the origin once; none asked the facilitator to verify or settle.
  expect((await originLog()).length).toBe(5);
  expect((await facilitatorLog()).filter((r) => r.url !== "/supported")).toEqual([]);
});
