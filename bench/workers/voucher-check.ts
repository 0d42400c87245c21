/**
 * The benchmark's voucher check alone (issue: "a voucher check at most 1 ms of CPU in workerd"):
 * GET /fast?n=N verifies N vouchers from one buyer with the Worker's own `verifyTypedData`
 * (src/viem-fast.ts: the cached key's table, the kept domain separator), GET /viem?n=N the same
 * vouchers with viem's (recovery each time). The vouchers are signed once, on the first request;
 * the bench reads workerd's CPU around sequential requests and divides by the checks made.
 */
import { privateKeyToAccount } from "viem/accounts";
import { verifyTypedData as fast } from "../../src/viem-fast.ts";
import { BATCH_SETTLEMENT_DOMAIN, VOUCHER_TYPES } from "../../test/support/batch-settlement.ts";
// @ts-expect-error: the real viem, by path (the alias does not touch it; no types there).
import { verifyTypedData as viems } from "../../node_modules/viem/_esm/index.js";

const domain = BATCH_SETTLEMENT_DOMAIN;
const types = VOUCHER_TYPES;
const buyer = privateKeyToAccount(`0x${"42".repeat(32)}`);
const channelId = `0x${"ab".repeat(32)}` as const;
const VOUCHERS = 64;
let signed: Promise<{ message: { channelId: `0x${string}`; maxClaimableAmount: bigint }; signature: `0x${string}` }[]>;

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const n = Number(url.searchParams.get("n") ?? "1");
    signed ??= Promise.all(
      Array.from({ length: VOUCHERS }, async (_, i) => {
        const message = { channelId, maxClaimableAmount: BigInt(i + 1) * 1000n };
        return { message, signature: await buyer.signTypedData({ domain, types, primaryType: "Voucher", message }) };
      }),
    );
    const vouchers = await signed;
    const verify = url.pathname === "/viem" ? viems : fast;
    let valid = 0;
    for (let i = 0; i < n; i++) {
      const { message, signature } = vouchers[i % VOUCHERS] as (typeof vouchers)[number];
      if (await verify({ address: buyer.address, domain, types, primaryType: "Voucher", message, signature })) valid++;
    }
    return new Response(String(valid));
  },
};
