/**
 * A demo origin: the kind of API an owner puts the paywall in front of. A few JSON endpoints, one
 * slow, one that fails. It records what it receives so tests can check what reached it.
 */
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface OriginServer {
  url: string;
  stop: () => Promise<void>;
  received: { method: string; path: string; headers: Record<string, string | string[] | undefined>; body: string }[];
}

export const ORIGIN_ENDPOINTS = [
  "GET /health                 free: liveness",
  "GET /api/weather/:city      current weather for a city",
  "GET /reports/:id            a report",
  "GET /api/slow               answers after ?ms= (default 1500) milliseconds",
  "GET /api/fail               always 500",
  'POST /api/infer             {"service": "llm-70b" | "llm-8b", "prompt": "…"}: a pretend completion',
  "GET /api/batch?count=N      N generated ids",
  "GET /api/complete?words=N   N generated words, metered: reports $0.0001 a word in Settlement-Overrides",
  "GET /api/quote/:symbol      a price quote (sold per call on a batch-settlement channel); DOWN answers 503",
];

export async function startOrigin(port: number): Promise<OriginServer> {
  const received: OriginServer["received"] = [];
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://origin");
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    received.push({ method: req.method ?? "", path: `${url.pathname}${url.search}`, headers: req.headers, body });
    const weather = /^\/api\/weather\/([^/]+)$/.exec(url.pathname);
    const report = /^\/reports\/([^/]+)$/.exec(url.pathname);
    if (url.pathname === "/health") return json(res, 200, { status: "ok" });
    if (weather) {
      const city = decodeURIComponent(weather[1] ?? "");
      return json(res, 200, { city, temperatureC: 7 + (city.length % 15), conditions: "clear", observedAt: new Date().toISOString() });
    }
    if (report) return json(res, 200, { report: report[1], summary: "Revenue up, costs down.", pages: 12 });
    if (url.pathname === "/api/slow") {
      const ms = Math.min(Number(url.searchParams.get("ms") ?? "1500") || 0, 10_000);
      await new Promise((r) => setTimeout(r, ms));
      return json(res, 200, { waitedMs: ms });
    }
    if (url.pathname === "/api/fail") return json(res, 500, { error: "the origin failed" });
    if (url.pathname === "/api/infer" && req.method === "POST") {
      let input: { service?: unknown; prompt?: unknown };
      try {
        input = JSON.parse(body);
      } catch {
        return json(res, 400, { error: "send JSON" });
      }
      return json(res, 200, { service: input.service, completion: `You said: ${String(input.prompt ?? "")}` });
    }
    if (url.pathname === "/api/batch") {
      const count = Number(url.searchParams.get("count"));
      if (!Number.isInteger(count) || count < 1 || count > 100) return json(res, 400, { error: "count 1-100" });
      return json(res, 200, { ids: Array.from({ length: count }, (_, i) => `id-${i + 1}`) });
    }
    const quote = /^\/api\/quote\/([^/]+)$/.exec(url.pathname);
    if (quote?.[1] === "DOWN") return json(res, 503, { error: "quotes are down" });
    if (quote) return json(res, 200, { symbol: decodeURIComponent(quote[1] ?? ""), price: 101.25, at: received.length });
    if (url.pathname === "/api/complete") {
      // Metered: charges $0.0001 per word written, in the official Settlement-Overrides header.
      // `report` replaces that header's value (or, as "none", leaves it out), for tests.
      const words = Number(url.searchParams.get("words") ?? "5");
      if (!Number.isInteger(words) || words < 0 || words > 1000) return json(res, 400, { error: "words 0-1000" });
      const report = url.searchParams.get("report");
      const charge = report ?? JSON.stringify({ amount: String(words * 100) });
      const text = Array.from({ length: words }, (_, i) => `word${i + 1}`).join(" ");
      res.writeHead(200, { "content-type": "application/json", ...(report === "none" ? {} : { "settlement-overrides": charge }) });
      return res.end(JSON.stringify({ text, words }));
    }
    json(res, 404, { error: "no such endpoint" });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
