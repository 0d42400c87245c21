/**
 * A seller's claim run, from its ChannelBook's alarm: the official channel manager claims every
 * channel's outstanding vouchers (one facilitator `claim`, signed by the receiver authorizer the
 * facilitator advertises), settles the claimed total to the seller (`settle`), and refunds
 * channels idle for `refundIdleSeconds` their unclaimed balance. Says what it did, which
 * channels are now settled up to what, and which are gone (refunded in full and deleted).
 */
import { type Bindings, parseConfig } from "../config.ts";
import { FacilitatorPool } from "../facilitators/pool.ts";
import type { BookSettings } from "./channel-objects.ts";
import { PoolFacilitatorClient } from "./facilitator-client.ts";
import { makeSeller } from "./sessions.ts";

export interface ClaimRun {
  claimTransactions: string[];
  vouchers: number;
  settleTransaction: string | undefined;
  refunds: number;
  /** Channel id → its claimed total, all of which the settle paid out to the seller. */
  settled: Record<string, string>;
  gone: string[];
  errors: string[];
}

export async function runClaims(env: Bindings, settings: BookSettings, channelIds: string[]): Promise<ClaimRun> {
  const run: ClaimRun = {
    claimTransactions: [],
    vouchers: 0,
    settleTransaction: undefined,
    refunds: 0,
    settled: {},
    gone: [],
    errors: [],
  };
  const log = (event: string, detail: Record<string, unknown>) => console.log(JSON.stringify({ event, ...detail }));
  const parsed = parseConfig(env);
  if (!parsed.ok || !parsed.config.sessions) {
    log("channel_claims_skipped", { why: parsed.ok ? "no CHANNELS binding" : parsed.problem });
    run.errors.push("sessions are not configured");
    return run;
  }
  const { config } = parsed;
  const pool = new FacilitatorPool(config.facilitators, {
    fetch: (input, init) => fetch(input, init),
    verifyTimeoutMs: config.verifyTimeoutMs,
    settleTimeoutMs: config.settleTimeoutMs,
    nowMs: Date.now,
    log,
  });
  await pool.refreshSupported();
  const seller = makeSeller(
    config.sessions as NonNullable<typeof config.sessions>,
    pool,
    settings,
    async () => channelIds,
  );
  const manager = seller.scheme.createChannelManager(
    new PoolFacilitatorClient(pool),
    settings.network as `${string}:${string}`,
    settings.token,
  );
  try {
    const { claims, settle } = await manager.claimAndSettle();
    run.claimTransactions = claims.map((c) => c.transaction);
    run.vouchers = claims.reduce((n, c) => n + c.vouchers, 0);
    run.settleTransaction = settle?.transaction;
    if (claims.length > 0) log("channel_claims", { receiver: settings.receiver, ...run });
  } catch (error) {
    run.errors.push(`claim: ${(error as Error).message}`);
    log("channel_claims_failed", { receiver: settings.receiver, error: (error as Error).message });
  }
  const storage = seller.scheme.getStorage();
  // Settled (or nothing to settle): every channel's claimed total has been paid to the seller.
  if (run.errors.length === 0) {
    for (const channel of await storage.list()) run.settled[channel.channelId.toLowerCase()] = channel.totalClaimed;
  }
  try {
    run.refunds = (await manager.refundIdleChannels({ idleSecs: settings.refundIdleSeconds })).length;
    if (run.refunds > 0) log("channel_refunds", { receiver: settings.receiver, refunds: run.refunds });
  } catch (error) {
    run.errors.push(`refund: ${(error as Error).message}`);
    log("channel_refunds_failed", { receiver: settings.receiver, error: (error as Error).message });
  }
  for (const id of channelIds) if (!(await storage.get(id))) run.gone.push(id);
  return run;
}
