/**
 * The environment every wrangler call of ours runs with: offline, no telemetry, and nothing
 * written to the user's home directory (wrangler's config lives in ./.xdg, git-ignored).
 */
import { resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..");

export function wranglerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    XDG_CONFIG_HOME: resolve(ROOT, ".xdg"),
    ...extra,
  };
}
