/**
 * `npm run dev` as an owner runs it: the whole stack comes up on the ports asked for (EVM chain,
 * Solana RPC, facilitator, origin, Worker), answers a 402 offering both chains, and Ctrl-C leaves
 * nothing running — every port is free again.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../stack/ports.ts";

let dev: ChildProcess | undefined;
let dir: string | undefined;

afterAll(async () => {
  if (dev && dev.exitCode === null) dev.kill("SIGKILL");
  if (dir) await rm(dir, { recursive: true, force: true });
});

const isFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });

describe("npm run dev", () => {
  it("starts both chains behind the Worker, and Ctrl-C stops everything", async () => {
    dir = await mkdtemp(join(tmpdir(), "paywall-dev-"));
    const ports = {
      port: await freePort(),
      "origin-port": await freePort(),
      "facilitator-port": await freePort(),
      "chain-port": await freePort(),
      "solana-port": await freePort(),
    };
    const args = Object.entries(ports).flatMap(([name, port]) => [`--${name}`, String(port)]);
    dev = spawn(process.execPath, ["scripts/dev.ts", ...args, "--persist-to", join(dir, "state")], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    dev.stdout?.on("data", (chunk) => {
      output += chunk;
    });
    dev.stderr?.on("data", (chunk) => {
      output += chunk;
    });
    const deadline = Date.now() + 120_000;
    while (!output.includes("local payment stack is up")) {
      if (dev.exitCode !== null || Date.now() > deadline) throw new Error(`npm run dev did not come up:\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(output).toContain("npm run demo -- --svm");

    const unpaid = await fetch(`http://127.0.0.1:${ports.port}/api/weather/paris`);
    expect(unpaid.status).toBe(402);
    const offered = JSON.parse(atob(unpaid.headers.get("PAYMENT-REQUIRED") ?? "")) as {
      accepts: { network: string }[];
    };
    expect(offered.accepts.map((a) => a.network)).toEqual(["eip155:84532", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"]);
    for (const port of Object.values(ports)) expect(await isFree(port)).toBe(false);

    const exited = new Promise<number | null>((resolve) => dev?.once("exit", (code) => resolve(code)));
    dev.kill("SIGINT");
    expect(await exited).toBe(0);
    for (const port of Object.values(ports)) expect(await isFree(port), `port ${port} after Ctrl-C`).toBe(true);
  }, 150_000);
});
