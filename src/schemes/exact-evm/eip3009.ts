/**
 * EIP-3009 `TransferWithAuthorization`, the typed data an `exact` EVM payment signs
 * (https://eips.ethereum.org/EIPS/eip-3009). Pure; shared by the Worker's signature check and by
 * everything that signs test payments.
 */
import type { EvmRequirement } from "../../pricing/document.ts";
import { chainIdOf } from "../../x402/networks.ts";

export const TRANSFER_WITH_AUTHORIZATION_TYPES = {
  TransferWithAuthorization: [
    { name: "from", type: "address" },
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ],
} as const;

/** EIP-712's own type for the domain above (all four fields are always present). */
export const EIP712_DOMAIN_TYPES = {
  EIP712Domain: [
    { name: "name", type: "string" },
    { name: "version", type: "string" },
    { name: "chainId", type: "uint256" },
    { name: "verifyingContract", type: "address" },
  ],
} as const;

/** The token's EIP-712 domain for a requirement: its name/version, chain and address. */
export function eip712Domain(requirement: Pick<EvmRequirement, "extra" | "network" | "asset">) {
  return {
    name: requirement.extra.name,
    version: requirement.extra.version,
    chainId: chainIdOf(requirement.network),
    verifyingContract: requirement.asset,
  };
}
