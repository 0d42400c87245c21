/**
 * Discovery metadata for agents: x402's `bazaar` extension, built once per route when the table is
 * compiled. Pure.
 *
 * The shape is the one `@x402/extensions` declares (`info` with the request's input and an output
 * example, and `schema`, a JSON Schema that `info` must satisfy); tests validate every extension
 * the Worker sends with the official `validateDiscoveryExtension`. It goes in the 402's
 * `extensions.bazaar` (v2), as the requirement's `outputSchema` (v1, which bazaar crawlers read
 * too), and in GET /.well-known/x402.
 */

/** What a route declares in the pricing document (`discovery`). */
export interface DiscoveryDeclaration {
  /** An example of the query parameters (GET, HEAD, DELETE) or the body (POST, PUT, PATCH). */
  input?: Record<string, unknown>;
  /** JSON Schema of the query parameters or the body: `{ properties, required }`. */
  inputSchema?: Record<string, unknown>;
  bodyType?: "json" | "form-data" | "text";
  output?: { example?: unknown; schema?: Record<string, unknown> };
}

export interface BazaarExtension {
  info: { input: Record<string, unknown>; output?: { type: "json"; example: unknown } };
  schema: Record<string, unknown>;
}

const QUERY_METHODS = ["GET", "HEAD", "DELETE"];
const BODY_METHODS = ["POST", "PUT", "PATCH"];

/** The method a route is discovered under: its own, or POST for a body, GET otherwise. */
export function discoveryMethod(routeMethod: string, declaration: DiscoveryDeclaration): string {
  if (QUERY_METHODS.includes(routeMethod) || BODY_METHODS.includes(routeMethod)) return routeMethod;
  return declaration.bodyType ? "POST" : "GET";
}

export function bazaarExtension(method: string, declaration: DiscoveryDeclaration): BazaarExtension {
  const body = BODY_METHODS.includes(method);
  const example = declaration.input ?? {};
  const inputSchema = { properties: {}, ...declaration.inputSchema };
  const output = declaration.output?.example === undefined ? undefined : declaration.output;
  const inputProperties: Record<string, unknown> = {
    type: { type: "string", const: "http" },
    method: { type: "string", enum: body ? BODY_METHODS : QUERY_METHODS },
  };
  if (body) {
    inputProperties.bodyType = { type: "string", enum: ["json", "form-data", "text"] };
    inputProperties.body = inputSchema;
  } else {
    inputProperties.queryParams = { type: "object", ...inputSchema };
  }
  return {
    info: {
      input: body
        ? { type: "http", method, bodyType: declaration.bodyType ?? "json", body: example }
        : { type: "http", method, queryParams: example },
      ...(output ? { output: { type: "json" as const, example: output.example } } : {}),
    },
    schema: {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      type: "object",
      properties: {
        input: {
          type: "object",
          properties: inputProperties,
          required: body ? ["type", "method", "bodyType", "body"] : ["type", "method"],
          additionalProperties: false,
        },
        ...(output
          ? {
              output: {
                type: "object",
                properties: { type: { type: "string" }, example: { type: "object", ...output.schema } },
                required: ["type"],
              },
            }
          : {}),
      },
      required: ["input"],
    },
  };
}

/** The v1 requirement's `outputSchema`, from the same declaration (as v1 bazaar crawlers read it). */
export function outputSchemaV1(extension: BazaarExtension): Record<string, unknown> {
  const { input, output } = extension.info;
  const body = BODY_METHODS.includes(String(input.method));
  return {
    input: {
      type: "http",
      method: input.method,
      discoverable: true,
      ...(body ? { bodyType: input.bodyType, bodyFields: input.body } : { queryParams: input.queryParams }),
    },
    ...(output ? { output: output.example } : {}),
  };
}
