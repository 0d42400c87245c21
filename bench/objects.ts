/**
 * `npm run bench:objects`: the CPU a Durable Object call costs under one local `workerd serve`
 * (bench/workers/objects.js says what each case does), measured like `npm run bench`: workerd's
 * own CPU time per request from /proc, 50 connections, interleaved rounds, medians. Everything
 * on loopback; the objects' SQLite files in a temporary directory, removed at the end.
 * Options: --rounds R (3) --duration S (4)
 */
import { spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { freePort } from "../stack/ports.ts";
import { WORKERD_PATH, WORKERD_VERSION } from "../stack/workerd.ts";

const { values } = parseArgs({
  options: { rounds: { type: "string", default: "3" }, duration: { type: "string", default: "4" } },
});
const ROUNDS = Number(values.rounds);
const DURATION = Number(values.duration);
const CASES = ["none", "read", "existing", "alarm", "new", "new2", "new2alarm", "new2alarms"] as const;
const LABEL: Record<(typeof CASES)[number], string> = {
  none: "no object (the request alone)",
  read: "one call, an existing object, answered from memory",
  existing: "one call, an existing object, one SQL write",
  new: "one call, a new object (created, table made, row written)",
  new2: "a new object, two calls (a ledger's claim then settle)",
  alarm: "one call, an existing object, one SQL write, its alarm moved",
  new2alarm: "a new object, two calls, the first arming its alarm",
  new2alarms: "a new object, two calls, each setting its alarm",
};

const work = await mkdtemp(join(tmpdir(), "paywall-objects-"));
// capnp embeds are read relative to the config file.
await copyFile(resolve("bench/workers/objects.js"), join(work, "objects.js"));
const port = await freePort();
await writeFile(
  join(work, "config.capnp"),
  `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "w", worker = (modules = [(name = "index.js", esModule = embed "objects.js")], compatibilityDate = "2026-11-01", bindings = [(name = "PROBE", durableObjectNamespace = "Probe")], durableObjectNamespaces = [(className = "Probe", uniqueKey = "bench-objects", enableSql = true)], durableObjectStorage = (localDisk = "disk"))),
    (name = "disk", disk = (path = ${JSON.stringify(join(work, "store"))}, writable = true)),
  ],
  sockets = [(name = "s", address = "127.0.0.1:${port}", http = (), service = "w")],
);
`,
);
await mkdir(join(work, "store"));
const workerd = spawn(WORKERD_PATH, ["serve", join(work, "config.capnp")], { stdio: ["ignore", "ignore", "inherit"] });
const stop = async () => {
  if (workerd.exitCode === null) {
    workerd.kill("SIGTERM");
    await new Promise((done) => workerd.once("exit", done));
  }
  await rm(work, { recursive: true, force: true });
};
try {
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/?case=none`)).ok) break;
    } catch {}
    if (i > 100) throw new Error("workerd did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
  const cpuUs = async () => {
    const fields = (await readFile(`/proc/${workerd.pid}/stat`, "utf8")).split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  };
  const results: Record<string, { us: number[]; rps: number[] }> = {};
  for (let round = 0; round < ROUNDS; round++) {
    const order = [...CASES.slice(round % CASES.length), ...CASES.slice(0, round % CASES.length)];
    for (const which of order) {
      const url = `http://127.0.0.1:${port}/?case=${which}`;
      await autocannon({ url, connections: 10, duration: 1 });
      const before = await cpuUs();
      const run = await autocannon({ url, connections: 50, duration: DURATION });
      const us = ((await cpuUs()) - before) / run.requests.total;
      if (run.non2xx > 0 || run.errors > 0) throw new Error(`${which}: ${run.non2xx} non-2xx, ${run.errors} errors`);
      const entry = (results[which] ??= { us: [], rps: [] });
      entry.us.push(us);
      entry.rps.push(run.requests.average);
      process.stderr.write(`round ${round + 1}/${ROUNDS}  ${which.padEnd(8)} ${Math.round(us)} µs CPU/req\n`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  console.log(`workerd ${WORKERD_VERSION}, 50 connections, ${DURATION} s per run, ${ROUNDS} rounds, medians\n`);
  console.log("| case | req/s | workerd CPU µs/req | range |\n|---|---:|---:|---:|");
  for (const which of CASES) {
    const { us, rps } = results[which] as { us: number[]; rps: number[] };
    console.log(
      `| ${LABEL[which]} | ${Math.round(median(rps))} | ${Math.round(median(us))} | ${Math.round(Math.min(...us))}–${Math.round(Math.max(...us))} |`,
    );
  }
} finally {
  await stop();
}
