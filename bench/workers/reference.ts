/**
 * (b) What an owner would otherwise build: the reference `@x402/hono` payment middleware in front
 * of a plain forward to the origin, with the same prices as bench/pricing.json.
 */
import { HTTPFacilitatorClient } from "@x402/core/server";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { paymentMiddleware, x402ResourceServer } from "@x402/hono";
import { Hono } from "hono";
import { proxy } from "hono/proxy";

interface Env {
  ORIGIN_URL: string;
  FACILITATOR_URL: string;
  PAY_TO: string;
}

let app: Hono<{ Bindings: Env }> | undefined;

function build(env: Env) {
  const server = new x402ResourceServer(new HTTPFacilitatorClient({ url: env.FACILITATOR_URL })).register(
    "eip155:84532",
    new ExactEvmScheme(),
  );
  const accepts = (price: string) => ({ scheme: "exact", price, network: "eip155:84532" as const, payTo: env.PAY_TO });
  const built = new Hono<{ Bindings: Env }>();
  built.use(
    paymentMiddleware(
      {
        "GET /api/weather/*": { accepts: accepts("$0.001"), description: "Current weather" },
        "GET /reports/*": { accepts: accepts("$0.05"), description: "Reports" },
      },
      server,
    ),
  );
  built.all("*", (c) => {
    const url = new URL(c.req.url);
    return proxy(env.ORIGIN_URL + url.pathname + url.search, c.req.raw);
  });
  return built;
}

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext) {
    app ??= build(env);
    return app.fetch(request, env, ctx);
  },
};
