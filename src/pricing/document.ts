/**
 * The pricing document: its schema, and compiling it into a `PricingTable`. Pure.
 *
 * `compilePricing` never throws for a bad document: it returns every problem it finds, each with
 * the JSON path of the offending value, so an owner can fix them all in one edit.
 */

import { z } from "@x402/core/schemas";
import { getDefaultAsset } from "@x402/evm";
import { isAddress } from "viem";
import { compileMatcher, type Matcher } from "./matcher.ts";
import { checkAtomic, type MoneyResult, usdToAtomic } from "./money.ts";
import { type Pattern, parsePattern } from "./pattern.ts";

export interface Requirement {
  scheme: "exact";
  network: string;
  amount: string;
  asset: `0x${string}`;
  payTo: `0x${string}`;
  maxTimeoutSeconds: number;
  extra: { name: string; version: string };
}

export interface RouteRule {
  id: string;
  match: string;
  description: string;
  mimeType: string;
  /** Empty for a free route. */
  accepts: Requirement[];
  /** Seconds a settled payment keeps granting access to this route; undefined = single use. */
  accessTtlSeconds: number | undefined;
}

export interface PricingTable {
  /** Content hash of the document, shown to buyers so they can tell which prices they saw. */
  version: string;
  unmatched: "free" | "deny";
  routes: RouteRule[];
  matcher: Matcher<RouteRule>;
}

export interface Problem {
  path: string;
  message: string;
}

export type PricingResult = { ok: true; table: PricingTable } | { ok: false; problems: Problem[] };

/** Values the document may leave out, from the Worker's vars. */
export interface PricingFallbacks {
  network: string | undefined;
  payTo: `0x${string}` | undefined;
}

const Caip2Evm = z.string().regex(/^eip155:[1-9][0-9]*$/, "must be a CAIP-2 EVM network such as eip155:8453");
const Address = z.string().refine((v) => isAddress(v, { strict: false }), "must be a 0x-prefixed 20-byte address");
const Timeout = z.number().int().min(1).max(3600);
const Name = z.string().min(1).max(64);

const AssetSchema = z
  .object({
    network: Caip2Evm,
    address: Address,
    decimals: z.number().int().min(0).max(36),
    eip712: z.object({ name: z.string().min(1), version: z.string().min(1) }).strict(),
  })
  .strict();

const PriceSchema = z.union([z.string().min(1), z.object({ amount: z.string().min(1), asset: Name }).strict()]);

const OptionSchema = z
  .object({ price: PriceSchema, network: Caip2Evm.optional(), asset: Name.optional(), payTo: Address.optional() })
  .strict();

const RouteSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be 1-64 letters, digits, '_', '.' or '-'"),
    match: z.string().min(1).max(2048),
    description: z.string().max(1024).optional(),
    mimeType: z.string().max(256).optional(),
    price: PriceSchema.optional(),
    network: Caip2Evm.optional(),
    asset: Name.optional(),
    payTo: Address.optional(),
    maxTimeoutSeconds: Timeout.optional(),
    accepts: z.array(OptionSchema).min(1).max(16).optional(),
    access: z
      .object({ ttl: z.number().int().min(1).max(31_536_000) })
      .strict()
      .optional(),
  })
  .strict();

export const PricingDocumentSchema = z
  .object({
    $schema: z.string().optional(),
    version: z.literal(1),
    defaults: z
      .object({
        network: Caip2Evm.optional(),
        payTo: Address.optional(),
        maxTimeoutSeconds: Timeout.optional(),
        unmatched: z.enum(["free", "deny"]).optional(),
        mimeType: z.string().max(256).optional(),
      })
      .strict()
      .optional(),
    assets: z.record(Name, AssetSchema).optional(),
    routes: z.array(RouteSchema).max(200_000),
  })
  .strict();

export type PricingDocument = z.infer<typeof PricingDocumentSchema>;
type Route = z.infer<typeof RouteSchema>;
type Option = z.infer<typeof OptionSchema>;

const DEFAULT_MAX_TIMEOUT_SECONDS = 60;

/**
 * What one compile shares across routes. Big tables repeat a handful of prices and assets, so
 * conversions are done once, and identical requirements are one shared (frozen) object: that is
 * most of the compile time and memory of a 100k-route table.
 */
interface Context {
  doc: PricingDocument;
  fallbacks: PricingFallbacks;
  stablecoins: Map<string, ResolvedAsset | undefined>;
  money: Map<string, MoneyResult>;
  requirements: Map<string, Requirement>;
}

/** Parses JSON text and compiles it. `version` is the caller's content hash of `text`. */
export function compilePricingText(text: string, version: string, fallbacks: PricingFallbacks): PricingResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, problems: [{ path: "$", message: `not valid JSON: ${(error as Error).message}` }] };
  }
  return compilePricing(json, version, fallbacks);
}

export function compilePricing(input: unknown, version: string, fallbacks: PricingFallbacks): PricingResult {
  const parsed = PricingDocumentSchema.safeParse(input);
  if (!parsed.success) {
    return {
      ok: false,
      problems: parsed.error.issues.map((issue) => ({ path: jsonPath(issue.path), message: issue.message })),
    };
  }
  const doc = parsed.data;
  const ctx: Context = { doc, fallbacks, stablecoins: new Map(), money: new Map(), requirements: new Map() };
  const problems: Problem[] = [];
  const rules: { pattern: Pattern; value: RouteRule }[] = [];
  /** Document index of each entry in `rules`, to name routes in duplicate-rule problems. */
  const ruleIndex: number[] = [];
  const ids = new Map<string, number>();

  doc.routes.forEach((route, i) => {
    const at = `$.routes[${i}]`;
    const firstId = ids.get(route.id);
    if (firstId !== undefined)
      problems.push({ path: `${at}.id`, message: `duplicate id "${route.id}" (also routes[${firstId}])` });
    else ids.set(route.id, i);

    const pattern = parsePattern(route.match);
    if (!pattern.ok) problems.push({ path: `${at}.match`, message: pattern.problem });

    const accepts = compileAccepts(route, ctx, at, problems);
    if (route.access && accepts.length === 0) {
      problems.push({ path: `${at}.access`, message: "a free route has no access window" });
    }
    if (pattern.ok) {
      ruleIndex.push(i);
      rules.push({
        pattern: pattern.pattern,
        value: {
          id: route.id,
          match: route.match,
          description: route.description ?? "",
          mimeType: route.mimeType ?? doc.defaults?.mimeType ?? "application/json",
          accepts,
          accessTtlSeconds: route.access?.ttl,
        },
      });
    }
  });

  // The trie finds rules that match exactly the same requests as an earlier one.
  const matcher = compileMatcher(rules);
  for (const [first, later] of matcher.duplicates) {
    const route = doc.routes[ruleIndex[later] ?? -1];
    problems.push({
      path: `$.routes[${ruleIndex[later]}].match`,
      message: `"${route?.match}" matches exactly the same requests as routes[${ruleIndex[first]}]`,
    });
  }
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    table: { version, unmatched: doc.defaults?.unmatched ?? "free", routes: rules.map((r) => r.value), matcher },
  };
}

function compileAccepts(route: Route, ctx: Context, at: string, problems: Problem[]): Requirement[] {
  if ((route.price === undefined) === (route.accepts === undefined)) {
    problems.push({ path: at, message: 'a route needs exactly one of "price" or "accepts"' });
    return [];
  }
  if (route.price === "free") {
    for (const key of ["network", "asset", "payTo", "maxTimeoutSeconds"] as const) {
      if (route[key] !== undefined)
        problems.push({ path: `${at}.${key}`, message: "a free route takes no payment settings" });
    }
    return [];
  }
  const options: { option: Option; path: string }[] = route.accepts
    ? route.accepts.map((option, j) => ({ option, path: `${at}.accepts[${j}]` }))
    : [{ option: { price: route.price as Option["price"] }, path: at }];

  const accepts: Requirement[] = [];
  const seen = new Set<string>();
  for (const { option, path } of options) {
    if (option.price === "free") {
      problems.push({ path: `${path}.price`, message: '"free" cannot be one of several payment options' });
      continue;
    }
    const requirement = compileOption(option, route, ctx, path, problems);
    if (!requirement) continue;
    const key = `${requirement.network}|${requirement.asset.toLowerCase()}`;
    if (seen.has(key)) {
      problems.push({ path, message: `a second option for the same asset on ${requirement.network}` });
      continue;
    }
    seen.add(key);
    accepts.push(requirement);
  }
  return accepts;
}

function compileOption(
  option: Option,
  route: Route,
  ctx: Context,
  path: string,
  problems: Problem[],
): Requirement | undefined {
  const { doc, fallbacks } = ctx;
  // Every check runs, so one validation lists all of an option's problems, not just the first.
  const before = problems.length;
  const payTo = (option.payTo ?? route.payTo ?? doc.defaults?.payTo ?? fallbacks.payTo) as `0x${string}` | undefined;
  if (!payTo)
    problems.push({ path: `${path}.payTo`, message: "no payTo here, in defaults.payTo, or in the PAY_TO var" });
  const maxTimeoutSeconds = route.maxTimeoutSeconds ?? doc.defaults?.maxTimeoutSeconds ?? DEFAULT_MAX_TIMEOUT_SECONDS;
  const asset = resolveAsset(option, route, ctx, path, problems);
  // Without a known asset the precision cannot be checked, but the price's spelling still can.
  const decimals = asset?.decimals ?? 77;
  const priceKey = typeof option.price === "object" ? `#${option.price.amount}` : `${option.price}@${decimals}`;
  let money = ctx.money.get(priceKey);
  if (!money) {
    money = typeof option.price === "object" ? checkAtomic(option.price.amount) : usdToAtomic(option.price, decimals);
    ctx.money.set(priceKey, money);
  }
  if (!money.ok) problems.push({ path: `${path}.price`, message: money.problem });
  if (problems.length > before || !asset || !payTo || !money.ok) return undefined;
  const key = `${asset.network}|${asset.address}|${money.atomic}|${payTo}|${maxTimeoutSeconds}|${asset.name}|${asset.version}`;
  let requirement = ctx.requirements.get(key);
  if (!requirement) {
    requirement = Object.freeze({
      scheme: "exact",
      network: asset.network,
      amount: money.atomic,
      asset: asset.address,
      payTo,
      maxTimeoutSeconds,
      extra: Object.freeze({ name: asset.name, version: asset.version }),
    });
    ctx.requirements.set(key, requirement);
  }
  return requirement;
}

interface ResolvedAsset {
  network: string;
  address: `0x${string}`;
  decimals: number;
  name: string;
  version: string;
}

function resolveAsset(
  option: Option,
  route: Route,
  ctx: Context,
  path: string,
  problems: Problem[],
): ResolvedAsset | undefined {
  const { doc, fallbacks } = ctx;
  const assetName = typeof option.price === "object" ? option.price.asset : (option.asset ?? route.asset);
  const wantedNetwork = option.network ?? route.network;
  if (assetName !== undefined) {
    const named = doc.assets?.[assetName];
    if (!named) {
      problems.push({ path: `${path}.asset`, message: `unknown asset "${assetName}"; define it under "assets"` });
      return undefined;
    }
    if (wantedNetwork !== undefined && wantedNetwork !== named.network) {
      problems.push({
        path: `${path}.network`,
        message: `asset "${assetName}" lives on ${named.network}, not ${wantedNetwork}`,
      });
      return undefined;
    }
    return { ...named, address: named.address as `0x${string}`, ...named.eip712 };
  }
  const network = wantedNetwork ?? doc.defaults?.network ?? fallbacks.network;
  if (!network) {
    problems.push({ path: `${path}.network`, message: "no network here, in defaults.network, or in the NETWORK var" });
    return undefined;
  }
  if (!ctx.stablecoins.has(network)) ctx.stablecoins.set(network, defaultStablecoin(network));
  const known = ctx.stablecoins.get(network);
  if (!known)
    problems.push({ path: `${path}.price`, message: `no default stablecoin is known on ${network}; name an asset` });
  return known;
}

function defaultStablecoin(network: string) {
  try {
    const info = getDefaultAsset(network as `${string}:${string}`);
    // Only EIP-3009 tokens (no special transfer method) can be paid with the `exact` scheme here.
    if ("assetTransferMethod" in info && info.assetTransferMethod) return undefined;
    return {
      network,
      address: info.asset as `0x${string}`,
      decimals: info.decimals,
      name: info.name,
      version: info.version,
    };
  } catch {
    return undefined;
  }
}

function jsonPath(path: ReadonlyArray<string | number>): string {
  return path.reduce<string>((acc, key) => (typeof key === "number" ? `${acc}[${key}]` : `${acc}.${key}`), "$");
}
