/**
 * EIP-3009's typed data, written out here from the EIP (https://eips.ethereum.org/EIPS/eip-3009)
 * rather than imported from src: a wrong type or domain in src must not be signed, or checked, the
 * same wrong way by its own tests. Shared by the worker tests and the fuzzer.
 */
export const TRANSFER_WITH_AUTHORIZATION = [
  { name: "from", type: "address" },
  { name: "to", type: "address" },
  { name: "value", type: "uint256" },
  { name: "validAfter", type: "uint256" },
  { name: "validBefore", type: "uint256" },
  { name: "nonce", type: "bytes32" },
] as const;
