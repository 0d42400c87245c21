import { describe, expect, it } from "vitest";
import { checkAtomic, usdToAtomic } from "../../src/pricing/money.ts";

describe("usdToAtomic", () => {
  it.each([
    ["$0.001", 6, "1000"],
    ["$1", 6, "1000000"],
    ["$1.5", 6, "1500000"],
    ["$0.000001", 6, "1"],
    ["$0.0010000000", 6, "1000"],
    ["$123456.789", 6, "123456789000"],
    ["$0.1", 18, "100000000000000000"],
  ])("converts %s at %i decimals to %s exactly", (price, decimals, atomic) => {
    expect(usdToAtomic(price, decimals)).toEqual({ ok: true, atomic });
  });

  it.each([
    ["$1,000", "not a plain decimal"],
    ["$0.0000001", "more precision than the asset's 6 decimals"],
    ["$-1", "not a plain decimal"],
    ["$NaN", "not a plain decimal"],
    ["$1e3", "not a plain decimal"],
    ["$.5", "not a plain decimal"],
    ["$01", "not a plain decimal"],
    ["$ 1", "not a plain decimal"],
    ["$0", "zero"],
    ["$0.000", "zero"],
    ["1.00", "not a dollar price"],
    ["$Infinity", "not a plain decimal"],
  ])("refuses %s (%s)", (price, problem) => {
    const result = usdToAtomic(price, 6);
    expect(result.ok).toBe(false);
    expect(result.ok ? "" : result.problem).toContain(problem);
  });
});

describe("checkAtomic", () => {
  it("accepts positive integers up to uint256", () => {
    expect(checkAtomic("1000")).toEqual({ ok: true, atomic: "1000" });
    expect(checkAtomic(((1n << 256n) - 1n).toString()).ok).toBe(true);
  });
  it.each(["0", "-1", "1.5", "01", "1e6", "", (1n << 256n).toString()])("refuses %s", (amount) => {
    expect(checkAtomic(amount).ok).toBe(false);
  });
});
