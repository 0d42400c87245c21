/**
 * The official batch-settlement server scheme's `ChannelStorage`, on Durable Objects: one
 * `PaymentChannel` per channel (channel-objects.ts), and each seller's `ChannelBook` for listing.
 * `updateChannel(id, update)` runs `update` here on the channel as this isolate last read it and
 * writes back only if the version is unchanged (one round trip, the usual case: a voucher request
 * reads its channel once and then writes twice); on a conflict it takes the channel's lock, runs
 * `update` again on the current record (the scheme's callbacks are pure functions of it) and
 * commits, so each update is atomic across every isolate and location, and writers racing on one
 * channel are served in turn rather than retrying without end.
 */
import type { Channel, ChannelStorage, ChannelUpdateResult } from "@x402/evm/batch-settlement/server";
import type { PaymentChannel, Versioned, Written } from "./channel-objects.ts";

type ChannelRpc = {
  read(): Promise<Versioned>;
  write(input: { expectedVersion: number; record: string | null }): Promise<Written>;
  acquire(): Promise<{ token: string } & Versioned>;
  commit(input: { token: string; record?: string | null }): Promise<{ ok: boolean } & Versioned>;
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
    // Fast path: this isolate's copy, written back if nobody wrote since. A decision to change
    // nothing is not taken on a copy that may be stale: that goes the locked way, on a fresh read.
    const known = this.seen.get(channelId.toLowerCase());
    if (known) {
      const next = update(known.channel);
      if (next !== known.channel && (next || known.channel)) {
        const written = await stub.write({
          expectedVersion: known.version,
          record: next ? JSON.stringify(next) : null,
        });
        if (written.ok) {
          // What was written is `next` itself: kept as it is, as the official stores keep theirs.
          this.seen.set(channelId.toLowerCase(), { version: written.version, channel: next });
          return next ? { channel: next, status: "updated" } : { channel: undefined, status: "deleted" };
        }
        this.remember(channelId, written);
      }
    }
    const held = await stub.acquire();
    const current = this.remember(channelId, held);
    let next: Channel | undefined;
    try {
      next = update(current);
    } catch (error) {
      await stub.commit({ token: held.token });
      throw error;
    }
    const unchanged = next === current || (!next && !current);
    const committed = await stub.commit({
      token: held.token,
      ...(unchanged ? {} : { record: next ? JSON.stringify(next) : null }),
    });
    this.remember(channelId, committed);
    if (!committed.ok) throw new Error(`channel ${channelId}: the lock's lease ran out before the update was written`);
    if (unchanged) return { channel: current, status: "unchanged" };
    return next ? { channel: next, status: "updated" } : { channel: undefined, status: "deleted" };
  }
}
