/**
 * Route patterns: `[METHOD ]/literal/:param/*`. Pure.
 * A literal segment is written in canonical form (see ../path.ts), so it compares byte for byte
 * with the canonical request segments; `:name` matches one segment; a trailing `*` matches zero or
 * more segments. One trailing "/" is ignored, as it is for requests.
 */
import { checkSegment } from "../path.ts";

export type Segment = { kind: "literal"; value: string } | { kind: "param"; name: string } | { kind: "wildcard" };

export interface Pattern {
  /** Upper-case method, or "*" for any method. */
  method: string;
  segments: Segment[];
}

export type PatternResult = { ok: true; pattern: Pattern } | { ok: false; problem: string };

const METHOD = /^[A-Z]{1,16}$/;
const PARAM = /^:[A-Za-z_][A-Za-z0-9_]*$/;

export function parsePattern(source: string): PatternResult {
  const parts = source.trim().split(/\s+/);
  let method = "*";
  let path: string | undefined;
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

  const raw = path === "/" ? [] : path.slice(1).split("/");
  if (raw.length > 0 && raw[raw.length - 1] === "") raw.pop();
  const segments: Segment[] = [];
  for (const [i, part] of raw.entries()) {
    if (part === "*") {
      if (i !== raw.length - 1) return { ok: false, problem: `"*" may only be the last segment in "${source}"` };
      segments.push({ kind: "wildcard" });
    } else if (part.startsWith(":")) {
      if (!PARAM.test(part)) return { ok: false, problem: `"${part}" is not a valid parameter name in "${source}"` };
      segments.push({ kind: "param", name: part.slice(1) });
    } else {
      const problem = checkSegment(part);
      if (problem) return { ok: false, problem: `segment "${part}" is not canonical (${problem}) in "${source}"` };
      segments.push({ kind: "literal", value: part });
    }
  }
  return { ok: true, pattern: { method, segments } };
}
