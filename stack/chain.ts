/**
 * The local chain: anvil from its npm package (the binary, run directly: one PID), the project's
 * test stablecoin installed at Base Sepolia's USDC address, a Multicall3 stand-in, a Permit2 subset
 * x402's upto proxy, batch-settlement's channel manager and deposit collector at their official
 * addresses, funded buyers.
 */
import { createRequire } from "node:module";
import {
  createPublicClient,
  createTestClient,
  createWalletClient,
  defineChain,
  http,
  pad,
  parseUnits,
  type PublicClient,
} from "viem";
import { readArtifact } from "../scripts/contracts.ts";
import {
  account,
  BATCH_SETTLEMENT_ADDRESS,
  CHAIN_ID,
  ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
  EXTRA_BUYERS,
  MNEMONIC,
  MULTICALL3_ADDRESS,
  PERMIT2_ADDRESS,
  ROLE,
  UPTO_PROXY_ADDRESS,
  USDC_ADDRESS,
  USDC_DECIMALS,
} from "./accounts.ts";
import { type Child, startChild } from "./process.ts";
import { waitFor } from "./ports.ts";

export const USDC_ABI = readArtifact("TestUSDC").abi;
/** Each funded buyer starts with this many test dollars. */
export const STARTING_USDC = parseUnits("1000", USDC_DECIMALS);

export function localChain(rpcUrl: string) {
  return defineChain({
    id: CHAIN_ID,
    name: "Local (Base Sepolia id)",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
}

function anvilBinary(): string {
  const require = createRequire(import.meta.url);
  const platform = `@foundry-rs/anvil-${process.platform}-${process.arch === "x64" ? "amd64" : process.arch}`;
  return require.resolve(`${platform}/bin/anvil`);
}

export interface Chain {
  rpcUrl: string;
  process: Child;
  publicClient: PublicClient;
}

export async function startChain(port: number): Promise<Chain> {
  const rpcUrl = `http://127.0.0.1:${port}`;
  const proc = startChild("anvil", anvilBinary(), [
    "--host", "127.0.0.1",
    "--port", String(port),
    "--chain-id", String(CHAIN_ID),
    "--mnemonic", MNEMONIC,
    "--accounts", String(ROLE.extraBuyers + EXTRA_BUYERS),
    "--silent",
  ]);
  const publicClient = createPublicClient({ chain: localChain(rpcUrl), transport: http(rpcUrl) });
  try {
    await waitFor("anvil", async () => (await publicClient.getChainId()) === CHAIN_ID, 15_000);
  } catch (error) {
    await proc.stop();
    throw new Error(`${(error as Error).message}\n${proc.output()}`);
  }
  return { rpcUrl, process: proc, publicClient };
}

/** Installs the token, Multicall3, Permit2, the upto proxy and the batch-settlement contracts, then mints STARTING_USDC to the demo buyer and the extra buyers. */
export async function setUpChain(rpcUrl: string): Promise<void> {
  const chain = localChain(rpcUrl);
  const test = createTestClient({ chain, mode: "anvil", transport: http(rpcUrl) });
  const deployer = account(ROLE.deployer);
  await test.setCode({ address: USDC_ADDRESS, bytecode: readArtifact("TestUSDC").deployedBytecode });
  // Slot 0 is the token's owner (the minter); code installed this way runs no constructor.
  await test.setStorageAt({ address: USDC_ADDRESS, index: 0, value: pad(deployer.address) });
  await test.setCode({ address: MULTICALL3_ADDRESS, bytecode: readArtifact("Multicall3").deployedBytecode });
  await test.setCode({ address: PERMIT2_ADDRESS, bytecode: readArtifact("Permit2").deployedBytecode });
  await test.setCode({ address: UPTO_PROXY_ADDRESS, bytecode: readArtifact("X402UptoPermit2Proxy").deployedBytecode });
  await test.setCode({ address: BATCH_SETTLEMENT_ADDRESS, bytecode: readArtifact("BatchSettlement").deployedBytecode });
  await test.setCode({
    address: ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
    bytecode: readArtifact("ERC3009DepositCollector").deployedBytecode,
  });

  const wallet = createWalletClient({ account: deployer, chain, transport: http(rpcUrl) });
  const publicClient = createPublicClient({ chain, transport: http(rpcUrl) });
  const buyers = [ROLE.buyer, ...Array.from({ length: EXTRA_BUYERS }, (_, i) => ROLE.extraBuyers + i)];
  for (const index of buyers) {
    const hash = await wallet.writeContract({
      address: USDC_ADDRESS,
      abi: USDC_ABI,
      functionName: "mint",
      args: [account(index).address, STARTING_USDC],
    });
    await publicClient.waitForTransactionReceipt({ hash });
  }
}

export async function usdcBalance(publicClient: PublicClient, address: `0x${string}`): Promise<bigint> {
  return (await publicClient.readContract({
    address: USDC_ADDRESS,
    abi: USDC_ABI,
    functionName: "balanceOf",
    args: [address],
  })) as bigint;
}
