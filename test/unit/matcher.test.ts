import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compilePricing } from "../../src/pricing/document.ts";
import { compileMatcher, staticKey } from "../../src/pricing/matcher.ts";
import { parsePattern, usualPattern } from "../../src/pricing/pattern.ts";

const RULES = [
  "GET /api/weather/paris",
  "/api/weather/paris",
  "GET /api/weather/:city",
  "/api/weather/:city",
  "POST /api/weather/:city",
  "/api/weather/*",
  "/api/*",
  "GET /api/:section/today",
  "/*",
  "/",
  "DELETE /api/weather/*",
];

function compile(sources: string[]) {
  return compileMatcher(
    sources.map((source) => {
      const parsed = parsePattern(source);
      if (!parsed.ok) throw new Error(parsed.problem);
      return { pattern: parsed.pattern, value: source };
    }),
  );
}

const split = (path: string) =>
  path === "/"
    ? []
    : path
        .slice(1)
        .split("/")
        .filter((s, i, a) => s !== "" || i < a.length - 1);

const CASES: [string, string, string | undefined][] = [
  ["GET", "/api/weather/paris", "GET /api/weather/paris"],
  ["HEAD", "/api/weather/paris", "GET /api/weather/paris"],
  ["PUT", "/api/weather/paris", "/api/weather/paris"],
  ["GET", "/api/weather/oslo", "GET /api/weather/:city"],
  ["POST", "/api/weather/oslo", "POST /api/weather/:city"],
  ["PATCH", "/api/weather/oslo", "/api/weather/:city"],
  ["GET", "/api/weather/oslo/hourly", "/api/weather/*"],
  ["DELETE", "/api/weather/oslo/hourly", "DELETE /api/weather/*"],
  ["GET", "/api/weather", "/api/weather/*"],
  ["GET", "/api/news/today", "GET /api/:section/today"],
  ["POST", "/api/news/today", "/api/*"],
  ["GET", "/api", "/api/*"],
  ["GET", "/other", "/*"],
  ["GET", "/", "/"],
];

describe("matcher precedence", () => {
  it.each(CASES)("%s %s → %s", (method, path, expected) => {
    expect(compile(RULES).match(method, split(path))).toBe(expected);
  });

  it("backtracks from a literal branch that has no rule for the rest", () => {
    const m = compile(["/a/b/c", "/a/:x/d"]);
    expect(m.match("GET", ["a", "b", "d"])).toBe("/a/:x/d");
  });

  it("reports rules that match exactly the same requests, keeping the first", () => {
    const m = compile(["GET /a/:x", "/b", "GET /a/:y", "GET /a/*", "POST /a/:z"]);
    expect(m.duplicates).toEqual([[0, 2]]);
    expect(m.match("GET", ["a", "1"])).toBe("GET /a/:x");
  });

  it("finds nothing when no rule matches", () => {
    expect(compile(["/a", "GET /b"]).match("POST", ["b"])).toBeUndefined();
  });

  it("never changes the winner when the rules are shuffled", () => {
    fc.assert(
      fc.property(fc.shuffledSubarray(RULES, { minLength: RULES.length }), (shuffled) => {
        const matcher = compile(shuffled);
        for (const [method, path, expected] of CASES) expect(matcher.match(method, split(path))).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });

  it("agrees with a brute-force ranking on random rule sets and paths", () => {
    const seg = fc.constantFrom("a", "b", ":p", "*");
    const rule = fc.tuple(fc.constantFrom("", "GET ", "POST "), fc.array(seg, { maxLength: 3 })).map(([m, segs]) => {
      const star = segs.indexOf("*");
      const path = star >= 0 ? segs.slice(0, star + 1) : segs;
      return `${m}/${path.join("/")}`;
    });
    const request = fc.tuple(
      fc.constantFrom("GET", "POST", "PUT"),
      fc.array(fc.constantFrom("a", "b", "c"), { maxLength: 4 }),
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(rule, { selector: (r) => parsePatternKey(r), maxLength: 12 }),
        request,
        (rules, [method, segs]) => {
          const expected = bruteForce(rules, method, segs);
          expect(compile(rules).match(method, segs)).toBe(expected);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe("patterns in the usual spelling (read without splitting)", () => {
  const spelling = fc
    .tuple(
      fc.constantFrom("", "GET ", "POST ", "get ", "GET  ", " "),
      fc.array(fc.constantFrom("a", "b", ":p", ":_x1", ":1", ":", ":a-b", "*", "%41", "%2F", ".", "", "a:b", "*x"), {
        maxLength: 4,
      }),
      fc.boolean(),
    )
    .map(([method, segs, slash]) => `${method}/${segs.join("/")}${slash ? "/" : ""}`);

  it("agree with the parser: valid, static exactly when all-literal, with the parser's key", () => {
    fc.assert(
      fc.property(spelling, (source) => {
        const usual = usualPattern(source);
        const parsed = parsePattern(source);
        if (usual !== undefined) {
          if (!parsed.ok) throw new Error(`${source}: ${parsed.problem}`);
          const literal = parsed.pattern.segments.every((s) => kindOf(s) === "literal");
          expect(usual).toBe(literal ? "static" : "trie");
          if (literal) expect(staticKey(parsed.pattern.method, parsed.pattern.segments)).toBe(source);
        }
        // Every valid pattern in the usual spelling takes the fast path.
        const plain =
          /^(?:[A-Z]+ )?\/[^\s]*$/.test(source) && (source.endsWith(" /") || source === "/" || !source.endsWith("/"));
        if (parsed.ok && plain) expect(usual).toBeDefined();
      }),
      { numRuns: 3000 },
    );
  });

  it("a compiled document matches like the matcher built from parsed patterns", () => {
    const rule = fc
      .tuple(
        fc.constantFrom("", "GET ", "POST ", "HEAD "),
        fc.array(fc.constantFrom("a", "b", ":p", "*"), { maxLength: 3 }),
      )
      .map(([m, segs]) => {
        const star = segs.indexOf("*");
        return `${m}/${(star >= 0 ? segs.slice(0, star + 1) : segs).join("/")}`;
      });
    const request = fc.tuple(
      fc.constantFrom("GET", "HEAD", "POST", "PUT"),
      fc.array(fc.constantFrom("a", "b", "c"), { maxLength: 4 }),
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(rule, { selector: parsePatternKey, maxLength: 12 }),
        request,
        (rules, [method, segs]) => {
          const result = compilePricing(
            {
              version: 1,
              defaults: { network: "eip155:84532", payTo: "0x90F79bf6EB2c4f870365E785982E1f101E93b906" },
              routes: rules.map((match, i) => ({ id: `r${i}`, match, price: "$0.01" })),
            },
            "v",
            { network: undefined, payTo: undefined },
          );
          if (!result.ok) throw new Error(JSON.stringify(result.problems));
          const found = result.table.matcher.match(method, segs);
          const expected = compile(rules).match(method, segs);
          expect(found && "match" in found ? found.match : found).toBe(expected);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

/** Method and shape without param names: two rules with the same key match the same requests. */
function parsePatternKey(source: string): string {
  const parsed = parsePattern(source);
  if (!parsed.ok) return source;
  const shape = parsed.pattern.segments.map((s) => (kindOf(s) === "literal" ? s : kindOf(s) === "param" ? ":" : "*"));
  return `${parsed.pattern.method} /${shape.join("/")}`;
}

const kindOf = (s: string) => (s === "*" ? "wildcard" : s.startsWith(":") ? "param" : "literal");

/** Independent statement of the precedence: rank every matching rule, take the best. */
function bruteForce(rules: string[], method: string, segs: string[]): string | undefined {
  let best: { rank: number[]; rule: string } | undefined;
  for (const rule of rules) {
    const parsed = parsePattern(rule);
    if (!parsed.ok) continue;
    const p = parsed.pattern;
    if (p.method !== "*" && p.method !== method && !(method === "HEAD" && p.method === "GET")) continue;
    const rank: number[] = [];
    let ok = true;
    let i = 0;
    for (const s of p.segments) {
      if (kindOf(s) === "wildcard") {
        rank.push(1);
        i = segs.length;
        break;
      }
      if (i >= segs.length) {
        ok = false;
        break;
      }
      if (kindOf(s) === "literal") {
        if (s !== segs[i]) ok = false;
        rank.push(3);
      } else rank.push(2);
      i++;
    }
    if (!ok || i !== segs.length) continue;
    if (p.segments.at(-1) !== "*") rank.push(2); // exact end beats a wildcard at the same depth
    rank.push(p.method === "*" ? 0 : 1);
    if (!best || compareRank(rank, best.rank) > 0) best = { rank, rule };
  }
  return best?.rule;
}

function compareRank(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? -1) - (b[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}
