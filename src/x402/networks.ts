/**
 * Network names: x402 v2 uses CAIP-2 (`eip155:84532`), v1 uses names (`base-sepolia`).
 * The name table is the official one from `@x402/evm`.
 */
import { EVM_NETWORK_CHAIN_ID_MAP } from "@x402/evm/v1";

const V1_BY_CAIP2 = new Map<string, string>(
  Object.entries(EVM_NETWORK_CHAIN_ID_MAP).map(([name, chainId]) => [`eip155:${chainId}`, name]),
);

/** `eip155:84532` → `base-sepolia`; undefined when v1 has no name for it. */
export function toV1Network(caip2: string): string | undefined {
  return V1_BY_CAIP2.get(caip2);
}

/** `base-sepolia` → `eip155:84532`; undefined for an unknown name. */
export function fromV1Network(name: string): string | undefined {
  const chainId = (EVM_NETWORK_CHAIN_ID_MAP as Record<string, number | undefined>)[name];
  return chainId === undefined ? undefined : `eip155:${chainId}`;
}

/** `eip155:84532` → 84532. */
export function chainIdOf(caip2: string): number {
  return Number(caip2.slice("eip155:".length));
}
