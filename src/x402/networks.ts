/**
 * Network names: x402 v2 uses CAIP-2 (`eip155:84532`, `solana:EtWT…`), v1 uses names
 * (`base-sepolia`, `solana-devnet`). The EVM table is the official one from `@x402/evm`; the
 * Solana one is `@x402/svm`'s (written out here so the Worker does not bundle that package; a
 * unit test holds it equal to the official table).
 */
import { EVM_NETWORK_CHAIN_ID_MAP } from "@x402/evm/v1";

export const SOLANA_MAINNET = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp";
export const SOLANA_DEVNET = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
export const SOLANA_TESTNET = "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z";

export const SOLANA_V1_NETWORKS: Readonly<Record<string, string>> = Object.freeze({
  solana: SOLANA_MAINNET,
  "solana-devnet": SOLANA_DEVNET,
  "solana-testnet": SOLANA_TESTNET,
});

const V1_BY_CAIP2 = new Map<string, string>([
  ...Object.entries(EVM_NETWORK_CHAIN_ID_MAP).map(([name, chainId]): [string, string] => [`eip155:${chainId}`, name]),
  ...Object.entries(SOLANA_V1_NETWORKS).map(([name, caip2]): [string, string] => [caip2, name]),
]);

/** `eip155:84532` → `base-sepolia`; undefined when v1 has no name for it. */
export function toV1Network(caip2: string): string | undefined {
  return V1_BY_CAIP2.get(caip2);
}

/** `base-sepolia` → `eip155:84532`; undefined for an unknown name. */
export function fromV1Network(name: string): string | undefined {
  if (Object.hasOwn(SOLANA_V1_NETWORKS, name)) return SOLANA_V1_NETWORKS[name];
  // Own names only: a v1 payload naming "toString" is an unknown network, not a function.
  if (!Object.hasOwn(EVM_NETWORK_CHAIN_ID_MAP, name)) return undefined;
  const chainId = (EVM_NETWORK_CHAIN_ID_MAP as Record<string, number | undefined>)[name];
  return chainId === undefined ? undefined : `eip155:${chainId}`;
}

/** The network family: which scheme code reads a payment on it. */
export type Family = "evm" | "svm";
export const familyOf = (caip2: string): Family => (caip2.startsWith("solana:") ? "svm" : "evm");

/** `eip155:84532` → 84532. */
export function chainIdOf(caip2: string): number {
  return Number(caip2.slice("eip155:".length));
}
