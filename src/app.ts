/**
 * The Worker: configuration and per-isolate state built once per `env`; the built-in `/__x402/*`
 * endpoints served by Hono; every other request straight into the paywall. Built-ins shadow the same
 * paths at the origin.
 */
import { Hono } from "hono/tiny";
import { type Bindings, type Config, parseConfig } from "./config.ts";
import { BUILTIN_PREFIX, PAYMENT_MEMO_ENTRIES, PAYMENT_REQUIRED_MEMO_ENTRIES } from "./constants.ts";
import { WELL_KNOWN_PATH, wellKnownResponse } from "./discovery.ts";
import { fail } from "./errors.ts";
import { FacilitatorPool } from "./facilitators/pool.ts";
import { unsupportedRoutes } from "./facilitators/unsupported.ts";
import { Ledger } from "./ledger/client.ts";
import { BoundedMap } from "./memo.ts";
import { splitRawUrl } from "./path.ts";
import { handleRequest, type Runtime } from "./paywall.ts";
import type { Condition, Scalar } from "./pricing/conditions.ts";
import { PricingStore } from "./pricing/store.ts";
import { ReceiptStore } from "./receipts.ts";
import { errorResponse } from "./responses.ts";
import type { Sessions } from "./sessions/sessions.ts";

export interface AppOptions {
  /** Clock in milliseconds; tests freeze it. */
  nowMs?: () => number;
  fetch?: typeof fetch;
  log?: Runtime["log"];
}

/** Conditions as the document writes them: `{ query: { model: ["a", "b"] } }`. */
function describeWhen(when: Condition[]): Record<string, Record<string, readonly Scalar[]>> {
  const out: Record<string, Record<string, readonly Scalar[]>> = {};
  for (const { field, values } of when) {
    const bySource = out[field.source] ?? {};
    bySource[field.name] = values;
    out[field.source] = bySource;
  }
  return out;
}

const logJson: Runtime["log"] = (event, detail) => console.log(JSON.stringify({ event, ...detail }));

/**
 * batch-settlement's code (the official server scheme, `@x402/core`'s resource server: a quarter
 * of the bundle) is loaded on the first session payment, so isolates that never see one never
 * evaluate it.
 */
function lazySessions(config: Config["sessions"], facilitators: FacilitatorPool): Runtime["sessions"] {
  if (!config) return undefined;
  let loading: Promise<Sessions> | undefined;
  return () => {
    loading ??= import("./sessions/sessions.ts").then((m) => new m.Sessions(config, facilitators));
    return loading;
  };
}

export function createApp(options: AppOptions = {}) {
  const runtimes = new WeakMap<object, Runtime | Response>();

  /** One runtime per `env` object, i.e. per isolate in production. */
  const runtimeFor = (env: Bindings): Runtime | Response => {
    let rt = runtimes.get(env);
    if (rt) return rt;
    const parsed = parseConfig(env);
    if (!parsed.ok) {
      rt = errorResponse(
        fail("config_invalid", `Worker configuration: ${parsed.variable} ${parsed.problem}.`, parsed.variable),
      );
    } else {
      const config = parsed.config;
      const log = options.log ?? logJson;
      const facilitators = new FacilitatorPool(config.facilitators, {
        fetch: options.fetch ?? ((input, init) => fetch(input, init)),
        verifyTimeoutMs: config.verifyTimeoutMs,
        settleTimeoutMs: config.settleTimeoutMs,
        nowMs: options.nowMs ?? Date.now,
        log,
      });
      rt = {
        config,
        pricing: new PricingStore({
          kv: env.PRICING,
          cacheMs: config.pricingCacheMs,
          fallbacks: { network: config.network, payTo: config.payTo },
          log,
        }),
        receipts: new ReceiptStore(env.RECEIPTS, log),
        ledger: new Ledger(config.ledger, config.leaseMs, log),
        facilitators,
        sessions: lazySessions(config.sessions, facilitators),
        payments: new BoundedMap(PAYMENT_MEMO_ENTRIES),
        unpaid: new BoundedMap(PAYMENT_REQUIRED_MEMO_ENTRIES),
        nowMs: options.nowMs ?? Date.now,
        log,
      };
    }
    runtimes.set(env, rt);
    return rt;
  };

  const app = new Hono<{ Bindings: Bindings; Variables: { rt: Runtime } }>();

  app.use(async (c, next) => {
    const rt = runtimeFor(c.env);
    if (rt instanceof Response) return rt.clone();
    c.set("rt", rt);
    return next();
  });

  app.get(`${BUILTIN_PREFIX}health`, async (c) => {
    const rt = c.get("rt");
    const pricing = await rt.pricing.get(rt.nowMs());
    // /supported is read here when missing or stale (a timeout bounds it); paid requests never wait for it.
    await rt.facilitators.refreshSupported();
    const unsupported = pricing.ok ? unsupportedRoutes(rt.facilitators, pricing.table) : [];
    return c.json(
      {
        status: unsupported.length === 0 ? "ok" : "degraded",
        pricing: pricing.ok ? { loaded: true, version: pricing.table.version } : { loaded: false, why: pricing.why },
        facilitators: rt.facilitators.health(),
        unsupported,
      },
      200,
      { "cache-control": "no-store" },
    );
  });

  app.get(`${BUILTIN_PREFIX}pricing`, async (c) => {
    const rt = c.get("rt");
    const pricing = await rt.pricing.get(rt.nowMs());
    if (!pricing.ok)
      return errorResponse(fail("pricing_unavailable", "No valid pricing table is loaded.", pricing.why));
    const { table } = pricing;
    return c.json(
      {
        version: table.version,
        unmatched: table.unmatched,
        routes: table.routes.map((r) => ({
          id: r.id,
          match: r.match,
          description: r.description,
          mimeType: r.mimeType,
          free: r.accepts.length === 0,
          accepts: r.accepts,
          ...(r.accessTtlSeconds !== undefined ? { access: { ttl: r.accessTtlSeconds } } : {}),
          ...(r.when ? { when: describeWhen(r.when) } : {}),
          ...(r.per ? { per: { [r.per.field.source]: r.per.field.name, min: r.per.min, max: r.per.max } } : {}),
        })),
      },
      200,
      { "cache-control": "public, max-age=10", "access-control-allow-origin": "*" },
    );
  });

  app.get(WELL_KNOWN_PATH, async (c) => {
    const rt = c.get("rt");
    const pricing = await rt.pricing.get(rt.nowMs());
    if (!pricing.ok)
      return errorResponse(fail("pricing_unavailable", "No valid pricing table is loaded.", pricing.why));
    return wellKnownResponse(pricing.table, c.req.raw);
  });
  app.get(`${BUILTIN_PREFIX}channels`, async (c) =>
    (await import("./sessions/admin.ts")).channelsEndpoint(c.get("rt"), c.req.raw, "list"),
  );
  app.post(`${BUILTIN_PREFIX}channels/claim`, async (c) =>
    (await import("./sessions/admin.ts")).channelsEndpoint(c.get("rt"), c.req.raw, "claim"),
  );
  app.all(WELL_KNOWN_PATH, () => errorResponse(fail("method_not_allowed", "Use GET.")));
  app.all(`${BUILTIN_PREFIX}health`, () => errorResponse(fail("method_not_allowed", "Use GET.")));
  app.all(`${BUILTIN_PREFIX}pricing`, () => errorResponse(fail("method_not_allowed", "Use GET.")));
  app.all(`${BUILTIN_PREFIX}*`, () => errorResponse(fail("not_found", "No such built-in endpoint.")));

  app.onError((error) => {
    logJson("internal_error", { message: error.message });
    return errorResponse(fail("internal_error", "The paywall failed unexpectedly."));
  });

  return {
    /**
     * Built-ins go through Hono; every other request goes straight to the paywall, which does its
     * own routing (the pricing matcher) — a router in front of it would only add work to each request.
     */
    async fetch(request: Request, env: Bindings, ctx: ExecutionContext): Promise<Response> {
      const url = splitRawUrl(request.url);
      if (url.path.startsWith(BUILTIN_PREFIX) || url.path === WELL_KNOWN_PATH) return app.fetch(request, env, ctx);
      const rt = runtimeFor(env);
      if (rt instanceof Response) return rt.clone();
      try {
        return await handleRequest(request, url, rt, (promise) => ctx.waitUntil(promise));
      } catch (error) {
        logJson("internal_error", { message: (error as Error).message });
        return errorResponse(fail("internal_error", "The paywall failed unexpectedly."));
      }
    },
  };
}
