/**
 * Exact decimal → atomic-unit conversion. Pure, no floats: "$0.001" on a 6-decimal asset is
 * "1000", and a price the asset cannot represent exactly is refused, never rounded.
 */

export type MoneyResult = { ok: true; atomic: string } | { ok: false; problem: string };

/** Plain decimal: digits, optional fraction. No sign, no exponent, no grouping commas. */
const DECIMAL = /^(0|[1-9][0-9]{0,14})(?:\.([0-9]+))?$/;
const ATOMIC = /^(0|[1-9][0-9]{0,77})$/;
const UINT256_MAX = (1n << 256n) - 1n;

/** `"$0.001"` → atomic units of an asset with `decimals` decimals. */
export function usdToAtomic(price: string, decimals: number): MoneyResult {
  if (!price.startsWith("$")) return { ok: false, problem: `"${price}" is not a dollar price like "$0.01"` };
  const match = DECIMAL.exec(price.slice(1));
  if (!match) {
    return { ok: false, problem: `"${price}" is not a plain decimal amount (no commas, signs or exponents)` };
  }
  const whole = match[1] ?? "0";
  const fraction = match[2] ?? "";
  if (fraction.length > decimals) {
    const kept = fraction.slice(decimals);
    if (/[^0]/.test(kept)) {
      return { ok: false, problem: `"${price}" has more precision than the asset's ${decimals} decimals` };
    }
  }
  const atomic = BigInt(whole + fraction.slice(0, decimals).padEnd(decimals, "0"));
  if (atomic === 0n) return { ok: false, problem: `"${price}" is zero; use "free" for free routes` };
  return { ok: true, atomic: atomic.toString() };
}

/** An atomic amount written out by the owner: a positive integer that fits uint256. */
export function checkAtomic(amount: string): MoneyResult {
  if (!ATOMIC.test(amount)) return { ok: false, problem: `"${amount}" is not a whole number of atomic units` };
  const value = BigInt(amount);
  if (value === 0n) return { ok: false, problem: `"${amount}" is zero; use "free" for free routes` };
  if (value > UINT256_MAX) return { ok: false, problem: `"${amount}" does not fit in uint256` };
  return { ok: true, atomic: value.toString() };
}
