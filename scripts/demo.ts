/**
 * `npm run demo [-- --v1] [--svm] [--upto] [--batch] [--url URL]`: a buyer pays the running local
 * stack with the official client library — `@x402/fetch` (v2) by default, `x402-fetch` (v1) with
 * --v1; in USDC on the local EVM chain, or on the local Solana with --svm; with --upto, a metered
 * route where it authorises a maximum and the origin's answer decides the (smaller) charge; with
 * --batch, ten calls on a batch-settlement channel: one deposit, then vouchers, then the seller's
 * claim and settlement — and shows the 402 it got, what it paid, the transactions, and the
 * balances before and after.
 */
import { parseArgs } from "node:util";
import { x402Client } from "@x402/core/client";
import { toClientEvmSigner } from "@x402/evm";
import { BatchSettlementEvmScheme } from "@x402/evm/batch-settlement/client";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import { ExactSvmScheme } from "@x402/svm/exact/client";
import { createPublicClient, createWalletClient, formatUnits, http } from "viem";
import { wrapFetchWithPayment as wrapFetchWithPaymentV1 } from "x402-fetch";
import {
  account,
  BATCH_SETTLEMENT_ADDRESS,
  LOCAL_CHANNELS_ADMIN_TOKEN,
  ROLE,
  USDC_DECIMALS,
} from "../stack/accounts.ts";
import { localChain, usdcBalance } from "../stack/chain.ts";
import { DEFAULT_PORTS } from "../stack/index.ts";
import { SOLANA_DEVNET, solanaSigner, solanaUsdcOf } from "../stack/solana.ts";

const { values } = parseArgs({
  options: {
    v1: { type: "boolean", default: false },
    svm: { type: "boolean", default: false },
    upto: { type: "boolean", default: false },
    batch: { type: "boolean", default: false },
    "solana-rpc": { type: "string", default: `http://127.0.0.1:${DEFAULT_PORTS.solana}` },
    url: { type: "string" },
    rpc: { type: "string", default: `http://127.0.0.1:${DEFAULT_PORTS.chain}` },
  },
});
const usdc = (v: bigint) => `${formatUnits(v, USDC_DECIMALS)} USDC`;
if ((values.upto || values.batch) && (values.v1 || values.svm || (values.upto && values.batch))) {
  console.error("--upto and --batch are x402 v2 schemes on EVM: use one of them, without --v1 and --svm.");
  process.exit(1);
}
const worker = `http://127.0.0.1:${DEFAULT_PORTS.worker}`;
const url =
  values.url ??
  (values.upto
    ? `${worker}/api/complete?words=12`
    : values.batch
      ? `${worker}/api/quote/ACME`
      : `${worker}/api/weather/paris`);

/** The buyer and the merchant on the chosen chain: who pays, who is paid, and their USDC. */
async function parties() {
  if (values.svm) {
    const rpcUrl = values["solana-rpc"];
    const buyer = await solanaSigner("buyer");
    const merchant = (await solanaSigner("seller")).address;
    const v2 = () =>
      wrapFetchWithPayment(fetch, new x402Client().register(SOLANA_DEVNET, new ExactSvmScheme(buyer, { rpcUrl })));
    const v1 = () =>
      wrapFetchWithPaymentV1(fetch, buyer as never, undefined, undefined, { svmConfig: { rpcUrl } }) as typeof fetch;
    return { buyer: buyer.address, merchant, balance: (owner: string) => solanaUsdcOf(rpcUrl, owner), v1, v2 };
  }
  const buyer = account(ROLE.buyer);
  const chain = localChain(values.rpc);
  const publicClient = createPublicClient({ chain, transport: http(values.rpc) });
  // upto signs a Permit2 maximum; with the 402's gas sponsoring it adds an EIP-2612 permit when
  // Permit2 has no allowance yet (the signer reads the token for that), so the buyer sends no transaction.
  const signer = toClientEvmSigner(buyer, publicClient as never);
  const scheme = values.upto
    ? new UptoEvmScheme(signer)
    : values.batch
      ? new BatchSettlementEvmScheme(signer)
      : new ExactEvmScheme(buyer);
  const v2 = () => wrapFetchWithPayment(fetch, new x402Client().register("eip155:*", scheme));
  const v1 = () =>
    wrapFetchWithPaymentV1(
      fetch,
      createWalletClient({ account: buyer, chain, transport: http(values.rpc) }) as never,
    ) as typeof fetch;
  return {
    buyer: buyer.address,
    merchant: account(ROLE.merchant).address,
    balance: (owner: string) => usdcBalance(publicClient, owner as `0x${string}`),
    v1,
    v2,
  };
}

let unpaid: Response;
try {
  unpaid = await fetch(url);
} catch {
  console.error(`Nothing answers at ${url}. Start the stack first: npm run dev`);
  process.exit(1);
}
console.log(`GET ${url} without paying → ${unpaid.status} ${unpaid.statusText}`);
const required = unpaid.headers.get("PAYMENT-REQUIRED");
if (unpaid.status !== 402 || !required) {
  console.error("Expected a 402 with PAYMENT-REQUIRED; is this a priced route?");
  process.exit(1);
}
const accepts = JSON.parse(atob(required)).accepts as {
  scheme: string;
  amount: string;
  network: string;
  payTo: string;
}[];
for (const offer of accepts) {
  const what = offer.scheme === "upto" ? `at most ${usdc(BigInt(offer.amount))} (upto)` : usdc(BigInt(offer.amount));
  console.log(`  asks for ${what} on ${offer.network}, paid to ${offer.payTo}`);
}
const { buyer, merchant, balance, v1, v2 } = await parties();
if (values.svm && !accepts.some((a) => a.network === SOLANA_DEVNET)) {
  console.error(`This route does not offer ${SOLANA_DEVNET}: is the local Solana up (npm run dev starts it)?`);
  process.exit(1);
}

const before = { buyer: await balance(buyer), merchant: await balance(merchant) };
if (values.batch) {
  await batchSession(v2(), buyer, merchant, balance, before);
  process.exit(0);
}
const paidFetch = values.v1 ? v1() : v2();
const chainName = values.svm ? "Solana (litesvm)" : "the local EVM chain";
console.log(
  `\nPaying with ${values.v1 ? "x402-fetch (x402 v1)" : "@x402/fetch (x402 v2)"} on ${chainName} as ${buyer}…`,
);
const paid = await paidFetch(url);
console.log(`  → ${paid.status} ${paid.statusText}: ${await paid.text()}`);
const settlement = paid.headers.get(values.v1 ? "X-PAYMENT-RESPONSE" : "PAYMENT-RESPONSE");
if (!settlement) {
  console.error("No settlement header: the payment did not go through.");
  process.exit(1);
}
const receipt = decodePaymentResponseHeader(settlement);
console.log(`  transaction ${receipt.transaction || "(none: nothing to charge)"} on ${receipt.network}`);
if (values.upto) {
  const maximum = BigInt(accepts.find((a) => a.scheme === "upto")?.amount ?? "0");
  console.log(`  authorised at most ${usdc(maximum)}; the origin's answer cost ${usdc(BigInt(receipt.amount ?? "0"))}`);
}

const after = { buyer: await balance(buyer), merchant: await balance(merchant) };
console.log(`
                 before            after             change
  buyer     ${usdc(before.buyer).padEnd(17)} ${usdc(after.buyer).padEnd(17)} ${usdc(after.buyer - before.buyer)}
  merchant  ${usdc(before.merchant).padEnd(17)} ${usdc(after.merchant).padEnd(17)} +${usdc(after.merchant - before.merchant)}`);

/** Ten calls on one batch-settlement channel, then the seller's claim and settlement. */
async function batchSession(
  pay: typeof fetch,
  buyer: string,
  merchant: string,
  balance: (owner: string) => Promise<bigint>,
  before: { buyer: bigint; merchant: bigint },
) {
  const escrow = BATCH_SETTLEMENT_ADDRESS;
  const escrowBefore = await balance(escrow);
  console.log(`\nTen calls with @x402/fetch and BatchSettlementEvmScheme (x402 v2) as ${buyer}…`);
  let deposits = 0;
  for (let i = 1; i <= 10; i++) {
    const res = await pay(url);
    const header = res.headers.get("PAYMENT-RESPONSE");
    const settled = header ? decodePaymentResponseHeader(header) : undefined;
    const state = (settled?.extra?.channelState ?? {}) as { chargedCumulativeAmount?: string };
    if (settled?.transaction) deposits++;
    const how = settled?.transaction
      ? `deposit, transaction ${settled.transaction}`
      : `voucher: the channel has charged ${usdc(BigInt(state.chargedCumulativeAmount ?? "0"))}`;
    console.log(`  ${String(i).padStart(2)}. ${res.status} ${await res.text()}  (${how})`);
  }
  const mid = { buyer: await balance(buyer), merchant: await balance(merchant) };
  console.log(
    `\n  ${deposits} deposit transaction, ${10 - deposits} vouchers, 0 settlement transactions: the buyer put ${usdc(before.buyer - mid.buyer)} in the channel, the seller has received ${usdc(mid.merchant - before.merchant)}`,
  );
  console.log("\nThe seller claims and settles (POST /__x402/channels/claim; its book also does it on an alarm)…");
  const claim = await fetch(`${worker}/__x402/channels/claim`, {
    method: "POST",
    headers: { authorization: `Bearer ${LOCAL_CHANNELS_ADMIN_TOKEN}` },
  });
  const runs = ((await claim.json()) as { sellers: { run: Record<string, unknown> | null }[] }).sellers;
  for (const { run } of runs) {
    if (!run) continue;
    console.log(`  claim  ${(run.claimTransactions as string[]).join(", ") || "(nothing to claim)"}`);
    console.log(`  settle ${(run.settleTransaction as string | undefined) ?? "(nothing to settle)"}`);
  }
  const after = { buyer: await balance(buyer), merchant: await balance(merchant), escrow: await balance(escrow) };
  console.log(`
                 before            after             change
  buyer     ${usdc(before.buyer).padEnd(17)} ${usdc(after.buyer).padEnd(17)} ${usdc(after.buyer - before.buyer)}
  merchant  ${usdc(before.merchant).padEnd(17)} ${usdc(after.merchant).padEnd(17)} +${usdc(after.merchant - before.merchant)}
  channels  ${usdc(escrowBefore).padEnd(17)} ${usdc(after.escrow).padEnd(17)} ${usdc(after.escrow - escrowBefore)}  (unspent deposits, refunded to buyers once idle)`);
}
