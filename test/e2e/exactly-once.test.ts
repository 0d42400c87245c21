/**
 * Exactly once on the real chain: anvil, the project's test stablecoin, the official facilitator,
 * the Worker under wrangler dev with its Durable Object ledger, payments signed by the official
 * client code. Each case is asserted on chain (balances, Transfer events) and at the origin.
 *
 * The facilitator waits 1.5 s for a receipt before answering `settlement_pending` (the official
 * default is 180 s), and the Worker's settle budget is 4 s, so a late settlement shows in seconds:
 * anvil's `evm_setAutomine false` holds transactions in the mempool until `evm_mine`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { x402Client } from "@x402/core/client";
import {
  decodePaymentRequiredHeader,
  decodePaymentResponseHeader,
  encodePaymentSignatureHeader,
} from "@x402/core/http";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { wrapFetchWithPayment } from "@x402/fetch";
import { createTestClient, http } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, ROLE } from "../../stack/accounts.ts";
import { localChain, usdcBalance } from "../../stack/chain.ts";
import { freeStackPorts, type Stack, startStack } from "../../stack/index.ts";

const merchant = account(ROLE.merchant).address;
let stack: Stack;
let dir: string | undefined;
let base: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "paywall-e2e-once-"));
  stack = await startStack({
    ports: await freeStackPorts(),
    persistDir: join(dir, "state"),
    confirmationTimeoutMs: 1500,
    workerVars: { SETTLE_BUDGET_MS: "4000" },
  });
  base = stack.worker.url;
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const balance = (address: `0x${string}`) => usdcBalance(stack.chain.publicClient, address);
const settleCalls = () => stack.facilitator.calls.filter((c) => c.path === "/settle").length;
const originCalls = (path: string) => stack.origin.received.filter((r) => r.path.startsWith(path)).length;
const testClient = () =>
  createTestClient({ chain: localChain(stack.chain.rpcUrl), mode: "anvil", transport: http(stack.chain.rpcUrl) });

/** A PAYMENT-SIGNATURE made by the official client from the route's own 402, not yet sent. */
async function signedHeader(url: string, buyerIndex: number): Promise<string> {
  const unpaid = await fetch(url);
  expect(unpaid.status).toBe(402);
  const required = decodePaymentRequiredHeader(unpaid.headers.get("PAYMENT-REQUIRED") ?? "");
  const client = new x402Client().register("eip155:*", new ExactEvmScheme(account(buyerIndex)));
  return encodePaymentSignatureHeader(await client.createPaymentPayload(required));
}

describe("exactly once, on chain", () => {
  it("runs a slow origin once for 12 copies of one payment sent at once: one transfer, 11 × 409", async () => {
    const buyer = account(ROLE.extraBuyers);
    const url = `${base}/api/slow?ms=1500`;
    const header = await signedHeader(url, ROLE.extraBuyers);
    const [buyerBefore, merchantBefore, settlesBefore] = [
      await balance(buyer.address),
      await balance(merchant),
      settleCalls(),
    ];
    const copies = await Promise.all(
      Array.from({ length: 12 }, () => fetch(url, { headers: { "PAYMENT-SIGNATURE": header } })),
    );
    const statuses = copies.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(11);
    const bodies = await Promise.all(copies.map((r) => r.json()));
    expect(bodies.filter((b) => (b as { error?: string }).error === "payment_in_progress")).toHaveLength(11);
    expect(originCalls("/api/slow")).toBe(1);
    expect(settleCalls() - settlesBefore).toBe(1);
    expect(await balance(buyer.address)).toBe(buyerBefore - 1000n);
    expect(await balance(merchant)).toBe(merchantBefore + 1000n);
  });

  it("delivers the content of a late settlement to the same payment, charged once", async () => {
    const buyer = account(ROLE.extraBuyers + 1);
    const sent: Headers[] = [];
    const recording = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      sent.push(new Headers(request.headers));
      return fetch(request);
    }) as typeof fetch;
    const pay = wrapFetchWithPayment(recording, new x402Client().register("eip155:*", new ExactEvmScheme(buyer)));
    const [buyerBefore, merchantBefore] = [await balance(buyer.address), await balance(merchant)];
    const chain = testClient();
    await chain.setAutomine(false);
    let told: { error: string; detail: string };
    try {
      const pending = await pay(`${base}/api/weather/reykjavik`);
      // Broadcast, not mined: the official buyer gets a 409, which it does not pay again for.
      expect(pending.status).toBe(409);
      told = (await pending.json()) as { error: string; detail: string };
      expect(told.error).toBe("settlement_pending");
      expect(told.detail).toMatch(/^0x[0-9a-f]{64}$/);
      expect(await balance(buyer.address)).toBe(buyerBefore);
      await chain.mine({ blocks: 1 });
      expect(await balance(buyer.address)).toBe(buyerBefore - 1000n);
    } finally {
      await chain.setAutomine(true); // (re-enabling automine mines anything still pending)
    }

    const header = sent.map((h) => h.get("PAYMENT-SIGNATURE")).find((h) => h) ?? "";
    const delivered = await fetch(`${base}/api/weather/reykjavik`, { headers: { "PAYMENT-SIGNATURE": header } });
    expect(delivered.status).toBe(200);
    expect(await delivered.json()).toMatchObject({ city: "reykjavik", conditions: "clear" });
    expect(decodePaymentResponseHeader(delivered.headers.get("PAYMENT-RESPONSE") ?? "")).toMatchObject({
      success: true,
      transaction: told.detail,
    });
    expect(originCalls("/api/weather/reykjavik")).toBe(1);
    expect(await balance(buyer.address)).toBe(buyerBefore - 1000n);
    expect(await balance(merchant)).toBe(merchantBefore + 1000n);
  });

  it("gives a buyer whose response was lost the same answer for the same payment: one transfer", async () => {
    const buyer = account(ROLE.extraBuyers + 2);
    const url = `${base}/api/weather/tromso`;
    const header = await signedHeader(url, ROLE.extraBuyers + 2);
    const [buyerBefore, settlesBefore] = [await balance(buyer.address), settleCalls()];
    const first = await fetch(url, { headers: { "PAYMENT-SIGNATURE": header } });
    expect(first.status).toBe(200);
    const settlement = first.headers.get("PAYMENT-RESPONSE");
    await first.body?.cancel(); // the connection drops before the body is read
    let retry: Response | undefined;
    for (let attempt = 0; attempt < 50; attempt++) {
      retry = await fetch(url, { headers: { "PAYMENT-SIGNATURE": header } });
      if (retry.status !== 409) break; // the first answer is still being copied
      await retry.body?.cancel();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(retry?.status).toBe(200);
    expect(await retry?.json()).toMatchObject({ city: "tromso" });
    expect(retry?.headers.get("PAYMENT-RESPONSE")).toBe(settlement);
    expect(settleCalls() - settlesBefore).toBe(1);
    expect(originCalls("/api/weather/tromso")).toBe(1);
    expect(await balance(buyer.address)).toBe(buyerBefore - 1000n);
  });
});
