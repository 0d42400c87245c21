/**
 * The benchmark's loopback peers, in their own process so they do not share an event loop with the
 * load generator: an origin answering small JSON, a facilitator stub that accepts every payment at
 * once (so the benchmark measures the Worker, not a chain; batch-settlement deposits included, with
 * the channel state the official facilitator reports), and an in-memory stand-in for Workers
 * KV. KV lives here, outside workerd, because in production it is a remote service too: inside
 * workerd its side of every call would be billed to the Worker under test.
 * Usage: node bench/servers.ts ORIGIN_PORT FACILITATOR_PORT KV_PORT PRICING_FILE [BASELINE_KV_PORT]
 * BASELINE_KV_PORT: a second KV for the baseline (c0), whose pricing document leaves out the routes
 * with a `scheme` (upto, batch-settlement), which a version from before them refuses as invalid.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";

const [originPort, facilitatorPort, kvPort] = process.argv.slice(2, 5).map(Number);
const pricingDocument = readFileSync(process.argv[5] as string, "utf8");
const baselineKvPort = process.argv[6] ? Number(process.argv[6]) : undefined;
const baselinePricing = (() => {
  const document = JSON.parse(pricingDocument) as { routes: Record<string, unknown>[] };
  return JSON.stringify({ ...document, routes: document.routes.filter((route) => !("scheme" in route)) });
})();
const body = JSON.stringify({ city: "paris", temperatureC: 12, conditions: "clear" });

// `?delay=MS` makes an answer slow (a paid inference, say); GET /__stats counts requests by path.
const originCalls = new Map<string, number>();
const origin = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://origin");
  if (url.pathname === "/__stats") {
    // Read between runs, seconds apart: a kept-alive socket could be closed by this server's
    // keep-alive timeout just as the bench reuses it ("other side closed", seen in round 5/5).
    res.writeHead(200, { "content-type": "application/json", connection: "close" });
    res.end(JSON.stringify(Object.fromEntries(originCalls)));
    return;
  }
  originCalls.set(url.pathname, (originCalls.get(url.pathname) ?? 0) + 1);
  req.resume();
  req.on("end", () => {
    const answer = () => {
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    };
    const delay = Number(url.searchParams.get("delay") ?? "0");
    if (delay > 0) setTimeout(answer, Math.min(delay, 10_000));
    else answer();
  });
});

let tx = 0;
/** A key the stub names as batch-settlement's receiver authorizer (it signs nothing: no claims run). */
const RECEIVER_AUTHORIZER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const facilitatorCalls = new Map<string, number>();
const facilitator = createServer((req, res) => {
  let raw = "";
  req.on("data", (chunk) => (raw += chunk));
  req.on("end", () => {
    let reply: unknown;
    if (req.url === "/__stats") {
      res.writeHead(200, { "content-type": "application/json", connection: "close" });
      res.end(JSON.stringify(Object.fromEntries(facilitatorCalls)));
      return;
    }
    facilitatorCalls.set(req.url ?? "", (facilitatorCalls.get(req.url ?? "") ?? 0) + 1);
    if (req.url === "/supported") {
      reply = {
        kinds: [
          { x402Version: 2, scheme: "exact", network: "eip155:84532" },
          { x402Version: 1, scheme: "exact", network: "base-sepolia" },
          { x402Version: 2, scheme: "upto", network: "eip155:84532", extra: { facilitatorAddress: RECEIVER_AUTHORIZER } },
          {
            x402Version: 2,
            scheme: "batch-settlement",
            network: "eip155:84532",
            extra: { receiverAuthorizer: RECEIVER_AUTHORIZER },
          },
        ],
        extensions: [],
        signers: {},
      };
    } else {
      const request = JSON.parse(raw || "{}");
      const inner = request?.paymentPayload?.payload;
      const transaction = `0x${(++tx).toString(16).padStart(64, "0")}`;
      if (inner?.type === "deposit") {
        // What the official facilitator reports for a deposit into a new channel.
        const state = {
          channelId: inner.voucher.channelId,
          balance: inner.deposit.amount,
          totalClaimed: "0",
          withdrawRequestedAt: 0,
          refundNonce: "0",
        };
        const payer = inner.channelConfig.payer;
        reply =
          req.url === "/verify"
            ? { isValid: true, payer, extra: { ...state, balance: "0" } }
            : { success: true, transaction, network: "eip155:84532", payer, amount: inner.deposit.amount, extra: { channelState: state } };
      } else {
        const payer = inner?.authorization?.from ?? inner?.permit2Authorization?.from;
        reply =
          req.url === "/verify" ? { isValid: true, payer } : { success: true, transaction, network: "eip155:84532", payer };
      }
    }
    const text = JSON.stringify(reply);
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  });
});

// Speaks the KV binding's HTTP protocol as workerd sends it to a service:
// GET/PUT/DELETE /<urlencoded key>?urlencoded=true[&expiration_ttl=N]. Counts every call, so the
// benchmark can show how many KV round-trips each measured run made (GET /__stats).
/** A KV stand-in whose `pricing` key is `pricing`; every other key lives in its own store. */
function kvServer(pricing: string) {
  const store = new Map<string, string>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://kv");
    if (url.pathname === "/__stats") {
      // Closed after each answer, as the origin's /__stats is.
      res.writeHead(200, { "content-type": "application/json", connection: "close" });
      res.end(JSON.stringify({ calls: kvCalls }));
      return;
    }
    kvCalls++;
    const key = decodeURIComponent(url.pathname.slice(1));
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => (raw += chunk));
    req.on("end", () => {
      if (req.method === "GET") {
        const value = key === "pricing" ? pricing : store.get(key);
        res.writeHead(value === undefined ? 404 : 200, { "content-length": Buffer.byteLength(value ?? "") });
        res.end(value ?? "");
      } else if (req.method === "PUT" || req.method === "DELETE") {
        if (req.method === "PUT") store.set(key, raw);
        else store.delete(key);
        res.writeHead(200, { "content-length": 0 });
        res.end();
      } else {
        res.writeHead(405, { "content-length": 0 });
        res.end();
      }
    });
  });
  return server;
}
/** KV calls to either store: the bench reads them around each run of one system. */
let kvCalls = 0;
const kv = kvServer(pricingDocument);
const baselineKv = baselineKvPort ? kvServer(baselinePricing) : undefined;

origin.listen(originPort, "127.0.0.1", () => {
  facilitator.listen(facilitatorPort, "127.0.0.1", () => {
    kv.listen(kvPort, "127.0.0.1", () => {
      if (!baselineKv) console.log("ready");
      else baselineKv.listen(baselineKvPort, "127.0.0.1", () => console.log("ready"));
    });
  });
});
