/**
 * The whole local payment stack, on loopback only: chain → token → facilitator → origin → Worker.
 * Used by `npm run dev` and by the end-to-end tests (on free ports). `stop()` ends everything.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Chain, setUpChain, startChain } from "./chain.ts";
import { type FacilitatorServer, startFacilitator } from "./facilitator.ts";
import { type OriginServer, startOrigin } from "./origin.ts";
import { type SolanaRpcServer, solanaSigner, startSolanaRpc } from "./solana.ts";
import { assertPortsFree, freePort } from "./ports.ts";
import { ROOT, startWorker, type WorkerProcess } from "./worker.ts";

export interface StackPorts {
  worker: number;
  origin: number;
  facilitator: number;
  chain: number;
  /** The local Solana's JSON-RPC (8899 is a validator's usual port). */
  solana: number;
}

export const DEFAULT_PORTS: StackPorts = { worker: 8787, origin: 8788, facilitator: 8789, chain: 8545, solana: 8899 };

/** A free port for every process of the stack (for tests, which run beside a dev stack). */
export async function freeStackPorts(): Promise<StackPorts> {
  return {
    worker: await freePort(),
    origin: await freePort(),
    facilitator: await freePort(),
    chain: await freePort(),
    solana: await freePort(),
  };
}

/** What the stack funds on the local Solana: the buyer's USDC and SOL, the fee payer's SOL. */
export const SOLANA_FUNDING = { buyerUsdc: 100_000_000n, buyerSol: 1n, feePayerSol: 10n } as const;

export interface StackOptions {
  ports: StackPorts;
  pricingFile?: string;
  /** Local KV directory; a fresh temporary one when omitted. */
  persistDir?: string;
  pricingCacheSeconds?: number;
  /** More Worker vars (e.g. SETTLE_BUDGET_MS), passed to wrangler dev as --var. */
  workerVars?: Record<string, string>;
  /** The facilitator's receipt wait before it answers `settlement_pending`. */
  confirmationTimeoutMs?: number;
  echoWorker?: boolean;
  onStep?: (step: string) => void;
}

export interface Stack {
  chain: Chain;
  solana: SolanaRpcServer;
  facilitator: FacilitatorServer;
  origin: OriginServer;
  worker: WorkerProcess;
  stop: () => Promise<void>;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const step = options.onStep ?? (() => {});
  await assertPortsFree({
    "Worker, --port": options.ports.worker,
    "demo origin, --origin-port": options.ports.origin,
    "facilitator, --facilitator-port": options.ports.facilitator,
    "chain, --chain-port": options.ports.chain,
    "Solana RPC, --solana-port": options.ports.solana,
  });
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
    stops.length = 0;
  };
  try {
    step("starting anvil");
    const chain = await startChain(options.ports.chain);
    stops.push(chain.process.stop);
    step("installing the test stablecoin and Multicall3, funding buyers");
    await setUpChain(chain.rpcUrl);
    step("starting the Solana VM (litesvm) and its RPC, funding the Solana buyer");
    const solana = await startSolanaRpc(options.ports.solana);
    stops.push(solana.stop);
    await fundSolana(solana);
    step("starting the x402 facilitator");
    const facilitator = await startFacilitator(options.ports.facilitator, chain.rpcUrl, {
      ...(options.confirmationTimeoutMs === undefined ? {} : { confirmationTimeoutMs: options.confirmationTimeoutMs }),
      solanaRpcUrl: solana.url,
    });
    stops.push(facilitator.stop);
    step("starting the demo origin");
    const origin = await startOrigin(options.ports.origin);
    stops.push(origin.stop);
    step("starting the Worker under wrangler dev");
    let persistDir = options.persistDir;
    if (!persistDir) {
      const made = await mkdtemp(join(tmpdir(), "paywall-kv-"));
      stops.push(() => rm(made, { recursive: true, force: true }));
      persistDir = made;
    }
    // The chains start empty each time: Durable Object state (the payment ledger, channel records)
    // recorded against an earlier chain would describe payments and channels that no longer exist.
    await rm(join(persistDir, "v3", "do"), { recursive: true, force: true });
    const worker = await startWorker({
      port: options.ports.worker,
      originUrl: origin.url,
      facilitatorUrl: facilitator.url,
      pricingFile: resolve(ROOT, options.pricingFile ?? "pricing.json"),
      persistDir,
      pricingCacheSeconds: options.pricingCacheSeconds,
      vars: options.workerVars,
      echo: options.echoWorker,
    });
    stops.push(worker.process.stop);
    return { chain, solana, facilitator, origin, worker, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The buyer gets USDC and SOL, the facilitator SOL for fees, the seller its (empty) token account. */
async function fundSolana(solana: SolanaRpcServer): Promise<void> {
  const [buyer, seller, feePayer] = await Promise.all([
    solanaSigner("buyer"),
    solanaSigner("seller"),
    solanaSigner("facilitator"),
  ]);
  await solana.chain.fund(buyer.address, { sol: SOLANA_FUNDING.buyerSol, usdc: SOLANA_FUNDING.buyerUsdc });
  await solana.chain.fund(seller.address, { usdc: 0n });
  await solana.chain.fund(feePayer.address, { sol: SOLANA_FUNDING.feePayerSol });
}
