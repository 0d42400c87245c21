/**
 * batch-settlement's EIP-712 pieces as `@x402/evm` signs them, for tests and the bench that sign
 * vouchers or compute channel ids themselves: the domain (the settlement contract on the local
 * chain's id), a voucher and a channel config. Written out from the package's shipped types.
 */
import { type Hex, hashTypedData, toHex } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";

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

/** A payer's channel to `receiver` in `token` (the payer authorizes its own vouchers), and its id. */
export function channelOf(
  payer: PrivateKeyAccount,
  terms: { receiver: Hex; receiverAuthorizer: Hex; token: Hex; withdrawDelay: number; salt: number },
) {
  const channelConfig = {
    payer: payer.address,
    payerAuthorizer: payer.address,
    receiver: terms.receiver,
    receiverAuthorizer: terms.receiverAuthorizer,
    token: terms.token,
    withdrawDelay: terms.withdrawDelay,
    salt: toHex(terms.salt, { size: 32 }),
  } as const;
  const channelId = hashTypedData({
    domain: BATCH_SETTLEMENT_DOMAIN,
    types: CHANNEL_CONFIG_TYPES,
    primaryType: "ChannelConfig",
    message: channelConfig,
  });
  return { channelConfig, channelId };
}

/** The payer's voucher for a cumulative `maxClaimableAmount` on `channelId`, as the payload carries it. */
export async function voucherOf(payer: PrivateKeyAccount, channelId: Hex, maxClaimableAmount: bigint) {
  return {
    channelId,
    maxClaimableAmount: String(maxClaimableAmount),
    signature: await payer.signTypedData({
      domain: BATCH_SETTLEMENT_DOMAIN,
      types: VOUCHER_TYPES,
      primaryType: "Voucher",
      message: { channelId, maxClaimableAmount },
    }),
  };
}
