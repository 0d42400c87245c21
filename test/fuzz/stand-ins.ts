/**
 * The fuzzer's peers, on loopback: a facilitator stand-in that accepts only genuinely valid
 * payments, and an origin that records every request it gets.
 *
 * For EVM the stand-in is not the official facilitator (no chain here: the fuzzer sends thousands
 * of payments a minute), but it refuses exactly what a real one must: it recovers the EIP-3009
 * signature with viem under the token's EIP-712 domain, checks recipient, amount and validity
 * window against the requirements it is sent, and settles a nonce once. Solana payments go to the
 * official facilitator itself (`@x402/svm`), settling on the local Solana (litesvm, in-process and
 * fast enough). So any payment the paywall lets through to the origin has to be one that would
 * really pay.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { x402Facilitator } from "@x402/core/facilitator";
import { toFacilitatorSvmSigner } from "@x402/svm";
import { registerExactSvmScheme } from "@x402/svm/exact/facilitator";
import { type Hex, recoverTypedDataAddress } from "viem";
import { SOLANA_DEVNET, type SolanaRpcServer, solanaSigner, startSolanaRpc } from "../../stack/solana.ts";
import { TRANSFER_WITH_AUTHORIZATION } from "../support/eip3009.ts";

export interface StandIns {
  facilitatorUrl: string;
  originUrl: string;
  /** Origin requests: path as received and the payment headers the paywall added. */
  originLog: { method: string; url: string; route: string | undefined; payer: string | undefined }[];
  /** Settled payments: EVM `from:nonce`, Solana `svm:<transaction>`. */
  settled: Set<string>;
  stats: { verifies: number; settles: number; verified: number };
  solana: { rpc: SolanaRpcServer; feePayer: string; payTo: string };
  close: () => Promise<void>;
}

const TYPES = { TransferWithAuthorization: TRANSFER_WITH_AUTHORIZATION };

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Why a payment would not pay, or undefined when it would (its nonce unused). */
async function problemWith(request: any, settled: Set<string>): Promise<string | undefined> {
  const payload = request?.paymentPayload?.payload;
  const requirements = request?.paymentRequirements;
  const auth = payload?.authorization;
  if (!auth || typeof payload.signature !== "string" || !requirements) return "malformed";
  const amount = requirements.amount ?? requirements.maxAmountRequired;
  const network: string = String(requirements.network).startsWith("eip155:") ? requirements.network : "eip155:84532";
  if (String(auth.to).toLowerCase() !== String(requirements.payTo).toLowerCase()) return "recipient_mismatch";
  if (String(auth.value) !== String(amount)) return "value_mismatch";
  const now = BigInt(Math.floor(Date.now() / 1000));
  if (BigInt(auth.validBefore) < now + 6n || BigInt(auth.validAfter) > now) return "outside_window";
  let signer: string;
  try {
    signer = await recoverTypedDataAddress({
      domain: {
        name: requirements.extra?.name,
        version: requirements.extra?.version,
        chainId: Number(network.slice("eip155:".length)),
        verifyingContract: requirements.asset as Hex,
      },
      types: TYPES,
      primaryType: "TransferWithAuthorization",
      message: {
        from: auth.from,
        to: auth.to,
        value: BigInt(auth.value),
        validAfter: BigInt(auth.validAfter),
        validBefore: BigInt(auth.validBefore),
        nonce: auth.nonce,
      },
      signature: payload.signature as Hex,
    });
  } catch {
    return "signature";
  }
  if (signer.toLowerCase() !== String(auth.from).toLowerCase()) return "signature";
  if (settled.has(`${auth.from}:${auth.nonce}`.toLowerCase())) return "nonce_already_used";
  return undefined;
}

const EVM_KINDS = [
  { x402Version: 2, scheme: "exact", network: "eip155:84532" },
  { x402Version: 1, scheme: "exact", network: "base-sepolia" },
];

export async function startStandIns(): Promise<StandIns> {
  const settled = new Set<string>();
  const stats = { verifies: 0, settles: 0, verified: 0 };
  const originLog: StandIns["originLog"] = [];
  let tx = 0;
  const rpc = await startSolanaRpc(0);
  const buyer = await solanaSigner("buyer");
  const seller = await solanaSigner("seller");
  const feePayer = await solanaSigner("facilitator");
  await rpc.chain.fund(buyer.address, { sol: 1n, usdc: 1_000_000_000n });
  await rpc.chain.fund(seller.address, { usdc: 0n });
  await rpc.chain.fund(feePayer.address, { sol: 100n });
  const svm = new x402Facilitator();
  registerExactSvmScheme(svm, {
    signer: toFacilitatorSvmSigner(feePayer, { defaultRpcUrl: rpc.url }),
    networks: SOLANA_DEVNET,
  });
  const facilitator = createServer(async (req, res) => {
    const request = JSON.parse((await body(req)) || "{}");
    const answer = (status: number, value: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(value));
    };
    if (req.url === "/supported") {
      return answer(200, { kinds: [...EVM_KINDS, ...svm.getSupported().kinds], extensions: [], signers: {} });
    }
    if (String(request?.paymentRequirements?.network).startsWith("solana")) {
      return answerSolana(req.url, request, answer);
    }
    const problem = await problemWith(request, settled);
    const payer = request?.paymentPayload?.payload?.authorization?.from;
    if (req.url === "/verify") {
      stats.verifies++;
      if (!problem) stats.verified++;
      return answer(
        problem ? 400 : 200,
        problem ? { isValid: false, invalidReason: problem, payer } : { isValid: true, payer },
      );
    }
    if (req.url === "/settle") {
      stats.settles++;
      if (problem)
        return answer(400, { success: false, errorReason: problem, transaction: "", network: "eip155:84532" });
      const auth = request.paymentPayload.payload.authorization;
      settled.add(`${auth.from}:${auth.nonce}`.toLowerCase());
      tx++;
      return answer(200, {
        success: true,
        transaction: `0x${tx.toString(16).padStart(64, "0")}`,
        network: "eip155:84532",
        payer,
      });
    }
    answer(404, { error: "not found" });
  });
  /** The official facilitator's own answer; a throw (junk it cannot read) is a refusal. */
  async function answerSolana(url: string | undefined, request: any, answer: (s: number, v: unknown) => void) {
    const { paymentPayload, paymentRequirements } = request;
    if (url === "/verify") {
      stats.verifies++;
      const result = await svm.verify(paymentPayload, paymentRequirements).catch((e: Error) => ({
        isValid: false,
        invalidReason: `threw: ${e.message}`,
      }));
      if (result.isValid) stats.verified++;
      return answer(result.isValid ? 200 : 400, result);
    }
    if (url === "/settle") {
      stats.settles++;
      const result = await svm.settle(paymentPayload, paymentRequirements).catch((e: Error) => ({
        success: false,
        errorReason: `threw: ${e.message}`,
        transaction: "",
        network: SOLANA_DEVNET,
      }));
      if (result.success) settled.add(`svm:${result.transaction}`);
      return answer(result.success ? 200 : 400, result);
    }
    answer(404, { error: "not found" });
  }
  const origin = createServer({ maxHeaderSize: 64 * 1024 }, (req, res) => {
    req.resume();
    originLog.push({
      method: req.method ?? "",
      url: req.url ?? "",
      route: req.headers["x-payment-route"] as string | undefined,
      payer: req.headers["x-payment-payer"] as string | undefined,
    });
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"origin":"answer"}');
  });
  const listen = async (server: Server) => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  const facilitatorUrl = await listen(facilitator);
  const originUrl = await listen(origin);
  return {
    facilitatorUrl,
    originUrl,
    originLog,
    settled,
    stats,
    solana: { rpc, feePayer: feePayer.address, payTo: seller.address },
    close: async () => {
      for (const server of [facilitator, origin]) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
      await rpc.stop();
    },
  };
}
