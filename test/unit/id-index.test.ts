import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IdIndex } from "../../src/pricing/id-index.ts";

describe("IdIndex", () => {
  it("names the first earlier route with the same id, as a scan would", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 3 }), { maxLength: 200 }), (ids) => {
        const index = new IdIndex(ids.length, (i) => ids[i] as string);
        ids.forEach((id, i) => {
          const first = ids.indexOf(id);
          expect(index.add(i)).toBe(first < i ? first : -1);
        });
        for (const id of [...ids, "never", ""]) expect(index.indexOf(id)).toBe(ids.indexOf(id));
      }),
      { numRuns: 500 },
    );
  });

  it("keeps 100k distinct ids apart and finds each repeat", () => {
    const ids = Array.from({ length: 100_000 }, (_, i) => `route-${i % 60_000}`);
    const index = new IdIndex(ids.length, (i) => ids[i] as string);
    const repeats = ids.map((_, i) => index.add(i)).filter((first, i) => first !== (i < 60_000 ? -1 : i - 60_000));
    expect(repeats).toEqual([]);
  });
});
