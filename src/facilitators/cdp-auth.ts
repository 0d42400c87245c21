/**
 * Coinbase CDP API authentication: a fresh JWT per call, signed in the Worker with WebCrypto
 * from the API key (secrets CDP_API_KEY_ID / CDP_API_KEY_SECRET; never logged, never echoed).
 *
 * The token, as CDP documents it and `@coinbase/cdp-sdk`'s `generateJwt` makes it (checked
 * differentially in test/unit/cdp-auth.test.ts): header `{alg, kid: keyId, typ: "JWT", nonce}`
 * with 16 random bytes of nonce; claims `{sub: keyId, iss: "cdp", uris: ["METHOD host/path"],
 * iat, nbf, exp}`, valid 120 s. Keys: Ed25519 as base64 of 64 bytes (seed, then public key) →
 * EdDSA; P-256 as PEM, PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`, which the
 * SDK's own import refuses) → ES256.
 */

export interface CdpKey {
  id: string;
  alg: "EdDSA" | "ES256";
  key: CryptoKey;
}

export const CDP_JWT_SECONDS = 120;

/** The kind of key a secret holds, checked without importing it (for configuration errors). */
export function cdpKeyKind(secret: string): CdpKey["alg"] | undefined {
  const trimmed = secret.trim();
  if (/^-----BEGIN (EC )?PRIVATE KEY-----/.test(trimmed)) return "ES256";
  const bytes = fromBase64(trimmed);
  return bytes?.length === 64 ? "EdDSA" : undefined;
}

export async function importCdpKey(id: string, secret: string): Promise<CdpKey> {
  const alg = cdpKeyKind(secret);
  if (alg === "EdDSA") {
    const bytes = fromBase64(secret.trim()) as Uint8Array;
    const jwk = { kty: "OKP", crv: "Ed25519", d: base64url(bytes.slice(0, 32)), x: base64url(bytes.slice(32)) };
    return { id, alg, key: await crypto.subtle.importKey("jwk", jwk, { name: "Ed25519" }, false, ["sign"]) };
  }
  if (alg === "ES256") {
    const trimmed = secret.trim();
    const der = fromBase64(trimmed.replace(/-----(BEGIN|END) (EC )?PRIVATE KEY-----|\s/g, ""));
    if (!der) throw new Error("the EC key is not valid PEM");
    const pkcs8 = trimmed.includes("BEGIN EC PRIVATE KEY") ? sec1ToPkcs8(der) : der;
    const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    return { id, alg, key };
  }
  throw new Error("not an Ed25519 (base64) or P-256 (PEM) key");
}

/** A JWT for one call: `method` and the URL it goes to, at `nowSeconds`. */
export async function cdpJwt(key: CdpKey, method: string, url: URL, nowSeconds: number): Promise<string> {
  const header = { alg: key.alg, kid: key.id, typ: "JWT", nonce: hex(crypto.getRandomValues(new Uint8Array(16))) };
  const claims = {
    sub: key.id,
    iss: "cdp",
    uris: [`${method} ${url.host}${url.pathname}`],
    iat: nowSeconds,
    nbf: nowSeconds,
    exp: nowSeconds + CDP_JWT_SECONDS,
  };
  const signingInput = `${base64url(utf8(JSON.stringify(header)))}.${base64url(utf8(JSON.stringify(claims)))}`;
  const algorithm = key.alg === "EdDSA" ? { name: "Ed25519" } : { name: "ECDSA", hash: "SHA-256" };
  // WebCrypto's ECDSA signature is r ‖ s (IEEE P1363), which is exactly JWS's ES256 format.
  const signature = await crypto.subtle.sign(algorithm, key.key, utf8(signingInput));
  return `${signingInput}.${base64url(new Uint8Array(signature))}`;
}

/**
 * SEC1 `ECPrivateKey` (RFC 5915) wrapped as PKCS#8 `PrivateKeyInfo` (RFC 5208) for P-256:
 * SEQUENCE { INTEGER 0, SEQUENCE { id-ecPublicKey, prime256v1 }, OCTET STRING { sec1 } }.
 */
function sec1ToPkcs8(sec1: Uint8Array): Uint8Array {
  const algorithm = Uint8Array.from([
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03,
    0x01, 0x07,
  ]);
  const version = Uint8Array.from([0x02, 0x01, 0x00]);
  return tlv(0x30, [version, algorithm, tlv(0x04, [sec1])]);
}

function tlv(tag: number, parts: Uint8Array[]): Uint8Array {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const lengthBytes =
    length < 0x80 ? [length] : length < 0x100 ? [0x81, length] : [0x82, (length >> 8) & 0xff, length & 0xff];
  const out = new Uint8Array(1 + lengthBytes.length + length);
  out[0] = tag;
  out.set(lengthBytes, 1);
  let at = 1 + lengthBytes.length;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const utf8 = (text: string) => new TextEncoder().encode(text);
const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return undefined;
  try {
    const binary = atob(text);
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}
