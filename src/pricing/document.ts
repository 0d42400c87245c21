/**
 * The pricing document: its schema, and compiling it into a `PricingTable`. Pure.
 *
 * `compilePricing` never throws for a bad document: it returns every problem it finds, each with
 * the JSON path of the offending value, so an owner can fix them all in one edit.
 */

import { z } from "@x402/core/schemas";
import { getDefaultAsset } from "@x402/evm";
import { isAddress } from "viem";
import { isSolanaAddress } from "../schemes/exact-svm/checks.ts";
import { type BazaarExtension, bazaarExtension, type DiscoveryDeclaration, discoveryMethod } from "../x402/bazaar.ts";
import { type Family, familyOf, SOLANA_DEVNET, SOLANA_MAINNET, SOLANA_TESTNET } from "../x402/networks.ts";
import { resolveCharge } from "./charge.ts";
import {
  type Condition,
  type Field,
  type FieldSource,
  field,
  groupFields,
  isGroup,
  orderGroup,
  type PerUnit,
  type RouteEntry,
  type RouteGroup,
} from "./conditions.ts";
import { type Matcher, matcherBuilder } from "./matcher.ts";
import { checkAtomic, type MoneyResult, usdToAtomic } from "./money.ts";
import { type Pattern, parsePattern, usualMethod, usualPattern } from "./pattern.ts";
import { StringTable } from "./string-table.ts";

interface RequirementBase {
  scheme: "exact" | "upto" | "batch-settlement";
  /** CAIP-2. */
  network: string;
  /** Atomic units of the asset. */
  amount: string;
  maxTimeoutSeconds: number;
}

export interface EvmRequirement extends RequirementBase {
  scheme: "exact";
  asset: `0x${string}`;
  payTo: `0x${string}`;
  /** The token's EIP-712 domain; `paymentFlow: "upfront"` on routes that settle before the origin. */
  extra: { name: string; version: string; paymentFlow?: "upfront" };
}

export interface SvmRequirement extends RequirementBase {
  scheme: "exact";
  /** The SPL mint, base58. */
  asset: string;
  /** The seller's wallet, base58: the transfer goes to its associated token account. */
  payTo: string;
  /** `feePayer` is the facilitator's, learnt from its `/supported` when a 402 is made (offers.ts). */
  extra: { feePayer?: string };
}

/**
 * x402 `upto` on EVM: `amount` is the most the buyer authorises (a Permit2 witness transfer); the
 * origin's answer decides the charge, at most that. v2 only.
 */
export interface UptoRequirement extends RequirementBase {
  scheme: "upto";
  asset: `0x${string}`;
  payTo: `0x${string}`;
  /**
   * The token's EIP-712 domain (for the buyer's EIP-2612 permit); `facilitatorAddress` is the
   * facilitator's signer, learnt from its `/supported` when a 402 is made (offers.ts): only that
   * address may settle what the buyer signs.
   */
  extra: { name: string; version: string; assetTransferMethod: "permit2"; facilitatorAddress?: string };
}

/**
 * x402 `batch-settlement` on EVM: `amount` is the price of one request, paid by a cumulative
 * voucher on a channel the buyer deposits into once (sessions/). v2 only.
 */
export interface BatchRequirement extends RequirementBase {
  scheme: "batch-settlement";
  asset: `0x${string}`;
  payTo: `0x${string}`;
  /**
   * The token's EIP-712 domain (the deposit is an EIP-3009 authorization), the channel's withdraw
   * delay (seconds), the smallest deposit asked for (atomic), and `receiverAuthorizer`, the
   * facilitator key that signs the seller's claims and refunds, learnt from its `/supported`
   * when a 402 is made (offers.ts).
   */
  extra: { name: string; version: string; withdrawDelay: number; minDeposit: string; receiverAuthorizer?: string };
}

/** One payment option of a route, as the 402 offers it (x402 `PaymentRequirements`). */
export type Requirement = EvmRequirement | SvmRequirement | UptoRequirement | BatchRequirement;

export const isSvmRequirement = (r: Requirement): r is SvmRequirement => familyOf(r.network) === "svm";
/** An EVM `exact` requirement (EIP-3009). */
export const isEvmRequirement = (r: Requirement): r is EvmRequirement =>
  r.scheme === "exact" && familyOf(r.network) === "evm";
export const isUptoRequirement = (r: Requirement): r is UptoRequirement => r.scheme === "upto";
export const isBatchRequirement = (r: Requirement): r is BatchRequirement => r.scheme === "batch-settlement";

/** batch-settlement's bounds on a channel's withdraw delay, in seconds (`@x402/evm`'s). */
export const MIN_WITHDRAW_DELAY_SECONDS = 900;
export const MAX_WITHDRAW_DELAY_SECONDS = 2_592_000;
/** Without `minDeposit`, a deposit of at least this many requests is asked for (`@x402/evm`'s default). */
const DEFAULT_MIN_DEPOSIT_REQUESTS = 10n;

/** What an `upto` option's charge is read with, by `network|asset` (lower case) of its route. */
export interface Metered {
  decimals: number;
  /** Charged when the origin reports none: an amount spelling (see paid/charge.ts); else the maximum. */
  defaultCharge: string | undefined;
}

/** What a Solana payment's checks need to know of its mint; not part of the 402. */
export interface MintFacts {
  decimals: number;
  tokenProgram: string;
}

const TOKEN_PROGRAMS = {
  token: "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
  "token-2022": "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb",
} as const;

/** USDC on each Solana network, as `@x402/svm` names it (a unit test holds this equal). */
export const SOLANA_USDC: Readonly<Record<string, string>> = Object.freeze({
  [SOLANA_MAINNET]: "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
  [SOLANA_DEVNET]: "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
  [SOLANA_TESTNET]: "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
});

export interface RouteRule {
  id: string;
  match: string;
  description: string;
  mimeType: string;
  /** Empty for a free route. */
  accepts: Requirement[];
  /** Seconds a settled payment keeps granting access to this route; undefined = single use. */
  accessTtlSeconds: number | undefined;
  /** Conditions on request fields (all must hold), or undefined for none. */
  when: Condition[] | undefined;
  /** Price per unit of a numeric request field: `accepts` amounts are per unit. */
  per: PerUnit | undefined;
  /**
   * Settle before the origin runs (x402's `upfront` flow), for origins with side effects: the
   * buyer is charged even if the origin then fails, but never gets the action without paying.
   */
  settleBefore: boolean;
  /** x402 `bazaar` discovery metadata, when the route declares `discovery`. */
  discovery: BazaarExtension | undefined;
  /** The `upto` options' charge settings by `network|asset`, or undefined when there are none. */
  metered: ReadonlyMap<string, Metered> | undefined;
}

export const meteredKey = (r: Pick<Requirement, "network" | "asset">) => `${r.network}|${r.asset}`.toLowerCase();

/**
 * How paths are read, for origins that read them in ways the canonical check alone does not cover
 * (see path-readings.ts). The defaults are the safe ones; each option relaxes one class for an
 * owner whose origin is strict about it.
 */
export interface PathOptions {
  /** Literal segments compare case-insensitively (ASCII), as Express, Koa and IIS route. */
  caseInsensitive: boolean;
  /** Refuse `;` in a path (Tomcat, Jetty and Spring strip `;…` from segments, `/..;/` included). */
  refuseSemicolons: boolean;
  /** Refuse segments ending in "." or an encoded space (IIS and ASP.NET strip them). */
  refuseTrailingDots: boolean;
  /** A path not priced as spelled is priced as its last segment without `.ext` (Rails' `.:format`). */
  formatSuffix: boolean;
}

export const DEFAULT_PATH_OPTIONS: PathOptions = Object.freeze({
  caseInsensitive: true,
  refuseSemicolons: true,
  refuseTrailingDots: true,
  formatSuffix: true,
});

export interface PricingTable {
  /** Content hash of the document, shown to buyers so they can tell which prices they saw. */
  version: string;
  unmatched: "free" | "deny";
  paths: PathOptions;
  routes: RouteRule[];
  matcher: Matcher<RouteEntry>;
  /** Solana mints the table's requirements pay in, by `network|mint`. */
  mints: ReadonlyMap<string, MintFacts>;
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

/** Discovery metadata rides in every 402 of its route (base64 in a header): keep it small. */
const MAX_DISCOVERY_BYTES = 4096;

const Network = z
  .string()
  .regex(
    /^(?:eip155:[1-9][0-9]{0,19}|solana:[1-9A-HJ-NP-Za-km-z]{32})$/,
    "must be a CAIP-2 network such as eip155:8453 or solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
  );
const Address = z
  .string()
  .refine(
    (v) => isAddress(v, { strict: false }) || isSolanaAddress(v),
    "must be a 0x-prefixed 20-byte address or a base58 Solana address",
  );
const PayToByFamily = z
  .object({
    eip155: z
      .string()
      .refine((v) => isAddress(v, { strict: false }), "must be a 0x-prefixed 20-byte address")
      .optional(),
    solana: z.string().refine(isSolanaAddress, "must be a base58 Solana address").optional(),
  })
  .strict();
const Timeout = z.number().int().min(1).max(3600);
const Name = z.string().min(1).max(64);

const AssetSchema = z
  .object({
    network: Network,
    address: Address,
    decimals: z.number().int().min(0).max(36),
    /** EVM: the token's EIP-712 domain, which the EIP-3009 signature is made under. */
    eip712: z
      .object({ name: z.string().min(1), version: z.string().min(1) })
      .strict()
      .optional(),
    /** Solana: the program that owns the mint. */
    tokenProgram: z.enum(["token", "token-2022"]).optional(),
  })
  .strict();

const FieldName = z.string().min(1).max(128);
const HeaderName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/, "must be an HTTP header name");
// Visible ASCII without commas or surrounding spaces: a comma is how repeated headers are joined.
const HeaderValue = z
  .string()
  .regex(
    /^[\x21-\x2b\x2d-\x7e](?:[\x20-\x2b\x2d-\x7e]{0,254}[\x21-\x2b\x2d-\x7e])?$/,
    "must be 1-256 visible ASCII characters without commas",
  );
const QueryValue = z.string().max(256);
const BodyValue = z.union([z.string().max(256), z.number().finite(), z.boolean()]);
const oneOrMany = <T extends z.ZodTypeAny>(value: T) => z.union([value, z.array(value).min(1).max(64)]);

/** Fields per source: far more than any real price needs, and it keeps group checks cheap. */
const MAX_CONDITION_FIELDS = 16;
const conditions = <T extends z.ZodTypeAny>(name: z.ZodString, values: T) =>
  z
    .record(name, oneOrMany(values))
    .refine((r) => Object.keys(r).length <= MAX_CONDITION_FIELDS, `at most ${MAX_CONDITION_FIELDS} fields`);

const WhenSchema = z
  .object({
    query: conditions(FieldName, QueryValue).optional(),
    header: conditions(HeaderName, HeaderValue).optional(),
    body: conditions(FieldName, BodyValue).optional(),
  })
  .strict();

const PerSchema = z
  .object({
    query: FieldName.optional(),
    header: HeaderName.optional(),
    body: FieldName.optional(),
    min: z.number().int().min(1).max(1_000_000_000),
    max: z.number().int().min(1).max(1_000_000_000),
  })
  .strict();

const PriceSchema = z.union([z.string().min(1), z.object({ amount: z.string().min(1), asset: Name }).strict()]);

const SchemeSchema = z.enum(["exact", "upto", "batch-settlement"]);
const WithdrawDelay = z.number().int().min(MIN_WITHDRAW_DELAY_SECONDS).max(MAX_WITHDRAW_DELAY_SECONDS);
/** An `upto` charge: atomic units, "$0.002" or "25%" (of the maximum), as `Settlement-Overrides` spells it. */
const ChargeSchema = z.string().regex(/^(?:0|[1-9][0-9]{0,77}|\$[0-9]+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]{1,2})?%)$/, {
  message: 'must be atomic units ("1500"), dollars ("$0.002") or a percentage of the maximum ("25%")',
});

const OptionSchema = z
  .object({
    price: PriceSchema,
    network: Network.optional(),
    asset: Name.optional(),
    payTo: Address.optional(),
    scheme: SchemeSchema.optional(),
    defaultCharge: ChargeSchema.optional(),
    minDeposit: PriceSchema.optional(),
    withdrawDelay: WithdrawDelay.optional(),
  })
  .strict();

const RouteSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be 1-64 letters, digits, '_', '.' or '-'"),
    match: z.string().min(1).max(2048),
    description: z.string().max(1024).optional(),
    mimeType: z.string().max(256).optional(),
    price: PriceSchema.optional(),
    network: Network.optional(),
    asset: Name.optional(),
    payTo: Address.optional(),
    maxTimeoutSeconds: Timeout.optional(),
    accepts: z.array(OptionSchema).min(1).max(16).optional(),
    scheme: SchemeSchema.optional(),
    defaultCharge: ChargeSchema.optional(),
    minDeposit: PriceSchema.optional(),
    withdrawDelay: WithdrawDelay.optional(),
    access: z
      .object({ ttl: z.number().int().min(1).max(31_536_000) })
      .strict()
      .optional(),
    when: WhenSchema.optional(),
    per: PerSchema.optional(),
    settle: z.enum(["after", "before"]).optional(),
    discovery: z
      .object({
        input: z.record(z.string(), z.unknown()).optional(),
        inputSchema: z.record(z.string(), z.unknown()).optional(),
        bodyType: z.enum(["json", "form-data", "text"]).optional(),
        output: z
          .object({ example: z.unknown().optional(), schema: z.record(z.string(), z.unknown()).optional() })
          .strict()
          .optional(),
      })
      .strict()
      .refine((d) => JSON.stringify(d).length <= MAX_DISCOVERY_BYTES, `at most ${MAX_DISCOVERY_BYTES} bytes as JSON`)
      .optional(),
  })
  .strict();

/** The document without its routes: small, so zod checks it whole. */
const DocumentHeadSchema = z
  .object({
    $schema: z.string().optional(),
    version: z.literal(1),
    defaults: z
      .object({
        network: Network.optional(),
        payTo: z.union([Address, PayToByFamily]).optional(),
        maxTimeoutSeconds: Timeout.optional(),
        unmatched: z.enum(["free", "deny"]).optional(),
        mimeType: z.string().max(256).optional(),
      })
      .strict()
      .optional(),
    assets: z.record(Name, AssetSchema).optional(),
    paths: z
      .object({
        case: z.enum(["insensitive", "sensitive"]).optional(),
        semicolons: z.enum(["refuse", "literal"]).optional(),
        trailingDots: z.enum(["refuse", "literal"]).optional(),
        formatSuffix: z.enum(["match", "literal"]).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

const MAX_ROUTES = 200_000;

export const PricingDocumentSchema = DocumentHeadSchema.extend({
  routes: z.array(RouteSchema).max(MAX_ROUTES),
}).strict();

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
  /** Compiled `accepts` of plain routes, by price string. */
  plainPrices: Map<string, Requirement[]>;
  mints: Map<string, MintFacts>;
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
  const shape = checkShape(input);
  if (!shape.ok) return shape;
  const doc = shape.doc;
  const ctx: Context = {
    doc,
    fallbacks,
    stablecoins: new Map(),
    money: new Map(),
    requirements: new Map(),
    plainPrices: new Map(),
    mints: new Map(),
  };
  const problems: Problem[] = [];
  checkAssets(doc, problems);
  const builder = matcherBuilder<RouteEntry>(doc.routes.length);
  /** Groups of more than one rule, to order and check once all rules are in. */
  const grouped = new Set<RouteGroup>();
  /** Every rule, in document order. */
  const compiled: RouteRule[] = [];
  const ids = new StringTable(doc.routes.length);
  /** The index of the first route with each id, by the id's number in `ids`. */
  const firstWithId: number[] = [];
  const indexOfId = (id: string) => firstWithId[ids.find(0, id)] ?? -1;
  const defaultMimeType = doc.defaults?.mimeType ?? "application/json";
  const paths = pathOptions(doc.paths);
  // Case-insensitive tables hold their literals in lower case; requests are lowered to match.
  const matchable = paths.caseInsensitive ? lowerPath : (match: string) => match;
  const merge = (existing: RouteEntry, added: RouteEntry): RouteGroup => {
    const group = isGroup(existing) ? existing : { rules: [existing], fields: [] };
    group.rules.push(...(isGroup(added) ? added.rules : [added]));
    grouped.add(group);
    return group;
  };

  // A plain loop, and JSON paths built only for problems: this runs 100k times for a big table.
  for (let i = 0; i < doc.routes.length; i++) {
    const route = doc.routes[i] as Route;
    const known = ids.size;
    const id = ids.add(0, route.id);
    if (ids.size > known) firstWithId.push(i);
    else
      problems.push({ path: `${at(i)}.id`, message: `duplicate id "${route.id}" (also routes[${firstWithId[id]}])` });

    // Nearly every route of a big table is in the usual spelling, read without splitting it.
    const usual = usualPattern(route.match);
    const pattern = usual === undefined ? parsePattern(route.match) : undefined;
    if (pattern && !pattern.ok) problems.push({ path: `${at(i)}.match`, message: pattern.problem });

    const accepts = compileAcceptsCached(route, ctx, i, problems);
    if (route.access && accepts.length === 0) {
      problems.push({ path: `${at(i)}.access`, message: "a free route has no access window" });
    }
    if (route.settle !== undefined && accepts.length === 0 && route.price === "free") {
      problems.push({ path: `${at(i)}.settle`, message: "a free route is never settled" });
    }
    const when = route.when ? compileWhen(route.when, `${at(i)}.when`, problems) : undefined;
    const per = route.per ? compilePer(route, accepts, `${at(i)}.per`, problems) : undefined;
    if (pattern === undefined || pattern.ok) {
      const rule: RouteRule = {
        id: route.id,
        match: route.match,
        description: route.description ?? "",
        mimeType: route.mimeType ?? defaultMimeType,
        accepts,
        accessTtlSeconds: route.access?.ttl,
        when,
        per,
        settleBefore: route.settle === "before",
        discovery: route.discovery ? discoveryOf(route) : undefined,
        metered: meteredOf(route, accepts, ctx),
      };
      compiled.push(rule);
      // Rules with the same method and path shape form one group, told apart by their conditions.
      const entry: RouteEntry = when || per ? { rules: [rule], fields: groupFields([rule]) } : rule;
      if (pattern) builder.add(paths.caseInsensitive ? lowerLiterals(pattern.pattern) : pattern.pattern, entry, merge);
      else if (usual === "static") builder.addStatic(matchable(route.match), entry, merge);
      else builder.addUsual(matchable(route.match), entry, merge);
    }
  }

  for (const group of grouped) {
    const { ordered, ambiguous, same } = orderGroup(group.rules);
    const indexOf = (k: number) => indexOfId(group.rules[k]?.id ?? "");
    for (const [a, b] of same) {
      const [first, later] = [indexOf(a), indexOf(b)].sort((x, y) => x - y);
      const route = doc.routes[later ?? -1];
      problems.push({
        path: `$.routes[${later}].match`,
        message: route?.when
          ? `routes[${first}] has the same method, path and conditions`
          : `"${route?.match}" matches exactly the same requests as routes[${first}]`,
      });
    }
    for (const [a, b] of ambiguous) {
      const [first, later] = [indexOf(a), indexOf(b)].sort((x, y) => x - y);
      problems.push({
        path: `$.routes[${later}].when`,
        message: `one request can match both this rule and routes[${first}], and neither is narrower; make their values exclusive, make one rule narrower, or add a rule for requests that match both`,
      });
    }
    group.rules = ordered;
    group.fields = groupFields(ordered);
  }
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    table: {
      version,
      unmatched: doc.defaults?.unmatched ?? "free",
      paths,
      routes: compiled,
      matcher: builder.matcher,
      mints: ctx.mints,
    },
  };
}

/** Each named asset fits its network's family: EVM tokens have an EIP-712 domain, SPL mints a program. */
function checkAssets(doc: PricingDocument, problems: Problem[]): void {
  for (const [name, asset] of Object.entries(doc.assets ?? {})) {
    const path = `$.assets.${name}`;
    if (familyOf(asset.network) === "svm") {
      if (!isSolanaAddress(asset.address)) {
        problems.push({ path: `${path}.address`, message: "must be a base58 mint address on a Solana network" });
      }
      if (asset.eip712) problems.push({ path: `${path}.eip712`, message: "an SPL mint has no EIP-712 domain" });
    } else {
      if (!isAddress(asset.address, { strict: false })) {
        problems.push({ path: `${path}.address`, message: "must be a 0x-prefixed 20-byte address on an EVM network" });
      }
      if (!asset.eip712) {
        problems.push({ path: `${path}.eip712`, message: "an EVM token needs its EIP-712 domain (name and version)" });
      }
      if (asset.tokenProgram) problems.push({ path: `${path}.tokenProgram`, message: "only Solana assets have one" });
    }
  }
}

function pathOptions(given: PricingDocument["paths"]): PathOptions {
  if (!given) return DEFAULT_PATH_OPTIONS;
  return {
    caseInsensitive: given.case !== "sensitive",
    refuseSemicolons: given.semicolons !== "literal",
    refuseTrailingDots: given.trailingDots !== "literal",
    formatSuffix: given.formatSuffix !== "literal",
  };
}

/**
 * A pattern with its path in lower case and its method as written. Canonical patterns are ASCII
 * (anything else is percent-encoded), so this lowers exactly the ASCII letters: the same folding
 * Express's and Koa's case-insensitive routing applies to the raw path.
 */
function lowerPath(match: string): string {
  const slash = match.indexOf("/");
  return slash < 0 ? match : match.slice(0, slash) + match.slice(slash).toLowerCase();
}

function discoveryOf(route: Route): BazaarExtension {
  const declaration = route.discovery as DiscoveryDeclaration;
  return bazaarExtension(discoveryMethod(usualMethod(route.match.trim()), declaration), declaration);
}

/** The pattern with its literal segments lowered (parameter names and `*` do not match anything). */
const lowerLiterals = (pattern: Pattern): Pattern => ({
  method: pattern.method,
  segments: pattern.segments.map((segment) => segment.toLowerCase()),
});

const RESERVED_HEADERS = new Set([
  "payment-signature",
  "x-payment",
  "x-payment-payer",
  "x-payment-route",
  "x-paywall-secret",
  "connection",
  "te",
  "transfer-encoding",
  "upgrade",
  "keep-alive",
  "trailer",
]);

function compileWhen(when: NonNullable<Route["when"]>, at: string, problems: Problem[]): Condition[] | undefined {
  const conditions: Condition[] = [];
  const before = problems.length;
  for (const source of ["query", "header", "body"] as const) {
    const entries = Object.entries(when[source] ?? {});
    if (when[source] !== undefined && entries.length === 0)
      problems.push({ path: `${at}.${source}`, message: "lists no field" });
    for (const [name, values] of entries) {
      const f = fieldOf(source, name, `${at}.${source}.${name}`, problems);
      if (conditions.some((c) => c.field.key === f.key)) {
        problems.push({ path: `${at}.${source}.${name}`, message: `${f.key} is listed twice` });
        continue;
      }
      conditions.push({ field: f, values: [...new Set(Array.isArray(values) ? values : [values])] });
    }
  }
  if (conditions.length === 0 && problems.length === before) problems.push({ path: at, message: "lists no condition" });
  return conditions;
}

function compilePer(route: Route, accepts: Requirement[], at: string, problems: Problem[]): PerUnit | undefined {
  const per = route.per as NonNullable<Route["per"]>;
  const sources = (["query", "header", "body"] as const).filter((source) => per[source] !== undefined);
  if (sources.length !== 1) {
    problems.push({ path: at, message: 'names exactly one of "query", "header" or "body"' });
    return undefined;
  }
  const source = sources[0] as FieldSource;
  const f = fieldOf(source, per[source] as string, `${at}.${source}`, problems);
  if (per.max < per.min) problems.push({ path: `${at}.max`, message: "is below min" });
  if (route.price === "free") problems.push({ path: at, message: "a free route has no unit price" });
  if (route.access) {
    problems.push({
      path: at,
      message: "a per-unit price cannot have an access window (one payment would cover any number of units)",
    });
  }
  for (const requirement of accepts) {
    if (BigInt(requirement.amount) * BigInt(per.max) >= 2n ** 256n)
      problems.push({ path: `${at}.max`, message: "price × max does not fit in 256 bits" });
  }
  return { field: f, min: per.min, max: per.max };
}

function fieldOf(source: FieldSource, name: string, at: string, problems: Problem[]): Field {
  const f = field(source, name);
  if (source === "header" && RESERVED_HEADERS.has(f.name))
    problems.push({
      path: at,
      message: `the ${f.name} header is the paywall's own or hop-by-hop; it cannot price a request`,
    });
  return f;
}

const at = (i: number) => `$.routes[${i}]`;

/**
 * The document's shape, with zod's messages. Routes are most of a big document, and zod allocates
 * a copy and a context per object (measured: ~30% of compiling 100k routes, plus the garbage), so
 * a route in the common shape is vouched for by `isPlainRoute` — which accepts only what
 * RouteSchema accepts (property-tested) — and every other route goes through zod.
 */
function checkShape(input: unknown): { ok: true; doc: PricingDocument } | { ok: false; problems: Problem[] } {
  const routes = (input as { routes?: unknown } | null)?.routes;
  if (typeof input !== "object" || Array.isArray(input) || !Array.isArray(routes) || routes.length > MAX_ROUTES) {
    const parsed = PricingDocumentSchema.safeParse(input);
    if (parsed.success) return { ok: true, doc: parsed.data };
    return { ok: false, problems: issuesToProblems(parsed.error.issues, []) };
  }
  const { routes: _, ...rest } = input as Record<string, unknown>;
  const head = DocumentHeadSchema.safeParse(rest);
  const problems = head.success ? [] : issuesToProblems(head.error.issues, []);
  for (let i = 0; i < routes.length; i++) {
    const route: unknown = routes[i];
    if (isPlainRoute(route)) continue;
    const parsed = RouteSchema.safeParse(route);
    if (!parsed.success) problems.push(...issuesToProblems(parsed.error.issues, ["routes", i]));
  }
  if (!head.success || problems.length > 0) return { ok: false, problems };
  // RouteSchema has no defaults or transforms: a route it accepts is its own parsed value.
  return { ok: true, doc: { ...head.data, routes: routes as Route[] } };
}

const issuesToProblems = (issues: z.ZodIssue[], prefix: (string | number)[]): Problem[] =>
  issues.map((issue) => ({ path: jsonPath([...prefix, ...issue.path]), message: issue.message }));

const PLAIN_KEYS = new Set(["id", "match", "price", "description", "mimeType", "access", "maxTimeoutSeconds"]);
const ID = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * `{id, match, price: string, description?, mimeType?, access?: {ttl}, maxTimeoutSeconds?}` as
 * RouteSchema would accept it.
 */
export function isPlainRoute(value: unknown): value is Route {
  if (!isRecord(value)) return false;
  for (const key in value) if (!Object.hasOwn(value, key) || !PLAIN_KEYS.has(key)) return false;
  const { id, match, price, description, mimeType, access, maxTimeoutSeconds } = value;
  return (
    typeof id === "string" &&
    ID.test(id) &&
    typeof match === "string" &&
    match.length >= 1 &&
    match.length <= 2048 &&
    typeof price === "string" &&
    price.length >= 1 &&
    (description === undefined || (typeof description === "string" && description.length <= 1024)) &&
    (mimeType === undefined || (typeof mimeType === "string" && mimeType.length <= 256)) &&
    (access === undefined || isPlainAccess(access)) &&
    (maxTimeoutSeconds === undefined || isIntegerIn(maxTimeoutSeconds, 1, 3600))
  );
}

function isPlainAccess(access: unknown): boolean {
  if (!isRecord(access)) return false;
  for (const key in access) if (!Object.hasOwn(access, key) || key !== "ttl") return false;
  return isIntegerIn(access.ttl, 1, 31_536_000);
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const isIntegerIn = (value: unknown, min: number, max: number) =>
  Number.isInteger(value) && (value as number) >= min && (value as number) <= max;

/**
 * A route whose price is a bare string with no payment settings of its own costs what every such
 * route with that string costs: compiled once per distinct string (problems are never cached, so
 * each bad route still gets its own message).
 */
function compileAcceptsCached(route: Route, ctx: Context, i: number, problems: Problem[]): Requirement[] {
  const plain =
    typeof route.price === "string" &&
    route.accepts === undefined &&
    route.network === undefined &&
    route.asset === undefined &&
    route.payTo === undefined &&
    route.maxTimeoutSeconds === undefined &&
    route.settle === undefined &&
    route.scheme === undefined &&
    route.defaultCharge === undefined &&
    route.minDeposit === undefined &&
    route.withdrawDelay === undefined;
  if (plain) {
    const cached = ctx.plainPrices.get(route.price as string);
    if (cached) return cached;
  }
  const before = problems.length;
  const accepts = compileAccepts(route, ctx, at(i), problems);
  if (plain && problems.length === before) ctx.plainPrices.set(route.price as string, accepts);
  return accepts;
}

function compileAccepts(route: Route, ctx: Context, at: string, problems: Problem[]): Requirement[] {
  if ((route.price === undefined) === (route.accepts === undefined)) {
    problems.push({ path: at, message: 'a route needs exactly one of "price" or "accepts"' });
    return [];
  }
  if (route.price === "free") {
    for (const key of [
      "network",
      "asset",
      "payTo",
      "maxTimeoutSeconds",
      "scheme",
      "defaultCharge",
      "minDeposit",
      "withdrawDelay",
    ] as const) {
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
    const key = `${requirement.scheme}|${requirement.network}|${requirement.asset.toLowerCase()}`;
    if (seen.has(key)) {
      problems.push({
        path,
        message: `a second ${requirement.scheme} option for the same asset on ${requirement.network}`,
      });
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
  const { doc } = ctx;
  // Every check runs, so one validation lists all of an option's problems, not just the first.
  const before = problems.length;
  const maxTimeoutSeconds = route.maxTimeoutSeconds ?? doc.defaults?.maxTimeoutSeconds ?? DEFAULT_MAX_TIMEOUT_SECONDS;
  const asset = resolveAsset(option, route, ctx, path, problems);
  const family = familyOf(asset?.network ?? option.network ?? route.network ?? doc.defaults?.network ?? "");
  const payTo = resolvePayTo(option, route, ctx, family, path, problems);
  // Without a known asset the precision cannot be checked, but the price's spelling still can.
  const decimals = asset?.decimals ?? 77;
  const priceKey = typeof option.price === "object" ? `#${option.price.amount}` : `${option.price}@${decimals}`;
  let money = ctx.money.get(priceKey);
  if (!money) {
    money = typeof option.price === "object" ? checkAtomic(option.price.amount) : usdToAtomic(option.price, decimals);
    ctx.money.set(priceKey, money);
  }
  if (!money.ok) problems.push({ path: `${path}.price`, message: money.problem });
  const upfront = route.settle === "before";
  if (upfront && family === "svm") {
    problems.push({ path: `${path}.network`, message: 'settle "before" is not supported for Solana options yet' });
  }
  const scheme = option.scheme ?? route.scheme ?? "exact";
  const defaultCharge = option.defaultCharge ?? route.defaultCharge;
  if (scheme === "upto") {
    checkSchemeFits("upto", route, family, path, problems);
    if (defaultCharge !== undefined && money.ok) {
      // A per-unit price scales the maximum per request; the charge is capped there at run time.
      const maximum = BigInt(money.atomic);
      const charge = resolveCharge(defaultCharge, maximum, decimals);
      if (!charge.ok) problems.push({ path: `${path}.defaultCharge`, message: charge.problem });
      else if (charge.atomic > maximum && !route.per) {
        problems.push({ path: `${path}.defaultCharge`, message: "is more than the option's maximum price" });
      }
    }
  } else if (defaultCharge !== undefined) {
    problems.push({ path: `${path}.defaultCharge`, message: 'only an "upto" option has a default charge' });
  }
  const withdrawDelay = option.withdrawDelay ?? route.withdrawDelay ?? MIN_WITHDRAW_DELAY_SECONDS;
  const minDepositPrice = option.minDeposit ?? route.minDeposit;
  let minDeposit: string | undefined;
  if (scheme === "batch-settlement") {
    checkSchemeFits("batch-settlement", route, family, path, problems);
    if (money.ok) {
      const price = BigInt(money.atomic);
      minDeposit = String(price * DEFAULT_MIN_DEPOSIT_REQUESTS);
      if (minDepositPrice !== undefined) {
        const m =
          typeof minDepositPrice === "object"
            ? checkAtomic(minDepositPrice.amount)
            : usdToAtomic(minDepositPrice, decimals);
        if (!m.ok) problems.push({ path: `${path}.minDeposit`, message: m.problem });
        else if (BigInt(m.atomic) < price) {
          problems.push({ path: `${path}.minDeposit`, message: "is less than one request's price" });
        } else minDeposit = m.atomic;
      }
    }
  } else {
    for (const key of ["minDeposit", "withdrawDelay"] as const) {
      if ((option[key] ?? route[key]) !== undefined) {
        problems.push({ path: `${path}.${key}`, message: 'only a "batch-settlement" option has one' });
      }
    }
  }
  if (problems.length > before || !asset || !payTo || !money.ok) return undefined;
  const key = `${scheme}|${asset.network}|${asset.address}|${money.atomic}|${payTo}|${maxTimeoutSeconds}|${asset.name}|${asset.version}|${upfront}|${minDeposit}|${withdrawDelay}`;
  let requirement = ctx.requirements.get(key);
  if (!requirement) {
    if (asset.family === "svm") {
      ctx.mints.set(`${asset.network}|${asset.address}`, {
        decimals: asset.decimals,
        tokenProgram: asset.tokenProgram,
      });
    }
    // What every scheme's requirement shares; `extra` is the scheme's own.
    const domain = { name: asset.name, version: asset.version };
    const extra =
      asset.family === "svm"
        ? {}
        : scheme === "batch-settlement"
          ? { ...domain, withdrawDelay, minDeposit: minDeposit as string }
          : scheme === "upto"
            ? { ...domain, assetTransferMethod: "permit2" as const }
            : upfront
              ? { ...domain, paymentFlow: "upfront" as const }
              : domain;
    requirement = Object.freeze({
      scheme,
      network: asset.network,
      amount: money.atomic,
      asset: asset.address,
      payTo,
      maxTimeoutSeconds,
      extra: Object.freeze(extra),
    }) as Requirement;
    ctx.requirements.set(key, requirement);
  }
  return requirement;
}

/**
 * Where the newer schemes do not fit: Solana (not supported here yet), `settle: "before"` and
 * access windows, for the reason given.
 */
const UNFIT: Record<"upto" | "batch-settlement", { before: string; access: string }> = {
  // The charge is only known from the origin's answer, and one answer's charge cannot pay for the calls after it.
  upto: {
    before: '"upto" settles what the origin reports, so it cannot settle "before" the origin runs',
    access: '"upto" charges each answer by what the origin reports; it does not buy an access window',
  },
  // A voucher is committed only with a successful answer, and each request pays.
  "batch-settlement": {
    before: '"batch-settlement" pays each answer by voucher; it cannot settle "before"',
    access: '"batch-settlement" pays per request; it does not buy an access window',
  },
};

function checkSchemeFits(
  scheme: "upto" | "batch-settlement",
  route: Route,
  family: Family,
  path: string,
  problems: Problem[],
): void {
  if (family === "svm") {
    problems.push({ path: `${path}.network`, message: `"${scheme}" is supported on EVM networks only` });
  }
  if (route.settle === "before") problems.push({ path: `${path}.scheme`, message: UNFIT[scheme].before });
  if (route.access) problems.push({ path: `${path}.scheme`, message: UNFIT[scheme].access });
}

/** The route's `upto` options' charge settings, or undefined when it has none. */
function meteredOf(route: Route, accepts: Requirement[], ctx: Context): ReadonlyMap<string, Metered> | undefined {
  let metered: Map<string, Metered> | undefined;
  const options = route.accepts ?? [{ price: route.price as Option["price"] }];
  accepts.forEach((r, i) => {
    if (!isUptoRequirement(r)) return;
    const option = options[i] as Option | undefined;
    const asset = option ? resolveAsset(option, route, ctx, "", []) : undefined;
    metered ??= new Map();
    metered.set(meteredKey(r), {
      decimals: asset?.decimals ?? 6,
      defaultCharge: option?.defaultCharge ?? route.defaultCharge,
    });
  });
  return metered;
}

/**
 * The option's payTo, of its network's family: its own (which must be of that family), else the
 * first of the route's, the defaults' (a string, or one per family) and the PAY_TO var (EVM) that is.
 */
function resolvePayTo(
  option: Option,
  route: Route,
  ctx: Context,
  family: Family,
  path: string,
  problems: Problem[],
): string | undefined {
  const ofFamily = (address: string) =>
    family === "svm" ? isSolanaAddress(address) : isAddress(address, { strict: false });
  const chain = family === "svm" ? "Solana" : "EVM";
  if (option.payTo !== undefined) {
    if (ofFamily(option.payTo)) return option.payTo;
    problems.push({ path: `${path}.payTo`, message: `must be a ${chain} address for a payment on this network` });
    return undefined;
  }
  const defaults = ctx.doc.defaults?.payTo;
  const candidates = [
    route.payTo,
    typeof defaults === "object" ? defaults[family === "svm" ? "solana" : "eip155"] : defaults,
    family === "evm" ? ctx.fallbacks.payTo : undefined,
  ];
  const payTo = candidates.find((c) => c !== undefined && ofFamily(c));
  if (!payTo) {
    problems.push({
      path: `${path}.payTo`,
      message:
        family === "svm"
          ? 'no Solana payTo here, in the route, or in defaults.payTo (a string, or {"solana": …})'
          : "no EVM payTo here, in the route, in defaults.payTo, or in the PAY_TO var",
    });
  }
  return payTo;
}

interface ResolvedAsset {
  family: Family;
  network: string;
  address: string;
  decimals: number;
  /** EVM: the EIP-712 domain. */
  name: string;
  version: string;
  /** Solana: the mint's program. */
  tokenProgram: string;
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
    // checkAssets has reported an asset that does not fit its family.
    const family = familyOf(named.network);
    if (family === "evm" && !named.eip712) return undefined;
    return {
      family,
      network: named.network,
      address: named.address,
      decimals: named.decimals,
      name: named.eip712?.name ?? "",
      version: named.eip712?.version ?? "",
      tokenProgram: TOKEN_PROGRAMS[named.tokenProgram ?? "token"],
    };
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

function defaultStablecoin(network: string): ResolvedAsset | undefined {
  if (familyOf(network) === "svm") {
    const mint = SOLANA_USDC[network];
    if (!mint) return undefined;
    return {
      family: "svm",
      network,
      address: mint,
      decimals: 6,
      name: "",
      version: "",
      tokenProgram: TOKEN_PROGRAMS.token,
    };
  }
  try {
    const info = getDefaultAsset(network as `${string}:${string}`);
    // Only EIP-3009 tokens (no special transfer method) can be paid with the `exact` scheme here.
    if ("assetTransferMethod" in info && info.assetTransferMethod) return undefined;
    return {
      family: "evm",
      network,
      address: info.asset,
      decimals: info.decimals,
      name: info.name,
      version: info.version,
      tokenProgram: "",
    };
  } catch {
    return undefined;
  }
}

function jsonPath(path: ReadonlyArray<string | number>): string {
  return path.reduce<string>((acc, key) => (typeof key === "number" ? `${acc}[${key}]` : `${acc}.${key}`), "$");
}
