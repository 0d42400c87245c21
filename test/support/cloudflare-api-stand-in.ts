/**
 * A stand-in for the few Cloudflare API v4 endpoints `npm run setup` reaches through wrangler — a
 * mock, allowed only because Cloudflare's API is remote. The real wrangler talks to it through its
 * own `CLOUDFLARE_API_BASE_URL` setting, so what is tested is wrangler's real requests and our
 * handling of its real output. It answers in the API's envelope ({ success, errors, result }):
 * KV namespaces (list, paged; create, unique titles), KV values (write), a Worker's secrets (list;
 * "no such Worker" until `secrets` is given). Every request is recorded; a route it does not know
 * is answered 404 and recorded, so a test can assert nothing unexpected was called.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface CloudflareStandIn {
  /** For the environment of wrangler: CLOUDFLARE_API_BASE_URL, CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID. */
  env: Record<string, string>;
  namespaces: { id: string; title: string }[];
  /** namespace id → key → value */
  values: Map<string, Map<string, string>>;
  /** Worker name → its secret names; a Worker not here "does not exist" yet. */
  secrets: Map<string, string[]>;
  calls: { method: string; path: string }[];
  unknown: { method: string; path: string }[];
  close: () => Promise<void>;
}

const TOKEN = "stand-in-api-token";
const ACCOUNT = "0123456789abcdef0123456789abcdef";

export async function startCloudflareStandIn(): Promise<CloudflareStandIn> {
  const state: Omit<CloudflareStandIn, "env" | "close"> = {
    namespaces: [],
    values: new Map(),
    secrets: new Map(),
    calls: [],
    unknown: [],
  };
  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    const url = new URL(req.url ?? "/", "http://stand-in");
    const method = req.method ?? "GET";
    state.calls.push({ method, path: url.pathname });
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      return reply(res, 400, undefined, [{ code: 10000, message: "Authentication error" }]);
    }
    const account = `/client/v4/accounts/${ACCOUNT}`;
    if (url.pathname === `${account}/storage/kv/namespaces`) {
      if (method === "GET") {
        const page = Number(url.searchParams.get("page") ?? "1");
        const perPage = Number(url.searchParams.get("per_page") ?? "20");
        const result = state.namespaces.slice((page - 1) * perPage, page * perPage);
        return reply(res, 200, result, [], {
          page,
          per_page: perPage,
          count: result.length,
          total_count: state.namespaces.length,
        });
      }
      if (method === "POST") {
        const { title } = JSON.parse(body) as { title: string };
        if (state.namespaces.some((n) => n.title === title)) {
          return reply(res, 400, undefined, [
            { code: 10014, message: "a namespace with this account ID and title already exists" },
          ]);
        }
        const created = { id: randomBytes(16).toString("hex"), title, supports_url_encoding: true };
        state.namespaces.push(created);
        return reply(res, 200, created);
      }
    }
    const value = new RegExp(`^${account}/storage/kv/namespaces/([0-9a-f]{32})/values/(.+)$`).exec(url.pathname);
    if (value && method === "PUT") {
      const [, id = "", key = ""] = value;
      if (!state.namespaces.some((n) => n.id === id)) {
        return reply(res, 404, undefined, [{ code: 10013, message: "get namespace: 'namespace not found'" }]);
      }
      if (!state.values.has(id)) state.values.set(id, new Map());
      state.values.get(id)?.set(decodeURIComponent(key), body);
      return reply(res, 200, {});
    }
    const secrets = new RegExp(`^${account}/workers/scripts/([^/]+)/secrets$`).exec(url.pathname);
    if (secrets && method === "GET") {
      const names = state.secrets.get(secrets[1] ?? "");
      if (!names)
        return reply(res, 404, undefined, [{ code: 10007, message: "This Worker does not exist on your account." }]);
      return reply(
        res,
        200,
        names.map((name) => ({ name, type: "secret_text" })),
      );
    }
    state.unknown.push({ method, path: url.pathname });
    return reply(res, 404, undefined, [{ code: 7003, message: "Could not route to this path (stand-in)" }]);
  });
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    env: {
      CLOUDFLARE_API_BASE_URL: `http://127.0.0.1:${port}/client/v4`,
      CLOUDFLARE_API_TOKEN: TOKEN,
      CLOUDFLARE_ACCOUNT_ID: ACCOUNT,
    },
    close: () => new Promise<void>((done) => server.close(() => done())),
  });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((done) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
    });
    req.on("end", () => done(body));
  });
}

function reply(
  res: ServerResponse,
  status: number,
  result: unknown,
  errors: { code: number; message: string }[] = [],
  resultInfo?: object,
): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(
    JSON.stringify({
      success: errors.length === 0,
      errors,
      messages: [],
      result: result ?? null,
      ...(resultInfo ? { result_info: resultInfo } : {}),
    }),
  );
}
