/**
 * Route patterns: `[METHOD ]/literal/:param/*`. Pure.
 * A literal segment is written in canonical form (see ../path.ts), so it compares byte for byte
 * with the canonical request segments; `:name` matches one segment; a trailing `*` matches zero or
 * more segments. One trailing "/" is ignored, as it is for requests.
 */
import { checkSegment, checkSegmentAt } from "../path.ts";

export interface Pattern {
  /** Upper-case method, or "*" for any method. */
  method: string;
  /**
   * The segments as written, which says what each is: "*" (only last) is the wildcard, ":name" a
   * parameter, anything else a literal (a canonical segment never starts with ":" or is "*").
   * Plain strings rather than one object per segment: a 100k-route table has ~400k of them.
   */
  segments: string[];
}

export type PatternResult = { ok: true; pattern: Pattern } | { ok: false; problem: string };

const METHOD = /^[A-Z]{1,16}$/;
const PARAM = /^:[A-Za-z_][A-Za-z0-9_]*$/;
/** The usual spelling, "GET /a/b" or "/a/b", recognised without splitting on whitespace. */
const PLAIN = /^(?:[A-Z]{1,16} )?\/[^\s]*$/;

/** Shared method strings, so 100k rules do not hold 100k copies of "GET". */
const COMMON_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

function commonMethod(source: string, length: number): string | undefined {
  for (const method of COMMON_METHODS) if (method.length === length && source.startsWith(method)) return method;
  return undefined;
}

/** The method of a pattern in the usual spelling (see `usualPattern`): "*" when it names none. */
export function usualMethod(source: string): string {
  if (source.charCodeAt(0) === 0x2f /* / */) return "*";
  const space = source.indexOf(" ");
  return commonMethod(source, space) ?? source.slice(0, space);
}

export const isWildcard = (segment: string) => segment === "*";
export const isParam = (segment: string) => segment.charCodeAt(0) === 0x3a; /* : */

export function parsePattern(source: string): PatternResult {
  let method = "*";
  let path: string | undefined;
  if (PLAIN.test(source)) {
    const space = source.indexOf(" ");
    if (space > 0) method = commonMethod(source, space) ?? source.slice(0, space);
    path = source.slice(space + 1);
  } else {
    const parts = source.trim().split(/\s+/);
    if (parts.length === 2) {
      if (!METHOD.test(parts[0] ?? "")) return { ok: false, problem: `"${parts[0]}" is not an upper-case HTTP method` };
      method = parts[0] as string;
      path = parts[1];
    } else if (parts.length === 1) {
      path = parts[0];
    } else {
      return { ok: false, problem: `expected "[METHOD] /path", got "${source}"` };
    }
    if (!path?.startsWith("/")) return { ok: false, problem: `path must start with "/" in "${source}"` };
  }

  const segments = path === "/" ? [] : (path as string).slice(1).split("/");
  if (segments.length > 0 && segments[segments.length - 1] === "") segments.pop();
  for (let i = 0; i < segments.length; i++) {
    const part = segments[i] as string;
    if (isWildcard(part)) {
      if (i !== segments.length - 1) return { ok: false, problem: `"*" may only be the last segment in "${source}"` };
    } else if (isParam(part)) {
      if (!PARAM.test(part)) return { ok: false, problem: `"${part}" is not a valid parameter name in "${source}"` };
    } else {
      const problem = checkSegment(part);
      if (problem) return { ok: false, problem: `segment "${part}" is not canonical (${problem}) in "${source}"` };
    }
  }
  return { ok: true, pattern: { method, segments } };
}

/**
 * Reads a pattern in the usual spelling ("GET /a/:b/*", "/a/b") without splitting it: "static"
 * when every segment is a canonical literal (the source is then its matcher key, see matcher.ts
 * `staticKey`), "trie" when it also has valid parameters or a trailing wildcard. Anything else (a
 * trailing "/", unusual spacing, any problem) gives undefined, and `parsePattern` reads it instead.
 */
export function usualPattern(source: string): "static" | "trie" | undefined {
  if (!PLAIN.test(source)) return undefined;
  const start = source.indexOf("/");
  if (start === source.length - 1) return "static";
  if (source.charCodeAt(source.length - 1) === 0x2f) return undefined;
  let kind: "static" | "trie" = "static";
  for (let from = start + 1; from <= source.length; ) {
    let end = source.indexOf("/", from);
    if (end < 0) end = source.length;
    const first = source.charCodeAt(from);
    if (first === 0x3a /* : */) {
      if (!isParamName(source, from + 1, end)) return undefined;
      kind = "trie";
    } else if (first === 0x2a /* * */ && end - from === 1) {
      if (end !== source.length) return undefined;
      kind = "trie";
    } else if (checkSegmentAt(source, from, end) !== undefined) {
      return undefined;
    }
    from = end + 1;
  }
  return kind;
}

/** `PARAM` without the ":", on a range: a letter or "_", then letters, digits or "_". */
function isParamName(text: string, start: number, end: number): boolean {
  if (end === start) return false;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    const letter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
    if (!letter && (i === start || c < 0x30 || c > 0x39)) return false;
  }
  return true;
}
