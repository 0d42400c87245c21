/**
 * Real origin frameworks from npm, each routing the priced patterns of a test pricing document to
 * handlers that say which rule they serve: Express (its default routing), Fastify, Koa with
 * @koa/router, and Hono on @hono/node-server (how Hono runs in Node). Unrouted requests get the
 * framework's own 404. Used to learn, by experiment, which spellings of a path each framework
 * serves from a priced handler. Node-side only; every server listens on 127.0.0.1.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import Router from "@koa/router";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import Koa from "koa";

/** A priced rule as the frameworks spell it: the paywall pattern, then each framework's routes. */
export interface PricedRoute {
  id: string;
  /** The pattern in the pricing document. */
  match: string;
  method: "GET" | "POST" | "*";
  /** Concrete canonical paths this rule prices, from which spellings are derived. */
  examples: string[];
  express: string[];
  fastify: string[];
  koa: string[];
  hono: string[];
}

export const PRICED_ROUTES: PricedRoute[] = [
  {
    id: "weather",
    match: "GET /api/weather/:city",
    method: "GET",
    examples: ["/api/weather/paris"],
    express: ["/api/weather/:city"],
    fastify: ["/api/weather/:city"],
    koa: ["/api/weather/:city"],
    hono: ["/api/weather/:city"],
  },
  {
    id: "admin",
    match: "GET /admin/stats",
    method: "GET",
    examples: ["/admin/stats"],
    express: ["/admin/stats"],
    fastify: ["/admin/stats"],
    koa: ["/admin/stats"],
    hono: ["/admin/stats"],
  },
  {
    id: "reports",
    match: "/reports/*",
    method: "*",
    examples: ["/reports/q1", "/reports/2026/q1"],
    express: ["/reports", "/reports/*rest"],
    fastify: ["/reports", "/reports/*"],
    koa: ["/reports", "/reports/{*rest}"],
    hono: ["/reports", "/reports/*"],
  },
  {
    id: "infer",
    match: "POST /v1/infer",
    method: "POST",
    examples: ["/v1/infer"],
    express: ["/v1/infer"],
    fastify: ["/v1/infer"],
    koa: ["/v1/infer"],
    hono: ["/v1/infer"],
  },
];

/** Free rules beside them, so a spelling can also land on a free handler. */
export const FREE_ROUTES = [
  { id: "health", match: "/health" },
  { id: "public", match: "/public/*" },
];

export const FRAMEWORKS = ["express", "fastify", "koa", "hono"] as const;
export type Framework = (typeof FRAMEWORKS)[number];

export interface RunningFrameworks {
  ports: Record<Framework, number>;
  close: () => Promise<void>;
}

const served = (id: string) => JSON.stringify({ handler: id });

export async function startFrameworks(): Promise<RunningFrameworks> {
  const closers: (() => Promise<void>)[] = [];
  const ports = {} as Record<Framework, number>;

  // Express 5, default settings: case-insensitive, non-strict (a trailing slash is optional).
  const ex = express();
  for (const route of PRICED_ROUTES) {
    const handler = (_req: express.Request, res: express.Response) => res.type("json").send(served(route.id));
    for (const path of route.express) {
      if (route.method === "GET") ex.get(path, handler);
      else if (route.method === "POST") ex.post(path, handler);
      else ex.all(path, handler);
    }
  }
  ex.all(["/health", "/public", "/public/*rest"], (req, res) =>
    res.type("json").send(served(req.path.toLowerCase().startsWith("/health") ? "health" : "public")),
  );
  const exServer = ex.listen(0, "127.0.0.1");
  await new Promise<void>((resolve) => exServer.once("listening", () => resolve()));
  ports.express = (exServer.address() as AddressInfo).port;
  closers.push(() => new Promise((resolve) => exServer.close(() => resolve())));

  // Fastify, default settings.
  const fa = Fastify();
  for (const route of PRICED_ROUTES) {
    for (const url of route.fastify) {
      fa.route({
        method: route.method === "*" ? ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] : route.method,
        url,
        handler: async (_req, reply) => reply.type("application/json").send(served(route.id)),
      });
    }
  }
  for (const url of ["/health", "/public", "/public/*"]) {
    fa.all(url, async (req, reply) =>
      reply.type("application/json").send(served(req.url.toLowerCase().startsWith("/health") ? "health" : "public")),
    );
  }
  await fa.listen({ port: 0, host: "127.0.0.1" });
  ports.fastify = (fa.server.address() as AddressInfo).port;
  closers.push(() => fa.close());

  // Koa with @koa/router, default settings.
  const koa = new Koa();
  const router = new Router();
  for (const route of PRICED_ROUTES) {
    for (const path of route.koa) {
      const handler = (ctx: Koa.Context) => {
        ctx.type = "json";
        ctx.body = served(route.id);
      };
      if (route.method === "GET") router.get(path, handler);
      else if (route.method === "POST") router.post(path, handler);
      else router.all(path, handler);
    }
  }
  router.all(["/health", "/public", "/public/{*rest}"], (ctx) => {
    ctx.type = "json";
    ctx.body = served(ctx.path.toLowerCase().startsWith("/health") ? "health" : "public");
  });
  koa.use(router.routes());
  const koaServer = koa.listen(0, "127.0.0.1");
  await new Promise<void>((resolve) => koaServer.once("listening", () => resolve()));
  ports.koa = (koaServer.address() as AddressInfo).port;
  closers.push(() => new Promise((resolve) => koaServer.close(() => resolve())));

  // Hono on @hono/node-server, default settings.
  const hono = new Hono();
  for (const route of PRICED_ROUTES) {
    for (const path of route.hono) {
      const handler = () => new Response(served(route.id), { headers: { "content-type": "application/json" } });
      if (route.method === "GET") hono.get(path, handler);
      else if (route.method === "POST") hono.post(path, handler);
      else hono.all(path, handler);
    }
  }
  for (const path of ["/health", "/public", "/public/*"]) {
    hono.all(path, (c) => c.json({ handler: c.req.path.toLowerCase().startsWith("/health") ? "health" : "public" }));
  }
  const honoServer = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: hono.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  ports.hono = (honoServer.address() as AddressInfo).port;
  closers.push(() => new Promise((resolve) => honoServer.close(() => resolve())));

  return {
    ports,
    close: async () => {
      for (const close of closers) await close().catch(() => {});
    },
  };
}
