/**
 * CDP JWTs, differentially: the tokens src/facilitators/cdp-auth.ts makes with WebCrypto and the
 * ones `@coinbase/cdp-sdk`'s own `generateJwt` makes verify under one verifier (jose) with the
 * same header and claims apart from the nonce and the times, for both key kinds CDP issues.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { generateJwt } from "@coinbase/cdp-sdk/auth";
import { decodeProtectedHeader, importSPKI, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { cdpJwt, cdpKeyKind, importCdpKey } from "../../src/facilitators/cdp-auth.ts";
import { cdpRefusal } from "../support/cdp-stand-in.ts";

const KEY_ID = "organizations/0a1b2c3d/apiKeys/4e5f6a7b-0000-4000-8000-000000000001";
const URL_VERIFY = new URL("https://api.cdp.coinbase.com/platform/v2/x402/verify");

function ed25519Secret(): { secret: string; publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" }) as { d: string; x: string };
  const bytes = Buffer.concat([Buffer.from(jwk.d, "base64url"), Buffer.from(jwk.x, "base64url")]);
  return { secret: bytes.toString("base64"), publicKey };
}

function ecSecret(type: "pkcs8" | "sec1"): { secret: string; publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { secret: privateKey.export({ type, format: "pem" }) as string, publicKey };
}

async function verified(token: string, publicKey: KeyObject, alg: string) {
  const key = await importSPKI(publicKey.export({ type: "spki", format: "pem" }) as string, alg);
  const { payload } = await jwtVerify(token, key, { issuer: "cdp", subject: KEY_ID, algorithms: [alg] });
  return { header: decodeProtectedHeader(token), payload };
}

const withoutVarying = ({ header, payload }: { header: Record<string, unknown>; payload: Record<string, unknown> }) => {
  const { nonce, ...h } = header;
  const { iat, nbf, exp, ...p } = payload;
  expect(nonce).toMatch(/^[0-9a-f]{32}$/);
  expect(exp).toBe((iat as number) + 120);
  expect(nbf).toBe(iat);
  return { header: h, payload: p };
};

describe.each([
  ["Ed25519", "EdDSA", ed25519Secret],
  ["P-256 (PKCS#8 PEM)", "ES256", () => ecSecret("pkcs8")],
] as const)("a %s key", (_name, alg, make) => {
  it("makes a JWT that verifies like the SDK's, with the same header and claims", async () => {
    const { secret, publicKey } = make();
    expect(cdpKeyKind(secret)).toBe(alg);
    const ours = await cdpJwt(await importCdpKey(KEY_ID, secret), "POST", URL_VERIFY, Math.floor(Date.now() / 1000));
    const theirs = await generateJwt({
      apiKeyId: KEY_ID,
      apiKeySecret: secret,
      requestMethod: "POST",
      requestHost: URL_VERIFY.host,
      requestPath: URL_VERIFY.pathname,
    });
    const a = withoutVarying(await verified(ours, publicKey, alg));
    const b = withoutVarying(await verified(theirs, publicKey, alg));
    expect(a).toEqual(b);
    expect(a.payload).toEqual({ sub: KEY_ID, iss: "cdp", uris: ["POST api.cdp.coinbase.com/platform/v2/x402/verify"] });
    expect(a.header).toEqual({ alg, kid: KEY_ID, typ: "JWT" });
  });
});

describe("a P-256 key in SEC1 PEM (BEGIN EC PRIVATE KEY)", () => {
  it("is accepted and signs a JWT that verifies (the SDK's own import refuses this form)", async () => {
    const { secret, publicKey } = ecSecret("sec1");
    expect(secret).toContain("BEGIN EC PRIVATE KEY");
    const ours = await cdpJwt(
      await importCdpKey(KEY_ID, secret),
      "GET",
      new URL("https://x.example/p/supported"),
      Math.floor(Date.now() / 1000),
    );
    expect((await verified(ours, publicKey, "ES256")).payload.uris).toEqual(["GET x.example/p/supported"]);
    await expect(
      generateJwt({
        apiKeyId: KEY_ID,
        apiKeySecret: secret,
        requestMethod: "GET",
        requestHost: "x.example",
        requestPath: "/p",
      }),
    ).rejects.toThrow();
    // Same key, PKCS#8: the bytes we wrapped are the key Node reads.
    expect(createPrivateKey(secret).asymmetricKeyType).toBe("ec");
  });
});

describe("what is not a CDP key", () => {
  it.each([
    ["empty", ""],
    ["32 bytes of base64", Buffer.alloc(32, 1).toString("base64")],
    ["a public key PEM", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"],
    ["a password", "hunter2"],
  ])("%s", async (_name, secret) => {
    expect(cdpKeyKind(secret)).toBeUndefined();
    await expect(importCdpKey(KEY_ID, secret)).rejects.toThrow();
  });
});

describe("the CDP stand-in the Worker tests use (test/support/cdp-stand-in.ts)", () => {
  const call = { method: "POST", host: "api.cdp.coinbase.com", path: "/platform/v2/x402/verify" };
  const now = Math.floor(Date.now() / 1000);
  const mint = async (secret: string, url = URL_VERIFY, at = now) =>
    `Bearer ${await cdpJwt(await importCdpKey(KEY_ID, secret), "POST", url, at)}`;

  it("accepts a JWT made for this call, by this key, now — and one the SDK made", async () => {
    const { secret, publicKey } = ed25519Secret();
    expect(await cdpRefusal(await mint(secret), call, { keyId: KEY_ID, publicKey })).toBeUndefined();
    const sdk = await generateJwt({
      apiKeyId: KEY_ID,
      apiKeySecret: secret,
      requestMethod: "POST",
      requestHost: call.host,
      requestPath: call.path,
    });
    expect(await cdpRefusal(`Bearer ${sdk}`, call, { keyId: KEY_ID, publicKey })).toBeUndefined();
  });

  it.each([
    ["expired", async (s: string) => mint(s, URL_VERIFY, now - 121), "ERR_JWT_EXPIRED"],
    ["not yet valid", async (s: string) => mint(s, URL_VERIFY, now + 60), "ERR_JWT_CLAIM_VALIDATION_FAILED"],
    [
      "made for another path",
      async (s: string) => mint(s, new URL("https://api.cdp.coinbase.com/platform/v2/x402/settle")),
      "not for POST api.cdp.coinbase.com/platform/v2/x402/verify",
    ],
    [
      "made for another host",
      async (s: string) => mint(s, new URL("https://evil.example/platform/v2/x402/verify")),
      "not for POST api.cdp.coinbase.com/platform/v2/x402/verify",
    ],
    ["signed by another key", async () => mint(ed25519Secret().secret), "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"],
    ["missing", async () => "", "no bearer token"],
  ])("refuses a JWT %s", async (_name, make, why) => {
    const { secret, publicKey } = ed25519Secret();
    expect(await cdpRefusal(await make(secret), call, { keyId: KEY_ID, publicKey })).toBe(why);
  });
});
