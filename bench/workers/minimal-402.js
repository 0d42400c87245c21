// For reference: a Worker that answers every request with a minimal 402 at once (three headers, an
// empty v1 list). No buyer could pay from it. Set beside (a) bare 402, it shows what the bytes of a payable answer cost.
const required = btoa(
  JSON.stringify({
    x402Version: 2,
    resource: { url: "http://bench/api/weather/paris", description: "Current weather", mimeType: "application/json" },
    accepts: [
      {
        scheme: "exact",
        network: "eip155:84532",
        amount: "1000",
        asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        payTo: "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        maxTimeoutSeconds: 60,
        extra: { name: "USDC", version: "2" },
      },
    ],
  }),
);
export default {
  fetch() {
    return new Response(JSON.stringify({ x402Version: 1, error: "payment_required", accepts: [] }), {
      status: 402,
      headers: { "content-type": "application/json", "cache-control": "no-store", "PAYMENT-REQUIRED": required },
    });
  },
};
