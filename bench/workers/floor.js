// The floor for a fresh payment under this paywall's design: the five round-trips a fresh payment
// must make (receipt lookup in KV, /verify, origin, /settle, receipt write after the answer) and
// nothing else: no decoding, no checks, no signature recovery. No implementation of that design can
// cost less than this, so (d) / (b) is the most (c) / (b) can reach.
export default {
  async fetch(request, env, ctx) {
    const header = request.headers.get("PAYMENT-SIGNATURE") ?? "";
    const key = `r:${header.slice(-64)}`;
    await env.RECEIPTS.get(key);
    const init = {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ x402Version: 2, paymentPayload: header }),
    };
    await (await fetch(`${env.FACILITATOR_URL}/verify`, init)).text();
    const url = new URL(request.url);
    const response = await fetch(env.ORIGIN_URL + url.pathname + url.search, { headers: request.headers });
    await (await fetch(`${env.FACILITATOR_URL}/settle`, init)).text();
    ctx.waitUntil(env.RECEIPTS.put(key, "{}", { expirationTtl: 3600 }));
    return response;
  },
};
