/**
 * The signature check's curve arithmetic (src/schemes/secp256k1-tables.ts) against noble's: u1·A +
 * u2·B for random points and scalars, and the cases a table walk must not get wrong — a zero
 * scalar, n − 1, a sum at infinity (u1·G = −u2·Q), and an accumulator meeting the entry it adds
 * (A = B, u1 = u2: the addition becomes a doubling).
 */
import { secp256k1 } from "@noble/curves/secp256k1";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { sumOfMultiples, tableOf } from "../../src/schemes/secp256k1-tables.ts";

const G = secp256k1.ProjectivePoint.BASE;
const N = secp256k1.CURVE.n;
const gTable = tableOf(secp256k1.CURVE.Gx, secp256k1.CURVE.Gy, 7);

function noble(k: bigint, u1: bigint, u2: bigint): { x: bigint; y: bigint } | undefined {
  const times = (p: typeof G, u: bigint) => (u === 0n ? secp256k1.ProjectivePoint.ZERO : p.multiply(u));
  const sum = times(G, u1).add(times(G.multiply(k), u2));
  return sum.equals(secp256k1.ProjectivePoint.ZERO) ? undefined : sum.toAffine();
}

function ours(k: bigint, u1: bigint, u2: bigint, window = 6) {
  const q = G.multiply(k).toAffine();
  return sumOfMultiples(gTable, u1, tableOf(q.x, q.y, window), u2);
}

const scalar = fc.oneof(
  fc.bigInt({ min: 1n, max: N - 1n }),
  fc.constantFrom(1n, 2n, N - 1n, N - 2n, 2n ** 128n, 2n ** 255n),
);

describe("sumOfMultiples", () => {
  it("is noble's u1·G + u2·Q for random keys and scalars, zero and n − 1 included", () => {
    fc.assert(
      fc.property(scalar, fc.oneof(scalar, fc.constant(0n)), fc.oneof(scalar, fc.constant(0n)), (k, u1, u2) => {
        expect(ours(k, u1, u2)).toEqual(noble(k, u1, u2));
      }),
      { numRuns: 40 },
    );
  });

  it("reaches infinity when u1·G = −u2·Q, and doubles when the two products meet", () => {
    fc.assert(
      fc.property(scalar, scalar, (k, u2) => {
        const cancel = (N - ((u2 * k) % N)) % N; // u1 = −u2·k: the sum is the point at infinity
        expect(ours(k, cancel, u2)).toBeUndefined();
        // Q = G and u1 = u2: every window of the second walk adds an entry equal to the first's.
        expect(ours(1n, u2, u2, 7)).toEqual(noble(1n, u2, u2));
      }),
      { numRuns: 25 },
    );
  });
});
