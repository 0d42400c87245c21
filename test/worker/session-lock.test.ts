/**
 * A batch-settlement channel reserved by a request whose Worker then died: the official server
 * scheme, over our Durable Object storage (real miniflare objects), refuses the channel's next
 * voucher with its own "busy" answer while the reservation lives, and takes it once the
 * reservation has expired — so a crashed request never wedges a channel. A voucher check here
 * makes no facilitator call (the channel's on-chain state is fresh).
 */
import { env } from "cloudflare:workers";
import type { Channel } from "@x402/evm/batch-settlement/server";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { beforeEach, expect, it } from "vitest";
import { FacilitatorPool } from "../../src/facilitators/pool.ts";
import type { ChannelBook, PaymentChannel } from "../../src/sessions/channel-objects.ts";
import { makeSeller } from "../../src/sessions/sessions.ts";
import { DurableChannelStorage } from "../../src/sessions/storage.ts";
import { channelOf, voucherOf } from "../support/batch-settlement.ts";
import { BASE_SEPOLIA_USDC, FACILITATOR_A, facilitatorLog, PAY_TO, resetServers } from "./helpers.ts";

const bindings = env as unknown as {
  CHANNELS: DurableObjectNamespace<PaymentChannel>;
  CHANNEL_BOOKS: DurableObjectNamespace<ChannelBook>;
};
const RECEIVER_AUTHORIZER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

beforeEach(() => resetServers());

/** A channel charged 1000 of a 10000 deposit (on-chain state fresh), and a seller over it: one isolate. */
async function setup(pendingRequest?: Channel["pendingRequest"]) {
  const payer = privateKeyToAccount(generatePrivateKey());
  const requirements = {
    scheme: "batch-settlement",
    network: "eip155:84532" as const,
    amount: "1000",
    asset: BASE_SEPOLIA_USDC,
    payTo: PAY_TO,
    maxTimeoutSeconds: 60,
    extra: {
      name: "USDC",
      version: "2",
      withdrawDelay: 900,
      minDeposit: "10000",
      receiverAuthorizer: RECEIVER_AUTHORIZER,
    },
  };
  const { channelConfig, channelId } = channelOf(payer, {
    receiver: PAY_TO,
    receiverAuthorizer: RECEIVER_AUTHORIZER,
    token: BASE_SEPOLIA_USDC,
    withdrawDelay: 900,
    salt: 1,
  });
  const voucher = (cumulative: bigint) => voucherOf(payer, channelId, cumulative);
  const first = await voucher(1000n);
  const now = Date.now();
  // One request was paid (1000 charged); the next one reserved the channel and its Worker died.
  const record: Channel = {
    channelId,
    channelConfig: channelConfig as unknown as Channel["channelConfig"],
    chargedCumulativeAmount: "1000",
    signedMaxClaimable: "1000",
    signature: first.signature,
    balance: "10000",
    totalClaimed: "0",
    withdrawRequestedAt: 0,
    refundNonce: 0,
    onchainSyncedAt: now,
    lastRequestTimestamp: now,
    ...(pendingRequest ? { pendingRequest } : {}),
  };
  const storage = new DurableChannelStorage(bindings.CHANNELS, async () => []);
  await storage.updateChannel(channelId, () => record);

  const pool = new FacilitatorPool([{ name: "a", url: FACILITATOR_A, networks: undefined, auth: { kind: "none" } }], {
    fetch: (input, init) => fetch(input, init),
    verifyTimeoutMs: 1000,
    settleTimeoutMs: 1000,
    nowMs: Date.now,
    log: () => {},
  });
  const isolate = () =>
    makeSeller({ channels: bindings.CHANNELS, books: bindings.CHANNEL_BOOKS }, pool, {
      receiver: PAY_TO,
      network: "eip155:84532",
      token: BASE_SEPOLIA_USDC,
      withdrawDelay: 900,
      claimIntervalSeconds: 600,
      refundIdleSeconds: 86_400,
    });
  const seller = isolate();
  const payment = async (cumulative = 2000n) => ({
    x402Version: 2,
    accepted: requirements,
    payload: { type: "voucher", channelConfig, voucher: await voucher(cumulative) },
  });
  return { channelId, requirements, storage, isolate, seller, payment };
}

it("refuses a voucher while a dead request's reservation lives, and takes it once that has expired", async () => {
  const { channelId, requirements, storage, seller, payment } = await setup({
    pendingId: "the-dead-request",
    signedMaxClaimable: "2000",
    expiresAt: Date.now() + 60_000,
  });

  const busy = await seller.server.verifyPayment((await payment()) as never, requirements as never);
  expect(busy).toMatchObject({ isValid: false, invalidReason: "invalid_batch_settlement_evm_channel_busy" });

  // The dead request's reservation runs out (its expiresAt passes).
  await storage.updateChannel(channelId, (c) =>
    c
      ? {
          ...c,
          pendingRequest: {
            ...(c.pendingRequest as NonNullable<Channel["pendingRequest"]>),
            expiresAt: Date.now() - 1,
          },
        }
      : c,
  );
  const next = (await payment()) as never;
  expect(await seller.server.verifyPayment(next, requirements as never)).toMatchObject({ isValid: true });
  expect(await seller.server.settlePayment(next, requirements as never)).toMatchObject({
    success: true,
    transaction: "",
  });
  expect((await storage.get(channelId))?.chargedCumulativeAmount).toBe("2000");
  expect((await storage.get(channelId))?.pendingRequest).toBeUndefined();
  expect((await facilitatorLog()).filter((r) => r.url !== "/supported")).toEqual([]);
});

it("a voucher checked on an isolate's stale copy never writes over what another isolate wrote: it is checked again, fresh", async () => {
  const { channelId, requirements, isolate, payment } = await setup();
  const a = isolate();
  const b = new DurableChannelStorage(bindings.CHANNELS, async () => []);
  // Isolate a serves a voucher: it now holds a copy of the channel (charged 2000).
  const first = (await payment(2000n)) as never;
  const served = a.forRequest();
  expect(await served.server.verifyPayment(first, requirements as never)).toMatchObject({ isValid: true });
  expect(served.storage.servedCopy).toBe(false);
  expect(await served.server.settlePayment(first, requirements as never)).toMatchObject({ success: true });
  // Elsewhere (a claim run), the channel moves on: 2000 claimed on chain.
  await b.updateChannel(channelId, (c) => (c ? { ...c, totalClaimed: "2000" } : c));
  // a's next request verifies on its copy (no round trip), which still says 0 claimed; its
  // reservation, which would write that 0 back, is refused, and nothing is written.
  const next = (await payment(3000n)) as never;
  const onCopy = a.forRequest();
  expect(await onCopy.server.verifyPayment(next, requirements as never)).toMatchObject({ isValid: false });
  expect(onCopy.storage.servedCopy).toBe(true);
  expect(await b.get(channelId)).toMatchObject({ totalClaimed: "2000", chargedCumulativeAmount: "2000" });
  expect((await b.get(channelId))?.pendingRequest).toBeUndefined();
  // Verified again from a fresh read (what serveSession does after a refusal on a copy): paid.
  const fresh = a.forRequest(true);
  expect(await fresh.server.verifyPayment(next, requirements as never)).toMatchObject({ isValid: true });
  expect(await fresh.server.settlePayment(next, requirements as never)).toMatchObject({ success: true });
  expect(await b.get(channelId)).toMatchObject({ totalClaimed: "2000", chargedCumulativeAmount: "3000" });
  // And a's copy is current again: the next voucher is served from it, with no refusal.
  const third = (await payment(4000n)) as never;
  const warm = a.forRequest();
  expect(await warm.server.verifyPayment(third, requirements as never)).toMatchObject({ isValid: true });
  expect(warm.storage.servedCopy).toBe(true);
  expect(await warm.server.settlePayment(third, requirements as never)).toMatchObject({ success: true });
  expect(await b.get(channelId)).toMatchObject({ totalClaimed: "2000", chargedCumulativeAmount: "4000" });
  expect((await facilitatorLog()).filter((r) => r.url !== "/supported")).toEqual([]);
});
