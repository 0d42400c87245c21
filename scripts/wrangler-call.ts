/**
 * One wrangler command, run as this project runs every wrangler (pinned binary, offline-safe
 * environment, login kept in ./.xdg), with its failure turned into what the owner should do.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { WRANGLER_BIN } from "../stack/wrangler-bin.ts";
import { ROOT, wranglerEnv } from "./wrangler-env.ts";

const run = promisify(execFile);

/** A wrangler failure, already explained (explainWranglerError). */
export class WranglerError extends Error {
  readonly notLoggedIn: boolean;
  constructor(message: string, notLoggedIn: boolean) {
    super(message);
    this.notLoggedIn = notLoggedIn;
  }
}

export const NOT_LOGGED_IN =
  "wrangler is not logged in to Cloudflare: run `npm run wrangler -- login` (or set CLOUDFLARE_API_TOKEN)";

/** wrangler's stdout; throws WranglerError. */
export async function callWrangler(args: string[]): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, [WRANGLER_BIN, ...args], {
      cwd: ROOT,
      env: wranglerEnv(),
      maxBuffer: 256 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const output = `${(error as { stderr?: string }).stderr ?? ""}${(error as Error).message}`;
    return Promise.reject(new WranglerError(explainWranglerError(output), isNotLoggedIn(output)));
  }
}

function isNotLoggedIn(output: string): boolean {
  return /not (logged in|authenticated)|CLOUDFLARE_API_TOKEN|login|authenticat/i.test(output);
}

/** Turns wrangler's failure into what the owner should do about it. */
export function explainWranglerError(output: string): string {
  if (isNotLoggedIn(output)) return `${NOT_LOGGED_IN}.`;
  if (
    /binding.*PRICING|PRICING.*(not found|no namespace)|namespace.*not found|10041|could not find.*namespace/i.test(
      output,
    )
  ) {
    return "No KV namespace is bound as PRICING: run `npm run setup`, or create one with `npm run wrangler -- kv namespace create PRICING` and put its id in wrangler.toml.";
  }
  if (/fetch failed|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|network/i.test(output)) {
    return "Cloudflare could not be reached (no network?).";
  }
  return `wrangler failed:\n${output.trim().split("\n").slice(-6).join("\n")}`;
}
