/**
 * batch-settlement's EIP-712 pieces as `@x402/evm` signs them, for tests and the bench that sign
 * vouchers or compute channel ids themselves: the domain (the settlement contract on the local
 * chain's id), a voucher and a channel config. Written out from the package's shipped types.
 */
export const BATCH_SETTLEMENT_DOMAIN = {
  name: "x402 Batch Settlement",
  version: "1",
  chainId: 84532,
  verifyingContract: "0x4020074e9dF2ce1deE5A9C1b5c3f541D02a10003",
} as const;

export const VOUCHER_TYPES = {
  Voucher: [
    { name: "channelId", type: "bytes32" },
    { name: "maxClaimableAmount", type: "uint128" },
  ],
} as const;

export const CHANNEL_CONFIG_TYPES = {
  ChannelConfig: [
    { name: "payer", type: "address" },
    { name: "payerAuthorizer", type: "address" },
    { name: "receiver", type: "address" },
    { name: "receiverAuthorizer", type: "address" },
    { name: "token", type: "address" },
    { name: "withdrawDelay", type: "uint40" },
    { name: "salt", type: "bytes32" },
  ],
} as const;
