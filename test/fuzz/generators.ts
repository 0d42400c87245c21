/**
 * Seeded, reproducible inputs for the fuzzer: the same seed gives the same payment headers and
 * paths on every machine. Pure apart from the signing of base payments (viem, deterministic keys;
 * the Solana ones by the official client, which puts a random nonce in each transaction's memo,
 * so their bytes differ between runs while the mutations chosen do not).
 */
import { type Hex, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { createPaymentHeader } from "x402/client";
import { SOLANA_DEVNET, SOLANA_DEVNET_V1, SOLANA_USDC, solanaSigner } from "../../stack/solana.ts";
import { TRANSFER_WITH_AUTHORIZATION } from "../support/eip3009.ts";
import { spellingsOf } from "../support/path-corpus.ts";
import { officialSolanaPayment } from "../support/solana.ts";

/** mulberry32: a tiny, well-mixed 32-bit PRNG; enough to pick mutations reproducibly. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
  return { next, int, pick, bytes };
}
export type Rng = ReturnType<typeof prng>;

export const PAY_TO = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
export const USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
export const REQUIREMENT = {
  scheme: "exact",
  network: "eip155:84532",
  amount: "1000",
  asset: USDC,
  payTo: PAY_TO,
  maxTimeoutSeconds: 60,
  extra: { name: "USDC", version: "2" },
};

export interface BasePayment {
  version: 1 | 2;
  /** The decoded JSON of a validly signed payment for REQUIREMENT. */
  json: Record<string, any>;
}

/** What the fuzzed routes offer on Solana (the Worker adds the stand-in's fee payer). */
export function solanaRequirement(payTo: string, feePayer: string) {
  return {
    scheme: "exact",
    network: SOLANA_DEVNET,
    amount: "1000",
    asset: SOLANA_USDC as string,
    payTo,
    maxTimeoutSeconds: 60,
    extra: { feePayer },
  };
}

/** Solana payments (v2 and v1) by the official clients, for `solanaRequirement`. */
export async function solanaBasePayments(
  count: number,
  solana: { rpcUrl: string; payTo: string; feePayer: string },
): Promise<BasePayment[]> {
  const buyer = await solanaSigner("buyer");
  const requirement = solanaRequirement(solana.payTo, solana.feePayer);
  const out: BasePayment[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 3 === 2) {
      const v1 = {
        ...requirement,
        network: SOLANA_DEVNET_V1,
        maxAmountRequired: requirement.amount,
        resource: "https://paywall.example/api/weather/paris",
        description: "",
        mimeType: "",
      };
      const header = await createPaymentHeader(buyer as never, 1, v1 as never, {
        svmConfig: { rpcUrl: solana.rpcUrl },
      });
      out.push({ version: 1, json: JSON.parse(Buffer.from(header, "base64").toString("utf8")) });
    } else {
      const payload = await officialSolanaPayment(buyer, solana.rpcUrl, requirement as never);
      out.push({ version: 2, json: payload as unknown as Record<string, any> });
    }
  }
  return out;
}

/** Validly signed payments (v1 and v2) from a few keys derived from the seed. */
export async function basePayments(rng: Rng, count: number): Promise<BasePayment[]> {
  const keys = Array.from({ length: 4 }, () => privateKeyToAccount(toHex(rng.bytes(32))));
  const out: BasePayment[] = [];
  for (let i = 0; i < count; i++) {
    const signer = rng.pick(keys);
    const authorization = {
      from: signer.address,
      to: PAY_TO as Hex,
      value: "1000",
      validAfter: "0",
      validBefore: String(Math.floor(Date.now() / 1000) + 3600),
      nonce: toHex(rng.bytes(32)),
    };
    const signature = await signer.signTypedData({
      domain: { name: "USDC", version: "2", chainId: 84532, verifyingContract: USDC },
      types: { TransferWithAuthorization: TRANSFER_WITH_AUTHORIZATION },
      primaryType: "TransferWithAuthorization",
      message: {
        ...authorization,
        value: 1000n,
        validAfter: 0n,
        validBefore: BigInt(authorization.validBefore),
      },
    });
    const payload = { signature, authorization };
    out.push(
      i % 3 === 2
        ? { version: 1, json: { x402Version: 1, scheme: "exact", network: "base-sepolia", payload } }
        : {
            version: 2,
            json: {
              x402Version: 2,
              resource: { url: "https://paywall.example/api/weather/paris" },
              accepted: REQUIREMENT,
              payload,
            },
          },
    );
  }
  return out;
}

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

/** Every path to a value in a JSON tree, as key lists. */
function fieldPaths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (typeof value !== "object" || value === null) return [prefix];
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value);
  return [prefix, ...entries.flatMap(([k, v]) => fieldPaths(v, [...prefix, k]))];
}

function setAt(root: any, path: (string | number)[], f: (old: unknown) => unknown, remove = false): any {
  if (path.length === 0) return f(root);
  const copy = Array.isArray(root) ? [...root] : { ...root };
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  if (rest.length === 0 && remove) {
    if (Array.isArray(copy)) copy.splice(Number(head), 1);
    else delete copy[head];
    return copy;
  }
  copy[head] = setAt(copy[head], rest, f, remove);
  return copy;
}

function randomValue(rng: Rng): unknown {
  return rng.pick<() => unknown>([
    () => null,
    () => true,
    () => rng.int(1e9) - 5e8,
    () => 1e308 * 10,
    () => -0,
    () => 2 ** 53 + 1,
    () => "",
    () => "x".repeat(rng.int(5000)),
    () => "0x",
    () => `0x${"f".repeat(rng.pick([39, 40, 41, 64, 65, 130, 131]))}`,
    () => "\u0000\ud800é✓",
    () => "-1",
    () => "1e3",
    () => "0x3e8",
    () => "115792089237316195423570985008687907853269984665640564039457584007913129639936",
    () => [],
    () => [1, [2, [3]]],
    () => ({}),
    () => ({ __proto__: { polluted: true } }),
    () => ({ nested: { deeper: { deepest: "x" } } }),
  ])();
}

/** Edits a signature does not cover: the payment still verifies, but may no longer fit the route. */
/** Edits of what a Solana transaction does not sign: the envelope around it. */
const SOLANA_EDITS: ((json: any, rng: Rng) => any)[] = [
  (j) => ({ ...j, accepted: j.accepted && { ...j.accepted, amount: "1" } }),
  (j) => ({ ...j, accepted: j.accepted && { ...j.accepted, payTo: "8SFqwqnq4whPhs8icwHA2hQg3hUoN1qrCLK1SBx3WKwe" } }),
  (j) => ({
    ...j,
    accepted: j.accepted && { ...j.accepted, extra: { feePayer: "8SFqwqnq4whPhs8icwHA2hQg3hUoN1qrCLK1SBx3WKwe" } },
  }),
  (j) => ({ ...j, accepted: j.accepted && { ...j.accepted, network: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp" } }),
  (j) => ({ ...j, accepted: j.accepted && { ...j.accepted, asset: "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v" } }),
  (j) => ({ ...j, network: j.network === undefined ? undefined : "solana" }),
  (j) => ({ ...j, x402Version: j.x402Version === 2 ? 1 : 2 }),
  (j) => ({ ...j, resource: { url: "https://evil.example/" } }),
  (j) => ({ ...j, payload: { ...j.payload, extra: "unsigned" } }),
  (j, rng) => {
    // One byte of the transaction flipped: the buyer's signature, the message, or the fee payer's slot.
    const bytes = Buffer.from(String(j.payload.transaction), "base64");
    const at = rng.int(bytes.length);
    bytes[at] = (bytes[at] as number) ^ (1 + rng.int(255));
    return { ...j, payload: { ...j.payload, transaction: bytes.toString("base64") } };
  },
];

const UNSIGNED_EDITS: ((json: any, rng: Rng) => any)[] = [
  (j) => ({ ...j, accepted: j.accepted && { ...j.accepted, amount: "1" } }),
  (j) => ({ ...j, accepted: j.accepted && { ...j.accepted, payTo: "0x0000000000000000000000000000000000000001" } }),
  (j) => ({ ...j, accepted: j.accepted && { ...j.accepted, network: "eip155:8453" } }),
  (j) => ({ ...j, accepted: j.accepted && { ...j.accepted, asset: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913" } }),
  (j) => ({ ...j, accepted: j.accepted && { ...j.accepted, extra: { name: "USD Coin", version: "2" } } }),
  (j) => ({ ...j, accepted: j.accepted && { ...j.accepted, maxTimeoutSeconds: 1e9 } }),
  (j) => ({ ...j, accepted: j.accepted && { ...j.accepted, scheme: "upto" } }),
  (j) => ({ ...j, resource: { url: "https://evil.example/" } }),
  (j) => ({ ...j, extensions: { bazaar: { junk: true } } }),
  (j) => ({ ...j, payload: { ...j.payload, extra: "unsigned" } }),
  (j) => ({ ...j, network: j.network === undefined ? undefined : "base" }),
  (j) => ({ ...j, x402Version: j.x402Version === 2 ? 1 : 2 }),
  (j) => ({ ...j, payload: { ...j.payload, signature: j.payload.signature.toUpperCase().replace("0X", "0x") } }),
  (j, rng) => {
    // The malleable twin: s → n − s, v flipped. Still a valid ECDSA signature by the same key.
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const sig: string = j.payload.signature;
    const s = BigInt(`0x${sig.slice(66, 130)}`);
    const v = Number.parseInt(sig.slice(130), 16) === 27 ? "1c" : "1b";
    void rng;
    return {
      ...j,
      payload: { ...j.payload, signature: `${sig.slice(0, 66)}${(n - s).toString(16).padStart(64, "0")}${v}` },
    };
  },
];

/** One payment header (and the header name to send it in) derived from a base payment. */
export function mutateHeader(rng: Rng, base: BasePayment): { name: string; value: string; kind: string } {
  const name =
    rng.next() < 0.9
      ? base.version === 2
        ? "PAYMENT-SIGNATURE"
        : "X-PAYMENT"
      : rng.pick(["PAYMENT-SIGNATURE", "X-PAYMENT"]);
  const text = JSON.stringify(base.json);
  const encoded = b64(text);
  const edits = typeof base.json.payload?.transaction === "string" ? SOLANA_EDITS : UNSIGNED_EDITS;
  const kinds: [string, () => string][] = [
    ["unchanged", () => encoded],
    [
      "byte flipped",
      () => {
        const i = rng.int(encoded.length);
        return encoded.slice(0, i) + rng.pick([..."A/+=-_ \t.Ωz"]) + encoded.slice(i + 1);
      },
    ],
    ["truncated", () => encoded.slice(0, rng.int(encoded.length))],
    ["padding changed", () => encoded.replace(/=+$/, "") + rng.pick(["", "=", "==", "==="])],
    ["base64url", () => encoded.replaceAll("+", "-").replaceAll("/", "_")],
    [
      "whitespace inside",
      () => {
        const i = rng.int(encoded.length);
        return `${encoded.slice(0, i)} ${encoded.slice(i)}`;
      },
    ],
    ["surrounding whitespace", () => `  ${encoded}\t`],
    ["double encoded", () => b64(encoded)],
    ["raw JSON", () => text],
    ["appended garbage", () => encoded + b64(String(rng.int(1e6)))],
    ["random bytes", () => Buffer.from(rng.bytes(rng.int(2000))).toString("base64")],
    ["huge", () => b64(text.replace("}", `,"pad":"${"x".repeat(9000)}"}`))],
    [
      "field replaced",
      () => {
        const paths = fieldPaths(base.json).slice(1);
        return b64(JSON.stringify(setAt(base.json, rng.pick(paths), () => randomValue(rng))));
      },
    ],
    [
      "field removed",
      () => {
        const paths = fieldPaths(base.json).slice(1);
        return b64(JSON.stringify(setAt(base.json, rng.pick(paths), () => undefined, true)));
      },
    ],
    [
      "field nested",
      () => {
        const paths = fieldPaths(base.json).slice(1);
        return b64(JSON.stringify(setAt(base.json, rng.pick(paths), (old) => rng.pick([[old], { value: old }]))));
      },
    ],
    [
      "field retyped",
      () => {
        const paths = fieldPaths(base.json).slice(1);
        return b64(
          JSON.stringify(
            setAt(base.json, rng.pick(paths), (old) => (typeof old === "string" ? Number(old) || [old] : String(old))),
          ),
        );
      },
    ],
    [
      "key duplicated",
      () => {
        const key = rng.pick(['"x402Version"', '"payload"', '"accepted"', '"signature"', '"nonce"', '"value"', '"to"']);
        const at = text.indexOf(key);
        return at < 0
          ? encoded
          : b64(`${text.slice(0, at)}${key}:${JSON.stringify(randomValue(rng))},${text.slice(at)}`);
      },
    ],
    ["unsigned field edited", () => b64(JSON.stringify(rng.pick(edits)(base.json, rng)))],
    ["two edits", () => b64(JSON.stringify(rng.pick(edits)(rng.pick(edits)(base.json, rng), rng)))],
  ];
  const [kind, make] = rng.pick(kinds);
  return { name, value: make(), kind };
}

const SEGMENT_ALPHABET = [
  ..."abcXYZ019-._~!$&'()*+,;=:@%/\\ ",
  "%2F",
  "%2e",
  "%2E",
  "%41",
  "%C0%AE",
  "%E2%80%AE",
  "%EF%BC%A1",
  "%20",
  "%00",
  "%FF",
  "é",
  "..",
  ".",
];

/** A request path from the corpus grammar: a spelling of a known path, or one built at random. */
export function fuzzPath(rng: Rng, known: readonly string[]): string {
  if (rng.next() < 0.6) {
    const spellings = spellingsOf(rng.pick(known));
    let path = rng.pick(spellings).path;
    // Sometimes stack a second change on top of the first.
    if (rng.next() < 0.3) {
      const again = spellingsOf(path.startsWith("/") ? path : `/${path}`);
      path = rng.pick(again).path;
    }
    return path;
  }
  const segments = Array.from({ length: 1 + rng.int(6) }, () =>
    Array.from({ length: rng.int(8) }, () => rng.pick(SEGMENT_ALPHABET)).join(""),
  );
  const path = `/${segments.join(rng.pick(["/", "/", "/", "//", "\\"]))}`;
  return rng.next() < 0.1 ? `${path}?${"q=".repeat(rng.int(5))}` : path;
}
