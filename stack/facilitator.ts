/**
 * The official x402 facilitator (`@x402/core` facilitator + `@x402/evm`'s exact, upto and
 * batch-settlement schemes with EIP-2612 gas sponsoring, and `@x402/svm`'s exact for Solana), served over HTTP on loopback and settling real transactions on the
 * local chains. This is not our code: it is
 * what a hosted facilitator runs, wrapped in ~40 lines of node:http.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { x402Facilitator } from "@x402/core/facilitator";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { registerExactEvmScheme } from "@x402/evm/exact/facilitator";
import { BatchSettlementEvmScheme } from "@x402/evm/batch-settlement/facilitator";
import { UptoEvmScheme } from "@x402/evm/upto/facilitator";
import { EIP2612_GAS_SPONSORING } from "@x402/extensions";
import { toFacilitatorSvmSigner } from "@x402/svm";
import { registerExactSvmScheme } from "@x402/svm/exact/facilitator";
import { createWalletClient, http, nonceManager, publicActions } from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { MNEMONIC, NETWORK, ROLE } from "./accounts.ts";
import { localChain } from "./chain.ts";
import { SOLANA_DEVNET, solanaSigner } from "./solana.ts";

export interface FacilitatorServer {
  url: string;
  stop: () => Promise<void>;
  /** Requests received, for tests: path and parsed body. */
  calls: { path: string; body: unknown }[];
}

export interface FacilitatorOptions {
  /**
   * How long /settle waits for the transaction's receipt before answering `settlement_pending`
   * (the official default is 180 s; the end-to-end tests shorten it to see a late settlement).
   */
  confirmationTimeoutMs?: number;
  /** The local Solana's RPC: `@x402/svm`'s exact scheme is registered beside EVM, paying fees from the facilitator's Solana key. */
  solanaRpcUrl?: string;
}

export async function startFacilitator(
  port: number,
  rpcUrl: string,
  options: FacilitatorOptions = {},
): Promise<FacilitatorServer> {
  // viem's nonce manager: concurrent settles would otherwise collide on "nonce too low".
  const signerAccount = mnemonicToAccount(MNEMONIC, { addressIndex: ROLE.facilitator, nonceManager });
  // Receipts are polled as often as a local chain warrants (viem's default is every 4 s).
  const client = createWalletClient({
    account: signerAccount,
    chain: localChain(rpcUrl),
    transport: http(rpcUrl),
    pollingInterval: 250,
  }).extend(publicActions);
  const signer = toFacilitatorEvmSigner(
    { ...client, address: signerAccount.address } as never,
    options.confirmationTimeoutMs === undefined ? {} : { confirmationTimeoutMs: options.confirmationTimeoutMs },
  );
  const facilitator = new x402Facilitator();
  registerExactEvmScheme(facilitator, { signer, networks: NETWORK });
  facilitator.register(NETWORK, new UptoEvmScheme(signer));
  // The facilitator's key also signs claim batches and refunds as the sellers' receiver authorizer
  // (advertised as extra.receiverAuthorizer), so servers need no key of their own for that.
  facilitator.register(NETWORK, new BatchSettlementEvmScheme(signer, signerAccount));
  facilitator.registerExtension(EIP2612_GAS_SPONSORING);
  if (options.solanaRpcUrl) {
    registerExactSvmScheme(facilitator, {
      signer: toFacilitatorSvmSigner(await solanaSigner("facilitator"), { defaultRpcUrl: options.solanaRpcUrl }),
      networks: SOLANA_DEVNET,
    });
  }

  const calls: FacilitatorServer["calls"] = [];
  const server = createServer(async (req, res) => {
    try {
      if (req.method === "GET" && req.url === "/supported") return send(res, 200, facilitator.getSupported());
      if (req.method !== "POST" || (req.url !== "/verify" && req.url !== "/settle")) return send(res, 404, { error: "not found" });
      const body = JSON.parse(await readBody(req));
      calls.push({ path: req.url, body });
      const result =
        req.url === "/verify"
          ? await facilitator.verify(body.paymentPayload, body.paymentRequirements)
          : await facilitator.settle(body.paymentPayload, body.paymentRequirements);
      send(res, 200, result);
    } catch (error) {
      send(res, 500, { error: (error as Error).message });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 1_000_000) throw new Error("request too large");
  }
  return body;
}

function send(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body, (_k, v) => (typeof v === "bigint" ? v.toString() : v)));
}
