/**
 * Dynamic prices: rules that share a method and path shape, told apart by conditions on request
 * fields (query parameters, headers, top-level JSON body fields), and prices per unit of a numeric
 * field. Pure.
 *
 * A group is every rule with the same method and path shape. Within a group:
 * - a request matches a rule when every condition holds (the field is present with one of the
 *   listed values);
 * - the most specific matching rule wins: rule A is more specific than rule B when A has every
 *   field B has, with no value B does not allow. The compiler refuses two rules that one request
 *   could match when neither is more specific, so the winner never depends on order;
 * - a request no rule matches is refused (`no_matching_price`); it never falls through to a less
 *   specific path or to `defaults.unmatched`, so a misspelt field cannot make a priced call free.
 * Reading the fields can itself fail (a repeated field, an unreadable body): see request-fields.ts.
 */
import { type Failure, fail } from "../errors.ts";
import type { Requirement, RouteRule } from "./document.ts";

export type FieldSource = "query" | "header" | "body";
export type Scalar = string | number | boolean;

export interface Field {
  source: FieldSource;
  /** Header names are lower-case. */
  name: string;
  /** `query.model`, `header.x-tier`, `body.service`: unique per field, and how messages name it. */
  key: string;
}

export interface Condition {
  field: Field;
  values: readonly Scalar[];
}

export interface PerUnit {
  field: Field;
  min: number;
  max: number;
}

/**
 * Every rule of one method and path shape, most specific first, when there is more than one or
 * the one has `when` or `per`. A lone plain rule is stored in the matcher as itself: most routes
 * of a big table are, and two objects fewer per route is ~15% of its compile time and memory.
 */
export interface RouteGroup {
  rules: RouteRule[];
  /** Every field any rule of the group reads. */
  fields: Field[];
}

/** What the matcher returns. */
export type RouteEntry = RouteRule | RouteGroup;

export const isGroup = (entry: RouteEntry): entry is RouteGroup => "fields" in entry;

export const field = (source: FieldSource, name: string): Field => {
  const normalised = source === "header" ? name.toLowerCase() : name;
  return { source, name: normalised, key: `${source}.${normalised}` };
};

/** Field values read from one request, by `Field.key`; a missing field has no entry. */
export type FieldValues = ReadonlyMap<string, unknown>;

export type Resolved = { ok: true; route: RouteRule } | { ok: false; failure: Failure };

/**
 * The rule this request buys, with its price for per-unit rules. `values` must hold every field
 * in `group.fields`.
 */
export function resolveRule(group: RouteGroup, values: FieldValues): Resolved {
  for (const rule of group.rules) {
    if (rule.when && !rule.when.every((c) => holds(c, values.get(c.field.key)))) continue;
    return rule.per ? pricePerUnit(rule, rule.per, values.get(rule.per.field.key)) : { ok: true, route: rule };
  }
  const asked = group.fields.map((f) => f.key).join(", ");
  return { ok: false, failure: fail("no_matching_price", "No price is set for these request values.", asked) };
}

const holds = (condition: Condition, value: unknown) =>
  value !== undefined && condition.values.includes(value as Scalar);

const CANONICAL_COUNT = /^(?:0|[1-9][0-9]{0,14})$/;

function pricePerUnit(rule: RouteRule, per: PerUnit, value: unknown): Resolved {
  if (value === undefined) {
    return {
      ok: false,
      failure: fail(
        "pricing_input_missing",
        `This route is priced per unit of ${per.field.key}; send it.`,
        per.field.key,
      ),
    };
  }
  const count =
    typeof value === "number" ? value : typeof value === "string" && CANONICAL_COUNT.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(count) || count < per.min || count > per.max) {
    return {
      ok: false,
      failure: fail(
        "pricing_input_invalid",
        `${per.field.key} must be a whole number from ${per.min} to ${per.max}, written plainly.`,
        per.field.key,
      ),
    };
  }
  const units = BigInt(count);
  const accepts = rule.accepts.map((r): Requirement => ({ ...r, amount: (BigInt(r.amount) * units).toString() }));
  return { ok: true, route: { ...rule, accepts } };
}

/**
 * Orders a group most specific first and returns the pairs one request could match with neither
 * more specific and no third rule for exactly their overlap (`ambiguous`), or with the same
 * conditions (`same`), as indexes into `rules` as given.
 *
 * Why the first match in this order is the right one: the rules a request matches are closed under
 * "both" (for two it matches with neither narrower, the rule for their overlap exists and matches
 * too), so among them one narrows all the others, and the order puts every rule before the rules
 * it narrows. Only pairs that can overlap are compared (`candidatePairs`).
 */
export function orderGroup(rules: RouteRule[]): {
  ordered: RouteRule[];
  ambiguous: [number, number][];
  same: [number, number][];
} {
  const ambiguous: [number, number][] = [];
  const same: [number, number][] = [];
  for (const [i, j] of candidatePairs(rules)) {
    const a = rules[i]?.when ?? [];
    const b = rules[j]?.when ?? [];
    if (!overlap(a, b)) continue;
    const aNarrower = narrows(a, b);
    const bNarrower = narrows(b, a);
    if (aNarrower && bNarrower) same.push([i, j]);
    else if (!aNarrower && !bNarrower && !rules.some((r) => equivalent(r.when ?? [], meet(a, b)))) {
      ambiguous.push([i, j]);
    }
  }
  // Narrower has at least as many fields, and with as many, fewer values in all: this order puts
  // every rule before the ones it narrows.
  const ordered = [...rules].sort((x, y) => weight(y) - weight(x) || valueCount(x) - valueCount(y));
  return { ordered, ambiguous, same };
}

/**
 * The pairs of rules that might overlap, each once (i < j). Rules that test the group's most
 * common field with no value in common never overlap, so only rules sharing a value of that field
 * are paired, plus every pair involving a rule that does not test it. A thousand variants of one
 * endpoint priced by `service` are then checked in linear time, not a million comparisons.
 */
function candidatePairs(rules: readonly RouteRule[]): [number, number][] {
  const counts = new Map<string, number>();
  for (const rule of rules)
    for (const c of rule.when ?? []) counts.set(c.field.key, (counts.get(c.field.key) ?? 0) + 1);
  let key: string | undefined;
  for (const [k, n] of counts) if (key === undefined || n > (counts.get(key) ?? 0)) key = k;

  const without: number[] = [];
  const byValue = new Map<Scalar, number[]>();
  rules.forEach((rule, i) => {
    const condition = rule.when?.find((c) => c.field.key === key);
    if (!condition) without.push(i);
    else {
      for (const value of condition.values) {
        const bucket = byValue.get(value);
        if (bucket) bucket.push(i);
        else byValue.set(value, [i]);
      }
    }
  });
  const seen = new Set<number>();
  const pairs: [number, number][] = [];
  const pair = (x: number, y: number) => {
    const [i, j] = x < y ? [x, y] : [y, x];
    const id = i * rules.length + j;
    if (i === j || seen.has(id)) return;
    seen.add(id);
    pairs.push([i, j]);
  };
  for (const i of without) for (let j = 0; j < rules.length; j++) pair(i, j);
  for (const bucket of byValue.values()) for (const i of bucket) for (const j of bucket) pair(i, j);
  return pairs.sort((p, q) => p[0] - q[0] || p[1] - q[1]);
}

const weight = (rule: RouteRule) => rule.when?.length ?? 0;
const valueCount = (rule: RouteRule) => (rule.when ?? []).reduce((n, c) => n + c.values.length, 0);

/** Could one request satisfy both? Only if every field both test has a value both allow. */
function overlap(a: readonly Condition[], b: readonly Condition[]): boolean {
  for (const ca of a) {
    const cb = b.find((c) => c.field.key === ca.field.key);
    if (cb && !ca.values.some((v) => cb.values.includes(v))) return false;
  }
  return true;
}

/** Is every request that satisfies `a` sure to satisfy `b`? */
function narrows(a: readonly Condition[], b: readonly Condition[]): boolean {
  return b.every((cb) => {
    const ca = a.find((c) => c.field.key === cb.field.key);
    return ca?.values.every((v) => cb.values.includes(v)) === true;
  });
}

/** The conditions of "both a and b": every field of either, with the values both allow. */
function meet(a: readonly Condition[], b: readonly Condition[]): Condition[] {
  const both = a.map((ca) => {
    const cb = b.find((c) => c.field.key === ca.field.key);
    return cb ? { field: ca.field, values: ca.values.filter((v) => cb.values.includes(v)) } : ca;
  });
  return [...both, ...b.filter((cb) => !a.some((ca) => ca.field.key === cb.field.key))];
}

const equivalent = (a: readonly Condition[], b: readonly Condition[]) => narrows(a, b) && narrows(b, a);

/** Every field a group's rules read, each once. */
export function groupFields(rules: readonly RouteRule[]): Field[] {
  const byKey = new Map<string, Field>();
  for (const rule of rules) {
    for (const c of rule.when ?? []) byKey.set(c.field.key, c.field);
    if (rule.per) byKey.set(rule.per.field.key, rule.per.field);
  }
  return [...byKey.values()];
}
