#!/usr/bin/env node
/**
 * `npm run dev`: seed the local PRICING namespace from pricing.json, then run the Worker under
 * `wrangler dev` on 127.0.0.1. Ctrl-C stops wrangler too.
 * Options: --port N (default 8787), --pricing FILE (default pricing.json).
 */
import { spawn, spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { ROOT, wranglerEnv } from "./wrangler-env.mjs";

const { values } = parseArgs({
  options: { port: { type: "string", default: "8787" }, pricing: { type: "string", default: "pricing.json" } },
});
const env = wranglerEnv();

const seeded = spawnSync(
  "wrangler",
  ["kv", "key", "put", "--local", "--binding", "PRICING", "pricing", "--path", values.pricing],
  { cwd: ROOT, env, stdio: ["ignore", "ignore", "inherit"] },
);
if (seeded.status !== 0) {
  console.error(`Could not seed local KV from ${values.pricing}.`);
  process.exit(1);
}
console.log(`Seeded local KV PRICING/pricing from ${values.pricing}.`);

const child = spawn("wrangler", ["dev", "--ip", "127.0.0.1", "--port", values.port], {
  cwd: ROOT,
  env,
  stdio: "inherit",
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
