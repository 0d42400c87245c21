/** Worker entry: one app per isolate. */
import { createApp } from "./app";

export default createApp();
