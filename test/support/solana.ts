/** Solana payments as the official v2 client makes them, for tests that need one to hand. */
import type { KeyPairSigner } from "@solana/kit";
import { x402Client } from "@x402/core/client";
import type { PaymentPayload, PaymentRequirements } from "@x402/core/types";
import { ExactSvmScheme } from "@x402/svm/exact/client";
import { SOLANA_DEVNET } from "../../stack/solana.ts";

/** `from`'s payment for `requirement` (on the local Solana at `rpcUrl`), by `@x402/svm`'s `ExactSvmScheme`. */
export function officialSolanaPayment(
  from: KeyPairSigner,
  rpcUrl: string,
  requirement: PaymentRequirements,
): Promise<PaymentPayload> {
  const client = new x402Client().register(SOLANA_DEVNET, new ExactSvmScheme(from, { rpcUrl }));
  return client.createPaymentPayload({
    x402Version: 2,
    resource: { url: "https://paywall.example/api/sol", description: "", mimeType: "" },
    accepts: [requirement],
  });
}
