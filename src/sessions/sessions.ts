/**
 * x402 `batch-settlement` sessions: pay once (a deposit into an escrow channel), then each request
 * with a cumulative voucher checked right here — no facilitator call, no chain call. The official
 * server scheme (`@x402/evm/batch-settlement/server`) does the checks, through `@x402/core`'s
 * resource server, with its channel records in Durable Objects (storage.ts). One channel store
 * per seller (receiver, network, token) and isolate, and one scheme and resource server per paid
 * request over it: the scheme keeps the request's state in memory between verify and settle, so
 * both run here, in this isolate, on that request's scheme.
 */
import { x402ResourceServer } from "@x402/core/server";
import { BatchSettlementEvmScheme, type ChannelStorage } from "@x402/evm/batch-settlement/server";
import type { SessionConfig } from "../config.ts";
import type { FacilitatorPool } from "../facilitators/pool.ts";
import type { BatchRequirement } from "../pricing/document.ts";
import type { BookSettings, ChannelBook } from "./channel-objects.ts";
import { PoolFacilitatorClient } from "./facilitator-client.ts";
import { DurableChannelStorage, RequestChannelStorage } from "./storage.ts";

export interface Seller {
  /** The seller's long-lived scheme: claims, refunds and listing (fresh reads only). */
  server: x402ResourceServer;
  scheme: BatchSettlementEvmScheme;
  /**
   * A scheme and resource server for one paid request, reading through the request's own view
   * of the channels (storage.ts: this isolate's copies, writes tied to what was read). Cheap: two
   * small objects; verify, settle and the refusal of that request all use it.
   */
  forRequest: (fresh?: boolean) => { server: x402ResourceServer; storage: RequestChannelStorage };
  /** A fresh stub for each use: a stub is an I/O object of the request that made it. */
  book: () => DurableObjectStub<ChannelBook>;
  settings: BookSettings;
}

export const bookName = (r: Pick<BatchRequirement, "payTo" | "network" | "asset">) =>
  `${r.payTo}|${r.network}|${r.asset}`.toLowerCase();

export class Sessions {
  private readonly sellers = new Map<string, Seller>();

  constructor(
    readonly config: SessionConfig,
    private readonly pool: FacilitatorPool,
  ) {}

  /** The seller a requirement pays, made on first use in this isolate. */
  sellerFor(requirement: BatchRequirement): Seller {
    const name = bookName(requirement);
    let seller = this.sellers.get(name);
    if (!seller) {
      seller = makeSeller(this.config, this.pool, {
        receiver: requirement.payTo,
        network: requirement.network,
        token: requirement.asset,
        withdrawDelay: requirement.extra.withdrawDelay,
        claimIntervalSeconds: this.config.claimIntervalSeconds,
        refundIdleSeconds: this.config.refundIdleSeconds,
      });
      this.sellers.set(name, seller);
    }
    return seller;
  }
}

/** A seller's scheme over its channels; `channelIds` lists them (the book's members). */
export function makeSeller(
  config: Pick<SessionConfig, "channels" | "books">,
  pool: FacilitatorPool,
  settings: BookSettings,
  channelIds?: () => Promise<string[]>,
): Seller {
  const name = bookName({ payTo: settings.receiver, network: settings.network, asset: settings.token });
  const book = () => config.books.getByName(name);
  const storage = new DurableChannelStorage(
    config.channels,
    channelIds ?? (async () => (await book().list()) as string[]),
  );
  const facilitator = new PoolFacilitatorClient(pool);
  const serverOver = (over: ChannelStorage) => {
    const scheme = new BatchSettlementEvmScheme(settings.receiver, {
      storage: over,
      withdrawDelay: settings.withdrawDelay,
    });
    const server = new x402ResourceServer(facilitator);
    server.register(settings.network as `${string}:${string}`, scheme);
    return { server, scheme };
  };
  const forRequest = (fresh = false) => {
    const view = new RequestChannelStorage(storage, fresh);
    return { server: serverOver(view).server, storage: view };
  };
  return { ...serverOver(storage), forRequest, book, settings };
}
