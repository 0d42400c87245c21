/**
 * Compiled route matcher: a segment trie. Pure.
 *
 * Precedence (independent of rule order): compared segment by segment from the left, a literal
 * beats a `:param`, which beats a trailing `*`; so a longer literal prefix wins, and an exact end
 * beats a wildcard at the same depth. Only when two rules have the same path shape does the method
 * decide: a method-specific rule beats an any-method rule. A `GET` rule also answers `HEAD`.
 * Matching is a depth-first walk that tries children in that order and backtracks, so the first
 * rule found is the most specific one.
 *
 * Built for tables of 100k routes: rules ending at a node are a flat `[method, value, …]` list
 * (nodes rarely hold more than one, and a Map per node was most of the build's garbage), and the
 * builder hands a taken slot to its caller to merge instead of collecting pairs.
 */
import { isParam, isWildcard, type Pattern } from "./pattern.ts";

interface Node<T> {
  literals: Map<string, Node<T>> | undefined;
  param: Node<T> | undefined;
  /** Rules ending exactly here: method ("*" = any), value, method, value, … */
  exact: (string | T)[] | undefined;
  /** Rules whose trailing `*` starts here, laid out the same way. */
  wildcard: (string | T)[] | undefined;
}

export interface Matcher<T> {
  match(method: string, segments: readonly string[]): T | undefined;
}

export interface MatcherBuilder<T> {
  /**
   * Adds a rule. If a rule with the same method and shape is already there, its value is returned
   * and replaced by `merge(existing, value)`, or kept as it is without `merge`.
   */
  add(pattern: Pattern, value: T, merge?: (existing: T, added: T) => T): T | undefined;
  matcher: Matcher<T>;
}

const newNode = <T>(): Node<T> => ({ literals: undefined, param: undefined, exact: undefined, wildcard: undefined });

export function matcherBuilder<T>(): MatcherBuilder<T> {
  const root = newNode<T>();
  return {
    add: (pattern, value, merge) => add(root, pattern, value, merge),
    matcher: { match: (method, segments) => walk(root, method, segments, 0) },
  };
}

/**
 * Builds a matcher from a list; `duplicates` pairs rule indexes that match exactly the same
 * requests (same method and shape), [first, later], and only the first is kept.
 */
export function compileMatcher<T>(
  rules: ReadonlyArray<{ pattern: Pattern; value: T }>,
): Matcher<T> & { duplicates: [number, number][] } {
  const builder = matcherBuilder<T>();
  const duplicates: [number, number][] = [];
  for (let index = 0; index < rules.length; index++) {
    const { pattern, value } = rules[index] as { pattern: Pattern; value: T };
    const existing = builder.add(pattern, value);
    if (existing !== undefined) duplicates.push([rules.findIndex((r) => r.value === existing), index]);
  }
  return { match: builder.matcher.match, duplicates };
}

function add<T>(root: Node<T>, pattern: Pattern, value: T, merge?: (existing: T, added: T) => T): T | undefined {
  let node = root;
  let endsInWildcard = false;
  for (const segment of pattern.segments) {
    if (isWildcard(segment)) {
      endsInWildcard = true;
    } else if (isParam(segment)) {
      node.param ??= newNode();
      node = node.param;
    } else {
      node.literals ??= new Map();
      let next = node.literals.get(segment);
      if (!next) {
        next = newNode();
        node.literals.set(segment, next);
      }
      node = next;
    }
  }
  let slot: (string | T)[];
  if (endsInWildcard) slot = node.wildcard ??= [];
  else slot = node.exact ??= [];
  for (let i = 0; i < slot.length; i += 2) {
    if (slot[i] !== pattern.method) continue;
    const existing = slot[i + 1] as T;
    if (merge) slot[i + 1] = merge(existing, value);
    return existing;
  }
  slot.push(pattern.method, value);
  return undefined;
}

function walk<T>(node: Node<T>, method: string, segments: readonly string[], i: number): T | undefined {
  if (i === segments.length) {
    const found = pick(node.exact, method);
    if (found !== undefined) return found;
  } else {
    const literal = node.literals?.get(segments[i] as string);
    if (literal) {
      const found = walk(literal, method, segments, i + 1);
      if (found !== undefined) return found;
    }
    if (node.param) {
      const found = walk(node.param, method, segments, i + 1);
      if (found !== undefined) return found;
    }
  }
  return pick(node.wildcard, method);
}

/** The rule for this method, else (for HEAD) the GET rule, else the any-method rule. */
function pick<T>(rules: (string | T)[] | undefined, method: string): T | undefined {
  if (!rules) return undefined;
  let get: T | undefined;
  let any: T | undefined;
  for (let i = 0; i < rules.length; i += 2) {
    const m = rules[i];
    if (m === method) return rules[i + 1] as T;
    if (m === "GET") get = rules[i + 1] as T;
    else if (m === "*") any = rules[i + 1] as T;
  }
  return (method === "HEAD" ? get : undefined) ?? any;
}
