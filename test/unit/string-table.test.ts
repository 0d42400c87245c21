import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { StringTable } from "../../src/pricing/string-table.ts";

describe("StringTable", () => {
  it("numbers (tag, key) pairs in the order added, as a Map would, from whole strings or ranges", () => {
    const op = fc.tuple(
      fc.boolean(),
      fc.integer({ min: 0, max: 3 }),
      fc.string({ maxLength: 4 }),
      fc.string({ maxLength: 2 }),
      fc.string({ maxLength: 2 }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), fc.integer({ min: 0, max: 64 }), (ops, expected) => {
        const table = new StringTable(expected);
        const model = new Map<string, number>();
        for (const [adding, tag, key, before, after] of ops) {
          // The key sits inside a longer string, as a path segment does inside its pattern.
          const text = before + key + after;
          const [start, end] = [before.length, before.length + key.length];
          const name = `${tag}\u0000${key}`;
          if (adding) {
            if (!model.has(name)) model.set(name, model.size);
            expect(table.add(tag, text, start, end)).toBe(model.get(name));
          } else {
            expect(table.find(tag, text, start, end)).toBe(model.get(name) ?? -1);
          }
          expect(table.size).toBe(model.size);
        }
        for (const [name, id] of model) {
          const [tag, key] = [Number(name.split("\u0000")[0]), name.slice(name.indexOf("\u0000") + 1)];
          expect(table.find(tag, key)).toBe(id);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("keeps 100k keys apart through growing from the smallest size", () => {
    const table = new StringTable();
    for (let i = 0; i < 100_000; i++) expect(table.add(i % 7, `route-${i}`)).toBe(i);
    for (let i = 0; i < 100_000; i += 997) expect(table.find(i % 7, `route-${i}`)).toBe(i);
    expect(table.find(1, "route-0")).toBe(-1);
  });
});
