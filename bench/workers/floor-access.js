// The floor for an access-window request under this paywall's design: the header edits every paid
// answer needs, and nothing else. Towards the origin the payment header goes and X-Payment-Payer /
// X-Payment-Route come; towards the buyer, a new Response with Cache-Control, PAYMENT-RESPONSE
// and CORS headers (the origin's headers are immutable). No path check, pricing, decoding or
// receipt lookup: d/a is the most c/a can reach while making those edits.
const settlement = btoa(JSON.stringify({ success: true, transaction: `0x${"0".repeat(64)}`, network: "eip155:84532" }));
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.delete("payment-signature");
    headers.set("x-payment-payer", "0x0000000000000000000000000000000000000001");
    headers.set("x-payment-route", "reports");
    const response = await fetch(env.ORIGIN_URL + url.pathname + url.search, { headers, redirect: "manual" });
    const answer = new Headers(response.headers);
    answer.set("cache-control", "private, no-store");
    answer.set("payment-response", settlement);
    answer.set("access-control-allow-origin", "*");
    answer.set("access-control-expose-headers", "PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-PAYMENT-RESPONSE");
    return new Response(response.body, { status: response.status, headers: answer });
  },
};
