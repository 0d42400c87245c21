/** Worker entry: one app per isolate. */
import { createApp } from "./app.ts";

export default createApp();
