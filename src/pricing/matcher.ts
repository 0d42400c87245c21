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
import type { Pattern } from "./pattern";

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
}

const newNode = <T>(): Node<T> => ({ literals: undefined, param: undefined, exact: undefined, wildcard: undefined });

/** Builds the trie. Callers reject duplicate `pattern.key`s first; a later duplicate would win here. */
export function compileMatcher<T>(rules: ReadonlyArray<{ pattern: Pattern; value: T }>): Matcher<T> {
  const root = newNode<T>();
  for (const { pattern, value } of rules) {
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
    if (endsInWildcard) {
      node.wildcard ??= new Map();
      node.wildcard.set(pattern.method, value);
    } else {
      node.exact ??= new Map();
      node.exact.set(pattern.method, value);
    }
  }
  return { match: (method, segments) => walk(root, method, segments, 0) };
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
