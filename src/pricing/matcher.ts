/**
 * Compiled route matcher: a table of all-literal routes, then a segment trie for the rest. Pure.
 *
 * Precedence (independent of rule order): compared segment by segment from the left, a literal
 * beats a `:param`, which beats a trailing `*`; so a longer literal prefix wins, and an exact end
 * beats a wildcard at the same depth. Only when two rules have the same path shape does the method
 * decide: a method-specific rule beats an any-method rule. A `GET` rule also answers `HEAD`.
 * Matching is a depth-first walk that tries children in that order and backtracks, so the first
 * rule found is the most specific one.
 *
 * A rule whose segments are all literals beats every other rule on its own path, so such rules sit
 * in one table keyed by their pattern ("GET /a/b", or "/a/b" for any method): the usual spelling,
 * so a big table's static routes cost one entry each and are never split.
 *
 * Built for tables of 100k routes (`npm run bench:matcher`): trie nodes are integer ids into a
 * few flat arrays, and every literal edge is one entry of a single StringTable tagged with its
 * parent's id, so a route adds no objects but its new edges' key strings. A node's first rule is
 * kept inline; the rare node with rules for several methods keeps the rest in a list.
 */
import { isParam, isWildcard, type Pattern, usualMethod } from "./pattern.ts";
import { StringTable } from "./string-table.ts";

export interface Matcher<T> {
  match(method: string, segments: readonly string[]): T | undefined;
}

type Merge<T> = (existing: T, added: T) => T;

/**
 * Each `add…` adds a rule. If a rule with the same method and shape is already there, its value is
 * returned and replaced by `merge(existing, value)`, or kept as it is without `merge`.
 */
export interface MatcherBuilder<T> {
  add(pattern: Pattern, value: T, merge?: Merge<T>): T | undefined;
  /** An all-literal rule by its key (`staticKey`). */
  addStatic(key: string, value: T, merge?: Merge<T>): T | undefined;
  /** A valid pattern in the usual spelling with a parameter or wildcard (`usualPattern` = "trie"). */
  addUsual(source: string, value: T, merge?: Merge<T>): T | undefined;
  matcher: Matcher<T>;
}

/** The static table's key of an all-literal pattern: "METHOD /a/b", or "/a/b" for any method. */
export const staticKey = (method: string, segments: readonly string[]) =>
  method === "*" ? `/${segments.join("/")}` : `${method} /${segments.join("/")}`;

/** `expectedRoutes` sizes the tables up front; they grow past it. */
export function matcherBuilder<T>(expectedRoutes = 8): MatcherBuilder<T> {
  const trie = new Trie<T>(expectedRoutes);
  const statics = new Statics<T>(expectedRoutes);
  return {
    add: (pattern, value, merge) =>
      pattern.segments.every(isLiteral)
        ? statics.add(staticKey(pattern.method, pattern.segments), value, merge)
        : trie.add(pattern, value, merge),
    addStatic: (key, value, merge) => statics.add(key, value, merge),
    addUsual: (source, value, merge) => trie.addUsual(source, value, merge),
    matcher: {
      match: (method, segments) => statics.match(method, segments) ?? trie.match(method, segments),
    },
  };
}

/**
 * Builds a matcher from a list; `duplicates` pairs rule indexes that match exactly the same
 * requests (same method and shape), [first, later], and only the first is kept.
 */
export function compileMatcher<T>(
  rules: ReadonlyArray<{ pattern: Pattern; value: T }>,
): Matcher<T> & { duplicates: [number, number][] } {
  const builder = matcherBuilder<T>(rules.length);
  const duplicates: [number, number][] = [];
  for (let index = 0; index < rules.length; index++) {
    const { pattern, value } = rules[index] as { pattern: Pattern; value: T };
    const existing = builder.add(pattern, value);
    if (existing !== undefined) duplicates.push([rules.findIndex((r) => r.value === existing), index]);
  }
  return { match: builder.matcher.match, duplicates };
}

const isLiteral = (segment: string) => !isParam(segment) && !isWildcard(segment);

class Statics<T> {
  private readonly keys: StringTable;
  private readonly values: T[] = [];
  /** Bit d is set when a static rule has d segments (bit 31: 31 or more): most misses stop here. */
  private depths = 0;
  /** The methods static rules name ("*" for any), so a lookup that cannot hit is not made. */
  private readonly methods = new Set<string>();

  constructor(expected: number) {
    this.keys = new StringTable(expected);
  }

  add(key: string, value: T, merge?: Merge<T>): T | undefined {
    const before = this.keys.size;
    const id = this.keys.add(0, key);
    if (this.keys.size > before) {
      this.values.push(value);
      this.methods.add(usualMethod(key));
      this.depths |= 1 << depthBit(key.endsWith("/") ? 0 : slashes(key));
      return undefined;
    }
    const existing = this.values[id] as T;
    if (merge) this.values[id] = merge(existing, value);
    return existing;
  }

  /** The all-literal rule for this path: this method's, else (for HEAD) GET's, else any method's. */
  match(method: string, segments: readonly string[]): T | undefined {
    if (((this.depths >>> depthBit(segments.length)) & 1) === 0) return undefined;
    const own = this.methods.has(method);
    const get = method === "HEAD" && this.methods.has("GET");
    const any = this.methods.has("*");
    if (!own && !get && !any) return undefined;
    const path = `/${segments.join("/")}`;
    return (
      (own ? this.get(`${method} ${path}`) : undefined) ??
      (get ? this.get(`GET ${path}`) : undefined) ??
      (any ? this.get(path) : undefined)
    );
  }

  private get(key: string): T | undefined {
    const id = this.keys.find(0, key);
    return id < 0 ? undefined : this.values[id];
  }
}

const depthBit = (depth: number) => Math.min(depth, 31);

function slashes(key: string): number {
  let n = 0;
  for (let i = key.indexOf("/"); i >= 0; i = key.indexOf("/", i + 1)) n++;
  return n;
}

/** Node 0 is the root; 0 as a child id means "none" (the root is nobody's child). */
class Trie<T> {
  /** Literal edges, tagged with the parent node's id; `edgeChild[edge id]` is the child. */
  private readonly edges: StringTable;
  private readonly edgeChild: number[] = [];
  /**
   * Two per node: its `:param` child, then the node holding the rules whose trailing `*` starts
   * here. A typed array: no garbage and nothing for the collector to trace.
   */
  private links: Int32Array;
  private nodes = 0;
  /** A node's first rule: method ("*" = any) and value. */
  private readonly method: (string | undefined)[] = [];
  private readonly value: (T | undefined)[] = [];
  /** The few nodes with rules for more methods: method, value, method, value, … */
  private readonly more = new Map<number, (string | T)[]>();

  constructor(expected: number) {
    this.edges = new StringTable(expected);
    this.links = new Int32Array(2 * Math.max(16, expected));
    this.newNode();
  }

  add(pattern: Pattern, value: T, merge?: Merge<T>): T | undefined {
    let node = 0;
    for (const segment of pattern.segments) {
      if (isWildcard(segment)) node = this.starOf(node);
      else if (isParam(segment)) node = this.paramOf(node);
      else node = this.childOf(node, segment, 0, segment.length);
    }
    return this.setRule(node, pattern.method, value, merge);
  }

  addUsual(source: string, value: T, merge?: Merge<T>): T | undefined {
    let node = 0;
    for (let from = source.indexOf("/") + 1; from <= source.length; ) {
      let end = source.indexOf("/", from);
      if (end < 0) end = source.length;
      const first = source.charCodeAt(from);
      if (first === 0x3a /* : */) node = this.paramOf(node);
      else if (first === 0x2a /* * */ && end - from === 1) node = this.starOf(node);
      else node = this.childOf(node, source, from, end);
      from = end + 1;
    }
    return this.setRule(node, usualMethod(source), value, merge);
  }

  match(method: string, segments: readonly string[]): T | undefined {
    return this.walk(0, method, segments, 0);
  }

  private walk(node: number, method: string, segments: readonly string[], i: number): T | undefined {
    if (i === segments.length) {
      const found = this.pick(node, method);
      if (found !== undefined) return found;
    } else {
      const edge = this.edges.find(node, segments[i] as string);
      if (edge >= 0) {
        const found = this.walk(this.edgeChild[edge] as number, method, segments, i + 1);
        if (found !== undefined) return found;
      }
      const param = this.links[2 * node] as number;
      if (param !== 0) {
        const found = this.walk(param, method, segments, i + 1);
        if (found !== undefined) return found;
      }
    }
    const star = this.links[2 * node + 1] as number;
    return star === 0 ? undefined : this.pick(star, method);
  }

  /** The rule for this method, else (for HEAD) the GET rule, else the any-method rule. */
  private pick(node: number, method: string): T | undefined {
    const first = this.method[node];
    if (first === undefined) return undefined;
    if (first === method) return this.value[node];
    let get = first === "GET" ? this.value[node] : undefined;
    let any = first === "*" ? this.value[node] : undefined;
    const more = this.more.get(node);
    if (more) {
      for (let i = 0; i < more.length; i += 2) {
        const m = more[i];
        if (m === method) return more[i + 1] as T;
        if (m === "GET") get = more[i + 1] as T;
        else if (m === "*") any = more[i + 1] as T;
      }
    }
    return (method === "HEAD" ? get : undefined) ?? any;
  }

  private setRule(node: number, method: string, value: T, merge?: Merge<T>): T | undefined {
    const first = this.method[node];
    if (first === undefined) {
      this.method[node] = method;
      this.value[node] = value;
      return undefined;
    }
    if (first === method) {
      const existing = this.value[node] as T;
      if (merge) this.value[node] = merge(existing, value);
      return existing;
    }
    const more = this.more.get(node);
    if (!more) {
      this.more.set(node, [method, value]);
      return undefined;
    }
    for (let i = 0; i < more.length; i += 2) {
      if (more[i] !== method) continue;
      const existing = more[i + 1] as T;
      if (merge) more[i + 1] = merge(existing, value);
      return existing;
    }
    more.push(method, value);
    return undefined;
  }

  private childOf(node: number, text: string, start: number, end: number): number {
    const before = this.edges.size;
    const edge = this.edges.add(node, text, start, end);
    if (this.edges.size > before) this.edgeChild.push(this.newNode());
    return this.edgeChild[edge] as number;
  }

  private paramOf(node: number): number {
    return this.link(2 * node);
  }

  private starOf(node: number): number {
    return this.link(2 * node + 1);
  }

  /** The node `links[at]` points to, made if there is none yet. */
  private link(at: number): number {
    if (this.links[at] === 0) {
      const made = this.newNode(); // may replace `links`
      this.links[at] = made;
    }
    return this.links[at] as number;
  }

  private newNode(): number {
    if (2 * this.nodes === this.links.length) {
      const grown = new Int32Array(this.links.length * 2);
      grown.set(this.links);
      this.links = grown;
    }
    this.method.push(undefined);
    this.value.push(undefined);
    return this.nodes++;
  }
}
