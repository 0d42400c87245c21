/** Ports: a clear refusal when one is busy, and free ones for tests. */
import { createServer } from "node:net";

export async function isPortFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

export async function assertPortsFree(ports: Record<string, number>): Promise<void> {
  for (const [what, port] of Object.entries(ports)) {
    if (!(await isPortFree(port))) {
      throw new Error(`Port ${port} (${what}) is already in use on 127.0.0.1. Stop what holds it or choose another port (see --help).`);
    }
  }
}

/**
 * Ports handed out to servers started later (wrangler dev, workerd, anvil) are taken from below the
 * kernel's ephemeral range (32768-60999 on Linux): a port the OS picks for `listen(0)` comes from
 * that range, which outgoing connections share, so one could take it before the server binds it.
 * Outgoing connections never use these, and a port is never handed out twice by one process.
 */
const PORT_RANGE = { from: 20_000, to: 32_000 } as const;
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_RANGE.from + Math.floor(Math.random() * (PORT_RANGE.to - PORT_RANGE.from));
    if (handedOut.has(port)) continue;
    if (await isPortFree(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`could not find a free port in ${PORT_RANGE.from}-${PORT_RANGE.to}`);
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms`);
}
