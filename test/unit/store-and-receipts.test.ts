/**
 * Pricing store behaviour when KV itself fails, and receipt lifetimes. Real KV cannot be made to
 * fail on demand, so the failing read is injected with a stand-in whose `get` throws: it plays
 * no KV behaviour, only the fault. Everything else about KV is tested in workerd (test/worker).
 */
import { expect, it } from "vitest";
import { BoundedMap } from "../../src/memo.ts";
import { PricingStore } from "../../src/pricing/store.ts";
import { type Receipt, receiptTtlSeconds } from "../../src/receipts.ts";

const DOC = JSON.stringify({
  version: 1,
  defaults: { network: "eip155:84532", payTo: "0x90F79bf6EB2c4f870365E785982E1f101E93b906" },
  routes: [{ id: "w", match: "GET /w", price: "$0.001" }],
});

function flakyKv() {
  let fail = false;
  const kv = {
    get: async () => {
      if (fail) throw new Error("KV GET failed: 503");
      return DOC;
    },
  } as unknown as KVNamespace;
  return { kv, breakNow: () => (fail = true) };
}

it("keeps the last valid table when a KV read fails, and reports kv_error when it never had one", async () => {
  const { kv, breakNow } = flakyKv();
  const store = new PricingStore({ kv, cacheMs: 0, fallbacks: { network: undefined, payTo: undefined } });
  const first = await store.get(1_000);
  expect(first.ok && first.table.routes[0]?.id).toBe("w");
  breakNow();
  const after = await store.get(2_000);
  expect(after.ok && after.table.routes[0]?.id).toBe("w");

  const broken = flakyKv();
  broken.breakNow();
  const never = new PricingStore({ kv: broken.kv, cacheMs: 0, fallbacks: { network: undefined, payTo: undefined } });
  expect(await never.get(1_000)).toMatchObject({ ok: false, why: "kv_error" });
});

const receipt = (settledAt: number, windowSeconds: number, validBefore: string): Receipt => ({
  routeId: "r",
  request: "GET /r",
  payer: "0x",
  network: "eip155:84532",
  asset: "0x",
  amount: "1",
  tx: "0x",
  settledAt,
  expiresAt: settledAt + windowSeconds,
  validBefore,
  answerKept: false,
});

it.each([
  ["single use, authorization expiring in 10 s → KV's 60 s floor", receipt(1000, 0, "1010"), 60],
  ["single use → until the authorization expires", receipt(1000, 0, "4600"), 3600],
  ["single use, far-future authorization → capped at 7 days", receipt(1000, 0, "99999999999"), 7 * 24 * 3600],
  ["access window longer than the authorization → the window", receipt(1000, 86_400, "4600"), 86_400],
  ["access window shorter than KV's floor → 60 s", receipt(1000, 30, "1010"), 60],
])("receipt TTL: %s", (_name, r, ttl) => {
  expect(receiptTtlSeconds(r, 1000)).toBe(ttl);
});

it("memos drop the least recently used entry, so a hot one outlives one-off ones", () => {
  const memo = new BoundedMap<string, number>(3);
  memo.set("hot", 0);
  for (let i = 1; i <= 10; i++) {
    expect(memo.get("hot")).toBe(0);
    memo.set(`once-${i}`, i);
  }
  expect(memo.get("hot")).toBe(0);
  expect(memo.get("once-1")).toBeUndefined();
  expect(memo.get("once-10")).toBe(10);
});
