/**
 * `upto` pieces that need no network: the pricing document's upto options and their refusals,
 * the charge spellings (read as `@x402/core`'s server reads `Settlement-Overrides`), the
 * constants written out from `@x402/evm` and `@x402/extensions`, and the local Permit2 signature
 * check, property-tested against viem on random keys and permits.
 */
import { PERMIT2_ADDRESS as OFFICIAL_PERMIT2, uptoPermit2WitnessTypes, x402UptoPermit2ProxyAddress } from "@x402/evm";
import { declareEip2612GasSponsoringExtension } from "@x402/extensions";
import fc from "fast-check";
import { type Hex, hashTypedData, verifyTypedData } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { resolveCharge } from "../../src/pricing/charge.ts";
import { compilePricing, isUptoRequirement } from "../../src/pricing/document.ts";
import type { UptoPayment } from "../../src/schemes/payment.ts";
import { PERMIT2_ADDRESS, UPTO_PERMIT2_TYPES, UPTO_PROXY_ADDRESS } from "../../src/schemes/upto-evm/permit2.ts";
import { checkUptoSignature, uptoDigest, uptoIdentity } from "../../src/schemes/upto-evm/scheme.ts";
import { EIP2612_GAS_SPONSORING, EIP2612_GAS_SPONSORING_KEY } from "../../src/x402/gas-sponsoring.ts";

const PAY_TO = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const base = { version: 1, defaults: { network: "eip155:84532", payTo: PAY_TO } };
const compile = (route: object) =>
  compilePricing({ ...base, routes: [{ id: "r", match: "GET /r", ...route }] }, "v", {
    network: undefined,
    payTo: undefined,
  });
const problemsOf = (route: object) => {
  const result = compile(route);
  return result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
};

describe("the constants written out from the official packages", () => {
  it("Permit2, the upto proxy and the witness types are @x402/evm's", () => {
    expect(PERMIT2_ADDRESS).toBe(OFFICIAL_PERMIT2);
    expect(UPTO_PROXY_ADDRESS).toBe(x402UptoPermit2ProxyAddress);
    expect(UPTO_PERMIT2_TYPES).toEqual(uptoPermit2WitnessTypes);
  });

  it("the gas sponsoring declaration is @x402/extensions'", () => {
    expect({ [EIP2612_GAS_SPONSORING_KEY]: EIP2612_GAS_SPONSORING }).toEqual(declareEip2612GasSponsoringExtension());
  });
});

describe("upto in the pricing document", () => {
  it("compiles an upto option: the price is the maximum, the requirement says permit2", () => {
    const result = compile({ scheme: "upto", price: "$0.05", defaultCharge: "$0.001" });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const route = result.table.routes[0];
    expect(route?.accepts).toEqual([
      {
        scheme: "upto",
        network: "eip155:84532",
        amount: "50000",
        asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        payTo: PAY_TO,
        maxTimeoutSeconds: 60,
        extra: { name: "USDC", version: "2", assetTransferMethod: "permit2" },
      },
    ]);
    expect([...(route?.metered?.values() ?? [])]).toEqual([{ decimals: 6, defaultCharge: "$0.001" }]);
  });

  it("takes exact and upto in one asset side by side, and upto per option", () => {
    const result = compile({ accepts: [{ price: "$0.01" }, { price: "$0.05", scheme: "upto" }] });
    expect(result.ok && result.table.routes[0]?.accepts.map((r) => [r.scheme, isUptoRequirement(r)])).toEqual([
      ["exact", false],
      ["upto", true],
    ]);
  });

  it("refuses upto where it cannot work, and a defaultCharge without it, each by its path", () => {
    expect(problemsOf({ scheme: "upto", price: "$0.01", settle: "before" })).toEqual([
      '$.routes[0].scheme: "upto" settles what the origin reports, so it cannot settle "before" the origin runs',
    ]);
    expect(problemsOf({ scheme: "upto", price: "$0.01", access: { ttl: 60 } })).toContain(
      '$.routes[0].scheme: "upto" charges each answer by what the origin reports; it does not buy an access window',
    );
    expect(
      problemsOf({
        accepts: [
          {
            price: "$0.01",
            scheme: "upto",
            network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
            payTo: "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse",
          },
        ],
      }),
    ).toEqual(['$.routes[0].accepts[0].network: "upto" is supported on EVM networks only']);
    expect(problemsOf({ price: "$0.01", defaultCharge: "1" })).toEqual([
      '$.routes[0].defaultCharge: only an "upto" option has a default charge',
    ]);
    expect(problemsOf({ scheme: "upto", price: "$0.01", defaultCharge: "$0.02" })).toEqual([
      "$.routes[0].defaultCharge: is more than the option's maximum price",
    ]);
    expect(problemsOf({ scheme: "upto", price: "$0.01", defaultCharge: "$0.0000001" })).toEqual([
      `$.routes[0].defaultCharge: "$0.0000001" has more precision than the asset's 6 decimals`,
    ]);
    expect(problemsOf({ scheme: "upto", price: "$0.01", defaultCharge: "half" })[0]).toMatch(
      /^\$\.routes\[0\]\.defaultCharge: must be atomic units/,
    );
    expect(problemsOf({ scheme: "deferred", price: "$0.01" })).toHaveLength(1);
  });
});

describe("charges", () => {
  it("reads atomic units, dollars in the asset and percentages of the maximum, rounding percentages down", () => {
    const read = (s: string) => {
      const r = resolveCharge(s, 10_001n, 6);
      return r.ok ? r.atomic : r.problem;
    };
    expect(["0", "1500", "$0", "$0.0015", "$1", "25%", "12.5%", "100%", "0.01%", "150%"].map(read)).toEqual([
      0n,
      1500n,
      0n,
      1500n,
      1_000_000n,
      2500n,
      1250n,
      10_001n,
      1n,
      15_001n,
    ]);
    for (const bad of ["-1", "1.5", "01", "$-1", "$1e3", "1e3", "25.001%", "%", " 1", "1 ", "0x10", ""]) {
      expect(resolveCharge(bad, 10_000n, 6).ok, bad).toBe(false);
    }
  });
});

describe("the local Permit2 signature check", () => {
  const address = fc
    .uint8Array({ minLength: 20, maxLength: 20 })
    .map((b) => `0x${Buffer.from(b).toString("hex")}` as Hex);
  const uint = (max: bigint) => fc.bigInt({ min: 0n, max }).map(String);
  const permitArb = fc.record({
    token: address,
    amount: uint(2n ** 256n - 1n),
    nonce: uint(2n ** 256n - 1n),
    deadline: uint(2n ** 48n),
    to: address,
    facilitator: address,
    validAfter: uint(2n ** 48n),
    chainId: fc.integer({ min: 1, max: 2 ** 31 }),
  });

  type Permit = typeof permitArb extends fc.Arbitrary<infer T> ? T : never;
  const paymentOf = (p: Permit, from: Hex, signature: Hex): UptoPayment =>
    ({
      version: 2,
      family: "evm",
      scheme: "upto",
      network: `eip155:${p.chainId}`,
      raw: {},
      signature,
      permit2: {
        from,
        permitted: { token: p.token, amount: p.amount },
        spender: UPTO_PROXY_ADDRESS,
        nonce: p.nonce,
        deadline: p.deadline,
        witness: { to: p.to, facilitator: p.facilitator, validAfter: p.validAfter },
      },
    }) as UptoPayment;

  // Built here, not with the scheme's permit2Message: the test is an independent account of what
  // the buyer signs.
  const typedData = (payment: UptoPayment) => {
    const p = payment.permit2;
    return {
      domain: {
        name: "Permit2",
        chainId: Number(payment.network.split(":")[1]),
        verifyingContract: PERMIT2_ADDRESS as Hex,
      },
      types: UPTO_PERMIT2_TYPES,
      primaryType: "PermitWitnessTransferFrom" as const,
      message: {
        permitted: { token: p.permitted.token, amount: BigInt(p.permitted.amount) },
        spender: p.spender,
        nonce: BigInt(p.nonce),
        deadline: BigInt(p.deadline),
        witness: { to: p.witness.to, facilitator: p.witness.facilitator, validAfter: BigInt(p.witness.validAfter) },
      },
    };
  };

  it("hashes a permit exactly as viem does, and agrees with viem's verifyTypedData, tampered or not", async () => {
    await fc.assert(
      fc.asyncProperty(permitArb, fc.boolean(), fc.integer({ min: 0, max: 129 }), async (p, tamper, at) => {
        const key = privateKeyToAccount(generatePrivateKey());
        const unsigned = paymentOf(p, key.address, "0x");
        expect(uptoDigest(unsigned)).toBe(hashTypedData(typedData(unsigned)));
        let signature = await key.signTypedData(typedData(unsigned));
        if (tamper) {
          const i = 2 + at;
          signature = `${signature.slice(0, i)}${signature[i] === "0" ? "1" : "0"}${signature.slice(i + 1)}` as Hex;
        }
        const payment = paymentOf(p, key.address, signature);
        let viemSays = false;
        try {
          viemSays = await verifyTypedData({ address: key.address, signature, ...typedData(payment) });
        } catch {
          viemSays = false;
        }
        expect(checkUptoSignature(payment) === undefined).toBe(viemSays);
      }),
      { numRuns: 60 },
    );
  });

  it("names a payment by network, owner and nonce: the pair Permit2 spends once", () => {
    const p = {
      token: PAY_TO as Hex,
      amount: "1",
      nonce: "42",
      deadline: "9",
      to: PAY_TO as Hex,
      facilitator: PAY_TO as Hex,
      validAfter: "0",
      chainId: 84532,
    };
    const a = paymentOf(p, "0xAbC0000000000000000000000000000000000001", "0x01");
    const b = paymentOf(
      { ...p, amount: "2", token: UPTO_PROXY_ADDRESS as Hex },
      "0xabc0000000000000000000000000000000000001",
      "0x02",
    );
    expect(uptoIdentity(a)).toBe("upto:eip155:84532:0xabc0000000000000000000000000000000000001:42");
    expect(uptoIdentity(b)).toBe(uptoIdentity(a));
    expect(uptoIdentity(paymentOf({ ...p, nonce: "43" }, a.permit2.from, "0x01"))).not.toBe(uptoIdentity(a));
  });
});
