#!/usr/bin/env node
/** Runs the project's wrangler with our offline, home-directory-free environment: `node scripts/wrangler.mjs ARGS…`. */
import { spawn } from "node:child_process";
import { ROOT, wranglerEnv } from "./wrangler-env.ts";

const child = spawn("wrangler", process.argv.slice(2), { cwd: ROOT, env: wranglerEnv(), stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
