/**
 * `npm run bench:cold`: what the first signature checks of a repeat payer cost in a fresh
 * process (no tables yet): each check's CPU in order, in Node (the same V8 as workerd; workerd
 * stops its clock while a request computes, so this is measured here). Beside it, what building
 * both tables at once cost (the behaviour before they grew a step per check).
 */
import { secp256k1 } from "@noble/curves/secp256k1";
import { type Hex, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { isSignedBy } from "../src/schemes/evm-signature.ts";
import { tableOf } from "../src/schemes/secp256k1-tables.ts";

const signer = privateKeyToAccount(`0x${"5a".repeat(32)}`);
const checks = 40;
const signed: { digest: Hex; signature: Hex }[] = [];
for (let i = 0; i < checks; i++) {
  const digest = toHex(i + 1, { size: 32 });
  signed.push({ digest, signature: await signer.sign({ hash: digest }) });
}
const ms: number[] = [];
for (const { digest, signature } of signed) {
  const started = performance.now();
  if (!isSignedBy(digest, signature, signer.address)) throw new Error("a valid signature was refused");
  ms.push(performance.now() - started);
}
const key = secp256k1.ProjectivePoint.fromHex(secp256k1.getPublicKey(`${"5a".repeat(32)}`, false)).toAffine();
const started = performance.now();
tableOf(secp256k1.CURVE.Gx, secp256k1.CURVE.Gy, 7);
tableOf(key.x, key.y, 6);
const whole = performance.now() - started;
const sorted = [...ms].sort((a, b) => a - b);
const fast = ms.findIndex((_m, i) => i > 0 && ms.slice(i).every((n) => n < 1));
console.log(`checks 1–${checks}, ms each: ${ms.map((m) => m.toFixed(1)).join(" ")}`);
console.log(
  `max ${sorted.at(-1)?.toFixed(1)} ms, median ${sorted[Math.floor(checks / 2)]?.toFixed(2)} ms; ${fast < 0 ? `not under 1 ms for the last checks (a busy machine?)` : `under 1 ms from check ${fast + 1} on`}; both tables at once: ${whole.toFixed(1)} ms`,
);
