/**
 * Reading a body into memory with a ceiling: the stream is cancelled as soon as it passes `limit`
 * bytes, so an oversized body (a request priced on its JSON, a facilitator's reply) never costs
 * more than `limit` bytes of memory, whatever its Content-Length says or omits.
 */

export type CappedBytes = { ok: true; bytes: Uint8Array; size: number } | { ok: false; readBytes: number };

/** `signal` stops the read early (the stream is cancelled and the result is not ok). */
export async function readCapped(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
  signal?: AbortSignal,
): Promise<CappedBytes> {
  if (body === null) return { ok: true, bytes: new Uint8Array(0), size: 0 };
  const reader = body.getReader();
  const stop = () => void reader.cancel().catch(() => {});
  signal?.addEventListener("abort", stop, { once: true });
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    let next: ReadableStreamReadResult<Uint8Array>;
    try {
      next = await reader.read();
    } catch {
      return { ok: false, readBytes: size };
    }
    if (signal?.aborted) return { ok: false, readBytes: size };
    const { done, value } = next;
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return { ok: false, readBytes: size };
    }
    chunks.push(value);
  }
  signal?.removeEventListener("abort", stop);
  return { ok: true, bytes: concat(chunks, size), size };
}

export function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}
