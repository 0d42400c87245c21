/**
 * `npm run bench:matcher`: the pricing matcher at scale. Prints, for tables of 25k, 50k and 100k
 * routes (medians of the repeats):
 * - compile: the parsed document → a pricing table (validation, prices, matcher), what issue #4's
 *   "compiles in ≤ 200 ms" is read against; then JSON.parse of the KV text, and both together
 *   (`compilePricingText`, what an isolate does when the document changes);
 * - the matcher alone, built from parsed patterns; the median time of one match; heap growth per
 *   route (should stay flat: linear memory).
 * Run with `node --expose-gc` (the npm script does) for clean heap figures.
 */
import { compilePricing, compilePricingText } from "../src/pricing/document.ts";
import { compileMatcher } from "../src/pricing/matcher.ts";
import { parsePattern } from "../src/pricing/pattern.ts";

const SIZES = [25_000, 50_000, 100_000];
const REPEATS = 9;
const LOOKUPS = 200_000;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

/**
 * A realistic mix: literal APIs, params, wildcards, method-specific and any-method rules; a tenth
 * free, a tenth with an access window, a tenth with a description.
 */
function routes(n: number) {
  const list: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const shape = i % 5;
    const match =
      shape === 0
        ? `GET /api/v${i % 7}/items${i}/:id`
        : shape === 1
          ? `/static/s${i}/*`
          : shape === 2
            ? `POST /api/v${i % 7}/orders${i}`
            : shape === 3
              ? `/t${i % 97}/u${i}/:a/:b/detail`
              : `GET /exact/path${i}`;
    const route: Record<string, unknown> = { id: `r${i}`, match, price: i % 10 === 0 ? "free" : "$0.001" };
    if (i % 10 === 1) route.access = { ttl: 3600 };
    if (i % 10 === 2) route.description = `Item list ${i}`;
    list.push(route);
  }
  return list;
}

function requestsFor(n: number): [string, string[]][] {
  const reqs: [string, string[]][] = [];
  for (let k = 0; k < 10_000; k++) {
    const i = Math.floor(Math.random() * n);
    const shape = i % 5;
    const segs =
      shape === 0
        ? ["api", `v${i % 7}`, `items${i}`, "42"]
        : shape === 1
          ? ["static", `s${i}`, "css", "app.css"]
          : shape === 2
            ? ["api", `v${i % 7}`, `orders${i}`]
            : shape === 3
              ? [`t${i % 97}`, `u${i}`, "x", "y", "detail"]
              : ["exact", `path${i}`];
    reqs.push([shape === 2 ? "POST" : "GET", segs]);
  }
  // Some misses too: they walk and backtrack the most.
  for (let k = 0; k < 1_000; k++) reqs.push(["GET", ["api", "v1", "nothing", String(k)]]);
  return reqs;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

console.log(
  `| routes | compile ms: document → table (median of ${REPEATS}) | JSON.parse of the KV text ms | both: KV text → table ms | matcher alone ms | match µs (median) | heap MiB | heap bytes/route |`,
);
console.log("|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const n of SIZES) {
  const doc = {
    version: 1,
    defaults: { network: "eip155:84532", payTo: "0x90F79bf6EB2c4f870365E785982E1f101E93b906" },
    routes: routes(n),
  };
  const text = JSON.stringify(doc);
  const compile: number[] = [];
  const parse: number[] = [];
  const both: number[] = [];
  let table: ReturnType<typeof compilePricing> | undefined;
  for (let r = 0; r < REPEATS; r++) {
    table = undefined;
    gc();
    // What compilePricingText does, timed in its two parts: no collection in between, so the
    // compile also pays for promoting what the parse allocated.
    const t0 = performance.now();
    const json: unknown = JSON.parse(text);
    const t1 = performance.now();
    table = compilePricing(json, "v", { network: undefined, payTo: undefined });
    const t2 = performance.now();
    parse.push(t1 - t0);
    compile.push(t2 - t1);
    both.push(t2 - t0);
  }
  if (!table?.ok) throw new Error(`generated document is invalid: ${JSON.stringify(table?.ok ? "" : table?.problems.slice(0, 3))}`);

  const patterns = doc.routes.map((route) => {
    const parsed = parsePattern(route.match as string);
    if (!parsed.ok) throw new Error(parsed.problem);
    return { pattern: parsed.pattern, value: route.id as string };
  });
  const trie: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const t = performance.now();
    compileMatcher(patterns);
    trie.push(performance.now() - t);
  }

  // Heap: the compiled table alone, measured against an empty baseline.
  table = undefined;
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const kept = compilePricingText(text, "v", { network: undefined, payTo: undefined });
  gc();
  const heap = process.memoryUsage().heapUsed - heapBefore;
  if (!kept.ok) throw new Error("invalid");

  const matcher = kept.table.matcher;
  const reqs = requestsFor(n);
  const batch: number[] = [];
  let found = 0;
  for (let done = 0; done < LOOKUPS; done += reqs.length) {
    const t = performance.now();
    for (const [method, segs] of reqs) if (matcher.match(method, segs)) found++;
    batch.push(((performance.now() - t) * 1000) / reqs.length);
  }
  if (found === 0) throw new Error("nothing matched");
  console.log(
    `| ${n.toLocaleString("en")} | ${median(compile).toFixed(0)} | ${median(parse).toFixed(0)} | ${median(both).toFixed(0)} | ${median(trie).toFixed(0)} | ${median(batch).toFixed(2)} | ${(heap / 2 ** 20).toFixed(1)} | ${(heap / n).toFixed(0)} |`,
  );
}
