/**
 * The fuzzer: the deployed bundle under `workerd serve`, a recording origin, a facilitator
 * stand-in that accepts only genuinely valid payments (stand-ins.ts), and seeded inputs
 * (generators.ts): mutated payment headers on priced routes, and paths from the corpus grammar.
 * Invariants, checked over every answer:
 * - no 5xx: the origin and the facilitator never fail here, so any 5xx is the Worker's own;
 * - every answer within `timeBoundMs`;
 * - no origin request on a priced path without a settled payment: every request the origin got
 *   with a payment route matches a settlement the stand-in made, one for one; and no request it
 *   got without one is a path a real framework (Express, Fastify, Koa, Hono) serves from a priced
 *   handler;
 * - the Worker isolate's memory stays bounded: its live heap after a full GC (workerd's inspector)
 *   ends within the 128 MB a production isolate may use, and the second half of the run adds
 *   little to it (a leak grows with requests; bounded caches fill early and stop).
 * Node-side; used by test/raw/fuzz.test.ts (small) and `npm run fuzz` (long runs).
 */
import { readFile } from "node:fs/promises";
import { FRAMEWORKS, FREE_ROUTES, PRICED_ROUTES, startFrameworks } from "../support/frameworks.ts";
import { rawRequest } from "../support/raw-http.ts";
import { buildWorker, serveWorker } from "../support/workerd.ts";
import { basePayments, fuzzPath, mutateHeader, PAY_TO, prng, solanaBasePayments } from "./generators.ts";
import { startStandIns } from "./stand-ins.ts";

export interface FuzzOptions {
  headers: number;
  paths: number;
  seed: number;
  concurrency?: number;
  timeBoundMs?: number;
  /** Most the isolate's live heap may hold at the end (a production isolate may use 128 MB). */
  heapLimitBytes?: number;
  /** Most the second half of the run may add to the live heap. */
  heapGrowthBytes?: number;
  log?: (line: string) => void;
}

export interface FuzzReport {
  seed: number;
  sent: number;
  statuses: Record<string, number>;
  reasons: Record<string, number>;
  headerKinds: Record<string, number>;
  paidAtOrigin: number;
  settled: number;
  /** Of `settled`, the Solana ones (by the official facilitator, on the local Solana). */
  settledSolana: number;
  freeAtOrigin: number;
  slowestMs: number;
  p99Ms: number;
  /**
   * The isolate's live heap after a full GC: before, halfway and after the run; workerd's whole
   * resident memory (every isolate, the ledger's SQLite caches) for reference.
   */
  memory: { heapBeforeBytes: number; heapHalfwayBytes: number; heapAfterBytes: number; rssAfterBytes: number };
  violations: string[];
}

/** Every priced route takes USDC on Base Sepolia (the viem stand-in) and on Solana devnet (the official facilitator). */
const pricing = (solanaPayTo: string) => ({
  version: 1,
  defaults: { network: "eip155:84532", payTo: { eip155: PAY_TO, solana: solanaPayTo }, unmatched: "free" },
  routes: [
    ...PRICED_ROUTES.map((r) => ({
      id: r.id,
      match: r.match,
      accepts: [{ price: "$0.001" }, { price: "$0.001", network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1" }],
      description: r.id,
    })),
    ...FREE_ROUTES.map((r) => ({ id: r.id, match: r.match, price: "free" })),
  ],
});
const PRICED = new Set(PRICED_ROUTES.map((r) => r.id));

async function rss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const {
    seed,
    concurrency = 16,
    timeBoundMs = 5_000,
    heapLimitBytes = 128 * 1024 * 1024,
    heapGrowthBytes = 16 * 1024 * 1024,
  } = options;
  const log = options.log ?? (() => {});
  const rng = prng(seed);
  const standIns = await startStandIns();
  const frameworks = await startFrameworks();
  const worker = await serveWorker(
    await buildWorker(),
    { ORIGIN_URL: standIns.originUrl, FACILITATOR_URL: standIns.facilitatorUrl, PRICING_CACHE_SECONDS: "3600" },
    { pricing: JSON.stringify(pricing(standIns.solana.payTo)), inspector: true },
  );
  const heap = async () => ((await worker.heapUsed?.()) ?? 0) as number;
  const report: FuzzReport = {
    seed,
    sent: 0,
    statuses: {},
    reasons: {},
    headerKinds: {},
    paidAtOrigin: 0,
    settled: 0,
    settledSolana: 0,
    freeAtOrigin: 0,
    slowestMs: 0,
    p99Ms: 0,
    memory: { heapBeforeBytes: 0, heapHalfwayBytes: 0, heapAfterBytes: 0, rssAfterBytes: 0 },
    violations: [],
  };
  try {
    const baseCount = Math.max(8, Math.min(200, Math.ceil(options.headers / 25)));
    const bases = [
      ...(await basePayments(rng, baseCount)),
      ...(await solanaBasePayments(Math.ceil(baseCount / 3), {
        rpcUrl: standIns.solana.rpc.url,
        payTo: standIns.solana.payTo,
        feePayer: standIns.solana.feePayer,
      })),
    ];
    const paid = PRICED_ROUTES.filter((r) => r.method !== "*");
    const known = [...PRICED_ROUTES.flatMap((r) => r.examples), "/health", "/public/app.js", "/api/weather"];
    type Job = { method: string; path: string; headers: Record<string, string>; label: string };
    const jobs: Job[] = [];
    for (let i = 0; i < options.headers; i++) {
      const route = rng.pick(paid);
      const header = mutateHeader(rng, rng.pick(bases));
      report.headerKinds[header.kind] = (report.headerKinds[header.kind] ?? 0) + 1;
      jobs.push({
        method: route.method,
        path: rng.pick(route.examples),
        headers: { [header.name]: header.value },
        label: `header ${i} (${header.kind})`,
      });
    }
    for (let i = 0; i < options.paths; i++) {
      jobs.push({
        method: rng.pick(["GET", "POST", "GET", "HEAD"]),
        path: fuzzPath(rng, known),
        headers: {},
        label: `path ${i}`,
      });
    }
    // Interleave, so payments and paths hit the isolate together.
    for (let i = jobs.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [jobs[i], jobs[j]] = [jobs[j] as Job, jobs[i] as Job];
    }

    await rawRequest(worker.port, "/health"); // warm the isolate before measuring memory
    report.memory.heapBeforeBytes = await heap();
    const times: number[] = [];
    let next = 0;
    const runOne = async () => {
      for (;;) {
        const job = jobs[next++];
        if (!job) return;
        const started = performance.now();
        let status: number;
        let body = "";
        try {
          const answer = await rawRequest(worker.port, job.path, { method: job.method, headers: job.headers });
          status = answer.status;
          body = answer.body;
        } catch (error) {
          status = 0;
          report.violations.push(
            `${job.label}: no answer (${(error as Error).message}) for ${job.method} ${JSON.stringify(job.path)}`,
          );
        }
        const ms = performance.now() - started;
        times.push(ms);
        report.sent++;
        report.statuses[status] = (report.statuses[status] ?? 0) + 1;
        let reason = "";
        try {
          reason = (JSON.parse(body) as { error?: string }).error ?? "";
        } catch {
          // not one of ours (the origin's, or the runtime's own 400)
        }
        if (reason) report.reasons[reason] = (report.reasons[reason] ?? 0) + 1;
        if (status >= 500) {
          report.violations.push(
            `${job.label}: ${status} ${reason} for ${job.method} ${JSON.stringify(job.path)} ${JSON.stringify(job.headers).slice(0, 300)}`,
          );
        }
        if (ms > timeBoundMs) report.violations.push(`${job.label}: answered in ${ms.toFixed(0)} ms`);
        if (report.sent === Math.floor(jobs.length / 2)) report.memory.heapHalfwayBytes = await heap();
        if (report.sent % Math.max(1, Math.floor(jobs.length / 10)) === 0) log(`${report.sent}/${jobs.length} sent`);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, runOne));
    // Let waitUntil work (ledger writes, receipts) finish before reading memory.
    await new Promise((resolve) => setTimeout(resolve, 500));
    report.memory.heapAfterBytes = await heap();
    report.memory.rssAfterBytes = await rss(worker.pid);
    times.sort((a, b) => a - b);
    report.slowestMs = Math.round(times.at(-1) ?? 0);
    report.p99Ms = Math.round(times[Math.floor(times.length * 0.99)] ?? 0);

    // Paid work only for settled payments, one origin run per settlement.
    const paidAtOrigin = standIns.originLog.filter((r) => r.route !== undefined);
    report.paidAtOrigin = paidAtOrigin.length;
    report.settled = standIns.settled.size;
    report.settledSolana = [...standIns.settled].filter((k) => k.startsWith("svm:")).length;
    if (paidAtOrigin.length !== standIns.settled.size) {
      report.violations.push(
        `origin ran paid work ${paidAtOrigin.length} times for ${standIns.settled.size} settlements`,
      );
    }
    for (const r of paidAtOrigin) {
      if (!r.route || !PRICED.has(r.route)) report.violations.push(`origin got ${r.url} for unknown route ${r.route}`);
    }
    // Nothing forwarded free that a real framework serves from a priced handler.
    const free = standIns.originLog.filter((r) => r.route === undefined);
    report.freeAtOrigin = free.length;
    const seen = new Set<string>();
    for (const r of free) {
      const key = `${r.method} ${r.url}`;
      if (seen.has(key)) continue;
      seen.add(key);
      // Frameworks answer HEAD from the GET handler with no body: ask with GET to see which.
      const method = r.method === "HEAD" ? "GET" : r.method;
      for (const framework of FRAMEWORKS) {
        const answer = await rawRequest(frameworks.ports[framework], r.url, { method }).catch(() => undefined);
        let handler: string | undefined;
        try {
          handler = answer?.status === 200 ? (JSON.parse(answer.body) as { handler?: string }).handler : undefined;
        } catch {
          handler = undefined;
        }
        if (handler && PRICED.has(handler)) {
          report.violations.push(`${key} was forwarded free, and ${framework} serves it from the ${handler} handler`);
        }
      }
    }
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    const { heapHalfwayBytes, heapAfterBytes } = report.memory;
    if (heapAfterBytes > heapLimitBytes)
      report.violations.push(`the isolate's live heap ended at ${mib(heapAfterBytes)}`);
    if (heapAfterBytes - heapHalfwayBytes > heapGrowthBytes) {
      report.violations.push(
        `the second half of the run added ${mib(heapAfterBytes - heapHalfwayBytes)} to the live heap`,
      );
    }
  } finally {
    await worker.stop();
    await frameworks.close();
    await standIns.close();
  }
  return report;
}
