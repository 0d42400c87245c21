/**
 * Runs the Worker exactly as deployed — wrangler's bundle under `workerd serve`, no proxy in front —
 * so tests can speak raw HTTP to it. Node-side only.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildWorker as buildBundle } from "../../stack/build.ts";
import { freePort } from "../../stack/ports.ts";
import { WORKERD_PATH } from "../../stack/workerd.ts";

/** The deployed bundle's source, built in a temporary directory that is removed again. */
export async function buildWorker(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "paywall-build-"));
  try {
    return await readFile(await buildBundle(dir), "utf8");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The ledger's class as `workerd serve` declares it (wrangler.toml's new_sqlite_classes). */
export const LEDGER_NAMESPACE =
  '(className = "PaymentLedger", uniqueKey = "x402-edge-paywall-ledger", enableSql = true)';
/** batch-settlement's channel objects (sessions/channel-objects.ts), for configs that bind CHANNELS and CHANNEL_BOOKS. */
export const CHANNEL_NAMESPACES =
  '(className = "PaymentChannel", uniqueKey = "x402-edge-paywall-channels", enableSql = true), (className = "ChannelBook", uniqueKey = "x402-edge-paywall-books", enableSql = true)';

export interface RunningWorker {
  port: number;
  /** workerd's process id, to read its memory. */
  pid: number;
  /** With `inspector`: the Worker isolate's live JS heap after a full GC, in bytes. */
  heapUsed?: () => Promise<number>;
  stop: () => Promise<void>;
}

/**
 * Serves `bundle` (the module's source) with the given text vars. KV namespaces point at a small
 * in-memory KV service: empty, or holding `options.pricing` under `pricing`; the payment ledger is
 * the bundle's own Durable Object class, SQLite-backed, stored in the temporary directory
 * (workerd's in-memory storage has no SQL API).
 */
export async function serveWorker(
  bundle: string,
  vars: Record<string, string>,
  options: { pricing?: string; inspector?: boolean } = {},
): Promise<RunningWorker> {
  const dir = await mkdtemp(join(tmpdir(), "paywall-workerd-"));
  const port = await freePort();
  const bindings = Object.entries(vars)
    .map(([name, value]) => `(name = ${JSON.stringify(name)}, text = ${JSON.stringify(value)})`)
    .concat([
      '(name = "PRICING", kvNamespace = "empty-kv")',
      '(name = "RECEIPTS", kvNamespace = "empty-kv")',
      '(name = "LEDGER", durableObjectNamespace = "PaymentLedger")',
    ])
    .join(", ");
  // capnp `embed` paths are relative to the config file, so the bundle sits beside it.
  await writeFile(join(dir, "index.js"), bundle);
  await mkdir(join(dir, "ledger"));
  // workerd sends a KV binding's calls to its service as GET/PUT/DELETE /<url-encoded key>.
  await writeFile(
    join(dir, "empty-kv.js"),
    `const store = new Map(${JSON.stringify(options.pricing === undefined ? [] : [["pricing", options.pricing]])});
export default {
  async fetch(request) {
    const key = decodeURIComponent(new URL(request.url).pathname.slice(1));
    if (request.method === "GET") {
      const value = store.get(key);
      return value === undefined ? new Response(null, { status: 404 }) : new Response(value);
    }
    if (request.method === "PUT") store.set(key, await request.text());
    else if (request.method === "DELETE") store.delete(key);
    else return new Response(null, { status: 405 });
    return new Response(null);
  },
};`,
  );
  await writeFile(
    join(dir, "config.capnp"),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    # The Workers' outbound fetch(): loopback allowed, for the tests' origins and facilitators.
    (name = "internet", network = (allow = ["public", "private", "local"])),
    (name = "main", worker = (modules = [(name = "index.js", esModule = embed "index.js")],
      compatibilityDate = "2026-11-01", bindings = [${bindings}],
      durableObjectNamespaces = [${LEDGER_NAMESPACE}], durableObjectStorage = (localDisk = "ledger-disk"))),
    (name = "ledger-disk", disk = (path = ${JSON.stringify(join(dir, "ledger"))}, writable = true)),
    (name = "empty-kv", worker = (modules = [(name = "kv.js", esModule = embed "empty-kv.js")], compatibilityDate = "2026-11-01")),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
`,
  );
  const inspectorPort = options.inspector ? await freePort() : undefined;
  const inspectorArgs = inspectorPort ? [`--inspector-addr=127.0.0.1:${inspectorPort}`] : [];
  const child: ChildProcess = spawn(WORKERD_PATH, ["serve", join(dir, "config.capnp"), ...inspectorArgs], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk) => (stderr += chunk));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`workerd exited: ${stderr}`);
    try {
      await fetch(`http://127.0.0.1:${port}/__x402/health`);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`workerd did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    port,
    pid: child.pid as number,
    ...(inspectorPort ? { heapUsed: () => isolateHeapUsed(inspectorPort) } : {}),
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Through workerd's inspector (Chrome DevTools protocol): a full GC, then the heap's used size.
 * workerd answers no `HeapProfiler.collectGarbage`, but a heap snapshot collects garbage first
 * (measured: the used size drops after one), so one is taken and its chunks thrown away.
 */
async function isolateHeapUsed(port: number): Promise<number> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/main`);
  await new Promise((resolve, reject) => {
    socket.addEventListener("open", resolve, { once: true });
    socket.addEventListener("error", reject, { once: true });
  });
  let id = 0;
  const pending = new Map<number, (result: unknown) => void>();
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
    if (message.id !== undefined) pending.get(message.id)?.(message.result);
  });
  const send = (method: string, params: object = {}) =>
    new Promise<any>((resolve) => {
      pending.set(++id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  try {
    await send("HeapProfiler.enable");
    await send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
    const usage = (await send("Runtime.getHeapUsage")) as { usedSize: number };
    return usage.usedSize;
  } finally {
    socket.close();
  }
}
