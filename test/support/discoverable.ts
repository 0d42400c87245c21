/** A pricing document whose routes declare discovery metadata, shared by Worker and raw tests. */
export const DISCOVERABLE = {
  version: 1,
  defaults: { network: "eip155:84532", payTo: "0x90F79bf6EB2c4f870365E785982E1f101E93b906", unmatched: "free" },
  routes: [
    {
      id: "weather",
      match: "GET /api/weather/:city",
      price: "$0.001",
      description: "Current weather",
      discovery: {
        input: { units: "metric" },
        inputSchema: { properties: { units: { type: "string", enum: ["metric", "imperial"] } } },
        output: {
          example: { city: "paris", temperatureC: 12 },
          schema: { properties: { temperatureC: { type: "number" } } },
        },
      },
    },
    {
      id: "summarise",
      match: "POST /v1/summarise",
      price: "$0.01",
      discovery: {
        input: { text: "a long text" },
        inputSchema: { properties: { text: { type: "string" } }, required: ["text"] },
      },
    },
    { id: "reports", match: "/reports/*", price: "$0.05", access: { ttl: 3600 } },
    { id: "health", match: "/health", price: "free" },
  ],
};
