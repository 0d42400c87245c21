/**
 * The official batch-settlement server scheme's `ChannelStorage`, on Durable Objects: one
 * `PaymentChannel` per channel (channel-objects.ts), and each seller's `ChannelBook` for listing.
 * `updateChannel(id, update)` reads the channel with its version, runs `update` here, and writes
 * back only if the version is unchanged; on a conflict it reads again and re-runs `update` (the
 * scheme's callbacks are pure functions of the current record), so each update is atomic across
 * every isolate and location. The version from the last read in this isolate is tried first: a
 * voucher request reads its channel once and then writes twice, in three round trips.
 */
import type { Channel, ChannelStorage, ChannelUpdateResult } from "@x402/evm/batch-settlement/server";
import type { PaymentChannel, Versioned } from "./channel-objects.ts";

/** Conflicts before an update gives up (the scheme then answers "channel busy"). */
const MAX_ATTEMPTS = 5;

type ChannelRpc = {
  read(): Promise<Versioned>;
  write(input: { expectedVersion: number; record: string | null }): Promise<{ ok: boolean } & Versioned>;
};

export class DurableChannelStorage implements ChannelStorage {
  /** The last version this isolate saw of each channel (a hint: the write checks it). */
  private readonly seen = new Map<string, { version: number; channel: Channel | undefined }>();

  constructor(
    private readonly channels: DurableObjectNamespace<PaymentChannel>,
    /** The ids of the seller's channels (its ChannelBook's members); list() reads each. */
    private readonly channelIds: () => Promise<string[]>,
  ) {}

  private stub(channelId: string): ChannelRpc {
    return this.channels.getByName(channelId.toLowerCase()) as unknown as ChannelRpc;
  }

  private remember(channelId: string, v: Versioned): Channel | undefined {
    const channel = v.record === null ? undefined : (JSON.parse(v.record) as Channel);
    this.seen.set(channelId.toLowerCase(), { version: v.version, channel });
    if (this.seen.size > 10_000) this.seen.delete(this.seen.keys().next().value as string);
    return channel;
  }

  async get(channelId: string): Promise<Channel | undefined> {
    return this.remember(channelId, await this.stub(channelId).read());
  }

  async list(): Promise<Channel[]> {
    const ids = await this.channelIds();
    const channels = await Promise.all(ids.map((id) => this.get(id)));
    return channels.filter((c): c is Channel => c !== undefined);
  }

  async updateChannel(
    channelId: string,
    update: (current: Channel | undefined) => Channel | undefined,
  ): Promise<ChannelUpdateResult> {
    const stub = this.stub(channelId);
    let known = this.seen.get(channelId.toLowerCase());
    // A remembered record is only a guess: a decision to change nothing must rest on a fresh read.
    let fresh = false;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (!known) {
        const v = await stub.read();
        known = { version: v.version, channel: this.remember(channelId, v) };
        fresh = true;
      }
      const current = known.channel;
      const next = update(current);
      if (next === current || (!next && !current)) {
        if (fresh) return { channel: current, status: "unchanged" };
        known = undefined;
        continue;
      }
      const written = await stub.write({ expectedVersion: known.version, record: next ? JSON.stringify(next) : null });
      const channel = this.remember(channelId, written);
      if (written.ok) {
        return next ? { channel: next, status: "updated" } : { channel: undefined, status: "deleted" };
      }
      known = { version: written.version, channel };
      fresh = true;
    }
    throw new Error(`channel ${channelId}: too many concurrent updates`);
  }
}
