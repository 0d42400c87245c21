/**
 * The bundle's viem substitutions (src/viem-fast.ts, aliased for "viem" in wrangler.toml) answer
 * exactly as viem does: `verifyTypedData` on batch-settlement vouchers from random keys, signed
 * right, signed by another key, for another amount, malleable (s → n − s, v flipped) and broken;
 * `hashTypedData` from its memo as from viem, for any channel config. And the alias is in force.
 */
import { readFileSync } from "node:fs";
import { secp256k1 } from "@noble/curves/secp256k1";
import fc from "fast-check";
import {
  getAddress,
  type Hex,
  hashStruct,
  toHex,
  hashTypedData as viemHash,
  verifyTypedData as viemVerify,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { expect, it } from "vitest";
import { digestOf, flatStructHash, hashTypedData, verifyTypedData } from "../../src/viem-fast.ts";
import { BATCH_SETTLEMENT_DOMAIN, CHANNEL_CONFIG_TYPES, VOUCHER_TYPES } from "../support/batch-settlement.ts";
import { TRANSFER_WITH_AUTHORIZATION } from "../support/eip3009.ts";

const N = secp256k1.CURVE.n;
const domain = BATCH_SETTLEMENT_DOMAIN;
const types = VOUCHER_TYPES;

const key = fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((b) => {
  const k = BigInt(toHex(b));
  return k > 0n && k < N;
});
const channelId = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => toHex(b));
const amount = fc.bigInt({ min: 0n, max: 2n ** 128n - 1n });
const hex32 = (n: bigint) => n.toString(16).padStart(64, "0");

async function both(parameters: Parameters<typeof viemVerify>[0]): Promise<[boolean | "throws", boolean | "throws"]> {
  const run = async (f: typeof viemVerify) => {
    try {
      return await f(parameters);
    } catch {
      return "throws" as const;
    }
  };
  return [await run(verifyTypedData as typeof viemVerify), await run(viemVerify)];
}

it("verifyTypedData gives viem's answer for vouchers, whatever is wrong with them", async () => {
  await fc.assert(
    fc.asyncProperty(
      key,
      key,
      channelId,
      amount,
      fc.constantFrom("as signed", "other signer", "other amount", "malleable", "flipped byte", "v = 5"),
      async (k1, k2, id, value, how) => {
        const signer = privateKeyToAccount(toHex(k1));
        const message = { channelId: id, maxClaimableAmount: value };
        let signature = await signer.signTypedData({ domain, types, primaryType: "Voucher", message });
        let address: Hex = signer.address;
        let signed = message;
        if (how === "other signer") address = privateKeyToAccount(toHex(k2)).address;
        if (how === "other amount") signed = { ...message, maxClaimableAmount: value + 1n };
        if (how === "malleable") {
          const s = BigInt(`0x${signature.slice(66, 130)}`);
          const v = Number.parseInt(signature.slice(130), 16);
          signature = `0x${signature.slice(2, 66)}${hex32(N - s)}${(v === 27 ? 28 : 27).toString(16)}`;
        }
        if (how === "flipped byte")
          signature = `${signature.slice(0, 40)}${signature[40] === "0" ? "1" : "0"}${signature.slice(41)}` as Hex;
        if (how === "v = 5") signature = `${signature.slice(0, 130)}05` as Hex;
        // Twice: the first check recovers the key, the second uses the cached one.
        for (let i = 0; i < 2; i++) {
          const [ours, viems] = await both({
            address,
            domain,
            types,
            primaryType: "Voucher",
            message: signed,
            signature,
          });
          expect(ours === true, `${how}: ours ${ours}, viem ${viems}`).toBe(viems === true);
        }
      },
    ),
    { numRuns: 60 },
  );
});

it("hashTypedData from its memo is viem's, for every channel config", () => {
  const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => toHex(b));
  const channelTypes = CHANNEL_CONFIG_TYPES;
  fc.assert(
    fc.property(
      address,
      address,
      fc.integer({ min: 900, max: 2_592_000 }),
      channelId,
      (payer, receiver, delay, salt) => {
        const parameters = {
          domain,
          types: channelTypes,
          primaryType: "ChannelConfig" as const,
          message: {
            payer,
            payerAuthorizer: payer,
            receiver,
            receiverAuthorizer: receiver,
            token: receiver,
            withdrawDelay: delay,
            salt,
          },
        };
        expect(hashTypedData(parameters)).toBe(viemHash(parameters));
        expect(hashTypedData(parameters)).toBe(viemHash(parameters));
      },
    ),
    { numRuns: 200 },
  );
});

it("is what the bundle gets for viem", () => {
  expect(readFileSync("wrangler.toml", "utf8")).toMatch(/\[alias\]\s*\n"viem" = "\.\/src\/viem-fast\.ts"/);
});

it("verifyTypedData hashes any domain as viem does, and refuses what viem refuses", async () => {
  const signer = privateKeyToAccount(`0x${"55".repeat(32)}`);
  const other = privateKeyToAccount(`0x${"66".repeat(32)}`);
  const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 3 });
  // Mostly valid values, sometimes ones viem refuses (a bad address, out-of-range integers, a short salt).
  const mostly = <T, U>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<U>) =>
    fc.oneof({ arbitrary: valid, weight: 12 }, { arbitrary: invalid, weight: 1 });
  const contract = mostly(
    fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => toHex(b)),
    fc.constantFrom("0x1234", "not an address", "0xZZ00000000000000000000000000000000000000"),
  );
  const chainId = mostly(fc.bigInt({ min: 0n, max: 2n ** 64n }), fc.constantFrom(-1n, 2n ** 256n));
  const salt = mostly(
    fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => toHex(b)),
    fc.constant("0x01"),
  );
  const seen = new Set<string>();
  await fc.assert(
    fc.asyncProperty(
      maybe(fc.string({ maxLength: 12 })),
      maybe(fc.constantFrom("1", "2")),
      maybe(chainId),
      maybe(contract),
      maybe(salt),
      channelId,
      mostly(amount, fc.constantFrom(-1n, 2n ** 128n)),
      fc.boolean(),
      async (name, version, chain, verifyingContract, s, id, value, signedByOther) => {
        // Sometimes no domain at all (null): viem then hashes no separator.
        const someDomain =
          name === ""
            ? null
            : Object.fromEntries(
                Object.entries({ name, version, chainId: chain, verifyingContract, salt: s }).filter(
                  ([, v]) => v !== undefined,
                ),
              );
        const message = { channelId: id, maxClaimableAmount: value };
        let signature: Hex;
        try {
          signature = await (signedByOther ? other : signer).signTypedData({
            domain: someDomain,
            types,
            primaryType: "Voucher",
            message,
          } as never);
        } catch {
          signature = `0x${"11".repeat(65)}`; // viem would not sign it: a made-up signature, to be refused
        }
        for (let i = 0; i < 2; i++) {
          const [ours, viems] = await both({
            address: signer.address,
            domain: someDomain,
            types,
            primaryType: "Voucher",
            message,
            signature,
          } as never);
          expect(ours).toBe(viems);
          seen.add(String(viems));
        }
      },
    ),
    { numRuns: 150 },
  );
  // The property saw every outcome: signed, signed by someone else, and refused by viem.
  expect([...seen].sort()).toEqual(["false", "throws", "true"]);
});

it("the digest of a flat struct (voucher, EIP-3009 authorization) is viem's, and so are its errors", () => {
  // The tests' own copy of EIP-3009's types (test/support/eip3009.ts), not src's.
  const eip3009Types = { TransferWithAuthorization: TRANSFER_WITH_AUTHORIZATION };
  const usdc = {
    name: "USDC",
    version: "2",
    chainId: 84532,
    verifyingContract: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
  } as const;
  const raw = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => toHex(b));
  // Valid addresses (lower, checksummed, upper-case body) and ones viem refuses (bad checksum, short).
  const address = fc.oneof(
    raw,
    raw.map((a) => getAddress(a)),
    raw.map((a) => `0x${a.slice(2).toUpperCase()}`),
    raw.map((a) => {
      const c = getAddress(a);
      const i = c.search(/[a-fA-F]/);
      return i < 0
        ? "0x12"
        : `${c.slice(0, i)}${c[i] === c[i]?.toUpperCase() ? c[i]?.toLowerCase() : c[i]?.toUpperCase()}${c.slice(i + 1)}`;
    }),
    fc.constantFrom("0x1234", 7, undefined),
  );
  const uint = (bits: bigint) =>
    fc.oneof(
      fc.bigInt({ min: 0n, max: 2n ** bits - 1n }),
      fc.constantFrom(-1n, 2n ** bits, 0n, 2n ** bits - 1n),
      fc.integer({ min: 0, max: 2 ** 40 }),
      fc.constantFrom("5", undefined),
    );
  const bytes32 = fc.oneof(
    fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => toHex(b)),
    fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => `0x${toHex(b).slice(2).toUpperCase()}`),
    fc.constantFrom("0x01", `0x${"zz".repeat(32)}`, `0x${"00".repeat(33)}`, 5, undefined),
  );
  const outcome = (f: () => string) => {
    try {
      return f();
    } catch {
      return "throws";
    }
  };
  const seen = new Set<string>();
  fc.assert(
    fc.property(
      fc.oneof(
        fc.record({ channelId: bytes32, maxClaimableAmount: uint(128n) }).map((message) => ({
          domain,
          types: VOUCHER_TYPES,
          primaryType: "Voucher",
          message,
        })),
        fc
          .record({
            from: address,
            to: address,
            value: uint(256n),
            validAfter: uint(256n),
            validBefore: uint(256n),
            nonce: bytes32,
          })
          .map((message) => ({ domain: usdc, types: eip3009Types, primaryType: "TransferWithAuthorization", message })),
      ),
      (parameters) => {
        const viems = outcome(() => viemHash(parameters as never));
        expect(outcome(() => digestOf(parameters as never))).toBe(viems);
        // The struct half alone, as the exact payment check uses it: viem's hash, or undefined
        // (then viem's own hashStruct runs, and throws as viem does).
        const { types, primaryType, message } = parameters as unknown as {
          types: never;
          primaryType: string;
          message: never;
        };
        const flat = flatStructHash(`test|${primaryType}`, types, primaryType, message);
        if (flat !== undefined) expect(flat).toBe(hashStruct({ data: message, types, primaryType } as never));
        seen.add(viems === "throws" ? "throws" : "hash");
      },
    ),
    { numRuns: 600 },
  );
  expect([...seen].sort()).toEqual(["hash", "throws"]);
});
