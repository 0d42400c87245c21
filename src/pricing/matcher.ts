/**
 * Compiled route matcher: a map of all-literal routes, then a segment trie for the rest. Pure.
 *
 * Precedence (independent of rule order): compared segment by segment from the left, a literal
 * beats a `:param`, which beats a trailing `*`; so a longer literal prefix wins, and an exact end
 * beats a wildcard at the same depth. Only when two rules have the same path shape does the method
 * decide: a method-specific rule beats an any-method rule. A `GET` rule also answers `HEAD`.
 * Matching is a depth-first walk that tries children in that order and backtracks, so the first
 * rule found is the most specific one.
 *
 * A rule whose segments are all literals beats every other rule on its own path, so such rules sit
 * in one Map keyed by their pattern ("GET /a/b", or "/a/b" for any method), which is the usual
 * spelling: a big table's static routes cost one Map entry each, no split and no trie nodes.
 *
 * Built for tables of 100k routes: rules ending at a node are a flat `[method, value, …]` list
 * (nodes rarely hold more than one, and a Map per node was most of the build's garbage), and the
 * builder hands a taken slot to its caller to merge instead of collecting pairs.
 */
import { isParam, isWildcard, type Pattern } from "./pattern.ts";

interface Node<T> {
  /**
   * The first literal child, kept inline: most nodes of a big table lie on one route's own tail
   * and have just one, so a Map is made only for a second.
   */
  key: string | undefined;
  child: Node<T> | undefined;
  /** Every literal child, once there are two or more. */
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

type Merge<T> = (existing: T, added: T) => T;

export interface MatcherBuilder<T> {
  /**
   * Adds a rule. If a rule with the same method and shape is already there, its value is returned
   * and replaced by `merge(existing, value)`, or kept as it is without `merge`.
   */
  add(pattern: Pattern, value: T, merge?: Merge<T>): T | undefined;
  /** Adds an all-literal rule by its key (see `staticKey`), the same way. */
  addStatic(key: string, value: T, merge?: Merge<T>): T | undefined;
  matcher: Matcher<T>;
}

const newNode = <T>(): Node<T> => ({
  key: undefined,
  child: undefined,
  literals: undefined,
  param: undefined,
  exact: undefined,
  wildcard: undefined,
});

/** The static map's key of an all-literal pattern: "METHOD /a/b", or "/a/b" for any method. */
export const staticKey = (method: string, segments: readonly string[]) =>
  method === "*" ? `/${segments.join("/")}` : `${method} /${segments.join("/")}`;

export function matcherBuilder<T>(): MatcherBuilder<T> {
  const root = newNode<T>();
  const statics: Statics<T> = { rules: new Map(), depths: 0, methods: new Set() };
  const addStatic = (key: string, value: T, merge?: Merge<T>) => {
    const existing = statics.rules.get(key);
    if (existing === undefined) {
      statics.rules.set(key, value);
      const space = key.indexOf(" ");
      statics.methods.add(space < 0 ? "*" : key.slice(0, space));
      statics.depths |= 1 << depthBit(key.endsWith("/") ? 0 : slashes(key));
    } else if (merge) statics.rules.set(key, merge(existing, value));
    return existing;
  };
  return {
    add: (pattern, value, merge) =>
      pattern.segments.every(isLiteral)
        ? addStatic(staticKey(pattern.method, pattern.segments), value, merge)
        : add(root, pattern, value, merge),
    addStatic,
    matcher: {
      match: (method, segments) => matchStatic(statics, method, segments) ?? walk(root, method, segments, 0),
    },
  };
}

interface Statics<T> {
  rules: Map<string, T>;
  /** Bit d is set when some static rule has d segments (bit 31: 31 or more): most misses stop here. */
  depths: number;
  /** The methods static rules name ("*" for any), so a lookup that cannot hit is not made. */
  methods: Set<string>;
}

const isLiteral = (segment: string) => !isParam(segment) && !isWildcard(segment);
const depthBit = (depth: number) => Math.min(depth, 31);

function slashes(key: string): number {
  let n = 0;
  for (let i = key.indexOf("/"); i >= 0; i = key.indexOf("/", i + 1)) n++;
  return n;
}

/** The all-literal rule for this path: this method's, else (for HEAD) GET's, else any method's. */
function matchStatic<T>(statics: Statics<T>, method: string, segments: readonly string[]): T | undefined {
  if (((statics.depths >>> depthBit(segments.length)) & 1) === 0) return undefined;
  const own = statics.methods.has(method);
  const get = method === "HEAD" && statics.methods.has("GET");
  const any = statics.methods.has("*");
  if (!own && !get && !any) return undefined;
  const path = `/${segments.join("/")}`;
  return (
    (own ? statics.rules.get(`${method} ${path}`) : undefined) ??
    (get ? statics.rules.get(`GET ${path}`) : undefined) ??
    (any ? statics.rules.get(path) : undefined)
  );
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

function add<T>(root: Node<T>, pattern: Pattern, value: T, merge?: Merge<T>): T | undefined {
  let node = root;
  let endsInWildcard = false;
  for (const segment of pattern.segments) {
    if (isWildcard(segment)) {
      endsInWildcard = true;
    } else if (isParam(segment)) {
      node.param ??= newNode();
      node = node.param;
    } else {
      node = literalChild(node, segment);
    }
  }
  const slot = endsInWildcard ? node.wildcard : node.exact;
  if (!slot) {
    // Sized to the one rule: `[]` then push reserves 17 slots, and 100k of those are garbage.
    if (endsInWildcard) node.wildcard = [pattern.method, value];
    else node.exact = [pattern.method, value];
    return undefined;
  }
  for (let i = 0; i < slot.length; i += 2) {
    if (slot[i] !== pattern.method) continue;
    const existing = slot[i + 1] as T;
    if (merge) slot[i + 1] = merge(existing, value);
    return existing;
  }
  slot.push(pattern.method, value);
  return undefined;
}

/** The literal child for `segment`, made if it is not there yet. */
function literalChild<T>(node: Node<T>, segment: string): Node<T> {
  if (node.key === undefined) {
    node.key = segment;
    node.child = newNode();
    return node.child;
  }
  if (node.key === segment) return node.child as Node<T>;
  if (!node.literals) {
    node.literals = new Map();
    node.literals.set(node.key, node.child as Node<T>);
  }
  let next = node.literals.get(segment);
  if (!next) {
    next = newNode();
    node.literals.set(segment, next);
  }
  return next;
}

function walk<T>(node: Node<T>, method: string, segments: readonly string[], i: number): T | undefined {
  if (i === segments.length) {
    const found = pick(node.exact, method);
    if (found !== undefined) return found;
  } else {
    const segment = segments[i] as string;
    const literal = node.literals ? node.literals.get(segment) : node.key === segment ? node.child : undefined;
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
