/**
 * isSignedBy answers exactly as viem's `recoverAddress(...) === address` does, on the first
 * signature from a key (recovery), while its tables grow, and once they are whole (the cached
 * key's fast check): random keys and
 * digests, valid signatures, their malleable twins (s → n − s with v flipped), and signatures
 * broken every way a header can break them.
 */
import { secp256k1 } from "@noble/curves/secp256k1";
import fc from "fast-check";
import { type Hex, recoverAddress, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { BUILD_ENTRIES_PER_CHECK, isSignedBy, tableProgress } from "../../src/schemes/evm-signature.ts";

const N = secp256k1.CURVE.n;
const hex32 = (n: bigint) => n.toString(16).padStart(64, "0");

async function viemSays(digest: Hex, signature: Hex, address: Hex): Promise<boolean> {
  try {
    return (await recoverAddress({ hash: digest, signature })).toLowerCase() === address.toLowerCase();
  } catch {
    return false;
  }
}

const key = fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((bytes) => {
  const k = BigInt(toHex(bytes));
  return k > 0n && k < N;
});
const digest = fc.oneof(
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => toHex(b)),
  fc.constantFrom<Hex>(`0x${"00".repeat(32)}`, `0x${hex32(N)}`, `0x${hex32(N + 1n)}`, `0x${"ff".repeat(32)}`),
);

type Mutation = (signature: Hex) => Hex;
const r = (s: Hex) => BigInt(`0x${s.slice(2, 66)}`);
const sOf = (s: Hex) => BigInt(`0x${s.slice(66, 130)}`);
const v = (s: Hex) => Number.parseInt(s.slice(130), 16);
const build = (rr: bigint, ss: bigint, vv: number): Hex =>
  `0x${hex32(rr)}${hex32(ss)}${vv.toString(16).padStart(2, "0")}`;
const mutations: Record<string, Mutation> = {
  unchanged: (s) => s,
  "malleable twin (n − s, v flipped)": (s) => build(r(s), N - sOf(s), v(s) === 27 ? 28 : 27),
  "high s, v kept": (s) => build(r(s), N - sOf(s), v(s)),
  "v flipped": (s) => build(r(s), sOf(s), v(s) === 27 ? 28 : 27),
  "v as 0/1": (s) => build(r(s), sOf(s), v(s) - 27),
  "v = 29": (s) => build(r(s), sOf(s), 29),
  "v = 35 (EIP-155 style)": (s) => build(r(s), sOf(s), 35),
  "r + 1": (s) => build((r(s) % (N - 1n)) + 1n, sOf(s), v(s)),
  "s + 1": (s) => build(r(s), (sOf(s) % (N - 1n)) + 1n, v(s)),
  "r = 0": (s) => build(0n, sOf(s), v(s)),
  "s = 0": (s) => build(r(s), 0n, v(s)),
  "r = n": (s) => build(N, sOf(s), v(s)),
  "s = n": (s) => build(r(s), N, v(s)),
  "r = 1 (not an x on the curve or a different point)": (s) => build(1n, sOf(s), v(s)),
};

describe("isSignedBy", () => {
  it("agrees with viem's recoverAddress for every mutation, cold and warm", async () => {
    await fc.assert(
      fc.asyncProperty(
        key,
        key,
        digest,
        digest,
        fc.constantFrom(...Object.keys(mutations)),
        async (k1, k2, d1, d2, name) => {
          const signer = privateKeyToAccount(toHex(k1));
          const other = privateKeyToAccount(toHex(k2));
          const mutate = mutations[name] as Mutation;
          const first = mutate(await signer.sign({ hash: d1 }));
          // Cold: nothing cached for this address yet (a fresh random key each run).
          expect(isSignedBy(d1, first, signer.address)).toBe(await viemSays(d1, first, signer.address));
          // Warm the cache with valid signatures (the second builds both tables whole), then
          // check another digest the fast way.
          expect(isSignedBy(d1, await signer.sign({ hash: d1 }), signer.address)).toBe(true);
          expect(isSignedBy(d1, await signer.sign({ hash: d1 }), signer.address, Infinity)).toBe(true);
          expect(tableProgress(signer.address).key?.[0]).toBe(tableProgress(signer.address).key?.[1]);
          const later = mutate(await signer.sign({ hash: d2 }));
          expect(isSignedBy(d2, later, signer.address)).toBe(await viemSays(d2, later, signer.address));
          // Someone else's signature, checked against the cached key.
          const forged = mutate(await other.sign({ hash: d2 }));
          expect(isSignedBy(d2, forged, signer.address)).toBe(await viemSays(d2, forged, signer.address));
          // The right signature over another digest.
          expect(isSignedBy(d1, later, signer.address)).toBe(await viemSays(d1, later, signer.address));
        },
      ),
      { numRuns: 120 },
    );
  }, 60_000);

  it("accepts a malleable twin exactly as viem does (the token may still refuse high-s; the facilitator decides)", async () => {
    const signer = privateKeyToAccount(`0x${"11".repeat(32)}`);
    const d: Hex = `0x${"22".repeat(32)}`;
    const twin = mutations["malleable twin (n − s, v flipped)"]?.(await signer.sign({ hash: d })) as Hex;
    expect(await viemSays(d, twin, signer.address)).toBe(true);
    expect(isSignedBy(d, twin, signer.address)).toBe(true);
  });

  it("builds the tables a bounded step per valid repeat check, answering as viem all along", async () => {
    const signer = privateKeyToAccount(`0x${"77".repeat(32)}`);
    const other = privateKeyToAccount(`0x${"78".repeat(32)}`);
    const entries = (p: ReturnType<typeof tableProgress>) => p.base[0] + (p.key?.[0] ?? 0);
    const whole = (p: ReturnType<typeof tableProgress>) =>
      p.base[0] === p.base[1] && p.key !== undefined && p.key[0] === p.key[1];
    let checks = 0;
    for (let i = 0; !whole(tableProgress(signer.address)); i++) {
      expect(i, "the tables are whole within 40 repeat checks").toBeLessThan(40);
      const d: Hex = toHex(i + 1, { size: 32 });
      const before = entries(tableProgress(signer.address));
      // A refused signature builds nothing; a valid one builds at most one step (whole windows).
      expect(isSignedBy(d, await other.sign({ hash: d }), signer.address)).toBe(false);
      expect(entries(tableProgress(signer.address))).toBe(before);
      expect(isSignedBy(d, await signer.sign({ hash: d }), signer.address)).toBe(true);
      expect(entries(tableProgress(signer.address)) - before).toBeLessThanOrEqual(BUILD_ENTRIES_PER_CHECK);
      checks++;
    }
    // The first check only recovers the key; from the second on, each builds a step (G's table
    // may be whole already: it is the isolate's, shared by every payer).
    expect(checks).toBeGreaterThanOrEqual(1 + Math.ceil(1408 / BUILD_ENTRIES_PER_CHECK));
    const d: Hex = `0x${"99".repeat(32)}`;
    const signature = await signer.sign({ hash: d });
    expect(isSignedBy(d, signature, signer.address)).toBe(await viemSays(d, signature, signer.address));
    expect(isSignedBy(d, await other.sign({ hash: d }), signer.address)).toBe(false);
  });

  it("refuses anything that is not 65 bytes", () => {
    const address = privateKeyToAccount(`0x${"33".repeat(32)}`).address;
    for (const signature of ["0x", `0x${"aa".repeat(64)}`, `0x${"aa".repeat(66)}`] as Hex[]) {
      expect(isSignedBy(`0x${"44".repeat(32)}`, signature, address)).toBe(false);
    }
  });
});
