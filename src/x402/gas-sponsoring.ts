/**
 * x402's `eip2612GasSponsoring` extension, declared in the 402 of every route with an `upto`
 * option: a buyer without a Permit2 allowance signs an EIP-2612 permit instead of sending an
 * approval transaction, and the facilitator submits it with the settlement (`settleWithPermit`),
 * so the buyer needs no gas. The declaration is the one `@x402/extensions`'
 * `declareEip2612GasSponsoringExtension()` makes (a unit test holds them equal); written out here
 * so the Worker does not bundle that package.
 */
export const EIP2612_GAS_SPONSORING_KEY = "eip2612GasSponsoring";

const HEX_ADDRESS = "^0x[a-fA-F0-9]{40}$";
const DIGITS = "^[0-9]+$";

export const EIP2612_GAS_SPONSORING = Object.freeze({
  info: {
    description: "The facilitator accepts EIP-2612 gasless Permit to `Permit2` canonical contract.",
    version: "1",
  },
  schema: {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    type: "object",
    properties: {
      from: { type: "string", pattern: HEX_ADDRESS, description: "The address of the sender." },
      asset: { type: "string", pattern: HEX_ADDRESS, description: "The address of the ERC-20 token contract." },
      spender: {
        type: "string",
        pattern: HEX_ADDRESS,
        description: "The address of the spender (Canonical Permit2).",
      },
      amount: {
        type: "string",
        pattern: DIGITS,
        description: "The amount to approve (uint256). Typically MaxUint.",
      },
      nonce: { type: "string", pattern: DIGITS, description: "The current nonce of the sender." },
      deadline: { type: "string", pattern: DIGITS, description: "The timestamp at which the signature expires." },
      signature: {
        type: "string",
        pattern: "^0x[a-fA-F0-9]+$",
        description: "The 65-byte concatenated signature (r, s, v) as a hex string.",
      },
      version: { type: "string", pattern: "^[0-9]+(\\.[0-9]+)*$", description: "Schema version identifier." },
    },
    required: ["from", "asset", "spender", "amount", "nonce", "deadline", "signature", "version"],
  },
});
