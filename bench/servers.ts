/**
 * The benchmark's loopback peers, in their own process so they do not share an event loop with the
 * load generator: an origin answering small JSON, and a facilitator stub that accepts every payment
 * at once (so the benchmark measures the Worker, not a chain). Usage: node bench/servers.ts ORIGIN_PORT FACILITATOR_PORT
 */
import { createServer } from "node:http";

const [originPort, facilitatorPort] = process.argv.slice(2).map(Number);
const body = JSON.stringify({ city: "paris", temperatureC: 12, conditions: "clear" });

const origin = createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
});

let tx = 0;
const facilitator = createServer((req, res) => {
  let raw = "";
  req.on("data", (chunk) => (raw += chunk));
  req.on("end", () => {
    let reply: unknown;
    if (req.url === "/supported") {
      reply = {
        kinds: [
          { x402Version: 2, scheme: "exact", network: "eip155:84532" },
          { x402Version: 1, scheme: "exact", network: "base-sepolia" },
        ],
        extensions: [],
        signers: {},
      };
    } else {
      const request = JSON.parse(raw || "{}");
      const payer = request?.paymentPayload?.payload?.authorization?.from;
      reply =
        req.url === "/verify"
          ? { isValid: true, payer }
          : { success: true, transaction: `0x${(++tx).toString(16).padStart(64, "0")}`, network: "eip155:84532", payer };
    }
    const text = JSON.stringify(reply);
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  });
});

origin.listen(originPort, "127.0.0.1", () => {
  facilitator.listen(facilitatorPort, "127.0.0.1", () => console.log("ready"));
});
