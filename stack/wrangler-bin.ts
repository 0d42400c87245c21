/** The project's wrangler CLI entry, run with the current (pinned Node 22) `node`. */
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";

// wrangler's package.json exports no bin path, so find the package and take its bin from there.
export const WRANGLER_BIN = resolve(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin/wrangler.js");
