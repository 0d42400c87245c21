/**
 * The fuzzer at a size that fits in `npm test` (test/fuzz/engine.ts says what it sends and which
 * invariants it checks). Long runs: `npm run fuzz -- --count 20000 --seed 7`. A case a run finds
 * becomes a named regression test, beside the one it broke.
 */
import { expect, it } from "vitest";
import { runFuzz } from "../fuzz/engine.ts";

it("keeps every invariant for 10,000 mutated payment headers and 10,000 paths (seed 1)", async () => {
  const report = await runFuzz({ headers: 10_000, paths: 10_000, seed: 1 });
  expect(report.violations).toEqual([]);
  expect(report.sent).toBe(20_000);
  // Not vacuous: valid payments got through, and so did junk of every kind to its refusal.
  expect(report.settled).toBeGreaterThan(10);
  expect(report.settledSolana).toBeGreaterThan(2);
  expect(report.paidAtOrigin).toBe(report.settled);
  expect(report.freeAtOrigin).toBeGreaterThan(100);
  expect(Object.keys(report.headerKinds).length).toBeGreaterThan(15);
  expect(report.reasons.payment_header_malformed).toBeGreaterThan(100);
  expect(report.reasons.non_canonical_path).toBeGreaterThan(100);
  // The heap was really measured (the bounds themselves are invariants: 128 MiB, +16 MiB late).
  expect(report.memory.heapBeforeBytes).toBeGreaterThan(0);
  expect(report.memory.heapAfterBytes).toBeGreaterThan(report.memory.heapBeforeBytes);
}, 120_000);
