/**
 * The bazaar extensions the deployed bundle sends satisfy the official validator
 * (`@x402/extensions`, run here in Node: it compiles JSON Schemas with ajv, which workerd forbids),
 * and the official v1 extractor reads the same metadata from the v1 body.
 */
import { extractDiscoveryInfoV1, validateDiscoveryExtension } from "@x402/extensions/bazaar";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DISCOVERABLE } from "../support/discoverable.ts";
import { rawRequest } from "../support/raw-http.ts";
import { buildWorker, type RunningWorker, serveWorker } from "../support/workerd.ts";

const DYNAMIC_BODY = {
  ...DISCOVERABLE,
  routes: [
    ...DISCOVERABLE.routes,
    { id: "big", match: "POST /v1/infer", when: { body: { service: "llm-70b" } }, price: "$0.01" },
    { id: "small", match: "POST /v1/infer", when: { body: { service: ["llm-8b", "llm-8b-fast"] } }, price: "$0.002" },
  ],
};

let worker: RunningWorker;
beforeAll(async () => {
  worker = await serveWorker(
    await buildWorker(),
    { ORIGIN_URL: "http://127.0.0.1:9", FACILITATOR_URL: "http://127.0.0.1:9", PRICING_CACHE_SECONDS: "3600" },
    { pricing: JSON.stringify(DYNAMIC_BODY) },
  );
}, 60_000);
afterAll(() => worker?.stop());

const required = async (method: string, path: string) => {
  const res = await rawRequest(worker.port, path, { method });
  expect(res.status).toBe(402);
  return {
    v2: JSON.parse(Buffer.from(res.headers["payment-required"] ?? "", "base64").toString("utf8")),
    v1: JSON.parse(res.body),
  };
};

it.each([
  ["a query route with an output example", "GET", "/api/weather/paris"],
  ["a body route", "POST", "/v1/summarise"],
  ["a crawler's probe of a route priced on its body", "POST", "/v1/infer"],
])("sends a valid bazaar extension for %s", async (_name, method, path) => {
  const { v2, v1 } = await required(method, path);
  const extension = v2.extensions.bazaar;
  expect(validateDiscoveryExtension(extension)).toEqual({ valid: true });
  const fromV1 = extractDiscoveryInfoV1(v1.accepts[0]);
  expect(fromV1?.input).toMatchObject({ type: "http", method });
});

it("lists the same extensions in /.well-known/x402", async () => {
  const res = await rawRequest(worker.port, "/.well-known/x402");
  expect(res.status).toBe(200);
  const { resources } = JSON.parse(res.body) as { resources: { id: string; extensions?: { bazaar: never } }[] };
  for (const resource of resources.filter((r) => r.extensions)) {
    expect(validateDiscoveryExtension(resource.extensions?.bazaar as never), resource.id).toEqual({ valid: true });
  }
});
