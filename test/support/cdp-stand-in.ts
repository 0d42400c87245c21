/**
 * A stand-in for CDP's authentication — a mock, allowed only because CDP itself is remote. It
 * checks a call's Bearer JWT as CDP documents its API keys: signed by the key (EdDSA or ES256)
 * whose id is `kid` and `sub`, `iss` "cdp", `uris` naming exactly this method, host and path,
 * inside `nbf`..`exp`. Node-side.
 */
import type { KeyObject } from "node:crypto";
import { decodeProtectedHeader, importSPKI, jwtVerify } from "jose";

export interface CdpKeyOnFile {
  keyId: string;
  publicKey: KeyObject;
}

/** Why CDP would refuse this Authorization header for this call, or undefined when it accepts it. */
export async function cdpRefusal(
  authorization: string | undefined,
  call: { method: string; host: string; path: string },
  key: CdpKeyOnFile,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<string | undefined> {
  const token = /^Bearer (.+)$/.exec(authorization ?? "")?.[1];
  if (!token) return "no bearer token";
  let alg: string;
  try {
    const header = decodeProtectedHeader(token);
    if (header.kid !== key.keyId) return "unknown key id";
    alg = String(header.alg);
  } catch {
    return "not a JWT";
  }
  try {
    const publicKey = await importSPKI(key.publicKey.export({ type: "spki", format: "pem" }) as string, alg);
    const { payload } = await jwtVerify(token, publicKey, {
      issuer: "cdp",
      subject: key.keyId,
      algorithms: ["EdDSA", "ES256"],
      currentDate: new Date(nowSeconds * 1000),
      requiredClaims: ["exp", "nbf", "iat", "uris"],
    });
    const uris = payload.uris as unknown;
    const expected = `${call.method} ${call.host}${call.path}`;
    if (!Array.isArray(uris) || !uris.includes(expected)) return `not for ${expected}`;
    if ((payload.exp as number) - (payload.iat as number) > 300) return "lives too long";
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code ?? "invalid";
  }
}
