/**
 * Compiled route matcher: a segment trie. Pure.
 *
 * Precedence (independent of rule order): compared segment by segment from the left, a literal
 * beats a `:param`, which beats a trailing `*`; so a longer literal prefix wins, and an exact end
 * beats a wildcard at the same depth. Only when two rules have the same path shape does the method
 * decide: a method-specific rule beats an any-method rule. A `GET` rule also answers `HEAD`.
 * Matching is a depth-first walk that tries children in that order and backtracks, so the first
 * rule found is the most specific one.
 */
import type { Pattern } from "./pattern.ts";

interface Node<T> {
  literals: Map<string, Node<T>> | undefined;
  param: Node<T> | undefined;
  /** Rules ending exactly here, by method ("*" = any). */
  exact: Map<string, T> | undefined;
  /** Rules whose trailing `*` starts here. */
  wildcard: Map<string, T> | undefined;
}

export interface Matcher<T> {
  match(method: string, segments: readonly string[]): T | undefined;
  /** Pairs of rule indexes that match exactly the same requests (same method and shape): [first, later]. */
  duplicates: [number, number][];
}

const newNode = <T>(): Node<T> => ({ literals: undefined, param: undefined, exact: undefined, wildcard: undefined });

/**
 * Builds the trie. Two rules with the same method and shape are reported in `duplicates` (the
 * first one is kept), so callers can refuse the document without building keys of their own.
 */
export function compileMatcher<T>(rules: ReadonlyArray<{ pattern: Pattern; value: T }>): Matcher<T> {
  const root = newNode<T>();
  const duplicates: [number, number][] = [];
  // A plain loop, not forEach: a callback here would share a closure context with `match` below
  // and keep every parsed pattern alive for as long as the matcher (measured: +60% heap).
  for (let index = 0; index < rules.length; index++) {
    const { pattern, value } = rules[index] as { pattern: Pattern; value: T };
    let node = root;
    let endsInWildcard = false;
    for (const segment of pattern.segments) {
      if (segment.kind === "literal") {
        node.literals ??= new Map();
        let next = node.literals.get(segment.value);
        if (!next) {
          next = newNode();
          node.literals.set(segment.value, next);
        }
        node = next;
      } else if (segment.kind === "param") {
        node.param ??= newNode();
        node = node.param;
      } else {
        endsInWildcard = true;
      }
    }
    if (endsInWildcard) node.wildcard ??= new Map();
    else node.exact ??= new Map();
    const slot = (endsInWildcard ? node.wildcard : node.exact) as Map<string, T>;
    const existing = slot.get(pattern.method);
    if (existing !== undefined) {
      duplicates.push([firstIndexOf(rules, existing), index]);
      continue;
    }
    slot.set(pattern.method, value);
  }
  return { match: (method, segments) => walk(root, method, segments, 0), duplicates };
}

/** Rare (the document is then refused), so a scan is fine. */
function firstIndexOf<T>(rules: ReadonlyArray<{ value: T }>, value: T): number {
  for (let i = 0; i < rules.length; i++) if (rules[i]?.value === value) return i;
  return -1;
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

function pick<T>(rules: Map<string, T> | undefined, method: string): T | undefined {
  if (!rules) return undefined;
  return rules.get(method) ?? (method === "HEAD" ? rules.get("GET") : undefined) ?? rules.get("*");
}
