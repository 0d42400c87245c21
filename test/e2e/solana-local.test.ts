/**
 * The local Solana (litesvm behind our JSON-RPC server, stack/solana.ts) on its own: that it
 * behaves like a validator where FACTS.md found the official packages depend on it, and that the
 * official `@x402/svm` facilitator settles payments made by both official buyers through it.
 */

import {
  type Base64EncodedWireTransaction,
  getBase58Decoder,
  getBase64Encoder,
  getTransactionDecoder,
  type KeyPairSigner,
} from "@solana/kit";
import { TOKEN_PROGRAM_ADDRESS } from "@solana-program/token";
import { x402Facilitator } from "@x402/core/facilitator";
import type { PaymentPayload, PaymentRequirements } from "@x402/core/types";
import { toFacilitatorSvmSigner } from "@x402/svm";
import { registerExactSvmScheme } from "@x402/svm/exact/facilitator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPaymentHeader } from "x402/client";
import {
  SOLANA_DEVNET,
  SOLANA_DEVNET_V1,
  SOLANA_USDC,
  type SolanaRpcServer,
  solanaSigner,
  startSolanaRpc,
} from "../../stack/solana.ts";
import { officialSolanaPayment } from "../support/solana.ts";

let rpc: SolanaRpcServer;
let buyer: KeyPairSigner;
/** Holds 0.001 USDC: its payments of more fail on chain. */
let stranger: KeyPairSigner;
let seller: KeyPairSigner;
let feePayer: KeyPairSigner;
let facilitator: x402Facilitator;

beforeAll(async () => {
  rpc = await startSolanaRpc(0);
  buyer = await solanaSigner("buyer");
  seller = await solanaSigner("seller");
  feePayer = await solanaSigner("facilitator");
  stranger = await solanaSigner("stranger");
  await rpc.chain.fund(stranger.address, { usdc: 1000n });
  await rpc.chain.fund(buyer.address, { sol: 1n, usdc: 10_000_000n });
  await rpc.chain.fund(seller.address, { usdc: 0n });
  await rpc.chain.fund(feePayer.address, { sol: 10n });
  facilitator = new x402Facilitator();
  registerExactSvmScheme(facilitator, {
    signer: toFacilitatorSvmSigner(feePayer, { defaultRpcUrl: rpc.url }),
    networks: SOLANA_DEVNET,
  });
});
afterAll(() => rpc?.stop());

const post = async (method: string, params: unknown[]) => {
  const response = await fetch(rpc.url, {
    method: "POST",
    body: JSON.stringify({ jsonrpc: "2.0", id: 7, method, params }),
  });
  return (await response.json()) as { id: number; result?: any; error?: { code: number; message: string } };
};

const requirements = (amount: string): PaymentRequirements => ({
  scheme: "exact",
  network: SOLANA_DEVNET,
  amount,
  asset: SOLANA_USDC,
  payTo: seller.address,
  maxTimeoutSeconds: 60,
  extra: { feePayer: feePayer.address },
});

async function payV2(amount: string, from = buyer): Promise<{ payload: PaymentPayload; req: PaymentRequirements }> {
  const req = requirements(amount);
  return { payload: await officialSolanaPayment(from, rpc.url, req), req };
}

/** The official client's payment, co-signed by the fee payer as the facilitator would. */
async function coSigned(amount: string, from = buyer): Promise<Base64EncodedWireTransaction> {
  const { payload } = await payV2(amount, from);
  const signer = toFacilitatorSvmSigner(feePayer, { defaultRpcUrl: rpc.url });
  return (await signer.signTransaction(
    String(payload.payload.transaction),
    feePayer.address,
    SOLANA_DEVNET,
  )) as Base64EncodedWireTransaction;
}

const firstSignature = (wire: string) => {
  const tx = getTransactionDecoder().decode(getBase64Encoder().encode(wire));
  return getBase58Decoder().decode(Object.values(tx.signatures)[0] as Uint8Array);
};

describe("the local Solana RPC behaves like a validator", () => {
  it("answers the read methods the official packages call, in Solana's shapes", async () => {
    expect((await post("getHealth", [])).result).toBe("ok");
    expect((await post("getVersion", [])).result["solana-core"]).toMatch(/^\d+\.\d+\.\d+$/);
    const slot = (await post("getSlot", [])).result;
    expect(Number.isInteger(slot)).toBe(true);
    const { result: blockhash } = await post("getLatestBlockhash", []);
    expect(blockhash.value.blockhash).toBe(rpc.chain.svm.latestBlockhash());
    expect(blockhash.value.lastValidBlockHeight).toBeGreaterThan(slot);
    expect((await post("getBalance", [feePayer.address])).result.value).toBe(10_000_000_000);
    const mint = (await post("getAccountInfo", [SOLANA_USDC, { encoding: "jsonParsed" }])).result.value;
    expect(mint.owner).toBe(TOKEN_PROGRAM_ADDRESS);
    expect(mint.data.parsed).toMatchObject({ type: "mint", info: { decimals: 6, isInitialized: true } });
    const raw = (await post("getAccountInfo", [SOLANA_USDC, { encoding: "base64" }])).result.value;
    expect(raw.data[1]).toBe("base64");
    expect(getBase64Encoder().encode(raw.data[0]).length).toBe(82);
    const buyerAta = await rpc.chain.tokenAccount(buyer.address);
    expect((await post("getTokenAccountBalance", [buyerAta])).result.value).toMatchObject({ decimals: 6 });
    expect((await post("getAccountInfo", [seller.address, { encoding: "base64" }])).result.value).toBeNull();
  });

  it("gives JSON-RPC errors for unknown methods, bad addresses and missing token accounts", async () => {
    expect((await post("getFancyThing", [])).error?.code).toBe(-32601);
    expect((await post("getBalance", ["not-an-address"])).error?.code).toBe(-32602);
    expect((await post("getTokenAccountBalance", [seller.address])).error?.code).toBe(-32602);
    expect((await post("sendTransaction", ["%%%", { encoding: "base64" }])).error?.code).toBe(-32602);
  });
});

describe("transactions, as a validator handles them", () => {
  it("simulates a partly signed payment with signature checks off, and refuses it with them on", async () => {
    const { payload } = await payV2("1000");
    const wire = String(payload.payload.transaction);
    const off = (await post("simulateTransaction", [wire, { encoding: "base64", sigVerify: false }])).result.value;
    expect(off.err).toBeNull();
    expect(off.unitsConsumed).toBeGreaterThan(0);
    const on = (await post("simulateTransaction", [wire, { encoding: "base64", sigVerify: true }])).result.value;
    expect(on.err).toBe("SignatureFailure");
    const both = await post("simulateTransaction", [
      wire,
      { encoding: "base64", sigVerify: true, replaceRecentBlockhash: true },
    ]);
    expect(both.error?.code).toBe(-32602);
  });

  it("names a transaction by its first signature, keeps the first outcome of a duplicate send, and simulates a landed one as AlreadyProcessed", async () => {
    const wire = await coSigned("2000");
    const seller0 = await rpc.chain.usdcOf(seller.address);
    const id = (await post("sendTransaction", [wire, { encoding: "base64", skipPreflight: true }])).result;
    expect(id).toBe(firstSignature(wire));
    expect(await rpc.chain.usdcOf(seller.address)).toBe(seller0 + 2000n);
    const again = (await post("sendTransaction", [wire, { encoding: "base64", skipPreflight: true }])).result;
    expect(again).toBe(id);
    expect(await rpc.chain.usdcOf(seller.address)).toBe(seller0 + 2000n);
    const [status] = (await post("getSignatureStatuses", [[id]])).result.value;
    expect(status).toMatchObject({ err: null, confirmationStatus: "finalized", status: { Ok: null } });
    const landed = (await post("simulateTransaction", [wire, { encoding: "base64" }])).result.value;
    expect(landed.err).toBe("AlreadyProcessed");
    expect(
      (await post("getSignatureStatuses", [["1111111111111111111111111111111111111111111111111111111111111111"]]))
        .result.value,
    ).toEqual([null]);
  });

  it("records a failing transaction sent without preflight under its id, and refuses it with -32002 with preflight", async () => {
    const wire = await coSigned("500000", stranger);
    const preflight = await post("sendTransaction", [wire, { encoding: "base64" }]);
    expect(preflight.error?.code).toBe(-32002);
    const id = (await post("sendTransaction", [wire, { encoding: "base64", skipPreflight: true }])).result;
    expect(id).toBe(firstSignature(wire));
    const [status] = (await post("getSignatureStatuses", [[id]])).result.value;
    expect(status.err).toEqual({ InstructionError: [expect.any(Number), { Custom: 1 }] });
  });
});

describe("the official facilitator settles the official buyers' payments through it", () => {
  it("v2 (@x402/svm ExactSvmScheme): copies verify until one lands; then verify and settle refuse it, charged once", async () => {
    const [buyer0, seller0, fee0] = [
      await rpc.chain.usdcOf(buyer.address),
      await rpc.chain.usdcOf(seller.address),
      rpc.chain.solOf(feePayer.address),
    ];
    const { payload, req } = await payV2("1500");
    // FACTS.md: before the first copy lands, every copy passes /verify — only the paywall's
    // ledger can stop concurrent copies reaching the origin.
    expect(await facilitator.verify(payload, req)).toMatchObject({ isValid: true, payer: buyer.address });
    expect(await facilitator.verify(payload, req)).toMatchObject({ isValid: true, payer: buyer.address });
    const settled = await facilitator.settle(payload, req);
    expect(settled).toMatchObject({ success: true, network: SOLANA_DEVNET, payer: buyer.address });
    const [status] = (await post("getSignatureStatuses", [[settled.transaction]])).result.value;
    expect(status).toMatchObject({ err: null, confirmationStatus: "finalized" });
    expect(await rpc.chain.usdcOf(buyer.address)).toBe(buyer0 - 1500n);
    expect(await rpc.chain.usdcOf(seller.address)).toBe(seller0 + 1500n);
    expect(rpc.chain.solOf(feePayer.address)).toBeLessThan(fee0);
    // Landed: the simulation answers AlreadyProcessed, and the facilitator's own cache refuses
    // a second settle.
    expect((await facilitator.verify(payload, req)).isValid).toBe(false);
    const again = await facilitator.settle(payload, req);
    expect(again.success).toBe(false);
    expect(await rpc.chain.usdcOf(buyer.address)).toBe(buyer0 - 1500n);
  });

  it("v1 (x402-fetch's createPaymentHeader on solana-devnet) pays through the same facilitator", async () => {
    const buyer0 = await rpc.chain.usdcOf(buyer.address);
    const v1req = {
      scheme: "exact" as const,
      network: SOLANA_DEVNET_V1,
      maxAmountRequired: "700",
      resource: "https://paywall.example/api/sol",
      description: "",
      mimeType: "",
      payTo: seller.address,
      maxTimeoutSeconds: 60,
      asset: SOLANA_USDC,
      extra: { feePayer: feePayer.address },
    };
    const header = await createPaymentHeader(buyer as never, 1, v1req as never, { svmConfig: { rpcUrl: rpc.url } });
    const payload = JSON.parse(Buffer.from(header, "base64").toString("utf8"));
    expect(payload).toMatchObject({ x402Version: 1, scheme: "exact", network: SOLANA_DEVNET_V1 });
    expect(await facilitator.verify(payload, v1req as never)).toMatchObject({ isValid: true });
    expect(await facilitator.settle(payload, v1req as never)).toMatchObject({ success: true });
    expect(await rpc.chain.usdcOf(buyer.address)).toBe(buyer0 - 700n);
  });
});
