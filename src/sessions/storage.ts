/**
 * The official batch-settlement server scheme's `ChannelStorage`, on Durable Objects: one
 * `PaymentChannel` per channel (channel-objects.ts), and each seller's `ChannelBook` for listing.
 * `updateChannel(id, update)` runs `update` here on the channel as this isolate last read it and
 * writes back only if the version is unchanged (one round trip, the usual case); on a conflict it
 * takes the channel's lock, runs `update` again on the current record (the scheme's callbacks are
 * pure functions of it) and commits, so each update is atomic across every isolate and location,
 * and writers racing on one channel are served in turn rather than retrying without end.
 *
 * A paid request reads through its own view (`RequestChannelStorage`), which answers from this
 * isolate's copy without a round trip, and ties the request's first write to the version it read.
 * That tie is what makes the copy safe: the scheme's reservation writes values its verification
 * took from that read (balance, claimed total), so it must not land on a record that has moved
 * since — it is refused (`ChannelMoved`), and the request verifies again from a fresh read.
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

  /** This isolate's copy of a channel, as last read or written here (it may be stale). */
  copyOf(channelId: string): { version: number; channel: Channel | undefined } | undefined {
    return this.seen.get(channelId.toLowerCase());
  }

  /** The channel as its object has it now, with its version. */
  async readNow(channelId: string): Promise<{ version: number; channel: Channel | undefined }> {
    const v = await this.stub(channelId).read();
    return { version: v.version, channel: this.remember(channelId, v) };
  }

  /**
   * `basis`: the version the caller's decision was made on; the update is then applied only on
   * top of exactly that version, or refused with ChannelMoved (nothing written).
   */
  async updateChannel(
    channelId: string,
    update: (current: Channel | undefined) => Channel | undefined,
    basis?: number,
  ): Promise<ChannelUpdateResult> {
    const stub = this.stub(channelId);
    // Fast path: this isolate's copy, written back if nobody wrote since. A decision to change
    // nothing is not taken on a copy that may be stale: that goes the locked way, on a fresh read.
    const known = this.seen.get(channelId.toLowerCase());
    // The copy moved on since the caller read it (a write or a read in this isolate): so did the object.
    if (known && basis !== undefined && known.version !== basis) throw new ChannelMoved(channelId);
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
        if (basis !== undefined) throw new ChannelMoved(channelId);
      }
    }
    const held = await stub.acquire();
    const current = this.remember(channelId, held);
    if (basis !== undefined && held.version !== basis) {
      await stub.commit({ token: held.token });
      throw new ChannelMoved(channelId);
    }
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

/** An update refused because the channel changed after the read its decision was made on. */
export class ChannelMoved extends Error {
  constructor(channelId: string) {
    super(`channel ${channelId} changed since this request read it`);
  }
}

/**
 * One paid request's view of the channels. `get` answers from this isolate's copy when there is
 * one (no round trip; `servedCopy` says so) and else reads the object; the request's first
 * update of a channel it read is applied only on top of the version it read (see the file's
 * comment), later ones (the scheme's commit or cancel, functions of the record) as usual.
 * `fresh`: never answer from the copy (a request verifying again after a refusal).
 */
export class RequestChannelStorage implements ChannelStorage {
  /** Channel → the version this request read and has not written on yet. */
  private readonly basis = new Map<string, number>();
  servedCopy = false;

  constructor(
    private readonly isolate: DurableChannelStorage,
    private readonly fresh = false,
  ) {}

  async get(channelId: string): Promise<Channel | undefined> {
    const key = channelId.toLowerCase();
    const copy = this.fresh ? undefined : this.isolate.copyOf(key);
    const read = copy ?? (await this.isolate.readNow(key));
    if (copy) this.servedCopy = true;
    // Kept only while no decision has been written: a second get before that ties to the latest.
    this.basis.set(key, read.version);
    return read.channel;
  }

  list(): Promise<Channel[]> {
    return this.isolate.list();
  }

  updateChannel(
    channelId: string,
    update: (current: Channel | undefined) => Channel | undefined,
  ): Promise<ChannelUpdateResult> {
    const key = channelId.toLowerCase();
    const basis = this.basis.get(key);
    this.basis.delete(key);
    return this.isolate.updateChannel(channelId, update, basis);
  }
}
