/**
 * Real loopback HTTP servers for the Worker tests: a recording origin and a scriptable x402
 * facilitator stub. Tests read what each server received through `/__test/*` endpoints.
 * Node-side only (started by global-setup.ts).
 */
import { createPublicKey } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { cdpRefusal } from "./cdp-stand-in.ts";

export interface Recorded {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

/** Handles `/__test/log` (GET: what was received) and `/__test/reset` (POST). */
function control(req: IncomingMessage, res: ServerResponse, log: Recorded[], reset: () => void): boolean {
  if (req.url === "/__test/log") {
    json(res, 200, log);
    return true;
  }
  if (req.url === "/__test/reset") {
    log.length = 0;
    reset();
    json(res, 200, { ok: true });
    return true;
  }
  return false;
}

export async function startOrigin(): Promise<{ port: number; close: () => Promise<void> }> {
  const log: Recorded[] = [];
  /** Responses of /base/held, waiting for `POST /__test/release` to send their second half. */
  const held: ServerResponse[] = [];
  // Larger headers than Node's 16 KiB default: the tests send some to free routes.
  const server = createServer({ maxHeaderSize: 64 * 1024 }, async (req, res) => {
    const body = await readBody(req);
    if (req.url === "/__test/release") {
      for (const r of held.splice(0)) r.end("second half");
      return json(res, 200, { ok: true });
    }
    if (control(req, res, log, () => {})) return;
    log.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
    const url = new URL(req.url ?? "/", "http://origin");
    const port = (server.address() as AddressInfo).port;
    const status = /^\/base\/status\/(\d{3})$/.exec(url.pathname);
    if (status) return json(res, Number(status[1]), { error: "origin says no", status: Number(status[1]) });
    if (url.pathname === "/base/redirect-home") {
      res.writeHead(302, { location: `http://127.0.0.1:${port}/base/landed?x=1` });
      return res.end();
    }
    if (url.pathname === "/base/held") {
      // Sends headers and a first chunk, then holds the rest until the test releases it.
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("first half;");
      held.push(res);
      return;
    }
    if (url.pathname === "/base/slow") {
      // A slow origin (inference, a proxy): answers after ?ms= milliseconds.
      await new Promise((resolve) => setTimeout(resolve, Number(url.searchParams.get("ms") ?? "300")));
      return json(res, 200, { slow: true, secret: "paid content", at: log.length });
    }
    if (url.pathname === "/base/big") {
      res.writeHead(200, { "content-type": "text/plain" });
      return res.end("b".repeat(Number(url.searchParams.get("bytes") ?? "1000")));
    }
    if (url.pathname === "/base/cookie") {
      res.writeHead(200, [
        ["content-type", "text/plain"],
        ["set-cookie", "session=secret; Path=/"],
        ["x-origin-own", "kept"],
      ]);
      return res.end(`cookie answer ${log.length}`);
    }
    if (url.pathname.startsWith("/base/metered")) {
      // An upto origin: reports its charge as ?report= says (the raw header value), or not at all.
      const report = url.searchParams.get("report");
      res.writeHead(200, {
        "content-type": "text/plain",
        ...(report === null ? {} : { "settlement-overrides": report }),
      });
      return res.end(`metered answer ${log.length}`);
    }
    if (url.pathname === "/base/never") return; // never answers: the Worker's origin timeout must fire
    if (url.pathname === "/base/reports/with-headers") {
      // An origin with opinions: two cookies, its own CORS and caching, an expiry.
      res.writeHead(200, [
        ["content-type", "text/plain"],
        ["set-cookie", "a=1; Path=/"],
        ["set-cookie", "b=2; Path=/"],
        ["access-control-allow-origin", "https://app.example"],
        ["access-control-expose-headers", "X-Origin-Own"],
        ["cache-control", "public, max-age=600"],
        ["expires", "Wed, 01 Jan 2099 00:00:00 GMT"],
        ["x-origin-own", "kept"],
        ["connection", "keep-alive, X-Hop"],
        ["x-hop", "for the next hop only"],
        ["proxy-authenticate", "Basic"],
      ]);
      return res.end("report");
    }
    if (url.pathname === "/base/redirect-away") {
      res.writeHead(302, { location: "https://elsewhere.example/landed" });
      return res.end();
    }
    json(
      res,
      200,
      { path: url.pathname, query: url.search, method: req.method, body, secret: "paid content" },
      { "x-origin": "yes", "cache-control": "public, max-age=3600" },
    );
  });
  const port = await listen(server);
  return { port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

type Behaviour =
  | { kind: "answer"; status: number; body: unknown }
  | { kind: "garbage" }
  | { kind: "hang" }
  /** Answers, but only after `afterMs`: past the Worker's timeout, as a facilitator waiting for a receipt would. */
  | { kind: "late"; afterMs: number; status: number; body: unknown }
  | { kind: "huge"; body: unknown };

interface Script {
  verify?: Behaviour | Behaviour[];
  settle?: Behaviour | Behaviour[];
  /** What GET /supported lists (default: exact on Base Sepolia, v2 and v1), or "fail" for a 500. */
  supported?: { x402Version: number; scheme: string; network: string; extra?: Record<string, unknown> }[] | "fail";
  /** Require a CDP JWT on every call, checked by the CDP stand-in against this public key (PEM). */
  requireCdp?: { keyId: string; publicKeyPem: string };
}

const DEFAULT_SUPPORTED = [
  { x402Version: 2, scheme: "exact", network: "eip155:84532" },
  { x402Version: 1, scheme: "exact", network: "base-sepolia" },
];

/**
 * Facilitator stub. By default /verify says valid and /settle succeeds with a fresh tx hash.
 * `POST /__test/script {verify?, settle?}` sets the next behaviour until the next reset.
 */
export async function startFacilitator(): Promise<{ port: number; close: () => Promise<void> }> {
  const log: Recorded[] = [];
  /** A behaviour, or a list of them used one per call (the last one sticks). */
  let script: Script = {};
  let tx = 0;
  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    if (control(req, res, log, () => (script = {}))) return;
    if (req.url === "/__test/script") {
      script = JSON.parse(body);
      return json(res, 200, { ok: true });
    }
    log.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
    if (script.requireCdp) {
      const refusal = await cdpRefusal(
        req.headers.authorization,
        { method: req.method ?? "", host: req.headers.host ?? "", path: req.url ?? "" },
        { keyId: script.requireCdp.keyId, publicKey: createPublicKey(script.requireCdp.publicKeyPem) },
      );
      if (refusal) return json(res, 401, { errorType: "unauthorized", errorMessage: refusal });
    }
    if (req.url === "/supported") {
      if (script.supported === "fail") return json(res, 500, { error: "scripted failure" });
      return json(res, 200, { kinds: script.supported ?? DEFAULT_SUPPORTED, extensions: [], signers: {} });
    }
    const request = JSON.parse(body || "{}");
    const from = request?.paymentPayload?.payload?.authorization?.from;
    const step = req.url === "/verify" ? "verify" : req.url === "/settle" ? "settle" : undefined;
    if (!step) return json(res, 404, { error: "not found" });
    const scripted = script[step];
    const behaviour = Array.isArray(scripted) ? (scripted.length > 1 ? scripted.shift() : scripted[0]) : scripted;
    if (behaviour?.kind === "hang") return; // never answers; the Worker's timeout must fire
    if (behaviour?.kind === "garbage") {
      res.writeHead(200, { "content-type": "text/html" });
      return res.end("<html>surprise</html>");
    }
    if (behaviour?.kind === "answer") return json(res, behaviour.status, behaviour.body);
    if (behaviour?.kind === "late") {
      await new Promise((resolve) => setTimeout(resolve, behaviour.afterMs));
      return json(res, behaviour.status, behaviour.body);
    }
    if (behaviour?.kind === "huge") {
      // A well-formed answer padded past any sane size, chunked, with no Content-Length.
      res.writeHead(200, { "content-type": "application/json" });
      res.write(JSON.stringify(behaviour.body).slice(0, -1));
      for (let i = 0; i < 64; i++) res.write(`,"pad${i}":"${"x".repeat(4096)}"`);
      return res.end("}");
    }
    if (step === "verify") return json(res, 200, { isValid: true, payer: from });
    tx += 1;
    return json(res, 200, {
      success: true,
      transaction: `0x${tx.toString(16).padStart(64, "0")}`,
      network: request?.paymentRequirements?.network,
      payer: from,
    });
  });
  const port = await listen(server);
  return {
    port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
