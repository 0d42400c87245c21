/**
 * `npm run bench:objects`: what Durable Object calls cost under local workerd, with nothing of
 * this project in them — the floor under the ledger's (e) and the channel objects' share of a
 * voucher. `?case=`:
 *   none      no object at all (the request itself)
 *   read      one call to an object that already exists, answered from memory (no SQL)
 *   existing  one call to an object that already exists, one small SQL write
 *   new       one call to a new object (a new name): it is created, its table made, a row written
 *   new2      the same, then a second call that updates the row (a ledger's claim, then settle)
 *   alarm     as existing, and the call also moves the object's alarm (an hour ahead)
 *   new2alarm as new2, the first call also arming the object's alarm (the ledger's claim)
 *   new2alarms as new2alarm, the second call moving that alarm again (the ledger's settle)
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
  write(value, alarmAtMs) {
    this.sql.exec("INSERT INTO t (one, v) VALUES (1, ?) ON CONFLICT (one) DO UPDATE SET v = excluded.v", value);
    if (alarmAtMs) void this.ctx.storage.setAlarm(alarmAtMs);
    return true;
  }
  alarm() {}
}

const RECORD = "r".repeat(400);

export default {
  async fetch(request, env) {
    const which = new URL(request.url).searchParams.get("case");
    if (which === "none") return new Response("ok");
    const existing = which === "existing" || which === "read" || which === "alarm";
    const stub = env.PROBE.getByName(existing ? "one-object" : crypto.randomUUID());
    if (which === "read") {
      await stub.read();
      return new Response("ok");
    }
    const hourAhead = Date.now() + 3_600_000;
    await stub.write(RECORD, which === "alarm" || which.startsWith("new2alarm") ? hourAhead : 0);
    if (which.startsWith("new2")) await stub.write(RECORD, which === "new2alarms" ? hourAhead + 1 : 0);
    return new Response("ok");
  },
};
