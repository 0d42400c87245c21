/**
 * Canonical request paths. Pure: no I/O, no clock.
 *
 * The paywall matches prices on the raw path and forwards that same raw path, so every path must
 * have exactly one accepted spelling; otherwise `/api/w%65ather` or `/api/x/../weather` could
 * dodge a literal rule here and still reach the priced resource at an origin that normalises.
 * Canonical means (RFC 3986 §6.2.2):
 * - characters allowed raw in a segment (unreserved, sub-delims, ":" and "@") appear raw;
 * - every other byte is `%XX` with uppercase hex, except "/", "\" and control bytes, which may not
 *   appear encoded at all;
 * - no "." or ".." segments, no empty segments (one trailing "/" is allowed), no backslash;
 * - percent-decoded segments are valid UTF-8 (which also refuses overlong forms like %C0%AE).
 * Anything else is refused with 400 `non_canonical_path` and a detail naming the shape.
 */

export type PathProblem =
  | "not_absolute"
  | "dot_segment"
  | "empty_segment"
  | "backslash"
  | "illegal_character"
  | "malformed_percent"
  | "lowercase_percent"
  | "encoded_separator"
  | "encoded_control"
  | "encoded_unreserved"
  | "invalid_utf8"
  // refused for how origins read them (pricing/path-readings.ts), unless the table relaxes it
  | "path_parameter"
  | "trailing_dot_or_space";

export type CanonicalPath = { ok: true; path: string; segments: string[] } | { ok: false; problem: PathProblem };

// Bytes that RFC 3986 `pchar` allows raw: ALPHA DIGIT - . _ ~ ! $ & ' ( ) * + , ; = : @
const RAW_OK = new Uint8Array(128);
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@") {
  RAW_OK[ch.charCodeAt(0)] = 1;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Splits `request.url` (absolute, as the runtime received it) into its raw path and query. */
export function splitRawUrl(url: string): { path: string; query: string } {
  const scheme = url.indexOf("://");
  const start = url.indexOf("/", scheme < 0 ? 0 : scheme + 3);
  if (start < 0) return { path: "/", query: "" };
  let end = url.length;
  const hash = url.indexOf("#", start);
  if (hash >= 0) end = hash;
  const q = url.indexOf("?", start);
  if (q >= 0 && q < end) return { path: url.slice(start, q), query: url.slice(q, end) };
  return { path: url.slice(start, end), query: "" };
}

export function canonicalisePath(path: string): CanonicalPath {
  if (path.charCodeAt(0) !== 0x2f) return { ok: false, problem: "not_absolute" };
  if (path === "/") return { ok: true, path, segments: [] };
  const raw = path.slice(1).split("/");
  // One trailing slash is a real, common spelling ("/items/"); it matches like "/items".
  if (raw[raw.length - 1] === "") raw.pop();
  for (const segment of raw) {
    const problem = checkSegment(segment);
    if (problem) return { ok: false, problem };
  }
  return { ok: true, path, segments: raw };
}

/** Returns what is wrong with one raw segment, or undefined when it is canonical. */
export const checkSegment = (segment: string): PathProblem | undefined => checkSegmentAt(segment, 0, segment.length);

/** `checkSegment` for `text.slice(start, end)`, without making that string. */
export function checkSegmentAt(text: string, start: number, end: number): PathProblem | undefined {
  if (end === start) return "empty_segment";
  if (
    text.charCodeAt(start) === 0x2e &&
    (end - start === 1 || (end - start === 2 && text.charCodeAt(start + 1) === 0x2e))
  )
    return "dot_segment";
  let hasPercent = false;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25) {
      hasPercent = true;
      const problem = i + 2 < end ? checkPercent(text, i) : "malformed_percent";
      if (problem) return problem;
      i += 2;
    } else if (c === 0x5c) {
      return "backslash";
    } else if (c >= 128 || RAW_OK[c] !== 1) {
      return "illegal_character";
    }
  }
  if (hasPercent && !isUtf8(text.slice(start, end))) return "invalid_utf8";
  return undefined;
}

function checkPercent(segment: string, i: number): PathProblem | undefined {
  const hi = hexValue(segment.charCodeAt(i + 1));
  const lo = hexValue(segment.charCodeAt(i + 2));
  if (hi < 0 || lo < 0) return "malformed_percent";
  if (isLowerHex(segment.charCodeAt(i + 1)) || isLowerHex(segment.charCodeAt(i + 2))) return "lowercase_percent";
  const byte = hi * 16 + lo;
  if (byte === 0x2f || byte === 0x5c) return "encoded_separator";
  if (byte < 0x20 || byte === 0x7f) return "encoded_control";
  if (byte < 128 && RAW_OK[byte] === 1) return "encoded_unreserved";
  return undefined;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function isLowerHex(c: number): boolean {
  return c >= 0x61 && c <= 0x66;
}

function isUtf8(segment: string): boolean {
  const bytes: number[] = [];
  for (let i = 0; i < segment.length; i++) {
    if (segment.charCodeAt(i) === 0x25) {
      bytes.push(Number.parseInt(segment.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(segment.charCodeAt(i));
    }
  }
  try {
    UTF8.decode(new Uint8Array(bytes));
    return true;
  } catch {
    return false;
  }
}
