/**
 * The owner's view of batch-settlement channels: `GET /__x402/channels` lists, per seller of the
 * current pricing table, each channel's deposit, what its vouchers have charged, what has been
 * claimed on chain and settled to the seller, and what is outstanding; `POST
 * /__x402/channels/claim` runs every seller's claim-and-settle now. Both need
 * `Authorization: Bearer <CHANNELS_ADMIN_TOKEN>` (a secret); without that secret configured they
 * answer 404, as if they did not exist. Never public.
 */
import type { Channel } from "@x402/evm/batch-settlement/server";
import { fail } from "../errors.ts";
import type { Runtime } from "../paywall.ts";
import { isBatchRequirement } from "../pricing/document.ts";
import { errorResponse } from "../responses.ts";
import type { ClaimRun } from "./claims.ts";
import { bookName } from "./sessions.ts";
import { DurableChannelStorage } from "./storage.ts";

export async function channelsEndpoint(rt: Runtime, request: Request, action: "list" | "claim"): Promise<Response> {
  const sessions = await rt.sessions?.();
  const token = sessions?.config.adminToken;
  if (!sessions || !token) return errorResponse(fail("not_found", "No such built-in endpoint."));
  if (!(await sameSecret(request.headers.get("authorization") ?? "", `Bearer ${token}`))) {
    return errorResponse(fail("unauthorized", "This endpoint needs the owner's token."));
  }
  const pricing = await rt.pricing.get(rt.nowMs());
  if (!pricing.ok) return errorResponse(fail("pricing_unavailable", "No valid pricing table is loaded.", pricing.why));
  const sellers = new Map<string, { receiver: string; network: string; token: string }>();
  for (const route of pricing.table.routes) {
    for (const r of route.accepts) {
      if (isBatchRequirement(r)) sellers.set(bookName(r), { receiver: r.payTo, network: r.network, token: r.asset });
    }
  }
  const out = [];
  for (const [name, seller] of sellers) {
    const book = sessions.config.books.getByName(name);
    if (action === "claim") {
      out.push({ ...seller, run: ((await book.claimNow()) as ClaimRun | undefined) ?? null });
      continue;
    }
    const members = (await book.members()) as { channelId: string; settled: string }[];
    const storage = new DurableChannelStorage(sessions.config.channels, async () => members.map((m) => m.channelId));
    const channels = [];
    for (const m of members) {
      const c = (await storage.get(m.channelId)) as Channel | undefined;
      if (!c) continue;
      channels.push({
        channelId: c.channelId,
        payer: c.channelConfig.payer,
        deposited: c.balance,
        charged: c.chargedCumulativeAmount,
        claimed: c.totalClaimed,
        settled: m.settled,
        outstanding: String(BigInt(c.chargedCumulativeAmount) - BigInt(c.totalClaimed)),
        lastRequestAt: new Date(c.lastRequestTimestamp).toISOString(),
      });
    }
    out.push({ ...seller, channels });
  }
  return new Response(JSON.stringify({ sellers: out }, null, 2), {
    headers: { "content-type": "application/json", "cache-control": "no-store" },
  });
}

/** Compares two strings in time independent of where they differ. */
async function sameSecret(given: string, expected: string): Promise<boolean> {
  const encoder = new TextEncoder();
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(given)),
    crypto.subtle.digest("SHA-256", encoder.encode(expected)),
  ]);
  return crypto.subtle.timingSafeEqual(a, b);
}
