/**
 * Keeping an origin's answer for safe paid retries ("same payment, same response"), and giving it
 * back. The copy is taken from a tee of the body, so the buyer's branch still streams as the origin
 * sends, and the copy goes on even if the buyer's connection drops (that is when it is needed).
 * At most `limitBytes` are kept; a larger answer is not kept at all and its copy is cancelled, so
 * the tee never buffers more than that for the slower branch.
 *
 * Kept: status, status text, the origin's headers except `Set-Cookie` (a stored answer goes to
 * whoever presents the same signed payment, and a settled authorization is public on chain),
 * `Content-Length` (the runtime sets it), the caching headers the paywall replaces anyway and the
 * origin's `Settlement-Overrides` (an upto charge report, for the paywall only).
 */
import { readCapped } from "../body.ts";
import type { StoredAnswer } from "./types.ts";

const NOT_KEPT = new Set(["set-cookie", "content-length", "cache-control", "expires", "settlement-overrides"]);

/** Whether an answer could be kept at all: known too large (or keeping is off) → no copy is taken. */
export function mayKeep(response: Response, limitBytes: number): boolean {
  return limitBytes > 0 && Number(response.headers.get("content-length") ?? "0") <= limitBytes;
}

/** `response` streams to the buyer; `copy` resolves to the kept answer, or undefined if not kept. */
export function copyForRetries(
  response: Response,
  limitBytes: number,
  signal?: AbortSignal,
): { response: Response; copy: Promise<StoredAnswer | undefined> } {
  if (!mayKeep(response, limitBytes)) return { response, copy: Promise.resolve(undefined) };
  const meta = metaOf(response);
  if (response.body === null) return { response, copy: Promise.resolve({ ...meta, body: new Uint8Array(0) }) };
  const [toBuyer, toKeep] = response.body.tee();
  const copy = readCapped(toKeep, limitBytes, signal).then(
    (read) => (read.ok ? { ...meta, body: read.bytes } : undefined),
    () => undefined,
  );
  return { response: withBody(response, toBuyer), copy };
}

/**
 * Reads the answer to keep it with a pending payment, within `deadlineMs`. When it is too large or
 * too slow, `response` is the answer to stream to the buyer instead (nothing was kept).
 */
export async function readForPending(
  response: Response,
  limitBytes: number,
  deadlineMs: number,
): Promise<{ answer: StoredAnswer } | { answer: undefined; response: Response }> {
  const late = new AbortController();
  const timer = setTimeout(() => late.abort(), deadlineMs);
  const { response: rest, copy } = copyForRetries(response, limitBytes, late.signal);
  const answer = await copy;
  clearTimeout(timer);
  if (answer !== undefined) {
    await rest.body?.cancel();
    return { answer };
  }
  return { answer: undefined, response: rest };
}

/** A kept answer as a fresh Response (headers are mutable: the caller marks it as paid). */
export function answerResponse(answer: StoredAnswer): Response {
  return new Response(answer.body.byteLength > 0 ? answer.body : null, {
    status: answer.status,
    statusText: answer.statusText,
    headers: answer.headers,
  });
}

function metaOf(response: Response): Omit<StoredAnswer, "body"> {
  const headers: [string, string][] = [];
  for (const [name, value] of response.headers) if (!NOT_KEPT.has(name)) headers.push([name, value]);
  return { status: response.status, statusText: response.statusText, headers };
}

function withBody(response: Response, body: ReadableStream<Uint8Array>): Response {
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
}
