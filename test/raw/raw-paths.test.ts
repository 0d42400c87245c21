/**
 * Regression tests for path shapes that never reach a Worker through `fetch()` — the URL parser
 * resolves them first — but do arrive raw over the wire. `workerd` hands the request target to the
 * Worker unchanged (measured), so each is sent here on a raw socket to the deployed bundle.
 * A canonical path gets past the check and fails closed on the empty pricing namespace (503),
 * which proves the 400s below come from the path check and not from something else.
 */
import { connect } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { buildWorker, type RunningWorker, serveWorker } from "../support/workerd.ts";

let worker: RunningWorker;

beforeAll(async () => {
  const bundle = await buildWorker();
  worker = await serveWorker(bundle, {
    ORIGIN_URL: "http://127.0.0.1:9",
    FACILITATOR_URL: "http://127.0.0.1:9",
    PAY_TO: "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    NETWORK: "eip155:84532",
  });
}, 60_000);

afterAll(() => worker?.stop());

function rawGet(target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(worker.port, "127.0.0.1", () => {
      socket.write(`GET ${target} HTTP/1.1\r\nHost: paywall.example\r\nConnection: close\r\n\r\n`);
    });
    let data = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk) => (data += chunk));
    socket.on("error", reject);
    socket.on("end", () => {
      const [head = "", ...rest] = data.split("\r\n\r\n");
      resolve({ status: Number(head.split(" ")[1]), body: rest.join("\r\n\r\n") });
    });
  });
}

it("lets a canonical path through the check (then fails closed: no pricing)", async () => {
  const res = await rawGet("/api/weather/paris");
  expect(res.status).toBe(503);
  expect(res.body).toContain("pricing_unavailable");
});

it.each([
  ["dot-dot segment", "/api/x/../weather/paris", "dot_segment"],
  ["dot segment", "/api/./weather/paris", "dot_segment"],
  ["trailing dot-dot", "/api/weather/paris/..", "dot_segment"],
  ["percent-encoded dot-dot", "/api/x/%2e%2e/weather/paris", "lowercase_percent"],
  ["percent-encoded dot-dot, upper case", "/api/x/%2E%2E/weather/paris", "encoded_unreserved"],
  ["mixed dot-dot", "/api/x/.%2E/weather/paris", "encoded_unreserved"],
  ["backslash", "/api\\weather\\paris", "backslash"],
  ["backslash dot-dot", "/api/x\\..\\weather/paris", "backslash"],
  ["raw non-ASCII byte", "/api/weather/caf\xe9", "illegal_character"],
  ["double slash", "/api//weather/paris", "empty_segment"],
])("refuses %s with 400 non_canonical_path", async (_name, target, problem) => {
  const res = await rawGet(target);
  expect(res.status).toBe(400);
  expect(JSON.parse(res.body)).toMatchObject({ error: "non_canonical_path", detail: problem });
});

// workerd refuses these itself, before any Worker code runs; the test pins that they never get in.
it.each([
  ["raw space", "/api/weather/new york"],
  ["raw control byte", "/api/weather/a\x01b"],
])("has the runtime refuse %s with 400", async (_name, target) => {
  expect((await rawGet(target)).status).toBe(400);
});
