/** Worker entry: one app per isolate, and the payment ledger's Durable Object class. */
import { createApp } from "./app.ts";

export { PaymentLedger } from "./ledger/payment-ledger.ts";

export default createApp();
