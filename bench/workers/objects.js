/**
 * `npm run bench:objects`: what Durable Object calls cost under local workerd, with nothing of
 * this project in them — the floor under the ledger's (e) and the channel objects' share of a
 * voucher. `?case=`:
 *   none      no object at all (the request itself)
 *   read      one call to an object that already exists, answered from memory (no SQL)
 *   existing  one call to an object that already exists, one small SQL write
 *   new       one call to a new object (a new name): it is created, its table made, a row written
 *   new2      the same, then a second call that updates the row (a ledger's claim, then settle)
 */
import { DurableObject } from "cloudflare:workers";

export class Probe extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS t (one INTEGER PRIMARY KEY CHECK (one = 1), v TEXT NOT NULL)");
  }
  read() {
    return "r";
  }
  write(value) {
    this.sql.exec("INSERT INTO t (one, v) VALUES (1, ?) ON CONFLICT (one) DO UPDATE SET v = excluded.v", value);
    return true;
  }
}

const RECORD = "r".repeat(400);

export default {
  async fetch(request, env) {
    const which = new URL(request.url).searchParams.get("case");
    if (which === "none") return new Response("ok");
    const stub = env.PROBE.getByName(which === "existing" || which === "read" ? "one-object" : crypto.randomUUID());
    if (which === "read") {
      await stub.read();
      return new Response("ok");
    }
    await stub.write(RECORD);
    if (which === "new2") await stub.write(RECORD);
    return new Response("ok");
  },
};
