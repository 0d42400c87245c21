/**
 * Who is who on the local chain. Every key comes from anvil's well-known test mnemonic: these
 * accounts hold value only on a chain you started yourself. Never use them anywhere else.
 */
import { mnemonicToAccount } from "viem/accounts";

export const MNEMONIC = "test test test test test test test test test test test junk";

/** The chain runs with Base Sepolia's id, so v1 buyers (which derive the chain id from "base-sepolia") sign for it. */
export const CHAIN_ID = 84532;
export const NETWORK = "eip155:84532";
export const V1_NETWORK = "base-sepolia";

/** The test stablecoin is installed at Base Sepolia's USDC address: both buyers then pay "$0.001" prices with default settings. */
export const USDC_ADDRESS = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
export const MULTICALL3_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11";
export const USDC_DECIMALS = 6;
/** Where `upto` payments go through: Permit2's canonical address and x402's upto proxy (our own contracts, installed there). */
export const PERMIT2_ADDRESS = "0x000000000022D473030F116dDEE9F6B43aC78BA3";
export const UPTO_PROXY_ADDRESS = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002";
/** batch-settlement's channel manager and ERC-3009 deposit collector (our own contracts, at the official addresses). */
export const BATCH_SETTLEMENT_ADDRESS = "0x4020074e9dF2ce1deE5A9C1b5c3f541D02a10003";
export const ERC3009_DEPOSIT_COLLECTOR_ADDRESS = "0x4020806089470a89826cB9fB1f4059150b550004";

/**
 * The local stack's token for GET /__x402/channels (a Worker secret in production, set with
 * `wrangler secret put CHANNELS_ADMIN_TOKEN`). Public like the keys above: local use only.
 */
export const LOCAL_CHANNELS_ADMIN_TOKEN = "local-stack-only-channels-token";

export const ROLE = { deployer: 0, facilitator: 1, buyer: 2, merchant: 3, extraBuyers: 4 } as const;
/** Buyers funded at start: the demo buyer plus this many more (the e2e concurrency test uses them). */
export const EXTRA_BUYERS = 12;

export function account(index: number) {
  return mnemonicToAccount(MNEMONIC, { addressIndex: index });
}
