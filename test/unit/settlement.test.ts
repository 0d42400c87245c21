/**
 * settleWithinBudget with each scheme's reading of a refusal after a possible broadcast: a
 * refusal that proves the first attempt landed settles, one that proves nobody was charged
 * releases, and one that cannot tell keeps the payment pending. The facilitator's answers are
 * scripted here (the official facilitator gives them in the e2e tests: NONCE_USED and
 * permit2_allowance_required on the local chain); the Solana ones are the official code's own
 * reason strings (`@x402/svm` exact facilitator).
 */
import { describe, expect, it } from "vitest";
import type { FacilitatorResult, SettleReply } from "../../src/facilitators/http.ts";
import type { Payment } from "../../src/schemes/payment.ts";
import { schemeOf } from "../../src/schemes/scheme.ts";
import { settleWithinBudget } from "../../src/settlement.ts";

const request = { x402Version: 2 as const, paymentPayload: {}, paymentRequirements: {} };
const TX = `0x${"ab".repeat(32)}`;

const schemes = {
  exactEvm: schemeOf({ family: "evm", scheme: "exact" } as Payment),
  exactSvm: schemeOf({ family: "svm", scheme: "exact" } as Payment),
  upto: schemeOf({ family: "evm", scheme: "upto" } as Payment),
};

const refusal = (errorReason: string, transaction = ""): FacilitatorResult<SettleReply> => ({
  ok: true,
  reply: { success: false, errorReason, transaction, network: "n" },
});

/** One settle after an earlier attempt whose outcome was unknown (a pending record with no tx). */
async function settleAgain(scheme: keyof typeof schemes, answer: FacilitatorResult<SettleReply>) {
  return settleWithinBudget(async () => answer, request, {
    budgetMs: 1000,
    broadcast: { tx: "" },
    afterBroadcast: (reason, tx) => schemes[scheme].afterBroadcast(reason, tx),
  });
}

describe("a settle refused after a possible broadcast", () => {
  it("exact EVM: a used nonce is the first attempt's transfer; any other refusal releases", async () => {
    expect(await settleAgain("exactEvm", refusal("invalid_exact_evm_nonce_already_used"))).toMatchObject({
      kind: "settled",
    });
    expect(await settleAgain("exactEvm", refusal("invalid_exact_evm_insufficient_funds"))).toMatchObject({
      kind: "refused",
    });
  });

  it("Solana: a duplicate or a failed simulation cannot tell a landed transaction from a lost one: kept pending", async () => {
    for (const reason of [
      "duplicate_settlement",
      "invalid_exact_svm_transaction_simulation_failed",
      "invalid_exact_svm_transaction_failed",
    ]) {
      expect(await settleAgain("exactSvm", refusal(reason)), reason).toMatchObject({ kind: "pending", reason });
    }
  });

  it("Solana: a transaction the chain ran and failed, named in the refusal, releases", async () => {
    expect(await settleAgain("exactSvm", refusal("invalid_exact_svm_transaction_failed", "5sig"))).toMatchObject({
      kind: "refused",
    });
  });

  it("Solana: settlement_pending then a duplicate keeps the first attempt's transaction pending", async () => {
    const answers = [
      {
        ok: true as const,
        reply: { success: false, errorReason: "settlement_pending", transaction: "5sig", network: "n" },
      },
      refusal("duplicate_settlement"),
    ];
    const outcome = await settleWithinBudget(async () => answers.shift() ?? refusal("x"), request, {
      budgetMs: 5000,
      afterBroadcast: (reason, tx) => schemes.exactSvm.afterBroadcast(reason, tx),
      sleep: async () => {},
    });
    expect(outcome).toMatchObject({ kind: "pending", tx: "5sig", reason: "duplicate_settlement" });
  });

  it("upto: no refusal can tell, so every one keeps the payment pending", async () => {
    expect(await settleAgain("upto", refusal("permit2_allowance_required", TX))).toMatchObject({ kind: "pending" });
  });

  it("settlement_pending without its transaction is an unknown outcome, first settle or not: pending, never released", async () => {
    const first = await settleWithinBudget(async () => refusal("settlement_pending"), request, {
      budgetMs: 1000,
      afterBroadcast: (reason, tx) => schemes.exactEvm.afterBroadcast(reason, tx),
    });
    expect(first).toMatchObject({ kind: "pending", tx: "", reason: "settlement_pending" });
    expect(await settleAgain("exactEvm", refusal("settlement_pending"))).toMatchObject({ kind: "pending", tx: "" });
  });

  it("a first settle (nothing broadcast before) takes every refusal as final", async () => {
    const outcome = await settleWithinBudget(async () => refusal("duplicate_settlement"), request, {
      budgetMs: 1000,
      afterBroadcast: (reason, tx) => schemes.exactSvm.afterBroadcast(reason, tx),
    });
    expect(outcome).toMatchObject({ kind: "refused", reason: "duplicate_settlement" });
  });
});
