/** Worker entry: one app per isolate, and the Durable Object classes (payment ledger, payment channels). */
import { createApp } from "./app.ts";

export { PaymentLedger } from "./ledger/payment-ledger.ts";
export { ChannelBook, PaymentChannel } from "./sessions/channel-objects.ts";

export default createApp();
