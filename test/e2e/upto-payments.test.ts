/**
 * Metered `upto` routes end to end, nothing mocked: the official `@x402/fetch` buyer with
 * `@x402/evm`'s upto scheme signs a Permit2 maximum (gasless: an EIP-2612 permit, no ETH), the
 * Worker under wrangler dev runs the origin, reads the charge it reports in `Settlement-Overrides`,
 * and the official facilitator settles that amount on the local chain (our Permit2 subset and
 * upto proxy at the official addresses). Balances and Transfer events are read on chain.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { x402Client } from "@x402/core/client";
import { PaymentRequiredV2Schema } from "@x402/core/schemas";
import { toClientEvmSigner } from "@x402/evm";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import { createTestClient, http, type PublicClient, parseEventLogs } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, NETWORK, PERMIT2_ADDRESS, ROLE, USDC_ADDRESS } from "../../stack/accounts.ts";
import { localChain, USDC_ABI, usdcBalance } from "../../stack/chain.ts";
import { freeStackPorts, type Stack, startStack } from "../../stack/index.ts";

const merchant = account(ROLE.merchant).address;
/** The route's maximum: $0.01 of a 6-decimal token. */
const MAXIMUM = 10_000n;
let stack: Stack;
let dir: string | undefined;
let base: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "paywall-upto-"));
  const pricing = JSON.parse(await readFile("pricing.json", "utf8"));
  const pricingFile = join(dir, "pricing.json");
  await writeFile(pricingFile, JSON.stringify(pricing));
  stack = await startStack({ ports: await freeStackPorts(), pricingFile, persistDir: join(dir, "state") });
  base = stack.worker.url;
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** An official v2 upto buyer with no ETH at all; its raw fetch records every payment header it sends. */
async function uptoBuyer(index: number) {
  const test = createTestClient({
    chain: localChain(stack.chain.rpcUrl),
    mode: "anvil",
    transport: http(stack.chain.rpcUrl),
  });
  await test.setBalance({ address: account(index).address, value: 0n });
  const sent: string[] = [];
  const recording = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const header = request.headers.get("PAYMENT-SIGNATURE");
    if (header) sent.push(header);
    return fetch(request);
  }) as typeof fetch;
  const signer = toClientEvmSigner(account(index), stack.chain.publicClient as PublicClient);
  const pay = wrapFetchWithPayment(recording, new x402Client().register("eip155:*", new UptoEvmScheme(signer)));
  return { pay, sent, address: account(index).address };
}

const balance = (address: `0x${string}`) => usdcBalance(stack.chain.publicClient, address);
const settles = () => stack.facilitator.calls.filter((c) => c.path === "/settle");
const completes = () => stack.origin.received.filter((r) => r.path.startsWith("/api/complete")).length;

async function transfersIn(tx: `0x${string}`) {
  const receipt = await stack.chain.publicClient.getTransactionReceipt({ hash: tx });
  expect(receipt.status).toBe("success");
  const logs = receipt.logs.filter((log) => log.address.toLowerCase() === USDC_ADDRESS.toLowerCase());
  return (
    parseEventLogs({ abi: USDC_ABI as never, eventName: "Transfer", logs }) as unknown as {
      args: { from: string; to: string; value: bigint };
    }[]
  ).map((t) => [t.args.from, t.args.to, t.args.value]);
}

describe("an upto route's 402", () => {
  it("offers the maximum with the facilitator's settling address and gas sponsoring, to v2 buyers only", async () => {
    const res = await fetch(`${base}/api/complete?words=3`);
    expect(res.status).toBe(402);
    const v2 = PaymentRequiredV2Schema.parse(JSON.parse(atob(res.headers.get("PAYMENT-REQUIRED") ?? "")));
    expect(v2.accepts).toEqual([
      {
        scheme: "upto",
        network: NETWORK,
        amount: String(MAXIMUM),
        asset: USDC_ADDRESS,
        payTo: merchant,
        maxTimeoutSeconds: 60,
        extra: {
          name: "USDC",
          version: "2",
          assetTransferMethod: "permit2",
          facilitatorAddress: account(ROLE.facilitator).address,
        },
      },
    ]);
    expect(v2.extensions?.eip2612GasSponsoring).toMatchObject({ info: { version: "1" } });
    // x402 v1 has no upto: a v1 buyer is offered nothing it cannot pay.
    expect(((await res.json()) as { accepts: unknown[] }).accepts).toEqual([]);
  });
});

describe("paying an upto route", () => {
  it("charges what the origin reports, from a buyer with no ETH and no allowance, and hides the report", async () => {
    const buyer = await uptoBuyer(ROLE.extraBuyers + 11);
    const [buyerBefore, merchantBefore] = [await balance(buyer.address), await balance(merchant)];
    const res = await buyer.pay(`${base}/api/complete?words=7`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ words: 7 });
    expect(res.headers.get("settlement-overrides")).toBeNull();
    const settlement = decodePaymentResponseHeader(res.headers.get("PAYMENT-RESPONSE") ?? "");
    expect(settlement).toMatchObject({ success: true, network: NETWORK, payer: buyer.address, amount: "700" });
    expect(await transfersIn(settlement.transaction as `0x${string}`)).toEqual([[buyer.address, merchant, 700n]]);
    expect(await balance(buyer.address)).toBe(buyerBefore - 700n);
    expect(await balance(merchant)).toBe(merchantBefore + 700n);
    expect(await stack.chain.publicClient.getBalance({ address: buyer.address })).toBe(0n);
    // The permit gave Permit2 the maximum; the settlement used 700 of it.
    const allowance = await stack.chain.publicClient.readContract({
      address: USDC_ADDRESS,
      abi: USDC_ABI,
      functionName: "allowance",
      args: [buyer.address, PERMIT2_ADDRESS],
    });
    expect(allowance).toBe(MAXIMUM - 700n);
    // The facilitator settled the charge, not the maximum.
    const lastSettle = settles().at(-1)?.body as { paymentRequirements: { amount: string } } | undefined;
    expect(lastSettle?.paymentRequirements.amount).toBe("700");
  });

  it("charges the maximum for a report above it, a missing one or an unreadable one", async () => {
    const buyer = await uptoBuyer(ROLE.extraBuyers + 10);
    for (const report of ['{"amount":"$1"}', "none", "not json"]) {
      const before = await balance(buyer.address);
      const res = await buyer.pay(`${base}/api/complete?words=2&report=${encodeURIComponent(report)}`);
      expect(res.status, report).toBe(200);
      const settlement = decodePaymentResponseHeader(res.headers.get("PAYMENT-RESPONSE") ?? "");
      expect(settlement.amount, report).toBe(String(MAXIMUM));
      expect(await balance(buyer.address), report).toBe(before - MAXIMUM);
    }
  });

  it("charges nothing for a report of 0, and a percentage or dollar report is read as the official server reads it", async () => {
    const buyer = await uptoBuyer(ROLE.extraBuyers + 9);
    const cases: [string, bigint][] = [
      ['{"amount":"0"}', 0n],
      ['{"amount":"25%"}', 2_500n],
      ['{"amount":"$0.0042"}', 4_200n],
    ];
    for (const [report, charged] of cases) {
      const before = await balance(buyer.address);
      const res = await buyer.pay(`${base}/api/complete?words=1&report=${encodeURIComponent(report)}`);
      expect(res.status, report).toBe(200);
      expect(decodePaymentResponseHeader(res.headers.get("PAYMENT-RESPONSE") ?? "").amount, report).toBe(
        String(charged),
      );
      expect(await balance(buyer.address), report).toBe(before - charged);
    }
  });

  it("gives the same answer to the same payment presented again, with no second charge or origin run", async () => {
    const buyer = await uptoBuyer(ROLE.extraBuyers + 8);
    const first = await buyer.pay(`${base}/api/complete?words=4`);
    expect(first.status).toBe(200);
    const body = await first.text();
    const [header] = buyer.sent;
    const [before, runs, settled] = [await balance(buyer.address), completes(), settles().length];
    const again = await fetch(`${base}/api/complete?words=4`, { headers: { "PAYMENT-SIGNATURE": header as string } });
    expect(again.status).toBe(200);
    expect(await again.text()).toBe(body);
    expect(again.headers.get("PAYMENT-RESPONSE")).toBe(first.headers.get("PAYMENT-RESPONSE"));
    expect([await balance(buyer.address), completes(), settles().length]).toEqual([before, runs, settled]);
  });

  it("runs the origin once for 12 copies of one payment sent at once, and settles once", async () => {
    const buyer = await uptoBuyer(ROLE.extraBuyers + 7);
    // Sign one payment by letting the buyer pay once for a 402 we keep, then send copies raw.
    const probe = await buyer.pay(`${base}/api/complete?words=3`);
    expect(probe.status).toBe(200);
    const signer = toClientEvmSigner(account(ROLE.extraBuyers + 7), stack.chain.publicClient as PublicClient);
    const client = new x402Client().register("eip155:*", new UptoEvmScheme(signer));
    const unpaid = await fetch(`${base}/api/complete?words=6`);
    const required = JSON.parse(atob(unpaid.headers.get("PAYMENT-REQUIRED") ?? ""));
    const payload = await client.createPaymentPayload(required);
    const header = btoa(JSON.stringify(payload));
    const [before, runs, settled] = [await balance(buyer.address), completes(), settles().length];
    const answers = await Promise.all(
      Array.from({ length: 12 }, () =>
        fetch(`${base}/api/complete?words=6`, { headers: { "PAYMENT-SIGNATURE": header } }),
      ),
    );
    const statuses = answers.map((a) => a.status);
    // One ran; the others were held off while it did (409), or got its kept answer after (200).
    expect(statuses.filter((s) => s !== 200 && s !== 409)).toEqual([]);
    expect(completes() - runs).toBe(1);
    expect(settles().length - settled).toBe(1);
    expect(await balance(buyer.address)).toBe(before - 600n);
  });

  it("charges nothing when the origin fails, and the same payment then pays for a good answer", async () => {
    const buyer = await uptoBuyer(ROLE.extraBuyers + 6);
    const bad = await buyer.pay(`${base}/api/complete?words=5000`);
    expect(bad.status).toBe(400);
    const [header] = buyer.sent;
    const [before, settled] = [await balance(buyer.address), settles().length];
    expect(bad.headers.get("PAYMENT-RESPONSE")).toBeNull();
    const good = await fetch(`${base}/api/complete?words=5`, { headers: { "PAYMENT-SIGNATURE": header as string } });
    expect(good.status).toBe(200);
    expect(settles().length - settled).toBe(1);
    expect(await balance(buyer.address)).toBe(before - 500n);
  });
});
