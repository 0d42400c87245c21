/** The paywall Worker under `wrangler dev`, with local KV seeded from a pricing file. */
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { wranglerEnv } from "../scripts/wrangler-env.ts";
import { LOCAL_CHANNELS_ADMIN_TOKEN } from "./accounts.ts";
import { freePort, waitFor } from "./ports.ts";
import { WRANGLER_BIN } from "./wrangler-bin.ts";
import { type Child, startChild } from "./process.ts";

export const ROOT = resolve(import.meta.dirname, "..");
const run = promisify(execFile);
const WRANGLER = WRANGLER_BIN;

export interface WorkerOptions {
  port: number;
  originUrl: string;
  facilitatorUrl: string;
  pricingFile: string;
  /** Where local KV lives (wrangler's --persist-to). */
  persistDir: string;
  pricingCacheSeconds?: number;
  /** More vars, as `--var NAME:value`. */
  vars?: Record<string, string>;
  echo?: boolean;
}

export interface WorkerProcess {
  url: string;
  process: Child;
  /** Writes a pricing document to the running Worker's local KV, as an owner would. */
  putPricing: (file: string) => Promise<void>;
}

/** `wrangler kv key put --local`: writes the same store `wrangler dev` reads, visible at once. */
export async function putLocalPricing(file: string, persistDir: string): Promise<void> {
  await run(
    process.execPath,
    [WRANGLER, "kv", "key", "put", "--local", "--binding", "PRICING", "pricing", "--path", file, "--persist-to", persistDir],
    { cwd: ROOT, env: wranglerEnv() },
  );
}

export async function startWorker(options: WorkerOptions): Promise<WorkerProcess> {
  await putLocalPricing(options.pricingFile, options.persistDir);
  const proc = startChild(
    "wrangler dev",
    process.execPath,
    [
      WRANGLER,
      "dev",
      "--ip", "127.0.0.1",
      "--port", String(options.port),
      "--inspector-port", String(await freePort()),
      "--persist-to", options.persistDir,
      "--show-interactive-dev-session=false",
      "--var", `ORIGIN_URL:${options.originUrl}`,
      "--var", `FACILITATOR_URL:${options.facilitatorUrl}`,
      "--var", `PRICING_CACHE_SECONDS:${options.pricingCacheSeconds ?? 10}`,
      "--var", `CHANNELS_ADMIN_TOKEN:${LOCAL_CHANNELS_ADMIN_TOKEN}`,
      ...Object.entries(options.vars ?? {}).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
    ],
    { cwd: ROOT, env: wranglerEnv(), echo: options.echo ?? false },
  );
  const url = `http://127.0.0.1:${options.port}`;
  try {
    await waitFor(
      "wrangler dev",
      async () => {
        if (proc.output().includes("Address already in use")) throw new Error("port busy");
        return (await fetch(`${url}/__x402/health`)).ok;
      },
      60_000,
    );
  } catch (error) {
    await proc.stop();
    throw new Error(`${(error as Error).message}\n${proc.output()}`);
  }
  return { url, process: proc, putPricing: (file) => putLocalPricing(file, options.persistDir) };
}
