/**
 * The local chain's `upto` contracts (our Permit2 subset and upto proxy, at the official
 * addresses) on their own: the official `@x402/evm` upto buyer signs, the official facilitator
 * verifies and settles an amount below the maximum, with and without EIP-2612 gas sponsoring.
 * Balances are read on chain. The Worker's own `upto` routes are tested in payments-upto.test.ts.
 */
import type { PaymentPayload, PaymentRequirements } from "@x402/core/types";
import { toClientEvmSigner } from "@x402/evm";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import { declareEip2612GasSponsoringExtension } from "@x402/extensions";
import { createTestClient, http, type PublicClient } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, NETWORK, PERMIT2_ADDRESS, ROLE, USDC_ADDRESS } from "../../stack/accounts.ts";
import { type Chain, localChain, setUpChain, startChain, USDC_ABI, usdcBalance } from "../../stack/chain.ts";
import { type FacilitatorServer, startFacilitator } from "../../stack/facilitator.ts";
import { freePort } from "../../stack/ports.ts";

let chain: Chain;
let facilitator: FacilitatorServer;
let facilitatorAddress: string;
const merchant = account(ROLE.merchant).address;

beforeAll(async () => {
  chain = await startChain(await freePort());
  await setUpChain(chain.rpcUrl);
  facilitator = await startFacilitator(await freePort(), chain.rpcUrl);
  const upto = (await supportedOf()).kinds.find((k) => k.scheme === "upto");
  facilitatorAddress = upto?.extra?.facilitatorAddress ?? "";
}, 60_000);

afterAll(async () => {
  await facilitator?.stop();
  await chain?.process.stop();
});

const requirements = (max: bigint): PaymentRequirements => ({
  scheme: "upto",
  network: NETWORK,
  asset: USDC_ADDRESS,
  amount: String(max),
  payTo: merchant,
  maxTimeoutSeconds: 300,
  extra: { name: "USDC", version: "2", assetTransferMethod: "permit2", facilitatorAddress },
});

async function sign(index: number, reqs: PaymentRequirements, gasless: boolean): Promise<PaymentPayload> {
  const signer = toClientEvmSigner(account(index), chain.publicClient as PublicClient);
  const context = gasless ? { extensions: declareEip2612GasSponsoringExtension() } : undefined;
  const result = await new UptoEvmScheme(signer).createPaymentPayload(2, reqs, context as never);
  return {
    ...result,
    accepted: reqs,
    resource: { url: "http://x/y", description: "", mimeType: "" },
  } as PaymentPayload;
}

interface Reply {
  isValid?: boolean;
  invalidReason?: string;
  success?: boolean;
  [key: string]: unknown;
}
interface Supported {
  kinds: { scheme: string; extra?: { facilitatorAddress?: string } }[];
  extensions: string[];
}
const supportedOf = async (): Promise<Supported> =>
  (await fetch(`${facilitator.url}/supported`)).json() as Promise<Supported>;

const call = async (path: "/verify" | "/settle", payload: PaymentPayload, reqs: PaymentRequirements): Promise<Reply> =>
  (
    await fetch(`${facilitator.url}${path}`, {
      method: "POST",
      body: JSON.stringify({ x402Version: 2, paymentPayload: payload, paymentRequirements: reqs }),
    })
  ).json();

describe("upto on the local chain, with the official buyer and facilitator", () => {
  it("advertises the facilitator address and the gas sponsoring extension", async () => {
    const supported = await supportedOf();
    expect(facilitatorAddress).toBe(account(ROLE.facilitator).address);
    expect(supported.extensions).toContain("eip2612GasSponsoring");
  });

  it("settles less than the maximum from a buyer with no ETH (gasless), and the nonce only once", async () => {
    const index = ROLE.extraBuyers + 11;
    const buyer = account(index).address;
    const test = createTestClient({ chain: localChain(chain.rpcUrl), mode: "anvil", transport: http(chain.rpcUrl) });
    await test.setBalance({ address: buyer, value: 0n });
    const reqs = requirements(50_000n);
    const payload = await sign(index, reqs, true);
    expect(payload.extensions?.eip2612GasSponsoring).toBeDefined();
    const verified = await call("/verify", payload, reqs);
    expect(verified).toMatchObject({ isValid: true, payer: buyer });

    const before = {
      buyer: await usdcBalance(chain.publicClient, buyer),
      merchant: await usdcBalance(chain.publicClient, merchant),
    };
    const settled = await call("/settle", payload, { ...reqs, amount: "12345" });
    expect(settled).toMatchObject({ success: true, payer: buyer, amount: "12345" });
    expect(await usdcBalance(chain.publicClient, buyer)).toBe(before.buyer - 12_345n);
    expect(await usdcBalance(chain.publicClient, merchant)).toBe(before.merchant + 12_345n);
    expect(await chain.publicClient.getBalance({ address: buyer })).toBe(0n);
    const allowance = await chain.publicClient.readContract({
      address: USDC_ADDRESS,
      abi: USDC_ABI,
      functionName: "allowance",
      args: [buyer, PERMIT2_ADDRESS],
    });
    expect(allowance).toBe(50_000n - 12_345n);

    // The Permit2 nonce is spent: the same payment settles nothing more.
    const again = await call("/settle", payload, { ...reqs, amount: "1" });
    expect(again.success).toBe(false);
    expect(await usdcBalance(chain.publicClient, buyer)).toBe(before.buyer - 12_345n);
  });

  it("without an allowance or sponsoring, verify says the Permit2 allowance is required", async () => {
    const index = ROLE.extraBuyers + 10;
    const reqs = requirements(1000n);
    const verified = await call("/verify", await sign(index, reqs, false), reqs);
    expect(verified).toMatchObject({ isValid: false, invalidReason: "permit2_allowance_required" });
  });

  it("refuses a settlement above the maximum, a changed recipient and a forged signature", async () => {
    const index = ROLE.extraBuyers + 9;
    const reqs = requirements(2000n);
    const payload = await sign(index, reqs, true);
    expect((await call("/settle", payload, { ...reqs, amount: "2001" })).success).toBe(false);
    const otherPayTo = { ...reqs, payTo: account(ROLE.deployer).address };
    expect((await call("/verify", payload, otherPayTo)).isValid).toBe(false);
    const forged = structuredClone(payload);
    (
      forged.payload as { permit2Authorization: { permitted: { amount: string } } }
    ).permit2Authorization.permitted.amount = "3000";
    expect((await call("/verify", forged, { ...reqs, amount: "3000" })).invalidReason).toBe(
      "invalid_permit2_signature",
    );
    // Nothing above moved money; the untouched payment still settles its smaller amount.
    const before = await usdcBalance(chain.publicClient, account(index).address);
    expect(await call("/settle", payload, { ...reqs, amount: "0" })).toMatchObject({ success: true, transaction: "" });
    expect((await call("/settle", payload, { ...reqs, amount: "700" })).success).toBe(true);
    expect(await usdcBalance(chain.publicClient, account(index).address)).toBe(before - 700n);
  });
});
