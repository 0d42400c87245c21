/**
 * `npm run demo [-- --v1] [--url URL]`: a buyer pays the running local stack with the official
 * client library — `@x402/fetch` (v2) by default, `x402-fetch` (v1) with --v1 — and shows the 402 it
 * got, what it paid, the transaction, and both balances before and after.
 */
import { parseArgs } from "node:util";
import { x402Client } from "@x402/core/client";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import { createPublicClient, createWalletClient, formatUnits, http } from "viem";
import { wrapFetchWithPayment as wrapFetchWithPaymentV1 } from "x402-fetch";
import { account, ROLE, USDC_DECIMALS } from "../stack/accounts.ts";
import { localChain, usdcBalance } from "../stack/chain.ts";
import { DEFAULT_PORTS } from "../stack/index.ts";

const { values } = parseArgs({
  options: {
    v1: { type: "boolean", default: false },
    url: { type: "string", default: `http://127.0.0.1:${DEFAULT_PORTS.worker}/api/weather/paris` },
    rpc: { type: "string", default: `http://127.0.0.1:${DEFAULT_PORTS.chain}` },
  },
});
const buyer = account(ROLE.buyer);
const merchant = account(ROLE.merchant).address;
const chain = localChain(values.rpc);
const publicClient = createPublicClient({ chain, transport: http(values.rpc) });
const usdc = (v: bigint) => `${formatUnits(v, USDC_DECIMALS)} USDC`;

let unpaid: Response;
try {
  unpaid = await fetch(values.url);
} catch {
  console.error(`Nothing answers at ${values.url}. Start the stack first: npm run dev`);
  process.exit(1);
}
console.log(`GET ${values.url} without paying → ${unpaid.status} ${unpaid.statusText}`);
const required = unpaid.headers.get("PAYMENT-REQUIRED");
if (unpaid.status !== 402 || !required) {
  console.error("Expected a 402 with PAYMENT-REQUIRED; is this a priced route?");
  process.exit(1);
}
const offer = JSON.parse(atob(required)).accepts[0];
console.log(`  asks for ${usdc(BigInt(offer.amount))} on ${offer.network}, paid to ${offer.payTo}`);

const before = {
  buyer: await usdcBalance(publicClient, buyer.address),
  merchant: await usdcBalance(publicClient, merchant),
};
let paidFetch: typeof fetch;
if (values.v1) {
  const wallet = createWalletClient({ account: buyer, chain, transport: http(values.rpc) });
  paidFetch = wrapFetchWithPaymentV1(fetch, wallet as never) as typeof fetch;
} else {
  paidFetch = wrapFetchWithPayment(fetch, new x402Client().register("eip155:*", new ExactEvmScheme(buyer)));
}
console.log(`\nPaying with ${values.v1 ? "x402-fetch (x402 v1)" : "@x402/fetch (x402 v2)"} as ${buyer.address}…`);
const paid = await paidFetch(values.url);
console.log(`  → ${paid.status} ${paid.statusText}: ${await paid.text()}`);
const settlement = paid.headers.get(values.v1 ? "X-PAYMENT-RESPONSE" : "PAYMENT-RESPONSE");
if (!settlement) {
  console.error("No settlement header: the payment did not go through.");
  process.exit(1);
}
const receipt = decodePaymentResponseHeader(settlement);
console.log(`  transaction ${receipt.transaction} on ${receipt.network}`);

const after = {
  buyer: await usdcBalance(publicClient, buyer.address),
  merchant: await usdcBalance(publicClient, merchant),
};
console.log(`
                 before            after             change
  buyer     ${usdc(before.buyer).padEnd(17)} ${usdc(after.buyer).padEnd(17)} ${usdc(after.buyer - before.buyer)}
  merchant  ${usdc(before.merchant).padEnd(17)} ${usdc(after.merchant).padEnd(17)} +${usdc(after.merchant - before.merchant)}`);
