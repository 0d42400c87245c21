/**
 * Reading the request fields a dynamic price depends on (see pricing/conditions.ts).
 *
 * A price must be read exactly as the origin will read the request, or a buyer pays for one thing
 * and gets another. So whenever a field could be read two ways, the request is refused instead of
 * priced (`pricing_input_ambiguous`):
 * - a query parameter present more than once (`?model=a&model=b`; some frameworks take the first,
 *   some the last, some an array), also when spelt differently (`model` and `m%6Fdel`);
 * - a header sent more than once or holding a comma (the runtime joins repeats with ", ");
 * - a top-level JSON key present more than once (`{"service":"a","service":"b"}`: JSON.parse keeps
 *   the last, other parsers the first).
 * The body is read only for rules that need it, to its end and at most `limit` bytes (a later
 * duplicate key could change the answer, so a prefix is never enough); a larger body is refused
 * with 413 before more is read. It must be empty or one UTF-8 JSON object, whatever its
 * Content-Type claims. The bytes read are what is forwarded: the origin gets the body untouched.
 */

import { readCapped } from "./body.ts";
import { type Failure, fail } from "./errors.ts";
import type { Field, FieldValues } from "./pricing/conditions.ts";

export type ReadFields = { ok: true; values: FieldValues } | { ok: false; failure: Failure };

type BodyState =
  | {
      ok: true;
      bytes: Uint8Array | undefined;
      object: Record<string, unknown> | undefined;
      text: string;
      /** Top-level key counts, computed on the first priced field found in the body. */
      keyCounts?: Map<string, number>;
    }
  | { ok: false; failure: Failure };
type QueryState = { ok: true; params: Map<string, string[]> } | { ok: false; failure: Failure };
/** One field: its value, absent (undefined), or why it cannot be read. */
type Read = { value: unknown } | { failure: Failure } | undefined;

export class FieldReader {
  private queryState: QueryState | undefined;
  private bodyState: BodyState | undefined;

  constructor(
    private readonly request: Request,
    /** The raw query, with its "?" or empty. */
    private readonly query: string,
    private readonly limit: number,
  ) {}

  /** The body as read, to forward in place of the consumed stream; undefined if it was not read. */
  get bodyBytes(): Uint8Array | undefined {
    return this.bodyState?.ok ? this.bodyState.bytes : undefined;
  }

  /** Whether the request's body stream has been consumed (forward `bodyBytes` instead). */
  get bodyRead(): boolean {
    return this.bodyState !== undefined;
  }

  /** Reads every field, or fails on the first that cannot be read unambiguously. */
  async read(fields: readonly Field[]): Promise<ReadFields> {
    const values = new Map<string, unknown>();
    for (const field of fields) {
      const read =
        field.source === "query"
          ? this.queryValue(field)
          : field.source === "header"
            ? this.headerValue(field)
            : await this.bodyValue(field);
      if (read === undefined) continue;
      if ("failure" in read) return { ok: false, failure: read.failure };
      values.set(field.key, read.value);
    }
    return { ok: true, values };
  }

  private queryValue(field: Field): Read {
    this.queryState ??= parseQuery(this.query);
    if (!this.queryState.ok) return this.queryState;
    const found = this.queryState.params.get(field.name);
    if (!found) return undefined;
    if (found.length > 1) return ambiguous(field, "is given more than once");
    return { value: found[0] };
  }

  private headerValue(field: Field): Read {
    const value = this.request.headers.get(field.name);
    if (value === null) return undefined;
    if (value.includes(",")) return ambiguous(field, "is sent more than once or holds a comma");
    return { value };
  }

  private async bodyValue(field: Field): Promise<Read> {
    this.bodyState ??= await readJsonBody(this.request, this.limit);
    if (!this.bodyState.ok) return this.bodyState;
    const body = this.bodyState;
    const object = body.object;
    if (!object || !Object.hasOwn(object, field.name)) return undefined;
    body.keyCounts ??= topLevelKeyCounts(body.text);
    if ((body.keyCounts.get(field.name) ?? 0) > 1) return ambiguous(field, "is a key more than once");
    return { value: object[field.name] };
  }
}

const ambiguous = (field: Field, how: string): Read => ({
  failure: fail("pricing_input_ambiguous", `The priced field ${field.key} ${how}; send it once.`, field.key),
});

/** `?a=1&b=x+y` → decoded names to decoded values, as application/x-www-form-urlencoded. */
function parseQuery(query: string): QueryState {
  const params = new Map<string, string[]>();
  if (query.length <= 1) return { ok: true, params };
  for (const pair of query.slice(1).split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    let name: string;
    let value: string;
    try {
      name = formDecode(eq < 0 ? pair : pair.slice(0, eq));
      value = eq < 0 ? "" : formDecode(pair.slice(eq + 1));
    } catch {
      const failure = fail(
        "pricing_input_invalid",
        "The query string is not validly percent-encoded.",
        pair.slice(0, 64),
      );
      return { ok: false, failure };
    }
    const values = params.get(name);
    if (values) values.push(value);
    else params.set(name, [value]);
  }
  return { ok: true, params };
}

const formDecode = (s: string) => decodeURIComponent(s.includes("+") ? s.replaceAll("+", " ") : s);

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

async function readJsonBody(request: Request, limit: number): Promise<BodyState> {
  const tooLarge = (): BodyState => ({
    ok: false,
    failure: fail(
      "pricing_body_too_large",
      `This route prices on the request body, which must be at most ${limit} bytes.`,
      String(limit),
    ),
  });
  const declared = request.headers.get("content-length");
  if (declared !== null && /^[0-9]+$/.test(declared) && Number(declared) > limit) return tooLarge();
  if (request.body === null) return { ok: true, bytes: undefined, object: undefined, text: "" };

  const read = await readCapped(request.body, limit);
  if (!read.ok) return tooLarge();
  const { bytes, size } = read;
  if (size === 0) return { ok: true, bytes, object: undefined, text: "" };
  const unreadable = (why: string): BodyState => ({
    ok: false,
    failure: fail("pricing_body_unreadable", "This route prices on a JSON body field; send one JSON object.", why),
  });
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return unreadable("not UTF-8");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return unreadable("not JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return unreadable("not an object");
  return { ok: true, bytes, object: parsed as Record<string, unknown>, text };
}

/**
 * How many times each key occurs in the top-level object in `text`, which JSON.parse has already
 * accepted (so the grammar is known to be valid and only strings and nesting need tracking).
 * Keys are counted decoded: `"serv\u0069ce"` is `service`. One pass, however many fields are priced.
 */
export function topLevelKeyCounts(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      if (depth === 1 && expectKey) {
        const raw = text.slice(i + 1, end);
        const decoded = raw.includes("\\") ? (JSON.parse(`"${raw}"`) as string) : raw;
        counts.set(decoded, (counts.get(decoded) ?? 0) + 1);
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else if (c === 0x2c /* , */ && depth === 1) {
      expectKey = true;
    }
  }
  return counts;
}

/** Index of the quote closing the string that opens at `start`. */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  for (;;) {
    const quote = text.indexOf('"', i);
    let backslashes = 0;
    for (let j = quote - 1; text.charCodeAt(j) === 0x5c; j--) backslashes++;
    if (backslashes % 2 === 0) return quote;
    i = quote + 1;
  }
}
