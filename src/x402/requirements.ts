/**
 * What a 402 tells the buyer, in both protocol versions. Pure.
 * v2 goes in the `PAYMENT-REQUIRED` header; the JSON body is the v1 shape so that v1 buyers
 * (`x402-fetch` 1.x) can pay from it too.
 */
import { isUptoRequirement, type Requirement, type RouteRule } from "../pricing/document.ts";
import { outputSchemaV1 } from "./bazaar.ts";
import { EIP2612_GAS_SPONSORING, EIP2612_GAS_SPONSORING_KEY } from "./gas-sponsoring.ts";
import { toV1Network } from "./networks.ts";

export interface PaymentRequiredV2 {
  x402Version: 2;
  error?: string;
  resource: { url: string; description: string; mimeType: string };
  accepts: Requirement[];
  /**
   * `bazaar`: discovery metadata for agents and catalogues (x402/bazaar.ts);
   * `eip2612GasSponsoring` on routes with `upto` options (x402/gas-sponsoring.ts).
   */
  extensions?: Record<string, unknown>;
}

export interface RequirementV1 {
  scheme: "exact";
  network: string;
  maxAmountRequired: string;
  resource: string;
  description: string;
  mimeType: string;
  payTo: string;
  maxTimeoutSeconds: number;
  asset: string;
  extra: Requirement["extra"];
  /** v1's discovery field: what the request takes and what it returns (x402/bazaar.ts). */
  outputSchema?: Record<string, unknown>;
}

export interface PaymentRequiredV1 {
  x402Version: 1;
  error: string;
  accepts: RequirementV1[];
}

export function buildPaymentRequired(route: RouteRule, resourceUrl: string, error?: string): PaymentRequiredV2 {
  const extensions: Record<string, unknown> = {};
  if (route.discovery) extensions.bazaar = route.discovery;
  if (route.accepts.some(isUptoRequirement)) extensions[EIP2612_GAS_SPONSORING_KEY] = EIP2612_GAS_SPONSORING;
  return {
    x402Version: 2,
    ...(error ? { error } : {}),
    resource: { url: resourceUrl, description: route.description, mimeType: route.mimeType },
    accepts: route.accepts,
    ...(Object.keys(extensions).length > 0 ? { extensions } : {}),
  };
}

export function buildPaymentRequiredV1(route: RouteRule, resourceUrl: string, error: string): PaymentRequiredV1 {
  const accepts: RequirementV1[] = [];
  for (const requirement of route.accepts) {
    const v1 = toRequirementV1(requirement, route, resourceUrl);
    if (v1) accepts.push(v1);
  }
  return { x402Version: 1, error, accepts };
}

/** undefined when v1 has no name for the requirement's network, or no such scheme (`upto` is v2 only). */
export function toRequirementV1(
  requirement: Requirement,
  route: RouteRule,
  resourceUrl: string,
): RequirementV1 | undefined {
  if (requirement.scheme !== "exact") return undefined;
  const network = toV1Network(requirement.network);
  if (!network) return undefined;
  return {
    scheme: "exact",
    network,
    maxAmountRequired: requirement.amount,
    resource: resourceUrl,
    description: route.description,
    mimeType: route.mimeType,
    payTo: requirement.payTo,
    maxTimeoutSeconds: requirement.maxTimeoutSeconds,
    asset: requirement.asset,
    extra: requirement.extra,
    ...(route.discovery ? { outputSchema: outputSchemaV1(route.discovery) } : {}),
  };
}
