import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Worker test files share one loopback origin and facilitator stub, so they run one at a time.
    fileParallelism: false,
    // The Worker logs one JSON line per refusal and settlement; show them only for failing tests.
    silent: "passed-only",
    projects: [
      {
        // Pure tests: one module graph for all files (fresh imports per file cost ~9 s of 30).
        test: { name: "unit", include: ["test/unit/**/*.test.ts"], environment: "node", isolate: false },
      },
      {
        // The whole local payment stack on free ports, paid with the official buyers.
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 180_000,
        },
      },
      {
        // The pricing CLI, driving the real wrangler against a private local KV store.
        test: { name: "cli", include: ["test/cli/**/*.test.ts"], environment: "node", testTimeout: 60_000 },
      },
      {
        // The deployed bundle under plain workerd, spoken to over raw sockets.
        test: { name: "raw", include: ["test/raw/**/*.test.ts"], environment: "node", testTimeout: 30_000 },
      },
      {
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                ORIGIN_URL: `http://127.0.0.1:${inject<number>("originPort")}/base`,
                FACILITATOR_URL: `http://127.0.0.1:${inject<number>("facilitatorPort")}`,
                FACILITATOR_VERIFY_TIMEOUT_MS: "1000",
                FACILITATOR_SETTLE_TIMEOUT_MS: "1000",
                // A settlement still pending after 1.5 s is recorded as pending (production: 20 s),
                // and a timed-out /settle is awaited 1 s more (production: 25 s).
                SETTLE_BUDGET_MS: "1500",
                SETTLE_LATE_MS: "1000",
                PRICING_CACHE_SECONDS: "0",
                ORIGIN_PORT: String(inject<number>("originPort")),
                FACILITATOR_PORT: String(inject<number>("facilitatorPort")),
                FACILITATOR_B_PORT: String(inject<number>("facilitatorBPort")),
              },
              serviceBindings: { ORIGIN_SERVICE: "origin-service" },
              // The tests pay hundreds of times a minute from one buyer; TIGHT_RATE_LIMIT is a real
              // limiter with a small limit for the test that the limit holds.
              ratelimits: {
                PAYMENT_RATE_LIMIT: { namespace_id: "1001", simple: { limit: 100_000, period: 60 } },
                TIGHT_RATE_LIMIT: { namespace_id: "1002", simple: { limit: 3, period: 60 } },
              },
              workers: [
                {
                  name: "origin-service",
                  modules: true,
                  compatibilityDate: "2026-11-01",
                  script: `export default { async fetch(request) {
                    return Response.json({ via: "service-binding", url: request.url,
                      payer: request.headers.get("x-payment-payer"), route: request.headers.get("x-payment-route"),
                      payment: request.headers.get("payment-signature") ?? request.headers.get("x-payment") });
                  } };`,
                },
              ],
            },
          })),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          // One module graph for all files, as for the unit tests: fresh imports per file cost ~80 s
          // of ~120 s here. Each file makes its own app and sets up the state it reads (pricing
          // in beforeEach, a new name for every payment and channel), so none needs fresh modules.
          isolate: false,
          globalSetup: ["test/support/global-setup.ts"],
        },
      },
    ],
  },
});
