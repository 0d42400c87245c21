/** The path of the `workerd` binary the project pins (the same version `wrangler deploy` targets). */
import { createRequire } from "node:module";

const workerd = createRequire(import.meta.url)("workerd") as { default: string; version: string };
export const WORKERD_PATH = workerd.default;
export const WORKERD_VERSION = workerd.version;
