/**
 * What an `upto` payment is charged: the origin reports an amount in the official
 * `Settlement-Overrides` response header (`{"amount": …}`), spelled as atomic units ("1500"),
 * dollars in the asset ("$0.0015") or a percentage of the maximum ("25%", at most two decimals,
 * rounded down, as `@x402/core`'s server reads it). Pure, no floats.
 */

export type ChargeResult = { ok: true; atomic: bigint } | { ok: false; problem: string };

const ATOMIC = /^(?:0|[1-9][0-9]{0,77})$/;
const DOLLARS = /^\$([0-9]{1,15})(?:\.([0-9]+))?$/;
const PERCENT = /^([0-9]{1,3})(?:\.([0-9]{1,2}))?%$/;

/** The spelling's atomic amount, for an asset of `decimals` and a maximum of `maximum`; may exceed it. */
export function resolveCharge(spelling: string, maximum: bigint, decimals: number): ChargeResult {
  if (ATOMIC.test(spelling)) return { ok: true, atomic: BigInt(spelling) };
  const dollars = DOLLARS.exec(spelling);
  if (dollars) {
    const whole = dollars[1] ?? "0";
    const fraction = dollars[2] ?? "";
    if (/[^0]/.test(fraction.slice(decimals))) {
      return { ok: false, problem: `"${spelling}" has more precision than the asset's ${decimals} decimals` };
    }
    return { ok: true, atomic: BigInt(whole + fraction.slice(0, decimals).padEnd(decimals, "0")) };
  }
  const percent = PERCENT.exec(spelling);
  if (percent) {
    const hundredths = BigInt(percent[1] ?? "0") * 100n + BigInt((percent[2] ?? "").padEnd(2, "0"));
    return { ok: true, atomic: (maximum * hundredths) / 10_000n };
  }
  return {
    ok: false,
    problem: `"${spelling}" is not atomic units ("1500"), dollars ("$0.002") or a percentage of the maximum ("25%")`,
  };
}

/** The charge an origin reported in `Settlement-Overrides`, or why it cannot be read. */
export function reportedCharge(header: string, maximum: bigint, decimals: number): ChargeResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(header);
  } catch {
    return { ok: false, problem: "not JSON" };
  }
  const amount = (parsed as { amount?: unknown } | null)?.amount;
  if (typeof amount !== "string") return { ok: false, problem: 'no "amount" string' };
  return resolveCharge(amount, maximum, decimals);
}
