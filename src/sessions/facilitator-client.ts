/**
 * The paywall's facilitator pool (failover, CDP auth, timeouts, health) as `@x402/core`'s
 * `FacilitatorClient`, for the official batch-settlement server scheme and its channel manager.
 * batch-settlement payments are verified and settled only by a facilitator that advertises the
 * route's receiver authorizer in `/supported`: that key signs the seller's claims and refunds.
 * A facilitator failure is thrown, as `@x402/core`'s own HTTP client does.
 */
import type { FacilitatorClient } from "@x402/core/server";
import type {
  PaymentPayload,
  PaymentRequirements,
  SettleResponse,
  SupportedResponse,
  VerifyResponse,
} from "@x402/core/types";
import type { FacilitatorPool } from "../facilitators/pool.ts";

export class PoolFacilitatorClient implements FacilitatorClient {
  constructor(private readonly pool: FacilitatorPool) {}

  async verify(paymentPayload: PaymentPayload, paymentRequirements: PaymentRequirements): Promise<VerifyResponse> {
    const authorizer = paymentRequirements.extra?.receiverAuthorizer as string | undefined;
    const verified = await this.pool.verify(
      { x402Version: 2, paymentPayload, paymentRequirements },
      paymentRequirements.network,
      paymentRequirements.scheme,
      authorizer,
    );
    if (!verified.ok) throw new Error(`${verified.failure.reason}: ${verified.failure.message}`);
    return verified.reply as VerifyResponse;
  }

  async settle(paymentPayload: PaymentPayload, paymentRequirements: PaymentRequirements): Promise<SettleResponse> {
    const { network, scheme } = paymentRequirements;
    const via = (await this.pool.signer(scheme, network))?.via;
    const settled = await this.pool.settle(
      { x402Version: 2, paymentPayload, paymentRequirements },
      via,
      network,
      scheme,
    );
    if (!settled.ok) throw new Error(`${settled.failure.reason}: ${settled.failure.message}`);
    return settled.reply as SettleResponse;
  }

  /** Not used: requirements are built from the pool's own `/supported` reads (offers.ts). */
  async getSupported(): Promise<SupportedResponse> {
    return { kinds: [], extensions: [], signers: {} };
  }
}
