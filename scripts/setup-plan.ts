/**
 * What `npm run setup` will do and what it must warn about, as pure functions over the text of
 * wrangler.toml, the compiled pricing table and the account's KV namespaces. No I/O: setup.ts
 * asks wrangler and applies the plan; the tests run these on fixtures and on the repo's own files.
 */
import { parseFacilitators, servesNetwork } from "../src/facilitators/config.ts";
import type { PricingTable } from "../src/pricing/document.ts";
import { toV1Network } from "../src/x402/networks.ts";

export interface KvBinding {
  binding: string;
  id: string | undefined;
}

/** The parts of wrangler.toml setup reads: one `key = "value"` per line, as this repo writes it. */
export interface WorkerConfig {
  name: string | undefined;
  vars: Record<string, string>;
  kv: KvBinding[];
  durableObjects: { name: string; className: string }[];
  rateLimits: { name: string; namespaceId: string; limit?: string; period?: string }[];
  services: string[];
}

export interface Namespace {
  id: string;
  title: string;
}

export type NamespaceStep =
  /** The config names a namespace the account has. */
  | { binding: string; action: "keep"; id: string }
  /** The config has a placeholder and the account already has a namespace with our title. */
  | { binding: string; action: "use"; id: string; title: string }
  | { binding: string; action: "create"; title: string }
  /** The config names an id the account does not have: setup stops rather than overwrite it. */
  | { binding: string; action: "missing"; id: string }
  /** Not logged in, so the account could not be asked. */
  | { binding: string; action: "unchecked"; id: string | undefined; title: string };

export interface SecretNeed {
  name: string;
  why: string;
  required: boolean;
}

/**
 * - refuse: setup will not push this pricing document (real money would be lost);
 * - fix: the deployed Worker cannot work (or cannot take real money) until it is changed;
 * - note: worth knowing before going live.
 */
export interface Finding {
  level: "refuse" | "fix" | "note";
  text: string;
}

/** The ids this repo's wrangler.toml ships with: all zeros but the last digit. */
export function isPlaceholderId(id: string | undefined): boolean {
  return id === undefined || /^0{31}[0-9a-f]$/.test(id);
}

/** The title setup gives (and looks for): `x402-edge-paywall-PRICING`, like wrangler's own convention. */
export function namespaceTitle(worker: string, binding: string): string {
  return `${worker}-${binding}`;
}

export function readWorkerConfig(toml: string): WorkerConfig {
  const config: WorkerConfig = {
    name: undefined,
    vars: {},
    kv: [],
    durableObjects: [],
    rateLimits: [],
    services: [],
  };
  let table = "";
  let entry: Record<string, string> = {};
  const close = () => {
    if (table === "kv_namespaces" && entry.binding) config.kv.push({ binding: entry.binding, id: entry.id });
    if (table === "durable_objects.bindings" && entry.name)
      config.durableObjects.push({ name: entry.name, className: entry.class_name ?? "" });
    if (table === "ratelimits" && entry.name) {
      const simple = /limit\s*=\s*(\d+)\s*,\s*period\s*=\s*(\d+)/.exec(entry.simple ?? "");
      config.rateLimits.push({
        name: entry.name,
        namespaceId: entry.namespace_id ?? "",
        ...(simple ? { limit: simple[1], period: simple[2] } : {}),
      });
    }
    if (table === "services" && entry.binding) config.services.push(entry.binding);
    entry = {};
  };
  for (const line of toml.split("\n")) {
    const header = /^\s*\[{1,2}\s*([^\]\s]+)\s*\]{1,2}\s*(#.*)?$/.exec(line);
    if (header) {
      close();
      table = header[1] ?? "";
      continue;
    }
    // Basic ("…") and literal ('…') strings, and inline tables / bare values kept as text.
    const pair = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|(\{[^}]*\}|[^#\s]+))/.exec(line);
    if (!pair?.[1]) continue;
    const value = pair[2] ?? pair[3] ?? pair[4] ?? "";
    if (table === "") {
      if (pair[1] === "name") config.name = value;
    } else if (table === "vars") config.vars[pair[1]] = value;
    else entry[pair[1]] = value;
  }
  close();
  return config;
}

/**
 * One step per KV binding. `existing` is undefined when the account could not be asked. A binding
 * with a placeholder id gets the namespace titled `<worker>-<binding>`, found or created, so running
 * setup twice creates nothing the second time.
 */
export function planNamespaces(config: WorkerConfig, existing: Namespace[] | undefined): NamespaceStep[] {
  const worker = config.name ?? "worker";
  return config.kv.map(({ binding, id }): NamespaceStep => {
    const title = namespaceTitle(worker, binding);
    if (!existing) return { binding, action: "unchecked", id: isPlaceholderId(id) ? undefined : id, title };
    if (id !== undefined && !isPlaceholderId(id)) {
      return existing.some((n) => n.id === id) ? { binding, action: "keep", id } : { binding, action: "missing", id };
    }
    const found = existing.find((n) => n.title === title);
    return found ? { binding, action: "use", id: found.id, title } : { binding, action: "create", title };
  });
}

/**
 * wrangler.toml with each named binding's `id = "…"` set, every other byte unchanged (comments,
 * order, the ids of other bindings). Throws for a binding the file does not declare.
 */
export function withNamespaceIds(toml: string, ids: Record<string, string>): string {
  const lines = toml.split("\n");
  const pending = new Set(Object.keys(ids));
  let start = -1;
  const finish = (end: number) => {
    if (start < 0) return;
    const block = lines.slice(start, end);
    const binding = block.map((l) => /^\s*binding\s*=\s*"([^"]*)"/.exec(l)?.[1]).find(Boolean);
    const id = binding === undefined ? undefined : ids[binding];
    if (binding !== undefined && id !== undefined) {
      if (!/^[0-9a-f]{32}$/.test(id)) throw new Error(`not a KV namespace id: ${JSON.stringify(id)}`);
      const at = block.findIndex((l) => /^\s*id\s*=/.test(l));
      if (at >= 0) lines[start + at] = (lines[start + at] ?? "").replace(/^(\s*id\s*=\s*)"[^"]*"/, `$1"${id}"`);
      else lines.splice(start + block.findIndex((l) => /^\s*binding\s*=/.test(l)) + 1, 0, `id = "${id}"`);
      pending.delete(binding);
    }
    start = -1;
  };
  for (let i = 0; i <= lines.length; i++) {
    const line = i < lines.length ? (lines[i] ?? "") : "[end]";
    if (/^\s*\[/.test(line)) {
      finish(i);
      if (/^\s*\[\[\s*kv_namespaces\s*\]\]/.test(line)) start = i;
    }
  }
  if (pending.size > 0) throw new Error(`wrangler.toml declares no KV binding ${[...pending].join(", ")}`);
  return lines.join("\n");
}

/** The secrets the Worker reads with this configuration, and why each one. */
export function secretsNeeded(vars: Record<string, string>): SecretNeed[] {
  const needs: SecretNeed[] = [];
  const add = (need: SecretNeed) => {
    if (!needs.some((n) => n.name === need.name)) needs.push(need);
  };
  let entries: unknown;
  try {
    entries = vars.FACILITATORS ? JSON.parse(vars.FACILITATORS) : undefined;
  } catch {
    // readiness() names the problem; without a list there is nothing to ask for.
  }
  if (Array.isArray(entries)) {
    for (const entry of entries) {
      const { name, auth } = (entry ?? {}) as { name?: unknown; auth?: unknown };
      const which = typeof name === "string" ? `facilitator "${name}"` : "a facilitator";
      if (auth === "cdp") {
        add({ name: "CDP_API_KEY_ID", why: `the CDP API key id, for ${which} (auth "cdp")`, required: true });
        add({
          name: "CDP_API_KEY_SECRET",
          why: `the CDP API key secret (Ed25519 base64, or ES256 PEM), for ${which}`,
          required: true,
        });
      } else if (auth && typeof auth === "object" && typeof (auth as { header?: unknown }).header === "string") {
        const secret = (auth as { header: string }).header;
        add({ name: secret, why: `sent as Authorization to ${which}`, required: true });
      }
    }
  } else if (!vars.FACILITATORS) {
    add({
      name: "FACILITATOR_AUTHORIZATION",
      why: "sent as Authorization to FACILITATOR_URL, only if your facilitator asks for one",
      required: false,
    });
  }
  add({
    name: "ORIGIN_SHARED_SECRET",
    why: "sent to the origin as X-Paywall-Secret so it can refuse requests that skipped the paywall (recommended)",
    required: false,
  });
  add({
    name: "CHANNELS_ADMIN_TOKEN",
    why: "bearer token for GET /__x402/channels, the owner's view of batch-settlement channels (16+ characters; without it that endpoint is 404)",
    required: false,
  });
  return needs;
}

/** A test network by its v1 name or CAIP-2 reference: buyers pay there with coins worth nothing. */
export function isTestnet(network: string): boolean {
  const name = toV1Network(network) ?? network;
  return /sepolia|fuji|testnet|amoy|devnet|goerli/i.test(name) || network === "eip155:31337";
}

/**
 * What stands between this configuration and taking real money. `testAccounts` are addresses whose
 * private keys are public (anvil's test mnemonic, lower-cased; the local Solana's keys, as spelled),
 * each with what it is: money paid to them on a real network is lost.
 */
export function readiness(
  config: WorkerConfig,
  table: PricingTable,
  testAccounts: ReadonlyMap<string, string>,
  secretsSet: ReadonlySet<string> = new Set(),
): Finding[] {
  const findings: Finding[] = [];
  const { vars } = config;
  const networks = new Set(table.routes.flatMap((r) => r.accepts.map((a) => a.network)));
  const mainnets = [...networks].filter((n) => !isTestnet(n));

  if (!vars.ORIGIN_URL && !config.services.includes("ORIGIN")) {
    findings.push({ level: "fix", text: "ORIGIN_URL is not set (and no ORIGIN service binding): set it to your API." });
  } else if (vars.ORIGIN_URL) {
    const origin = hostOf(vars.ORIGIN_URL);
    if (origin && isLocalHost(origin.hostname)) {
      findings.push({
        level: "fix",
        text: `ORIGIN_URL is ${vars.ORIGIN_URL}, which a deployed Worker cannot reach: set it to your API's public URL.`,
      });
    } else if (origin?.protocol === "http:") {
      findings.push({
        level: "note",
        text: `ORIGIN_URL is plain http: paid requests and X-Paywall-Secret cross the internet unencrypted; prefer https.`,
      });
    }
  }

  // Placeholder secrets, so that only the list itself (not a secret not yet put) is judged here.
  const placeholders = Object.fromEntries(
    secretsNeeded(vars).map((s) => [s.name, s.name === "CDP_API_KEY_SECRET" ? PLACEHOLDER_ED25519 : "set"]),
  );
  const parsed = parseFacilitators({ ...placeholders, ...vars, FACILITATOR_AUTHORIZATION: undefined });
  if (!parsed.ok) {
    findings.push({ level: "fix", text: `${parsed.variable} ${parsed.problem}.` });
  } else {
    for (const f of parsed.facilitators) {
      const host = hostOf(f.url)?.hostname ?? "";
      const label = vars.FACILITATORS ? `facilitator "${f.name}" (${f.url})` : `FACILITATOR_URL (${f.url})`;
      if (isLocalHost(host)) {
        findings.push({
          level: "fix",
          text: `${label} is on this machine, which a deployed Worker cannot reach: choose a facilitator (README, "Going live").`,
        });
      } else if (/(^|\.)x402\.org$/.test(host) && mainnets.some((n) => servesNetwork(f.networks, n))) {
        findings.push({
          level: "fix",
          text: `${label} settles on test networks only, but routes are priced on ${mainnets.join(", ")}: use CDP or PayAI there.`,
        });
      }
    }
    for (const network of mainnets) {
      if (!parsed.facilitators.some((f) => servesNetwork(f.networks, network))) {
        findings.push({ level: "fix", text: `no facilitator is configured for ${network}.` });
      }
    }
  }

  const payees = new Map<string, Set<string>>();
  for (const route of table.routes) {
    for (const a of route.accepts) {
      // EVM addresses compare case-insensitively; base58 is case-sensitive.
      const key = a.payTo.startsWith("0x") ? a.payTo.toLowerCase() : a.payTo;
      payees.set(key, (payees.get(key) ?? new Set()).add(a.network));
    }
  }
  for (const [payTo, on] of payees) {
    const real = [...on].filter((n) => !isTestnet(n));
    const known = testAccounts.get(payTo);
    if (known !== undefined) {
      findings.push({
        level: real.length > 0 ? "refuse" : "note",
        text:
          real.length > 0
            ? `payTo ${payTo} is ${known}; its private key is public, so anyone can take what buyers pay it on ${real.join(", ")}. Set your own address in pricing.json (defaults.payTo) and PAY_TO.`
            : `payTo ${payTo} is ${known} (fine on ${[...on].join(", ")}, never on a real network).`,
      });
    } else if (/^0x0{40}$/.test(payTo)) {
      findings.push({ level: "refuse", text: `payTo is the zero address: payments to it are burned.` });
    }
  }
  if (vars.PAY_TO && testAccounts.has(vars.PAY_TO.toLowerCase()) && mainnets.length > 0) {
    findings.push({
      level: "fix",
      text: `PAY_TO in wrangler.toml is ${testAccounts.get(vars.PAY_TO.toLowerCase())}: set it to your own address.`,
    });
  }
  const testnets = [...networks].filter(isTestnet);
  if (testnets.length > 0) {
    findings.push({
      level: "note",
      text: `routes are priced on test networks (${testnets.join(", ")}): buyers pay with test coins. For real money: eip155:8453 (Base), "$" prices in USDC.`,
    });
  }
  if (!secretsSet.has("ORIGIN_SHARED_SECRET")) {
    findings.push({
      level: "note",
      text: "without ORIGIN_SHARED_SECRET your origin cannot tell paid traffic from requests that skipped the paywall.",
    });
  }
  return findings;
}

/** A well-formed Ed25519 secret (64 bytes, base64) so the list's shape can be checked without the real one. */
const PLACEHOLDER_ED25519 = btoa(String.fromCharCode(...new Uint8Array(64)));

function hostOf(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

/** Loopback, private, link-local and `.local` names: nothing a Worker on Cloudflare reaches. */
function isLocalHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost") || host.endsWith(".local") || host === "0.0.0.0") return true;
  if (host.includes(":")) return host === "::1" || /^(fc|fd|fe[89ab])[0-9a-f]*:/.test(host);
  const v4 = /^(\d+)\.(\d+)\.\d+\.\d+$/.exec(host);
  if (!v4) return false;
  const [a, b] = [Number(v4[1]), Number(v4[2])];
  return (
    a === 127 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254)
  );
}
