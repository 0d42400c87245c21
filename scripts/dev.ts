/**
 * `npm run dev`: the whole payment loop on this machine, offline, loopback only — a local chain
 * with the test stablecoin, the official x402 facilitator, a demo origin, and the paywall Worker
 * under wrangler dev with local KV seeded from pricing.json. Ctrl-C stops everything.
 */
import { parseArgs } from "node:util";
import { account, NETWORK, ROLE, USDC_ADDRESS } from "../stack/accounts.ts";
import { DEFAULT_PORTS, SOLANA_FUNDING, type Stack, startStack } from "../stack/index.ts";
import { ORIGIN_ENDPOINTS } from "../stack/origin.ts";
import { SOLANA_DEVNET, SOLANA_USDC, solanaSigner } from "../stack/solana.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: String(DEFAULT_PORTS.worker) },
    "origin-port": { type: "string", default: String(DEFAULT_PORTS.origin) },
    "facilitator-port": { type: "string", default: String(DEFAULT_PORTS.facilitator) },
    "chain-port": { type: "string", default: String(DEFAULT_PORTS.chain) },
    "solana-port": { type: "string", default: String(DEFAULT_PORTS.solana) },
    pricing: { type: "string", default: "pricing.json" },
    "persist-to": { type: "string", default: ".wrangler/state" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(`npm run dev -- [--port 8787] [--origin-port 8788] [--facilitator-port 8789] [--chain-port 8545] [--solana-port 8899]
                  [--pricing pricing.json] [--persist-to .wrangler/state]`);
  process.exit(0);
}
const port = (name: keyof typeof values) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    console.error(`--${name} must be a port number`);
    process.exit(2);
  }
  return n;
};

let stack: Stack | undefined;
let stopping = false;
async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  console.log("\nStopping the stack…");
  await stack?.stop();
  process.exit(code);
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => void shutdown(0));

try {
  stack = await startStack({
    ports: {
      worker: port("port"),
      origin: port("origin-port"),
      facilitator: port("facilitator-port"),
      chain: port("chain-port"),
      solana: port("solana-port"),
    },
    pricingFile: values.pricing,
    persistDir: values["persist-to"],
    echoWorker: true,
    onStep: (s) => console.log(`… ${s}`),
  });
} catch (error) {
  console.error(`\n${(error as Error).message}`);
  await shutdown(1);
}

const s = stack as Stack;
const pricing = (await (await fetch(`${s.worker.url}/__x402/pricing`)).json()) as { routes: any[] };
console.log(`
x402 paywall — local payment stack is up (Ctrl-C stops everything)

  paywall (Worker)   ${s.worker.url}
  demo origin        ${s.origin.url}
  x402 facilitator   ${s.facilitator.url}     (official @x402/core + @x402/evm + @x402/svm)
  chain (anvil)      ${s.chain.rpcUrl}   (${NETWORK}, test USDC at ${USDC_ADDRESS})
  merchant (payTo)   ${account(ROLE.merchant).address}
  demo buyer         ${account(ROLE.buyer).address} (funded with 1000 test USDC)
  Solana (litesvm)   ${s.solana.url}   (${SOLANA_DEVNET}, USDC mint ${SOLANA_USDC})
  Solana payTo       ${(await solanaSigner("seller")).address}
  Solana buyer       ${(await solanaSigner("buyer")).address} (funded with ${SOLANA_FUNDING.buyerUsdc / 1_000_000n} USDC)

Routes (${s.worker.url}/__x402/pricing):
${pricing.routes
  .map(
    (r: {
      match: string;
      free: boolean;
      accepts: { amount: string }[];
      access?: { ttl: number };
      when?: Record<string, Record<string, unknown[]>>;
      per?: Record<string, string | number>;
    }) => {
      const when = Object.entries(r.when ?? {})
        .flatMap(([source, fields]) =>
          Object.entries(fields).map(([name, values]) => `${source}.${name}=${values.join("|")}`),
        )
        .join(" ");
      const perKey = r.per && Object.keys(r.per).find((k) => k !== "min" && k !== "max");
      const price = r.free
        ? "free"
        : `${Number(r.accepts[0]?.amount) / 1e6} USDC${perKey ? ` per ${perKey}.${r.per?.[perKey]}` : ""}${r.access ? `, ${r.access.ttl} s access` : ""}`;
      return `  ${`${r.match}${when ? ` [${when}]` : ""}`.padEnd(48)} ${price}`;
    },
  )
  .join("\n")}

Origin endpoints:
${ORIGIN_ENDPOINTS.map((e) => `  ${e}`).join("\n")}

Try it:
  curl -i ${s.worker.url}/api/weather/paris        # 402 with the payment requirements
  curl -i ${s.worker.url}/api/infer -d '{"service":"llm-70b"}'   # priced by the body
  curl -i '${s.worker.url}/api/batch?count=7'      # priced per unit
  npm run demo                                       # pay with @x402/fetch (v2)
  npm run demo -- --v1                               # pay with x402-fetch (v1)
  npm run demo -- --svm                              # pay in USDC on Solana with @x402/fetch
  npm run demo -- --svm --v1                         # pay on Solana with x402-fetch (v1)
  npm run demo -- --upto                             # authorise $0.01, pay what the answer cost
  npm run demo -- --batch                            # deposit once, ten calls by voucher, then claim
`);
