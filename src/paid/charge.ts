/**
 * What an `upto` payment is charged, from the origin's successful answer: its
 * `Settlement-Overrides` header (`{"amount": …}`, the official shape), else the route's
 * `defaultCharge`, else the maximum the buyer authorised. Never more than that maximum: a larger
 * report is capped there and logged, and so is one that cannot be read. Pure apart from the log.
 */
import { HEADER } from "../constants.ts";
import { reportedCharge, resolveCharge } from "../pricing/charge.ts";
import { meteredKey, type UptoRequirement } from "../pricing/document.ts";
import type { Paid } from "./paid.ts";

export function chargeOf(paid: Paid, requirement: UptoRequirement, response: Response): string {
  const maximum = BigInt(requirement.amount);
  const metered = paid.p.route.metered?.get(meteredKey(requirement));
  const decimals = metered?.decimals ?? 6;
  const log = (event: string, detail: Record<string, unknown>) =>
    paid.rt.log(event, { route: paid.p.route.id, maximum: requirement.amount, ...detail });
  let charge = maximum;
  const header = response.headers.get(HEADER.settlementOverrides);
  const spelled = header ?? metered?.defaultCharge;
  if (spelled !== undefined) {
    const read =
      header !== null ? reportedCharge(header, maximum, decimals) : resolveCharge(spelled, maximum, decimals);
    if (read.ok) charge = read.atomic;
    else log("upto_charge_unreadable", { reported: header, problem: read.problem });
  }
  if (charge > maximum) {
    log("upto_charge_capped", { reported: String(charge) });
    charge = maximum;
  }
  return String(charge);
}
