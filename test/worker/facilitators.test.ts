/**
 * Several facilitators, in order of preference per network, against two real loopback
 * facilitator stubs: /verify fails over only when one surely did nothing, /settle goes to the one
 * that verified and never to two, /supported is read and reported, CDP JWTs are made in workerd
 * with WebCrypto and checked by a CDP stand-in (a mock: CDP itself is remote), and health shows
 * all of it without a secret.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import {
  FACILITATOR_A,
  FACILITATOR_B,
  facilitatorBLog,
  facilitatorLog,
  originLog,
  resetServers,
  scriptFacilitator,
  scriptFacilitatorB,
  setPricing,
  settlementPending,
  testCtx,
  v2Header,
} from "./helpers.ts";

const UNREACHABLE = "http://127.0.0.1:9";

beforeEach(async () => {
  await resetServers();
  await setPricing();
});

function withFacilitators(list: unknown, extra: Record<string, string> = {}) {
  const app = createApp();
  const vars = { ...env, FACILITATOR_URL: "", FACILITATORS: JSON.stringify(list), ...extra } as never;
  return {
    get: async (path = "/api/weather/paris", headers: Record<string, string> = {}) =>
      app.fetch(new Request(`https://paywall.example${path}`, { headers }), vars, testCtx),
    pay: async (path = "/api/weather/paris") =>
      app.fetch(
        new Request(`https://paywall.example${path}`, { headers: { "PAYMENT-SIGNATURE": await v2Header() } }),
        vars,
        testCtx,
      ),
  };
}
const urls = async (log: () => Promise<{ url: string }[]>) => (await log()).map((c) => c.url);

describe("failover on /verify", () => {
  it.each([
    ["unreachable", [{ name: "down", url: UNREACHABLE }], undefined],
    ["answering 500", [{ name: "a", url: FACILITATOR_A }], { verify: { kind: "answer", status: 500, body: {} } }],
    ["timing out", [{ name: "a", url: FACILITATOR_A }], { verify: { kind: "hang" } }],
  ] as const)("goes to the next facilitator when the first is %s, and settles there", async (_name, first, script) => {
    if (script) await scriptFacilitator(script as never);
    const { pay } = withFacilitators([...first, { name: "b", url: FACILITATOR_B }]);
    const res = await pay();
    expect(res.status).toBe(200);
    await res.text();
    expect(await urls(facilitatorBLog)).toEqual(["/verify", "/settle"]);
    expect((await urls(facilitatorLog)).filter((u) => u === "/settle")).toEqual([]);
  });

  it("takes a refusal as final: the next facilitator is not asked to think again", async () => {
    await scriptFacilitator({
      verify: { kind: "answer", status: 400, body: { isValid: false, invalidReason: "nope" } },
    });
    const { pay } = withFacilitators([
      { name: "a", url: FACILITATOR_A },
      { name: "b", url: FACILITATOR_B },
    ]);
    const res = await pay();
    expect(res.status).toBe(402);
    expect(await res.json()).toMatchObject({ error: "verify_rejected", detail: "nope" });
    expect(await facilitatorBLog()).toEqual([]);
    expect(await originLog()).toEqual([]);
  });

  it("fails closed when every facilitator is down: 502, origin not called", async () => {
    const { pay } = withFacilitators([
      { name: "x", url: UNREACHABLE },
      { name: "y", url: "http://127.0.0.1:10" },
    ]);
    const res = await pay();
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ error: "facilitator_unreachable" });
    expect(await originLog()).toEqual([]);
  });
});

describe("/settle goes to the facilitator that verified, never to two", () => {
  it("keeps a settle that hangs at the verifier pending rather than trying another", async () => {
    await scriptFacilitator({ settle: { kind: "hang" } });
    const { pay } = withFacilitators([
      { name: "a", url: FACILITATOR_A },
      { name: "b", url: FACILITATOR_B },
    ]);
    const res = await pay();
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: "settlement_pending" });
    expect(await urls(facilitatorLog)).toEqual(["/verify", "/settle"]);
    expect(await facilitatorBLog()).toEqual([]);
  });

  it("confirms a pending settlement at the facilitator that verified it", async () => {
    await scriptFacilitatorB({ settle: settlementPending() });
    const { get } = withFacilitators([
      { name: "down", url: UNREACHABLE },
      { name: "b", url: FACILITATOR_B },
    ]);
    const header = await v2Header();
    expect((await get("/api/weather/lima", { "PAYMENT-SIGNATURE": header })).status).toBe(409);
    await scriptFacilitatorB({});
    const done = await get("/api/weather/lima", { "PAYMENT-SIGNATURE": header });
    expect(done.status).toBe(200);
    await done.text();
    expect((await urls(facilitatorBLog)).filter((u) => u === "/settle").length).toBeGreaterThanOrEqual(2);
    expect(await facilitatorLog()).toEqual([]);
  });
});

describe("facilitators per network", () => {
  it("uses only the facilitators configured for the payment's network", async () => {
    const { pay } = withFacilitators([
      { name: "mainnet-only", url: FACILITATOR_A, networks: ["eip155:8453"] },
      { name: "testnets", url: FACILITATOR_B, networks: ["eip155:*"] },
    ]);
    expect((await pay()).status).toBe(200);
    expect(await facilitatorLog()).toEqual([]);
    expect(await urls(facilitatorBLog)).toEqual(["/verify", "/settle"]);
  });

  it("skips a facilitator whose /supported lacks the network, once health has read it", async () => {
    await scriptFacilitator({ supported: [{ x402Version: 2, scheme: "exact", network: "eip155:8453" }] });
    const { get, pay } = withFacilitators([
      { name: "a", url: FACILITATOR_A },
      { name: "b", url: FACILITATOR_B },
    ]);
    expect((await get("/__x402/health")).status).toBe(200);
    const res = await pay();
    expect(res.status).toBe(200);
    expect(await urls(facilitatorLog)).toEqual(["/supported"]);
    expect(await urls(facilitatorBLog)).toEqual(["/supported", "/verify", "/settle"]);
  });
});

describe("health", () => {
  it("shows each facilitator's networks, auth kind, failures, /supported and the routes nobody settles — no secrets", async () => {
    await scriptFacilitatorB({ supported: [{ x402Version: 2, scheme: "exact", network: "eip155:8453" }] });
    const { get, pay } = withFacilitators(
      [
        { name: "down", url: UNREACHABLE, auth: { header: "DOWN_TOKEN" } },
        { name: "b", url: FACILITATOR_B, networks: ["eip155:8453"] },
      ],
      { DOWN_TOKEN: "Bearer sup3r-secret" },
    );
    expect((await pay()).status).toBe(502);
    const res = await get("/__x402/health");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const text = await res.text();
    expect(text).not.toContain("sup3r-secret");
    const health = JSON.parse(text);
    expect(health.facilitators).toEqual([
      expect.objectContaining({
        name: "down",
        url: UNREACHABLE,
        networks: "all",
        auth: "header",
        lastSuccessAt: null,
        recentFailures: [{ at: expect.any(String), reason: expect.any(String) }],
        supported: expect.objectContaining({ state: "failed" }),
      }),
      expect.objectContaining({
        name: "b",
        networks: ["eip155:8453"],
        auth: "none",
        supported: expect.objectContaining({ state: "known", kinds: ["2|exact|eip155:8453"] }),
      }),
    ]);
    // Every priced route of the test document is on Base Sepolia, which only "down" is configured
    // for, and "down" cannot say what it supports: reported as at risk, not as settled.
    expect(health.unsupported).toEqual([]);
  });

  it("names the routes whose network no configured facilitator serves", async () => {
    const { get } = withFacilitators([{ name: "b", url: FACILITATOR_B, networks: ["eip155:8453"] }]);
    const health = (await (await get("/__x402/health")).json()) as { unsupported: unknown[] };
    expect(health.unsupported).toContainEqual({
      scheme: "exact",
      network: "eip155:84532",
      x402Version: 2,
      why: "no facilitator is configured for this network",
      routes: ["weather", "reports", "failing", "redirecting", "held"],
      routeCount: 5,
    });
  });

  it("names the routes a configured facilitator's /supported leaves out", async () => {
    await scriptFacilitatorB({ supported: [{ x402Version: 2, scheme: "exact", network: "eip155:8453" }] });
    const { get } = withFacilitators([{ name: "b", url: FACILITATOR_B }]);
    const health = (await (await get("/__x402/health")).json()) as { unsupported: unknown[] };
    expect(health.unsupported).toContainEqual(
      expect.objectContaining({
        scheme: "exact",
        network: "eip155:84532",
        x402Version: 2,
        why: "no configured facilitator lists it in /supported",
        routeCount: 5,
      }),
    );
  });
});

async function cdpKey(kind: "Ed25519" | "P-256") {
  const pair = (await crypto.subtle.generateKey(
    kind === "Ed25519" ? { name: "Ed25519" } : { name: "ECDSA", namedCurve: "P-256" },
    true,
    ["sign", "verify"],
  )) as CryptoKeyPair;
  const spki = new Uint8Array((await crypto.subtle.exportKey("spki", pair.publicKey)) as ArrayBuffer);
  const pem = (label: string, bytes: Uint8Array) =>
    `-----BEGIN ${label}-----\n${btoa(String.fromCharCode(...bytes)).replace(/(.{64})/g, "$1\n")}\n-----END ${label}-----\n`;
  let secret: string;
  if (kind === "Ed25519") {
    const jwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
    const raw = (s: string) =>
      Uint8Array.from(atob(s.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0));
    secret = btoa(String.fromCharCode(...raw(jwk.d as string), ...raw(jwk.x as string)));
  } else {
    secret = pem(
      "PRIVATE KEY",
      new Uint8Array((await crypto.subtle.exportKey("pkcs8", pair.privateKey)) as ArrayBuffer),
    );
  }
  return { secret, publicKeyPem: pem("PUBLIC KEY", spki) };
}

describe("CDP authentication (against a stand-in: CDP itself is remote)", () => {
  const keyId = "organizations/test/apiKeys/0000";

  it.each(["Ed25519", "P-256"] as const)("signs every call with a fresh %s JWT the stand-in accepts", async (kind) => {
    const key = await cdpKey(kind);
    await scriptFacilitator({ requireCdp: { keyId, publicKeyPem: key.publicKeyPem } });
    const { get, pay } = withFacilitators([{ name: "cdp", url: FACILITATOR_A, auth: "cdp" }], {
      CDP_API_KEY_ID: keyId,
      CDP_API_KEY_SECRET: key.secret,
    });
    const res = await pay();
    expect(res.status).toBe(200);
    await res.text();
    expect((await get("/__x402/health")).status).toBe(200);
    const calls = await facilitatorLog();
    expect(calls.map((c) => c.url)).toEqual(["/verify", "/settle", "/supported"]);
    const tokens = calls.map((c) => c.headers.authorization);
    expect(new Set(tokens).size).toBe(3); // one JWT per call
  });

  it("is refused with the wrong key: 502, origin not called, and the secret never shown", async () => {
    const [right, wrong] = [await cdpKey("Ed25519"), await cdpKey("Ed25519")];
    await scriptFacilitator({ requireCdp: { keyId, publicKeyPem: right.publicKeyPem } });
    const { pay } = withFacilitators([{ name: "cdp", url: FACILITATOR_A, auth: "cdp" }], {
      CDP_API_KEY_ID: keyId,
      CDP_API_KEY_SECRET: wrong.secret,
    });
    const res = await pay();
    expect(res.status).toBe(502);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({
      error: "facilitator_bad_response",
      detail: expect.stringContaining("HTTP 401"),
    });
    expect(text).not.toContain(wrong.secret.slice(0, 12));
    expect(await originLog()).toEqual([]);
  });

  it("is refused when the Worker's clock says the token has expired", async () => {
    const key = await cdpKey("P-256");
    await scriptFacilitator({ requireCdp: { keyId, publicKeyPem: key.publicKeyPem } });
    const app = createApp({ nowMs: () => Date.now() - 10 * 60_000 });
    const vars = {
      ...env,
      FACILITATOR_URL: "",
      FACILITATORS: JSON.stringify([{ name: "cdp", url: FACILITATOR_A, auth: "cdp" }]),
      CDP_API_KEY_ID: keyId,
      CDP_API_KEY_SECRET: key.secret,
    } as never;
    const res = await app.fetch(
      new Request("https://paywall.example/api/weather/paris", {
        headers: { "PAYMENT-SIGNATURE": await v2Header({ validBefore: Math.floor(Date.now() / 1000) + 3600 }) },
      }),
      vars,
      testCtx,
    );
    expect(res.status).toBe(502);
    expect(await originLog()).toEqual([]);
  });
});

describe("a bad facilitator list", () => {
  it.each([
    ["not JSON", "FACILITATORS", "[{"],
    ["empty", "FACILITATORS", "[]"],
    ["a bad URL", "FACILITATORS[0].url", JSON.stringify([{ name: "a", url: "ftp://x" }])],
    ["a bad name", "FACILITATORS[0].name", JSON.stringify([{ name: "A B", url: "https://x.example" }])],
    [
      "a duplicate name",
      "FACILITATORS[1].name",
      JSON.stringify([
        { name: "a", url: "https://x.example" },
        { name: "a", url: "https://y.example" },
      ]),
    ],
    [
      "a bad network",
      "FACILITATORS[0].networks.0",
      JSON.stringify([{ name: "a", url: "https://x.example", networks: ["base"] }]),
    ],
    ["an unknown field", "FACILITATORS[0]", JSON.stringify([{ name: "a", url: "https://x.example", weight: 2 }])],
    [
      "auth cdp without its secrets",
      "CDP_API_KEY_ID",
      JSON.stringify([{ name: "a", url: "https://x.example", auth: "cdp" }]),
    ],
    [
      "a header secret that is not set",
      "MISSING",
      JSON.stringify([{ name: "a", url: "https://x.example", auth: { header: "MISSING" } }]),
    ],
  ])("%s → 500 config_invalid naming %s", async (_name, variable, list) => {
    const app = createApp();
    const res = await app.fetch(
      new Request("https://paywall.example/health"),
      { ...env, FACILITATOR_URL: "", FACILITATORS: list } as never,
      testCtx,
    );
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ error: "config_invalid", detail: variable });
  });

  it("refuses a CDP secret that is no key, without repeating it", async () => {
    const res = await createApp().fetch(
      new Request("https://paywall.example/health"),
      {
        ...env,
        FACILITATOR_URL: "",
        FACILITATORS: JSON.stringify([{ name: "a", url: "https://x.example", auth: "cdp" }]),
        CDP_API_KEY_ID: "id",
        CDP_API_KEY_SECRET: "not-a-key-hunter2",
      } as never,
      testCtx,
    );
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ error: "config_invalid", detail: "CDP_API_KEY_SECRET" });
    expect(text).not.toContain("hunter2");
  });

  it("refuses FACILITATOR_URL and FACILITATORS together", async () => {
    const res = await createApp().fetch(
      new Request("https://paywall.example/health"),
      { ...env, FACILITATORS: JSON.stringify([{ name: "a", url: "https://x.example" }]) } as never,
      testCtx,
    );
    expect(await res.json()).toMatchObject({ error: "config_invalid", detail: "FACILITATOR_URL" });
  });
});
