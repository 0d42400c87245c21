/** `wrangler deploy --dry-run` into a directory: the bundle exactly as it would be deployed. */
import { execFile } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { ROOT, wranglerEnv } from "../scripts/wrangler-env.ts";
import { WRANGLER_BIN } from "./wrangler-bin.ts";

const run = promisify(execFile);

/**
 * Returns the bundle's path; `args` go to wrangler (e.g. `--config other.toml`); `cwd` is the
 * project to build (another checkout of this one, for the benchmark's baseline).
 */
export async function buildWorker(outdir: string, args: string[] = [], cwd: string = ROOT): Promise<string> {
  await run(process.execPath, [WRANGLER_BIN, "deploy", "--dry-run", "--outdir", outdir, ...args], {
    cwd,
    env: wranglerEnv(),
  });
  // wrangler names the bundle after the entry file.
  const bundle = (await readdir(outdir)).find((f) => f.endsWith(".js"));
  if (!bundle) throw new Error(`wrangler wrote no bundle to ${outdir}`);
  return join(outdir, bundle);
}
