/**
 * `npm run fuzz -- --count N --seed S [--concurrency C]`: the fuzzer (test/fuzz/engine.ts) with N
 * mutated payment headers and N paths, seed S. Prints the report; exit 1 when an invariant broke,
 * with every violation listed so a found case can become a named regression test.
 */
import { parseArgs } from "node:util";
import { runFuzz } from "../test/fuzz/engine.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "10000" },
    seed: { type: "string", default: String(Date.now() % 100000) },
    concurrency: { type: "string", default: "16" },
  },
});
const count = Number(values.count);
const seed = Number(values.seed);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(seed)) {
  console.error("usage: npm run fuzz -- --count N --seed S [--concurrency C]");
  process.exit(2);
}
const started = Date.now();
const report = await runFuzz({
  headers: count,
  paths: count,
  seed,
  concurrency: Number(values.concurrency),
  log: (line) => process.stderr.write(`${line}\n`),
});
const { violations, ...summary } = report;
console.log(
  JSON.stringify(
    {
      ...summary,
      seconds: Math.round((Date.now() - started) / 1000),
      heapMiB: {
        before: +(report.memory.heapBeforeBytes / 2 ** 20).toFixed(1),
        halfway: +(report.memory.heapHalfwayBytes / 2 ** 20).toFixed(1),
        after: +(report.memory.heapAfterBytes / 2 ** 20).toFixed(1),
      },
    },
    null,
    2,
  ),
);
if (violations.length > 0) {
  console.error(`${violations.length} violations (seed ${seed}):`);
  for (const v of violations) console.error(`  ${v}`);
  process.exit(1);
}
console.log(`no violations (seed ${seed})`);
