/**
 * Which facilitators the paywall uses, in order of preference, and how each authenticates. Pure:
 * checked once per isolate with every problem naming its field; secrets are checked for shape only
 * and never repeated in a message.
 *
 * `FACILITATORS` (a JSON list, as a string or as structured vars in wrangler.toml):
 *
 *   [{ "name": "cdp", "url": "https://api.cdp.coinbase.com/platform/v2/x402",
 *      "networks": ["eip155:8453"], "auth": "cdp" },
 *    { "name": "payai", "url": "https://facilitator.payai.network" },
 *    { "name": "own", "url": "https://x402.example.com", "auth": { "header": "OWN_FACILITATOR_TOKEN" } }]
 *
 * - `networks`: the CAIP-2 networks it is used for (`eip155:*` for a whole family); all if omitted.
 * - `auth`: `"none"` (default); `"cdp"`: a fresh JWT per call from the secrets CDP_API_KEY_ID and
 *   CDP_API_KEY_SECRET; `{ "header": "SECRET" }`: the secret named SECRET, sent as Authorization.
 * Without FACILITATORS, `FACILITATOR_URL` is the one facilitator for every network, with the
 * secret FACILITATOR_AUTHORIZATION as its Authorization when set.
 */
import { z } from "@x402/core/schemas";
import { parseHttpUrl } from "../http-url.ts";
import { cdpKeyKind } from "./cdp-auth.ts";

export type FacilitatorAuth =
  | { kind: "none" }
  | { kind: "header"; secret: string; value: string }
  | { kind: "cdp"; keyId: string; keySecret: string };

export interface FacilitatorConfig {
  name: string;
  /** Base URL without trailing slash; `/verify`, `/settle`, `/supported` are appended. */
  url: string;
  /** CAIP-2 networks (or `namespace:*`) it serves; undefined = every network. */
  networks: string[] | undefined;
  auth: FacilitatorAuth;
}

export type FacilitatorsResult =
  | { ok: true; facilitators: FacilitatorConfig[] }
  | { ok: false; variable: string; problem: string };

const NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
const NETWORK = /^[a-z0-9-]{3,8}:(\*|[-_a-zA-Z0-9]{1,32})$/;
const SECRET_NAME = /^[A-Z_][A-Z0-9_]{0,63}$/;

const EntrySchema = z
  .object({
    name: z.string().regex(NAME, "must be 1-32 lower-case letters, digits or '-'"),
    url: z.string(),
    networks: z
      .array(z.string().regex(NETWORK, "must be a CAIP-2 network such as eip155:8453, or eip155:*"))
      .min(1)
      .max(64)
      .optional(),
    auth: z
      .union([
        z.literal("none"),
        z.literal("cdp"),
        z.object({ header: z.string().regex(SECRET_NAME, "must name a secret (A-Z, 0-9, _)") }).strict(),
      ])
      .optional(),
  })
  .strict();

type Secrets = Record<string, unknown>;

export function parseFacilitators(env: Secrets): FacilitatorsResult {
  const bad = (variable: string, problem: string): FacilitatorsResult => ({ ok: false, variable, problem });
  const list = env.FACILITATORS;
  const single = env.FACILITATOR_URL;
  if (list === undefined || list === "") {
    if (typeof single !== "string" || single === "") {
      return bad("FACILITATOR_URL", "is required unless FACILITATORS lists the facilitators");
    }
    const url = httpUrl(single);
    if (!url) return bad("FACILITATOR_URL", "must be an http(s) URL without query, fragment or credentials");
    const authorization = env.FACILITATOR_AUTHORIZATION;
    let auth: FacilitatorAuth = { kind: "none" };
    if (typeof authorization === "string" && authorization !== "") {
      if (!isHeaderValue(authorization)) return bad("FACILITATOR_AUTHORIZATION", "is not a valid HTTP header value");
      auth = { kind: "header", secret: "FACILITATOR_AUTHORIZATION", value: authorization };
    }
    return { ok: true, facilitators: [{ name: "default", url, networks: undefined, auth }] };
  }
  if (single !== undefined && single !== "")
    return bad("FACILITATOR_URL", "must not be set together with FACILITATORS");

  let parsed: unknown = list;
  if (typeof list === "string") {
    try {
      parsed = JSON.parse(list);
    } catch {
      return bad("FACILITATORS", "is not valid JSON");
    }
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || parsed.length > 16) {
    return bad("FACILITATORS", "must be a list of 1 to 16 facilitators");
  }
  const facilitators: FacilitatorConfig[] = [];
  for (let i = 0; i < parsed.length; i++) {
    const at = `FACILITATORS[${i}]`;
    const entry = EntrySchema.safeParse(parsed[i]);
    if (!entry.success) {
      const issue = entry.error.issues[0];
      const field = issue?.path.length ? `.${issue.path.join(".")}` : "";
      return bad(`${at}${field}`, issue?.message ?? "is invalid");
    }
    const { name, networks } = entry.data;
    if (facilitators.some((f) => f.name === name)) return bad(`${at}.name`, `"${name}" is listed twice`);
    const url = httpUrl(entry.data.url);
    if (!url) return bad(`${at}.url`, "must be an http(s) URL without query, fragment or credentials");
    const auth = authOf(entry.data.auth ?? "none", env);
    if ("problem" in auth) return bad(auth.variable ?? `${at}.auth`, auth.problem);
    facilitators.push({ name, url, networks, auth });
  }
  return { ok: true, facilitators };
}

function authOf(
  auth: "none" | "cdp" | { header: string },
  env: Secrets,
): FacilitatorAuth | { problem: string; variable?: string } {
  if (auth === "none") return { kind: "none" };
  if (auth === "cdp") {
    const keyId = env.CDP_API_KEY_ID;
    const keySecret = env.CDP_API_KEY_SECRET;
    if (typeof keyId !== "string" || keyId === "" || !isHeaderValue(keyId)) {
      return { variable: "CDP_API_KEY_ID", problem: 'must be set (wrangler secret put CDP_API_KEY_ID) for auth "cdp"' };
    }
    if (typeof keySecret !== "string" || cdpKeyKind(keySecret) === undefined) {
      return {
        variable: "CDP_API_KEY_SECRET",
        problem: "must be a CDP API key secret: an Ed25519 key (base64) or a P-256 key (PEM)",
      };
    }
    return { kind: "cdp", keyId, keySecret };
  }
  const value = env[auth.header];
  if (typeof value !== "string" || value === "" || !isHeaderValue(value)) {
    return { variable: auth.header, problem: "must be set to a valid HTTP header value (wrangler secret put)" };
  }
  return { kind: "header", secret: auth.header, value };
}

/** Whether a facilitator configured for `networks` is one to use for `network`. */
export function servesNetwork(networks: string[] | undefined, network: string): boolean {
  if (!networks) return true;
  const namespace = network.slice(0, network.indexOf(":"));
  return networks.some((n) => n === network || n === `${namespace}:*`);
}

/** The base URL without trailing slashes, so paths can be appended. */
function httpUrl(raw: string): string | undefined {
  return parseHttpUrl(raw)?.href.replace(/\/+$/, "");
}

function isHeaderValue(value: string): boolean {
  // RFC 9110 field-value: visible ASCII, space and tab; no CR/LF.
  return /^[\t\x20-\x7e]+$/.test(value);
}
