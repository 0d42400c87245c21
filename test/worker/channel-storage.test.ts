/**
 * The batch-settlement scheme's ChannelStorage on real Durable Objects (miniflare): updates are
 * atomic read-modify-writes across isolates (here: separate storage instances, each with its own
 * remembered versions), a decision to change nothing is never made on a stale copy, and deletes
 * delete; a paid request's view reads the isolate's copy and never writes its decision on a
 * channel that moved since. Also: the owner's channel view does not exist without its token.
 */
import { env } from "cloudflare:workers";
import type { Channel } from "@x402/evm/batch-settlement/server";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import type { PaymentChannel } from "../../src/sessions/channel-objects.ts";
import { ChannelMoved, DurableChannelStorage, RequestChannelStorage } from "../../src/sessions/storage.ts";
import { testCtx } from "./helpers.ts";

const channels = (env as unknown as { CHANNELS: DurableObjectNamespace<PaymentChannel> }).CHANNELS;
const isolate = () => new DurableChannelStorage(channels, async () => []);
const id = () => `0x${crypto.randomUUID().replaceAll("-", "").padEnd(64, "0")}`;

function channel(channelId: string, charged: number): Channel {
  return {
    channelId,
    channelConfig: {} as Channel["channelConfig"],
    chargedCumulativeAmount: String(charged),
    signedMaxClaimable: String(charged),
    signature: "0x",
    balance: "1000000",
    totalClaimed: "0",
    withdrawRequestedAt: 0,
    refundNonce: 0,
    lastRequestTimestamp: 0,
  };
}

const increment = (channelId: string) => (current: Channel | undefined) =>
  channel(channelId, Number(current?.chargedCumulativeAmount ?? 0) + 1);

describe("DurableChannelStorage", () => {
  it("loses no update among 24 concurrent ones from 6 isolates", async () => {
    const channelId = id();
    const isolates = Array.from({ length: 6 }, isolate);
    const results = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        (isolates[i % 6] as DurableChannelStorage).updateChannel(channelId, increment(channelId)),
      ),
    );
    expect(results.every((r) => r.status === "updated")).toBe(true);
    expect((await isolate().get(channelId))?.chargedCumulativeAmount).toBe("24");
  });

  it("re-reads before deciding to change nothing, when its copy may be stale", async () => {
    const channelId = id();
    const a = isolate();
    const b = isolate();
    await a.updateChannel(channelId, () => channel(channelId, 1));
    // b moves the channel on; a's remembered copy (charged 1) is now stale.
    await b.updateChannel(channelId, () => channel(channelId, 5));
    const seen: string[] = [];
    const result = await a.updateChannel(channelId, (current) => {
      seen.push(current?.chargedCumulativeAmount ?? "none");
      return current?.chargedCumulativeAmount === "1" ? current : undefined;
    });
    // The stale copy said "leave it"; the fresh one (5) said "delete".
    expect(seen).toEqual(["1", "5"]);
    expect(result.status).toBe("deleted");
    expect(await b.get(channelId)).toBeUndefined();
  });

  it("a conflicting write re-runs the update on the current record", async () => {
    const channelId = id();
    const a = isolate();
    await a.updateChannel(channelId, () => channel(channelId, 1));
    await isolate().updateChannel(channelId, () => channel(channelId, 10));
    const result = await a.updateChannel(channelId, increment(channelId));
    expect(result).toMatchObject({ status: "updated" });
    expect(result.channel?.chargedCumulativeAmount).toBe("11");
  });
});

describe("RequestChannelStorage (one paid request's view)", () => {
  it("reads this isolate's copy, and writes its first decision only on the version it read", async () => {
    const channelId = id();
    const a = isolate();
    await a.updateChannel(channelId, () => channel(channelId, 1));
    await isolate().updateChannel(channelId, () => channel(channelId, 5));
    // The copy, not the object: no round trip, and stale here.
    const view = new RequestChannelStorage(a);
    expect((await view.get(channelId))?.chargedCumulativeAmount).toBe("1");
    expect(view.servedCopy).toBe(true);
    await expect(view.updateChannel(channelId, increment(channelId))).rejects.toBeInstanceOf(ChannelMoved);
    expect((await isolate().get(channelId))?.chargedCumulativeAmount).toBe("5");
  });

  it("ties a fresh read too, and lets later updates of the request run as usual", async () => {
    const channelId = id();
    const a = isolate();
    await a.updateChannel(channelId, () => channel(channelId, 1));
    const moved = new RequestChannelStorage(a, true);
    expect((await moved.get(channelId))?.chargedCumulativeAmount).toBe("1");
    expect(moved.servedCopy).toBe(false);
    await isolate().updateChannel(channelId, () => channel(channelId, 7));
    await expect(moved.updateChannel(channelId, increment(channelId))).rejects.toBeInstanceOf(ChannelMoved);
    // Read again, the first write lands; the request's next one (a commit) re-runs on whatever is there.
    const view = new RequestChannelStorage(a, true);
    await view.get(channelId);
    expect((await view.updateChannel(channelId, increment(channelId))).channel?.chargedCumulativeAmount).toBe("8");
    await isolate().updateChannel(channelId, () => channel(channelId, 20));
    expect((await view.updateChannel(channelId, increment(channelId))).channel?.chargedCumulativeAmount).toBe("21");
  });
});

it("answers 404 for the owner's channel view while no CHANNELS_ADMIN_TOKEN is set", async () => {
  const app = createApp();
  const res = await app.fetch(new Request("https://paywall.example/__x402/channels"), env as never, testCtx);
  expect(res.status).toBe(404);
  const claim = await app.fetch(
    new Request("https://paywall.example/__x402/channels/claim", { method: "POST" }),
    env as never,
    testCtx,
  );
  expect(claim.status).toBe(404);
});
