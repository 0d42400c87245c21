// In-memory stand-in for Workers KV under plain workerd, speaking the binding's HTTP protocol
// (GET/PUT https://fake-host/<key>?urlencoded=true[&expiration_ttl=N]). It counts every call, so
// the benchmark can show how many KV round-trips each measured run made.
const store = new Map();
let calls = 0;
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/__stats") return Response.json({ calls });
    calls++;
    const key = decodeURIComponent(url.pathname.slice(1));
    if (request.method === "GET") {
      const value = key === "pricing" ? env.PRICING_DOC : store.get(key);
      return value === undefined ? new Response(null, { status: 404 }) : new Response(value);
    }
    if (request.method === "PUT") {
      store.set(key, await request.text());
      return new Response(null);
    }
    if (request.method === "DELETE") {
      store.delete(key);
      return new Response(null);
    }
    return new Response(null, { status: 405 });
  },
};
