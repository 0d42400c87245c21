/**
 * The configured facilitators, used in order of preference for each payment's network.
 *
 * - `/verify` goes to the first facilitator for the network, and fails over to the next only when
 *   one surely did nothing (unreachable, timed out, a 5xx). A refusal is an answer: it is final.
 * - `/settle` goes to the facilitator that verified the payment, never to two: a settle that timed
 *   out may still land, and a second facilitator would broadcast a second transaction.
 * - `/supported` is read from each facilitator on first use and kept for SUPPORTED_MAX_AGE_MS (a
 *   failed read is retried after SUPPORTED_RETRY_MS); a facilitator known not to support a
 *   scheme and network is skipped for it, and `unsupported()` names the routes nobody settles.
 * - A facilitator that failed FAILURES_TO_DEMOTE times within DEMOTE_WINDOW_MS is tried last.
 * Health is per isolate (each location learns on its own) and holds no secrets.
 */
import type { Failure } from "../errors.ts";
import { cdpJwt, importCdpKey } from "./cdp-auth.ts";
import { type FacilitatorConfig, servesNetwork } from "./config.ts";
import {
  createFacilitator,
  type Facilitator,
  type FacilitatorRequest,
  type FacilitatorResult,
  type SettleReply,
  type VerifyReply,
} from "./http.ts";

const SUPPORTED_MAX_AGE_MS = 10 * 60_000;
const SUPPORTED_RETRY_MS = 60_000;
const FAILURES_TO_DEMOTE = 3;
const DEMOTE_WINDOW_MS = 30_000;
/** Recent failures kept per facilitator, for health. */
const FAILURES_KEPT = 20;

export interface PoolOptions {
  fetch: typeof fetch;
  verifyTimeoutMs: number;
  settleTimeoutMs: number;
  nowMs: () => number;
  log: (event: string, detail: Record<string, unknown>) => void;
}

interface Member {
  config: FacilitatorConfig;
  client: Facilitator;
  failures: { atMs: number; reason: string }[];
  lastSuccessAtMs: number | undefined;
  supported:
    | { state: "unknown" }
    | { state: "known"; checkedAtMs: number; kinds: Set<string> }
    | { state: "failed"; checkedAtMs: number; reason: string };
  reading: Promise<void> | undefined;
  /**
   * The facilitator's own key a payment must name, by `scheme|network`, from the last `/supported`
   * that answered: Solana `exact`'s fee payer (`extra.feePayer`), EVM `upto`'s settling address
   * (`extra.facilitatorAddress`). Kept through a failed re-read, so a blip does not take those
   * options out of every 402 for a minute.
   */
  signers: Map<string, string>;
}

export type Verified = { ok: true; reply: VerifyReply; via: string } | { ok: false; failure: Failure };

export interface FacilitatorHealth {
  name: string;
  url: string;
  networks: string[] | "all";
  auth: "none" | "header" | "cdp";
  lastSuccessAt: string | null;
  recentFailures: { at: string; reason: string }[];
  supported:
    | { state: "unknown" }
    | { state: "known"; checkedAt: string; kinds: string[] }
    | { state: "failed"; checkedAt: string; reason: string };
}

const kindKey = (x402Version: number, scheme: string, network: string) => `${x402Version}|${scheme}|${network}`;

export class FacilitatorPool {
  private readonly members: Member[];
  private readonly options: PoolOptions;

  constructor(configs: FacilitatorConfig[], options: PoolOptions) {
    this.options = options;
    this.members = configs.map((config) => ({
      config,
      client: createFacilitator({
        url: config.url,
        fetch: options.fetch,
        verifyTimeoutMs: options.verifyTimeoutMs,
        settleTimeoutMs: options.settleTimeoutMs,
        ...authHeadersFor(config, options.nowMs),
      }),
      failures: [],
      lastSuccessAtMs: undefined,
      supported: { state: "unknown" },
      reading: undefined,
      signers: new Map(),
    }));
  }

  /**
   * Verifies with the first facilitator for the network that answers; with `signer` (the Solana
   * fee payer, the upto facilitator address), only with facilitators that listed that key.
   */
  async verify(request: FacilitatorRequest, network: string, scheme: string, signer?: string): Promise<Verified> {
    const candidates = this.candidates(network, scheme, request.x402Version).filter(
      (m) => signer === undefined || sameKey(m.signers.get(signerKey(scheme, network)), signer),
    );
    if (candidates.length === 0) {
      return {
        ok: false,
        failure: {
          reason: "facilitator_unreachable",
          message: `No facilitator is configured for ${network}.`,
          detail: network,
        },
      };
    }
    let last: Verified | undefined;
    for (const member of candidates) {
      const result = await member.client.verify(request);
      this.record(member, result);
      if (result.ok) return { ok: true, reply: result.reply, via: member.config.name };
      last = { ok: false, failure: result.failure };
      if (!result.retryable) return last;
      this.options.log("facilitator_failover", { from: member.config.name, reason: result.failure.reason });
    }
    return last as Verified;
  }

  /** Settles with the facilitator named `via` (the one that verified), or the first for the network. */
  async settle(
    request: FacilitatorRequest,
    via: string | undefined,
    network: string,
    scheme: string,
    timeoutMs?: number,
    lateMs?: number,
  ): Promise<FacilitatorResult<SettleReply> & { via?: string }> {
    const member =
      this.members.find((m) => m.config.name === via) ?? this.candidates(network, scheme, request.x402Version)[0];
    if (!member) {
      return {
        ok: false,
        failure: { reason: "facilitator_unreachable", message: `No facilitator is configured for ${network}.` },
        retryable: false,
        unsent: true,
      };
    }
    const result = await member.client.settle(request, timeoutMs, lateMs);
    this.record(member, result);
    return { ...result, via: member.config.name };
  }

  /** The first facilitator a payment on `network` would settle with (for the upfront flow). */
  firstFor(network: string, scheme: string, x402Version: 1 | 2): string | undefined {
    return this.candidates(network, scheme, x402Version)[0]?.config.name;
  }

  /**
   * Reads `/supported` of every facilitator whose answer is missing or too old; `wait` for the
   * reads (health), or not (a paid request starts them and goes on with what is known).
   */
  async refreshSupported(): Promise<void> {
    const now = this.options.nowMs();
    const due = this.members.filter((m) => {
      if (m.reading) return false;
      if (m.supported.state === "unknown") return true;
      const age = now - m.supported.checkedAtMs;
      return m.supported.state === "known" ? age >= SUPPORTED_MAX_AGE_MS : age >= SUPPORTED_RETRY_MS;
    });
    for (const member of due) {
      member.reading = member.client.supported().then((result) => {
        const checkedAtMs = this.options.nowMs();
        member.supported = result.ok
          ? {
              state: "known",
              checkedAtMs,
              kinds: new Set(result.reply.kinds.map((k) => kindKey(k.x402Version, k.scheme, k.network))),
            }
          : { state: "failed", checkedAtMs, reason: describe(result.failure) };
        if (result.ok) member.signers = signersOf(result.reply.kinds);
        member.reading = undefined;
      });
    }
    await Promise.all(this.members.map((m) => m.reading));
  }

  /**
   * The facilitator key a `scheme` payment on `network` must name (Solana `exact`: the fee payer;
   * EVM `upto`: the address allowed to settle): the one the facilitator that will verify it lists
   * in `/supported`. Reads `/supported` when not known yet (bounded by its timeout, and at most
   * once a minute after a failure); undefined when no facilitator for the network has told one.
   * A payment naming it is verified only there (`verify`'s `signer`): another facilitator cannot
   * co-sign for, or settle as, that key.
   */
  async signer(scheme: string, network: string): Promise<{ signer: string; via: string } | undefined> {
    const find = () => {
      for (const member of this.candidates(network, scheme, 2)) {
        const signer = member.signers.get(signerKey(scheme, network));
        if (signer) return { signer, via: member.config.name };
      }
      return undefined;
    };
    const known = find();
    const stale = this.members.some(
      (m) => m.supported.state !== "known" || this.options.nowMs() - m.supported.checkedAtMs >= SUPPORTED_MAX_AGE_MS,
    );
    if (known && !stale) return known;
    if (known) {
      void this.refreshSupported();
      return known;
    }
    await this.refreshSupported();
    return find();
  }

  /**
   * Requirements (scheme, network, x402 version) that no configured facilitator will settle:
   * none is configured for the network, or every one that is says in `/supported` it does not.
   */
  unsupported(
    needs: { scheme: string; network: string; x402Version: 1 | 2; v1Network?: string }[],
  ): { scheme: string; network: string; x402Version: 1 | 2; why: string }[] {
    const out: { scheme: string; network: string; x402Version: 1 | 2; why: string }[] = [];
    for (const need of needs) {
      const configured = this.members.filter((m) => servesNetwork(m.config.networks, need.network));
      if (configured.length === 0) {
        out.push({ ...need, why: "no facilitator is configured for this network" });
        continue;
      }
      const wireNetwork = need.x402Version === 1 ? (need.v1Network ?? need.network) : need.network;
      const somebody = configured.some(
        (m) =>
          m.supported.state !== "known" || m.supported.kinds.has(kindKey(need.x402Version, need.scheme, wireNetwork)),
      );
      if (!somebody) out.push({ ...need, why: "no configured facilitator lists it in /supported" });
    }
    return out.map(({ scheme, network, x402Version, why }) => ({ scheme, network, x402Version, why }));
  }

  health(): FacilitatorHealth[] {
    const iso = (ms: number) => new Date(ms).toISOString();
    return this.members.map(({ config, failures, lastSuccessAtMs, supported }) => ({
      name: config.name,
      url: config.url,
      networks: config.networks ?? "all",
      auth: config.auth.kind,
      lastSuccessAt: lastSuccessAtMs === undefined ? null : iso(lastSuccessAtMs),
      recentFailures: failures.map((f) => ({ at: iso(f.atMs), reason: f.reason })),
      supported:
        supported.state === "unknown"
          ? supported
          : supported.state === "known"
            ? { state: "known", checkedAt: iso(supported.checkedAtMs), kinds: [...supported.kinds].sort() }
            : { state: "failed", checkedAt: iso(supported.checkedAtMs), reason: supported.reason },
    }));
  }

  /** Facilitators for a network in preference order: configured, not known to lack it, demoted last. */
  private candidates(network: string, scheme: string, x402Version: 1 | 2): Member[] {
    const now = this.options.nowMs();
    const usable = this.members.filter((m) => {
      if (!servesNetwork(m.config.networks, network)) return false;
      if (m.supported.state !== "known" || x402Version === 1) return true;
      return m.supported.kinds.has(kindKey(x402Version, scheme, network));
    });
    const demoted = (m: Member) =>
      m.failures.filter((f) => now - f.atMs < DEMOTE_WINDOW_MS).length >= FAILURES_TO_DEMOTE;
    return [...usable.filter((m) => !demoted(m)), ...usable.filter(demoted)];
  }

  private record(member: Member, result: FacilitatorResult<unknown>): void {
    // Only the facilitator failing counts; a refusal ("isValid: false") is a working answer.
    if (result.ok) {
      member.lastSuccessAtMs = this.options.nowMs();
      return;
    }
    member.failures.push({ atMs: this.options.nowMs(), reason: describe(result.failure) });
    if (member.failures.length > FAILURES_KEPT) member.failures.shift();
  }
}

const signerKey = (scheme: string, network: string) => `${scheme}|${network}`;

/** Solana keys are case-sensitive base58; EVM addresses are compared without their checksum case. */
const sameKey = (known: string | undefined, named: string) =>
  known !== undefined && (known.startsWith("0x") ? known.toLowerCase() === named.toLowerCase() : known === named);

/**
 * `scheme|network → key` of the v2 kinds that name one: `exact`'s `extra.feePayer` (Solana),
 * `upto`'s `extra.facilitatorAddress`, `batch-settlement`'s `extra.receiverAuthorizer`.
 */
function signersOf(kinds: { x402Version: number; scheme: string; network: string; extra?: Record<string, unknown> }[]) {
  const out = new Map<string, string>();
  for (const k of kinds) {
    if (k.x402Version !== 2) continue;
    const key =
      k.scheme === "upto"
        ? k.extra?.facilitatorAddress
        : k.scheme === "batch-settlement"
          ? k.extra?.receiverAuthorizer
          : k.scheme === "exact"
            ? k.extra?.feePayer
            : undefined;
    if (typeof key === "string") out.set(signerKey(k.scheme, k.network), key);
  }
  return out;
}

const describe = (failure: Failure) => (failure.detail ? `${failure.reason} (${failure.detail})` : failure.reason);

/** Per-call headers: a static Authorization, or a fresh CDP JWT (the key imported once). */
function authHeadersFor(config: FacilitatorConfig, nowMs: () => number) {
  const { auth } = config;
  if (auth.kind === "none") return {};
  if (auth.kind === "header") {
    const headers = { authorization: auth.value };
    return { authHeaders: async () => headers };
  }
  let key: ReturnType<typeof importCdpKey> | undefined;
  return {
    authHeaders: async (method: "GET" | "POST", url: URL) => {
      key ??= importCdpKey(auth.keyId, auth.keySecret);
      return { authorization: `Bearer ${await cdpJwt(await key, method, url, Math.floor(nowMs() / 1000))}` };
    },
  };
}
