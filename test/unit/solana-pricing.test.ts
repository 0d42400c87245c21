/**
 * Solana in the pricing document: options on `solana:` networks, base58 payTo, `$` prices in the
 * network's USDC, named SPL assets; every bad field named by its JSON path. The network and USDC
 * tables written out in src are held equal to `@x402/svm`'s own.
 */
import * as svm from "@x402/svm";
import { describe, expect, it } from "vitest";
import { compilePricing, isSvmRequirement, SOLANA_USDC } from "../../src/pricing/document.ts";
import {
  fromV1Network,
  SOLANA_DEVNET,
  SOLANA_MAINNET,
  SOLANA_TESTNET,
  SOLANA_V1_NETWORKS,
  toV1Network,
} from "../../src/x402/networks.ts";

const PAY_TO = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const SELLER = "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse";
const fallbacks = { network: undefined, payTo: undefined };
const problemsOf = (doc: unknown) => {
  const result = compilePricing(doc, "v", fallbacks);
  return result.ok ? [] : result.problems;
};

describe("the tables written out from @x402/svm", () => {
  it("networks and v1 names are the official ones", () => {
    expect([SOLANA_MAINNET, SOLANA_DEVNET, SOLANA_TESTNET]).toEqual([
      svm.SOLANA_MAINNET_CAIP2,
      svm.SOLANA_DEVNET_CAIP2,
      svm.SOLANA_TESTNET_CAIP2,
    ]);
    expect(SOLANA_V1_NETWORKS).toEqual(svm.V1_TO_V2_NETWORK_MAP);
    expect(toV1Network(SOLANA_DEVNET)).toBe("solana-devnet");
    expect(fromV1Network("solana")).toBe(SOLANA_MAINNET);
    expect(fromV1Network("toString")).toBeUndefined();
  });

  it("USDC on each network is the official default asset", () => {
    for (const network of [SOLANA_MAINNET, SOLANA_DEVNET, SOLANA_TESTNET]) {
      expect(SOLANA_USDC[network]).toBe(svm.getDefaultAsset(network as `${string}:${string}`).asset);
    }
    expect(SOLANA_USDC[SOLANA_MAINNET]).toBe("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v");
  });
});

describe("Solana options", () => {
  it("compiles $ prices in the network's USDC, payTo per family, and named SPL mints", () => {
    const result = compilePricing(
      {
        version: 1,
        defaults: { network: "eip155:84532", payTo: { eip155: PAY_TO, solana: SELLER } },
        assets: {
          BONK: { network: SOLANA_MAINNET, address: "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263", decimals: 5 },
        },
        routes: [
          { id: "both", match: "/both", accepts: [{ price: "$0.01" }, { price: "$0.01", network: SOLANA_DEVNET }] },
          { id: "bonk", match: "/bonk", price: { amount: "500", asset: "BONK" } },
          { id: "t22", match: "/t22", price: "$1", network: SOLANA_MAINNET },
        ],
      },
      "v",
      fallbacks,
    );
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    const [both, bonk, t22] = result.table.routes;
    expect(both?.accepts).toEqual([
      expect.objectContaining({ network: "eip155:84532", payTo: PAY_TO, amount: "10000" }),
      {
        scheme: "exact",
        network: SOLANA_DEVNET,
        amount: "10000",
        asset: svm.USDC_DEVNET_ADDRESS,
        payTo: SELLER,
        maxTimeoutSeconds: 60,
        extra: {},
      },
    ]);
    expect(bonk?.accepts[0]).toMatchObject({ network: SOLANA_MAINNET, amount: "500", payTo: SELLER });
    expect(t22?.accepts[0]).toMatchObject({ asset: svm.USDC_MAINNET_ADDRESS, amount: "1000000" });
    expect(both?.accepts.filter(isSvmRequirement)).toHaveLength(1);
    expect(result.table.mints.get(`${SOLANA_MAINNET}|DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263`)).toEqual({
      decimals: 5,
      tokenProgram: svm.TOKEN_PROGRAM_ADDRESS,
    });
  });

  it("names every bad Solana field by its JSON path", () => {
    const problems = problemsOf({
      version: 1,
      defaults: { network: "eip155:84532", payTo: PAY_TO },
      assets: {
        evmOnSolana: { network: SOLANA_DEVNET, address: PAY_TO, decimals: 6 },
        withDomain: { network: SOLANA_DEVNET, address: SELLER, decimals: 6, eip712: { name: "x", version: "1" } },
        splOnEvm: { network: "eip155:8453", address: PAY_TO, decimals: 6, tokenProgram: "token" },
      },
      routes: [
        { id: "no-payto", match: "/a", accepts: [{ price: "$0.001", network: SOLANA_DEVNET }] },
        { id: "evm-payto", match: "/b", accepts: [{ price: "$0.001", network: SOLANA_DEVNET, payTo: PAY_TO }] },
        {
          id: "upfront",
          match: "/c",
          settle: "before",
          accepts: [{ price: "$0.001", network: SOLANA_DEVNET, payTo: SELLER }],
        },
        {
          id: "no-usdc",
          match: "/d",
          price: "$0.001",
          network: "solana:11111111111111111111111111111111",
          payTo: SELLER,
        },
      ],
    });
    const paths = problems.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "$.assets.evmOnSolana.address",
        "$.assets.withDomain.eip712",
        "$.assets.splOnEvm.tokenProgram",
        "$.routes[0].accepts[0].payTo",
        "$.routes[1].accepts[0].payTo",
        "$.routes[2].accepts[0].network",
        "$.routes[3].price",
      ]),
    );
    // Shape problems come first, each with its path.
    const shape = problemsOf({
      version: 1,
      routes: [
        { id: "bad-net", match: "/e", price: "$0.001", network: "solana:devnet" },
        {
          id: "bad-addr",
          match: "/f",
          price: "$0.001",
          network: SOLANA_DEVNET,
          payTo: "0OIl0OIl0OIl0OIl0OIl0OIl0OIl0OIl",
        },
      ],
    }).map((p) => p.path);
    expect(shape).toEqual(["$.routes[0].network", "$.routes[1].payTo"]);
    expect(problems.find((p) => p.path === "$.routes[0].accepts[0].payTo")?.message).toMatch(/no Solana payTo/);
    expect(problems.find((p) => p.path === "$.routes[2].accepts[0].network")?.message).toMatch(/settle "before"/);
  });
});
