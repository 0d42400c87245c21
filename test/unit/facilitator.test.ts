/** The facilitator client against injected fetch functions (its `fetch` is a parameter). */
import { describe, expect, it } from "vitest";
import { createFacilitator } from "../../src/facilitators/http.ts";

const request = { x402Version: 2 as const, paymentPayload: {}, paymentRequirements: {} };

function client(respond: (url: string, init: RequestInit) => Promise<Response>, timeoutMs = 200) {
  return createFacilitator({
    url: "https://facilitator.example",
    fetch: ((url: string, init: RequestInit) => respond(url, init)) as typeof fetch,
    verifyTimeoutMs: timeoutMs,
    settleTimeoutMs: timeoutMs,
    authHeaders: async () => ({ authorization: "Bearer secret" }),
  });
}

const json = (status: number, body: unknown) => Promise.resolve(new Response(JSON.stringify(body), { status }));
/** A body that never ends: a client reading it to the end would never answer (the test's timeout fails it). */
const endless = () =>
  new ReadableStream<Uint8Array>({
    async pull(controller) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      controller.enqueue(new TextEncoder().encode(`{"isValid":true,"pad":"${"x".repeat(4096)}`));
    },
  });
/** A body sent in chunks with no Content-Length, as a streaming server would. */
const stream = (text: string) => {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 4096) controller.enqueue(bytes.slice(i, i + 4096));
      controller.close();
    },
  });
};

describe("createFacilitator", () => {
  it("posts JSON with the auth header, follows no redirects, and returns the reply", async () => {
    let seen: { url: string; init: RequestInit } | undefined;
    const f = client((url, init) => {
      seen = { url, init };
      return json(200, { isValid: true, payer: "0xabc" });
    });
    expect(await f.verify(request)).toEqual({ ok: true, reply: { isValid: true, payer: "0xabc" } });
    expect(seen?.url).toBe("https://facilitator.example/verify");
    expect(seen?.init.redirect).toBe("manual");
    expect((seen?.init.headers as Record<string, string> | undefined)?.authorization).toBe("Bearer secret");
    expect(JSON.parse(String(seen?.init.body))).toEqual(request);
  });

  it("accepts a 'no' with a 4xx status as an answer", async () => {
    const f = client(() => json(400, { isValid: false, invalidReason: "invalid_exact_evm_signature" }));
    expect(await f.verify(request)).toEqual({
      ok: true,
      reply: { isValid: false, invalidReason: "invalid_exact_evm_signature" },
    });
  });

  it.each([
    ["a 'yes' with a non-2xx status", () => json(400, { isValid: true })],
    ["a 5xx", () => json(503, { isValid: false })],
    [
      "a redirect",
      () => Promise.resolve(new Response(null, { status: 302, headers: { location: "https://evil.example" } })),
    ],
    ["HTML", () => Promise.resolve(new Response("<html>", { status: 200 }))],
    ["the wrong shape", () => json(200, { valid: true })],
    ["an oversized reply", () => Promise.resolve(new Response("x".repeat(70_000), { status: 200 }))],
    ["a 'yes' with a 5xx status", () => json(500, { isValid: true, payer: "0xabc" })],
    ["a 'yes' with a 3xx status", () => json(302, { isValid: true })],
    ["a 'no' with a 3xx status", () => json(307, { isValid: false, invalidReason: "moved" })],
    ["a 'yes' whose isValid is a string", () => json(200, { isValid: "true" })],
    ["a JSON array", () => json(200, [{ isValid: true }])],
    [
      "an endless reply streamed without Content-Length (read up to the cap, then cancelled)",
      () => Promise.resolve(new Response(endless(), { status: 200 })),
    ],
    [
      "a valid 'yes' followed by more than the cap",
      () => Promise.resolve(new Response(stream(`{"isValid":true}${" ".repeat(70_000)}`), { status: 200 })),
    ],
  ])("treats %s as a bad response", async (_name, respond) => {
    const result = await client(respond).verify(request);
    expect(result.ok ? "" : result.failure.reason).toBe("facilitator_bad_response");
  });

  it.each([
    ["a 5xx", 500],
    ["a 502", 502],
    ["a 3xx", 303],
    ["a 4xx", 400],
  ])("treats a settle 'success' on %s as a bad response, not a settlement", async (_name, status) => {
    const result = await client(() =>
      json(status, { success: true, transaction: "0x1", network: "eip155:8453", payer: "0xabc" }),
    ).settle(request);
    expect(result.ok ? "" : result.failure.reason).toBe("facilitator_bad_response");
  });

  it("takes a 2xx reply with extra fields, and keeps only the fields it knows (scheme state in `extra` included)", async () => {
    const verified = await client(() =>
      json(200, { isValid: true, payer: "0xabc", extensions: { x: 1 }, invalidMessage: "<script>" }),
    ).verify(request);
    expect(verified).toEqual({ ok: true, reply: { isValid: true, payer: "0xabc" } });
    const settled = await client(() =>
      json(200, { success: true, transaction: "0x1", network: "eip155:8453", extra: { secret: "x" } }),
    ).settle(request);
    expect(settled).toEqual({
      ok: true,
      reply: { success: true, transaction: "0x1", network: "eip155:8453", extra: { secret: "x" } },
    });
    // An `extra` that is not an object is dropped, not a reason to refuse the reply.
    const odd = await client(() => json(200, { isValid: true, extra: "v" })).verify(request);
    expect(odd).toEqual({ ok: true, reply: { isValid: true } });
  });

  it("reads a streamed reply just under the cap", async () => {
    const body = JSON.stringify({ isValid: true, pad: "x".repeat(60_000) });
    const result = await client(() => Promise.resolve(new Response(stream(body), { status: 200 }))).verify(request);
    expect(result).toEqual({ ok: true, reply: { isValid: true } });
  });

  it("times out", async () => {
    const f = client(
      (_url, init) =>
        new Promise((_resolve, reject) => init.signal?.addEventListener("abort", () => reject(init.signal?.reason))),
      50,
    );
    const result = await f.settle(request);
    expect(result.ok ? "" : result.failure.reason).toBe("facilitator_timeout");
  });

  it("keeps a timed-out settle running for lateMs, and hands its answer back as `late`", async () => {
    const answerAfter = (ms: number) => (_url: string, init: RequestInit) =>
      new Promise<Response>((resolve, reject) => {
        const timer = setTimeout(
          () => resolve(new Response(JSON.stringify({ success: true, transaction: "0x01", network: "eip155:84532" }))),
          ms,
        );
        init.signal?.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(init.signal?.reason);
        });
      });
    // Answers at 120 ms: after the 50 ms timeout, within the 50 + 150 ms the late call may take.
    const timedOut = await client(answerAfter(120), 50).settle(request, undefined, 150);
    expect(timedOut.ok ? "" : timedOut.failure.reason).toBe("facilitator_timeout");
    const late = timedOut.ok ? undefined : await timedOut.late;
    expect(late?.ok && late.reply).toMatchObject({ success: true, transaction: "0x01" });
    // Past the late window too: the late answer is itself a timeout.
    const never = await client(answerAfter(1000), 50).settle(request, undefined, 50);
    const lateNever = never.ok ? undefined : await never.late;
    expect(lateNever?.ok ? "" : lateNever?.failure.reason).toBe("facilitator_timeout");
    // An answer within the timeout comes as usual, with nothing late.
    const inTime = await client(answerAfter(10), 50).settle(request, undefined, 150);
    expect(inTime).toMatchObject({ ok: true, reply: { success: true } });
  });

  it("reports an unreachable facilitator", async () => {
    const result = await client(() => Promise.reject(new TypeError("fetch failed"))).verify(request);
    expect(result.ok ? "" : result.failure.reason).toBe("facilitator_unreachable");
  });

  it("schema-checks settle replies", async () => {
    const ok = await client(() =>
      json(200, { success: true, transaction: "0x1", network: "eip155:8453", payer: "0xabc" }),
    ).settle(request);
    expect(ok).toMatchObject({ ok: true, reply: { success: true, transaction: "0x1" } });
    const bad = await client(() => json(200, { success: true })).settle(request);
    expect(bad.ok ? "" : bad.failure.reason).toBe("facilitator_bad_response");
  });
});
